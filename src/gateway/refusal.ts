/**
 * Refusals a person can read: nginx answers a missing client certificate with an HTTP 400
 * page after completing the handshake, so a curl user sees why; Gatehouse does the same, and
 * answers JSON to clients that ask for it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export type RefusalReason =
  | 'NO_CERTIFICATE' | 'UNTRUSTED' | 'EXPIRED' | 'NOT_YET_VALID' | 'WRONG_PURPOSE' | 'REVOKED'
  | 'POLICY_DENIED' | 'PATH_AMBIGUOUS' | 'MISDIRECTED' | 'UPSTREAM_UNAVAILABLE' | 'UPSTREAM_TIMEOUT' | 'INTERNAL';

const STATUS: Record<RefusalReason, number> = {
  NO_CERTIFICATE: 400, PATH_AMBIGUOUS: 400,
  UNTRUSTED: 403, EXPIRED: 403, NOT_YET_VALID: 403, WRONG_PURPOSE: 403, REVOKED: 403, POLICY_DENIED: 403,
  MISDIRECTED: 421, INTERNAL: 500, UPSTREAM_UNAVAILABLE: 502, UPSTREAM_TIMEOUT: 504,
};

export function refusalStatus(reason: RefusalReason): number {
  return STATUS[reason];
}

export function sendRefusal(req: IncomingMessage, res: ServerResponse, reason: RefusalReason, message: string, requestId: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = STATUS[reason];
  const wantsJson = /\bapplication\/json\b/.test(req.headers.accept ?? '');
  const body = wantsJson ? JSON.stringify({ error: { code: reason, message, requestId } }) : `${message}\n`;
  res.writeHead(status, {
    'content-type': wantsJson ? 'application/json' : 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-request-id': requestId,
  });
  res.end(body);
}
