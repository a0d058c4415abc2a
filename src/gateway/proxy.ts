/**
 * Forwards one allowed request to a route's upstreams over HTTP/1.1 keep-alive. A request with
 * no body whose connection was refused is tried on the next upstream (nothing reached the
 * app, so this is safe for any method, as nginx's proxy_next_upstream does for errors);
 * anything else fails with a 502 or 504 the caller words.
 */
import { request as httpRequest, type IncomingMessage, type ServerResponse, type OutgoingHttpHeaders } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import { withoutHopByHop } from './hop-by-hop.js';
import type { UpstreamPool, UpstreamTarget } from './upstream-pool.js';

export type ClientRequest = IncomingMessage | Http2ServerRequest;
export type ClientResponse = ServerResponse | Http2ServerResponse;

export type UpstreamFailure = 'refused' | 'connect_timeout' | 'timeout' | 'error';

export interface ForwardOptions {
  req: ClientRequest;
  res: ClientResponse;
  pool: UpstreamPool;
  /** Flat header list to send, identity headers already stripped and added. */
  headers: string[];
  /** Path and query for the upstream, already encoded; the target's base path is prepended. */
  pathAndQuery: string;
  timeoutMs: number;
  connectTimeoutMs: number;
  onResponse(target: UpstreamTarget, latencySeconds: number): void;
  onAttemptFailed(target: UpstreamTarget, kind: UpstreamFailure, err: Error): void;
  /** The app answered 431 to the head the gateway sent (its own headers included), so the client gets a reason instead. */
  onHeadTooLarge(target: UpstreamTarget, headBytes: number): void;
  /** Every attempt failed and nothing was sent to the client yet. */
  onGiveUp(kind: UpstreamFailure, target: UpstreamTarget): void;
}

export function forward(options: ForwardOptions): void {
  const { req, pool } = options;
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
  const maxAttempts = hasBody ? 1 : pool.targets.length;
  const attempt = (n: number) => {
    const target = pool.pick();
    const started = process.hrtime.bigint();
    let failure: UpstreamFailure = 'error';
    const outgoing = httpRequest({
      host: target.hostname, port: target.port, method: req.method, path: `${target.basePath}${options.pathAndQuery}`,
      headers: options.headers as unknown as OutgoingHttpHeaders, agent: pool.agent, timeout: options.timeoutMs,
    }, (upstreamRes) => {
      pool.succeeded(target);
      options.onResponse(target, Number(process.hrtime.bigint() - started) / 1e9);
      if (upstreamRes.statusCode === 431) {
        upstreamRes.resume();
        options.onHeadTooLarge(target, options.headers.reduce((sum, part) => sum + Buffer.byteLength(part) + 2, 0));
        return;
      }
      writeUpstreamHead(options.res, upstreamRes);
      upstreamRes.pipe(options.res as NodeJS.WritableStream);
      upstreamRes.on('error', () => options.res.destroy());
    });
    outgoing.on('socket', (socket: Socket) => {
      if (!socket.connecting) return;
      const timer = setTimeout(() => {
        failure = 'connect_timeout';
        outgoing.destroy(new Error(`no connection within ${options.connectTimeoutMs} ms`));
      }, options.connectTimeoutMs);
      socket.once('connect', () => clearTimeout(timer));
      socket.once('close', () => clearTimeout(timer));
    });
    outgoing.on('timeout', () => {
      failure = 'timeout';
      outgoing.destroy(new Error(`no answer within ${options.timeoutMs} ms`));
    });
    outgoing.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') failure = 'refused';
      pool.failed(target);
      options.onAttemptFailed(target, failure, err);
      if (failure === 'refused' && n + 1 < maxAttempts && !options.res.headersSent) return attempt(n + 1);
      if (!options.res.headersSent) options.onGiveUp(failure, target);
      else options.res.destroy();
    });
    if (hasBody) req.pipe(outgoing);
    else outgoing.end();
  };
  attempt(0);
}

/** HTTP/2 responses carry no status text and no connection-specific fields (RFC 9113 §8.2.2). */
function writeUpstreamHead(res: ClientResponse, upstreamRes: IncomingMessage): void {
  const status = upstreamRes.statusCode ?? 502;
  const headers = withoutHopByHop(upstreamRes.rawHeaders);
  if ('stream' in res) {
    const grouped: Record<string, string | string[]> = {};
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!.toLowerCase();
      const value = headers[i + 1]!;
      const existing = grouped[name];
      grouped[name] = existing === undefined ? value : name === 'set-cookie' ? [...[existing].flat(), value] : `${[existing].flat().join(', ')}, ${value}`;
    }
    res.writeHead(status, grouped);
  } else {
    res.writeHead(status, upstreamRes.statusMessage, headers);
  }
}
