/**
 * Refusals a person can read: nginx answers a missing client certificate with an HTTP 400
 * page after completing the handshake, so a curl user sees why; Gatehouse does the same, and
 * answers JSON to clients that ask for it. WebSocket upgrades are refused with the same text
 * written straight to the socket.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import type { ClientRequest, ClientResponse } from './forward.js';

export type RefusalReason =
  | 'NO_CERTIFICATE' | 'UNTRUSTED' | 'EXPIRED' | 'NOT_YET_VALID' | 'WRONG_PURPOSE' | 'REVOKED' | 'CRL_STALE' | 'CRL_MISSING'
  | 'POLICY_DENIED' | 'POSTURE_FAILED' | 'POSTURE_UNAVAILABLE' | 'PATH_AMBIGUOUS' | 'HEADERS_TOO_LARGE' | 'NO_ROUTE' | 'MISDIRECTED' | 'UPSTREAM_UNAVAILABLE' | 'UPSTREAM_HEAD_TOO_LARGE' | 'UPSTREAM_TIMEOUT' | 'INTERNAL'
  | 'MALFORMED_REQUEST' | 'REQUEST_TIMEOUT' | 'HOST_INVALID' | 'FRAMING_INVALID' | 'TRANSFER_CODING_UNSUPPORTED' | 'VERSION_UNSUPPORTED' | 'METHOD_UNSUPPORTED';

const STATUS: Record<RefusalReason, number> = {
  NO_CERTIFICATE: 400, PATH_AMBIGUOUS: 400, MALFORMED_REQUEST: 400, HOST_INVALID: 400, FRAMING_INVALID: 400, REQUEST_TIMEOUT: 408,
  TRANSFER_CODING_UNSUPPORTED: 501, METHOD_UNSUPPORTED: 501, VERSION_UNSUPPORTED: 505,
  UNTRUSTED: 403, EXPIRED: 403, NOT_YET_VALID: 403, WRONG_PURPOSE: 403, REVOKED: 403, CRL_STALE: 403, CRL_MISSING: 403, POLICY_DENIED: 403, POSTURE_FAILED: 403, POSTURE_UNAVAILABLE: 503,
  NO_ROUTE: 404, MISDIRECTED: 421, HEADERS_TOO_LARGE: 431, INTERNAL: 500, UPSTREAM_UNAVAILABLE: 502, UPSTREAM_HEAD_TOO_LARGE: 502, UPSTREAM_TIMEOUT: 504,
};

export function refusalStatus(reason: RefusalReason): number {
  return STATUS[reason];
}

/** `failed` when the gateway or the app could not serve an allowed request; `refused` when the request itself was turned away. */
export function refusalDecision(reason: RefusalReason): 'failed' | 'refused' {
  return reason === 'INTERNAL' || reason.startsWith('UPSTREAM_') ? 'failed' : 'refused';
}

/**
 * Refusals after which the connection cannot be trusted to carry a next request: the
 * framing or the head was not understood, so where this request ends is not known either;
 * and INTERNAL, the last-resort guard, which closes the connection the bug was met on.
 */
const CLOSES_CONNECTION: ReadonlySet<RefusalReason> = new Set(['INTERNAL', 'MALFORMED_REQUEST', 'REQUEST_TIMEOUT', 'HOST_INVALID', 'FRAMING_INVALID', 'TRANSFER_CODING_UNSUPPORTED', 'VERSION_UNSUPPORTED', 'METHOD_UNSUPPORTED', 'HEADERS_TOO_LARGE']);

export function refusalClosesConnection(reason: RefusalReason): boolean {
  return CLOSES_CONNECTION.has(reason);
}

interface Refusal {
  status: number;
  headers: Record<string, string | number>;
  body: string;
}

function buildRefusal(headers: IncomingHttpHeaders, reason: RefusalReason, message: string, requestId: string): Refusal {
  const wantsJson = /\bapplication\/json\b/.test(headers.accept ?? '');
  const body = wantsJson ? JSON.stringify({ error: { code: reason, message, requestId } }) : `${message}\n`;
  return {
    status: STATUS[reason],
    body,
    headers: {
      'content-type': wantsJson ? 'application/json' : 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      'x-request-id': requestId,
    },
  };
}

export function sendRefusal(req: ClientRequest, res: ClientResponse, reason: RefusalReason, message: string, requestId: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const refusal = buildRefusal(req.headers, reason, message, requestId);
  // HTTP/2 streams are independent: only an HTTP/1.1 connection is closed after a refusal.
  if (refusalClosesConnection(reason) && !('stream' in res)) refusal.headers.connection = 'close';
  res.writeHead(refusal.status, refusal.headers);
  res.end(refusal.body);
}

/** For an upgrade request, where there is no response object, only the raw socket. */
export function writeRefusalToSocket(headers: IncomingHttpHeaders, socket: Duplex, reason: RefusalReason, message: string, requestId: string): void {
  const refusal = buildRefusal(headers, reason, message, requestId);
  const head = [`HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status]}`, ...Object.entries(refusal.headers).map(([k, v]) => `${k}: ${v}`), 'connection: close'];
  socket.end(`${head.join('\r\n')}\r\n\r\n${refusal.body}`);
}
