/**
 * What a remote caller may read of an error, the one home of that rule (the CA's JSON API and
 * the dashboard's HTML pages both render through it). A code the registry marks `expose` carries
 * its own message; any other says only where to look, by request ID, so a path, a SQL error or a
 * key file name never leaves the process. The log line keeps everything.
 */
import type { ErrorCode, GatehouseError } from './errors.js';

/** Seconds a client waits after a 503 (the store or the external CA unreachable) before trying again. */
export const STORE_RETRY_AFTER_S = 5;

/** What a 503 says it cannot reach: a dependency, never its address. */
const UNAVAILABLE: Partial<Record<ErrorCode, string>> = {
  GH_STORE_UNAVAILABLE: 'the CA cannot reach its store',
  GH_EXTERNAL_CA_UNREACHABLE: 'the CA cannot reach its external signing CA',
};

export function publicMessage(error: GatehouseError, requestId: string): string {
  if (error.spec.expose) return error.message;
  // A 503 says what is wrong and when to retry, without naming the database or the signer.
  if (error.spec.http === 503) {
    const what = UNAVAILABLE[error.code] ?? 'a service the CA depends on is unavailable';
    return `service unavailable: ${what}; retry after ${STORE_RETRY_AFTER_S} s (requestId ${requestId})`;
  }
  return `internal error, see logs (requestId ${requestId})`;
}
