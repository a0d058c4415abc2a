/**
 * Refusals a person can read: nginx answers a missing client certificate with an HTTP 400
 * page after completing the handshake, so a curl user sees why; Gatehouse does the same, and
 * answers JSON to clients that ask for it. WebSocket upgrades are refused with the same text
 * written straight to the socket.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import type { ClientRequest, ClientResponse } from './upstream/forward.js';
import { GATEWAY_REFUSALS, type RefusalReason } from '../errors/gateway-refusals.js';

export type { RefusalReason };

export function refusalStatus(reason: RefusalReason): number {
  return GATEWAY_REFUSALS[reason].status;
}

/** `failed` when the gateway or the app could not serve an allowed request; `refused` when the request itself was turned away. */
export function refusalDecision(reason: RefusalReason): 'failed' | 'refused' {
  return reason === 'INTERNAL' || reason.startsWith('UPSTREAM_') ? 'failed' : 'refused';
}

/** INTERNAL, the last-resort guard, also closes the connection the bug was met on. */
export function refusalClosesConnection(reason: RefusalReason): boolean {
  return GATEWAY_REFUSALS[reason].closes;
}

interface Refusal {
  status: number;
  headers: Record<string, string | number>;
  body: string;
}

function buildRefusal(
  headers: IncomingHttpHeaders,
  reason: RefusalReason,
  message: string,
  requestId: string,
): Refusal {
  const wantsJson = /\bapplication\/json\b/.test(headers.accept ?? '');
  const body = wantsJson ? JSON.stringify({ error: { code: reason, message, requestId } }) : `${message}\n`;
  return {
    status: GATEWAY_REFUSALS[reason].status,
    body,
    headers: {
      'content-type': wantsJson ? 'application/json' : 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      'x-request-id': requestId,
    },
  };
}

export function sendRefusal(
  req: ClientRequest,
  res: ClientResponse,
  reason: RefusalReason,
  message: string,
  requestId: string,
): void {
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
export function writeRefusalToSocket(
  headers: IncomingHttpHeaders,
  socket: Duplex,
  reason: RefusalReason,
  message: string,
  requestId: string,
): void {
  const refusal = buildRefusal(headers, reason, message, requestId);
  const head = [
    `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status]}`,
    ...Object.entries(refusal.headers).map(([k, v]) => `${k}: ${v}`),
    'connection: close',
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${refusal.body}`);
}
