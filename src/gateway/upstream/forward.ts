/**
 * Forwards one admitted request to a route's upstreams through undici, which writes the
 * upstream hop's framing itself from the body it is given: `Content-Length` when the gateway
 * passes the length it parsed, chunked otherwise, for every method (issue 10: Node's
 * `http.request` sent a GET's body with no framing at all, and the app read it as a second
 * request). A request with no body whose connection was refused is tried on the next
 * upstream (nothing reached the app, so this is safe for any method, as nginx's
 * proxy_next_upstream does for errors); anything else fails with a 502 or 504 the caller words.
 *
 * The rest of upstream/ is the hop to the app too: upstream-pool.ts (a route's upstreams and
 * their failures), upstream-guard.ts (loopback unless opted out) and websocket.ts (the same hop
 * for an Upgrade, and the tunnels it leaves open).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { forwardableResponseHeaders } from '../identity-headers/inbound-headers.js';
import { hasBody, type BodyFraming } from '../request/request-framing.js';
import type { UpstreamPool, UpstreamTarget } from './upstream-pool.js';

export type ClientRequest = IncomingMessage | Http2ServerRequest;
export type ClientResponse = ServerResponse | Http2ServerResponse;

export type UpstreamFailure = 'refused' | 'connect_timeout' | 'timeout' | 'error';

export interface ForwardOptions {
  req: ClientRequest;
  res: ClientResponse;
  method: string;
  pool: UpstreamPool;
  /** Flat header list to send: the client's forwardable headers, Host, and the gateway's own. */
  headers: string[];
  framing: BodyFraming;
  /** Path and query for the upstream, already encoded; the target's base path is prepended. */
  pathAndQuery: string;
  timeoutMs: number;
  onResponse(target: UpstreamTarget, latencySeconds: number): void;
  onAttemptFailed(target: UpstreamTarget, kind: UpstreamFailure, err: Error): void;
  /** The app answered 431 to the head the gateway sent (its own headers included), so the client gets a reason instead. */
  onHeadTooLarge(target: UpstreamTarget, headBytes: number): void;
  /** Every attempt failed and nothing was sent to the client yet. */
  onGiveUp(kind: UpstreamFailure, target: UpstreamTarget): void;
}

/** RFC 9110 §9.3.1-9.3.5: methods whose request has a defined body; an empty one still gets `Content-Length: 0`. */
const PAYLOAD_METHODS = new Set(['POST', 'PUT', 'PATCH']);

export function forward(options: ForwardOptions): void {
  const { req, res, pool, framing, method } = options;
  const withBody = hasBody(framing);
  const headers =
    withBody && framing.kind === 'length'
      ? [...options.headers, 'content-length', String(framing.length)]
      : !withBody && PAYLOAD_METHODS.has(method)
        ? [...options.headers, 'content-length', '0']
        : options.headers;
  const maxAttempts = withBody ? 1 : pool.targets.length;

  const attempt = (n: number): void => {
    const target = pool.pick();
    const started = process.hrtime.bigint();
    let controller: Dispatcher.DispatchController | null = null;
    let responded = false;
    /** The gateway answered the client itself (the app's 431); what undici reports next is moot. */
    let answeredHere = false;
    // The client went away: stop reading from the upstream, and the connection is not reused.
    const onClientClose = () => {
      if (!res.writableFinished) controller?.abort(new Error('client closed the connection'));
    };
    res.once('close', onClientClose);
    const onDrain = () => controller?.resume();
    // A response that can have no body (to HEAD, 204, 304) is written whole once undici has
    // checked it, so an app that breaks the framing there (a 204 with a length) gets a 502 the
    // client can read instead of a cut connection.
    let pendingHead: (() => void) | null = null;

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (res.destroyed) c.abort(new Error('client closed the connection'));
      },
      onResponseStart(c, statusCode, _parsed, statusMessage) {
        if (statusCode < 200) return; // 1xx from the app are not relayed (the client's 100-continue was answered already)
        responded = true;
        pool.succeeded(target);
        options.onResponse(target, Number(process.hrtime.bigint() - started) / 1e9);
        if (statusCode === 431) {
          answeredHere = true;
          res.off('close', onClientClose);
          c.abort(new Error('upstream refused the request head'));
          options.onHeadTooLarge(
            target,
            headers.reduce((sum, part) => sum + Buffer.byteLength(part) + 2, 0),
          );
          return;
        }
        const writeHead = () => writeUpstreamHead(res, statusCode, statusMessage ?? '', rawHeaderStrings(c.rawHeaders));
        if (method === 'HEAD' || statusCode === 204 || statusCode === 304) {
          responded = false;
          pendingHead = writeHead;
        } else {
          writeHead();
        }
      },
      onResponseData(c, chunk) {
        if (!(res as NodeJS.WritableStream).write(chunk)) {
          c.pause();
          res.once('drain', onDrain);
        }
      },
      onResponseEnd() {
        res.off('close', onClientClose);
        pendingHead?.();
        res.end();
      },
      onResponseError(_c, err) {
        res.off('close', onClientClose);
        if (answeredHere) return;
        if (responded) {
          // The head went out already: the client's copy is cut short, never completed.
          res.destroy();
          return;
        }
        if (res.destroyed) return;
        const kind = failureKind(err);
        pool.failed(target);
        options.onAttemptFailed(target, kind, err);
        if (kind === 'refused' && n + 1 < maxAttempts && !res.headersSent) return attempt(n + 1);
        if (!res.headersSent) options.onGiveUp(kind, target);
        else res.destroy();
      },
    };
    target.dispatcher.dispatch(
      {
        path: `${target.basePath}${options.pathAndQuery}`,
        method,
        headers,
        body: withBody ? (req as Readable) : null,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
      },
      handler,
    );
  };
  attempt(0);
}

function failureKind(err: Error): UpstreamFailure {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return 'connect_timeout';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timeout';
  return 'error';
}

function rawHeaderStrings(raw: Dispatcher.DispatchController['rawHeaders']): string[] {
  if (!Array.isArray(raw)) return [];
  return raw.map((part) => (typeof part === 'string' ? part : part.toString('latin1')));
}

/** HTTP/2 responses carry no status text and no connection-specific fields (RFC 9113 §8.2.2). */
function writeUpstreamHead(res: ClientResponse, status: number, statusMessage: string, rawHeaders: string[]): void {
  const headers = forwardableResponseHeaders(rawHeaders);
  if ('stream' in res) {
    const grouped: Record<string, string | string[]> = {};
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!.toLowerCase();
      const value = headers[i + 1]!;
      const existing = grouped[name];
      grouped[name] =
        existing === undefined
          ? value
          : name === 'set-cookie'
            ? [...[existing].flat(), value]
            : `${[existing].flat().join(', ')}, ${value}`;
    }
    res.writeHead(status, grouped);
  } else {
    res.writeHead(status, statusMessage, headers);
  }
}
