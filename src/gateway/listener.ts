/**
 * The gateway's listening side: the TLS server (HTTP/2 through ALPN beside HTTP/1.1, or
 * HTTP/1.1 alone), its limits, idle HTTP/2 sessions, and the refusals Node makes before any
 * request handler runs (a head over the size limit, a head that never completes, bytes that
 * are not HTTP), each answered with a readable reason, counted and logged.
 */
import { createSecureServer, type Http2SecureServer, type Http2Session } from 'node:http2';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../log/logger.js';
import { checkPeerCertificate, pinPeerForConnection } from '../tls/peer-certificate.js';
import type { GatewayConfig } from './config.js';
import type { GatewayMetrics } from './metrics.js';
import type { TlsMaterial } from './tls-material.js';
import { refusalStatus, writeRefusalToSocket, type RefusalReason } from './refusal.js';
import { nextRequestId } from './request/request-id.js';

export type GatewayServer = Http2SecureServer | HttpsServer;

export interface Listener {
  server: GatewayServer;
  /** Open HTTP/2 sessions, for a graceful close. */
  sessions: Set<Http2Session>;
}

/** How long a refused connection may go on sending before it is cut (a lingering close, as nginx does). */
const LINGER_MS = 2000;

export function createListener(
  config: Readonly<GatewayConfig>,
  tls: TlsMaterial,
  metrics: GatewayMetrics,
  logger: Logger,
): Listener {
  const tlsOptions = {
    ...tls.context,
    requestCert: true,
    // Verification failures are answered in HTTP (400/403 with the reason), as nginx does, so
    // the handshake completes; every request is checked before anything is forwarded.
    rejectUnauthorized: false,
  };
  const httpOptions = {
    headersTimeout: config.limits.headersTimeout,
    requestTimeout: config.limits.requestTimeout,
    keepAliveTimeout: config.limits.keepAliveTimeout,
    maxHeaderSize: config.limits.maxHeaderBytes,
    // Node checks those timeouts on this period (default 30 s), so a slowloris would hold its
    // socket up to 30 s past headersTimeout; checking every second keeps the limit meaningful.
    connectionsCheckingInterval: 1000,
  };
  const server: GatewayServer = config.http2
    ? createSecureServer({
        ...tlsOptions,
        allowHTTP1: true,
        settings: { maxHeaderListSize: config.limits.maxHeaderBytes },
        maxSessionMemory: 10,
      })
    : createHttpsServer({ ...tlsOptions, ...httpOptions });
  // The HTTP/1.1 side of an HTTP/2 server (allowHTTP1) reads these just as an http.Server does.
  if (config.http2) Object.assign(server, httpOptions);

  // HTTP/2 sessions: closed when idle for keepAliveTimeout, never while a stream waits for the
  // upstream (a socket-level timeout would cut slow requests before their route timeout).
  const sessions = new Set<Http2Session>();
  server.on('session', (session: Http2Session) => {
    sessions.add(session);
    let openStreams = 0;
    session.on('stream', (stream) => {
      openStreams++;
      stream.once('close', () => openStreams--);
    });
    session.on('error', (err: Error) => logger.debug('gateway.session_error', { reason: err.message }));
    session.setTimeout(config.limits.keepAliveTimeout, () => {
      if (openStreams === 0) session.close();
    });
    session.once('close', () => sessions.delete(session));
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    pinPeerForConnection(socket);
    const check = checkPeerCertificate(socket);
    metrics.handshakes.inc({ outcome: check.ok ? 'verified' : check.reason.toLowerCase() });
  });
  server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
    metrics.handshakeFailures.inc({ reason: handshakeFailureReason(err) });
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) =>
    answerClientError(err, socket, config, metrics, logger),
  );
  return { server, sessions };
}

/**
 * Node could not parse what the client sent. When a response is already on its way the
 * connection is cut (a status line now would be read as part of that response); otherwise a
 * 400/408/431 with the reason, then the connection closes, as Node's own default does.
 */
function answerClientError(
  err: NodeJS.ErrnoException,
  socket: Duplex,
  config: Readonly<GatewayConfig>,
  metrics: GatewayMetrics,
  logger: Logger,
): void {
  const [reason, text]: [RefusalReason, string] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [
          'HEADERS_TOO_LARGE',
          `431 Request Header Fields Too Large: the request head is over ${config.limits.maxHeaderBytes} bytes`,
        ]
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [
            'REQUEST_TIMEOUT',
            `408 Request Timeout: the request head did not arrive within ${config.limits.headersTimeout} ms`,
          ]
        : ['MALFORMED_REQUEST', `400 Bad Request: malformed HTTP request (${parserReason(err)})`];
  const status = refusalStatus(reason);
  const requestId = nextRequestId();
  metrics.requests.inc({ decision: 'refused', reason, status: String(status) });
  logger.info('gateway.request', { requestId, decision: 'refused', reason, status, detail: err.code });
  const inFlight = (socket as unknown as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  socket.on('error', () => socket.destroy());
  // Node has no parsed head to offer here, so the answer is the plain-text form.
  writeRefusalToSocket({}, socket, reason, text, requestId);
  // Read and drop what the client is still sending, so the kernel does not answer unread data
  // with a reset that would hide the status from it.
  socket.on('data', () => undefined);
  socket.resume();
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

/** llhttp's reason, which names what was wrong ("Invalid character in chunk size"); never client bytes. */
function parserReason(err: NodeJS.ErrnoException): string {
  const reason = (err as { reason?: unknown }).reason;
  return typeof reason === 'string' && /^[\x20-\x7e]{1,100}$/.test(reason) ? reason : (err.code ?? 'unknown');
}

/** A closed set of label values: OpenSSL reason codes are many, so only the common ones are named. */
function handshakeFailureReason(err: NodeJS.ErrnoException): string {
  const code = err.code ?? '';
  if (/UNSUPPORTED_PROTOCOL|VERSION/.test(code)) return 'protocol_version';
  if (/NO_SHARED_CIPHER|NO_CIPHERS/.test(code)) return 'no_shared_cipher';
  if (/ECONNRESET|EPIPE/.test(code)) return 'connection_reset';
  if (/TIMEOUT/i.test(code) || /timeout/i.test(err.message)) return 'timeout';
  if (/ALERT/.test(code)) return 'client_alert';
  return 'other';
}
