/**
 * Where HTTP/1.1 and HTTP/2 differ for a request, once: the TLS socket under it (an HTTP/2
 * stream's session owns the socket) and the facts request-admission.ts judges (`:authority`,
 * END_STREAM on the headers). Everything after admission treats both versions alike.
 */
import { Http2ServerRequest } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { ClientRequest } from '../upstream/forward.js';
import type { RequestFacts } from './request-admission.js';

/** The TLS socket under a request, for HTTP/1.1 and HTTP/2 alike. An HTTP/1 request line may
 * claim any version (`GET / HTTP/2.0`), so the transport decides, never httpVersionMajor. */
export function socketOf(req: ClientRequest): TLSSocket {
  return (req instanceof Http2ServerRequest ? req.stream.session!.socket : req.socket) as TLSSocket;
}

export function requestFacts(req: ClientRequest, socket: TLSSocket, upgrade: boolean): RequestFacts {
  const http2 = req instanceof Http2ServerRequest;
  const authority = http2 ? req.headers[':authority'] : undefined;
  return {
    method: req.method ?? 'GET',
    httpVersion: req.httpVersion,
    http2,
    target: req.url ?? '/',
    rawHeaders: req.rawHeaders,
    ...(typeof authority === 'string' ? { authority } : {}),
    ...(http2 ? { endStream: req.stream.endAfterHeaders } : {}),
    upgrade,
    sni: typeof socket.servername === 'string' ? socket.servername : null,
    remoteAddress: socket.remoteAddress ?? '',
  };
}
