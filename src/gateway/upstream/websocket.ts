/**
 * WebSocket (and any HTTP/1.1 Upgrade) pass-through. The request was admitted exactly like a
 * normal one (certificate, path, policy, identity headers); here the upstream's 101 answer is
 * relayed and the two sockets are joined. RFC 9110 §7.8: Upgrade and Connection are
 * hop-by-hop, so they are set again explicitly for the upstream hop.
 *
 * Until the upstream answers 101 nothing the client sends after its head is passed on: an app
 * that declines the upgrade gets no second request smuggled behind it, the client gets the
 * app's answer and the connection closes.
 */
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { UpstreamPool, UpstreamTarget } from './upstream-pool.js';
import type { UpstreamFailure } from './forward.js';

export interface UpgradeOptions {
  req: IncomingMessage;
  clientSocket: Duplex;
  clientHead: Buffer;
  pool: UpstreamPool;
  headers: string[];
  pathAndQuery: string;
  connectTimeoutMs: number;
  onUpgraded(target: UpstreamTarget, status: number): void;
  onGiveUp(kind: UpstreamFailure, target: UpstreamTarget, err: Error): void;
  /** The client left before the upstream answered; the upstream request was cancelled. */
  onClientGone(target: UpstreamTarget): void;
}

/** Response fields that frame or manage the upstream connection, not the client's. */
const DECLINED_HOP_BY_HOP = /^(connection|keep-alive|transfer-encoding|content-length|upgrade)$/i;

export function forwardUpgrade(options: UpgradeOptions): void {
  const { req, clientSocket } = options;
  const target = options.pool.pick();
  const headers = [...options.headers, 'Connection', 'Upgrade', 'Upgrade', String(req.headers.upgrade)];
  // Its own connection (agent: false), never a pooled one: an upgraded socket never returns to a pool.
  const outgoing = httpRequest({
    host: target.hostname,
    port: target.port,
    method: req.method,
    path: `${target.basePath}${options.pathAndQuery}`,
    headers: headers as unknown as OutgoingHttpHeaders,
    timeout: options.connectTimeoutMs,
    agent: false,
  });
  let settled = false;
  clientSocket.once('close', () => {
    if (settled) return;
    settled = true;
    outgoing.destroy();
    options.onClientGone(target);
  });
  outgoing.on('timeout', () =>
    outgoing.destroy(
      Object.assign(new Error(`no answer within ${options.connectTimeoutMs} ms`), { code: 'ETIMEDOUT' }),
    ),
  );
  outgoing.on('upgrade', (upstreamRes, upstreamSocket, upstreamHead) => {
    settled = true;
    options.pool.succeeded(target);
    options.onUpgraded(target, upstreamRes.statusCode ?? 101);
    upstreamSocket.on('error', () => upstreamSocket.destroy());
    if (clientSocket.destroyed) {
      upstreamSocket.destroy();
      return;
    }
    const lines = [`HTTP/1.1 ${upstreamRes.statusCode} ${upstreamRes.statusMessage}`];
    for (let i = 0; i < upstreamRes.rawHeaders.length; i += 2)
      lines.push(`${upstreamRes.rawHeaders[i]}: ${upstreamRes.rawHeaders[i + 1]}`);
    clientSocket.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (upstreamHead.length) clientSocket.write(upstreamHead);
    if (options.clientHead.length) upstreamSocket.write(options.clientHead);
    upstreamSocket.setTimeout(0);
    upstreamSocket.pipe(clientSocket).pipe(upstreamSocket);
    const closeBoth = () => {
      upstreamSocket.destroy();
      clientSocket.destroy();
    };
    upstreamSocket.on('close', closeBoth);
    clientSocket.on('close', closeBoth);
  });
  outgoing.on('response', (upstreamRes) => {
    // The app declined the upgrade: relay its answer, framed by the connection closing, then close.
    settled = true;
    options.pool.succeeded(target);
    options.onUpgraded(target, upstreamRes.statusCode ?? 502);
    upstreamRes.on('error', () => clientSocket.destroy());
    const lines = [`HTTP/1.1 ${upstreamRes.statusCode} ${upstreamRes.statusMessage}`];
    for (let i = 0; i < upstreamRes.rawHeaders.length; i += 2) {
      if (!DECLINED_HOP_BY_HOP.test(upstreamRes.rawHeaders[i]!))
        lines.push(`${upstreamRes.rawHeaders[i]}: ${upstreamRes.rawHeaders[i + 1]}`);
    }
    lines.push('connection: close');
    if (clientSocket.destroyed) {
      upstreamRes.destroy();
      return;
    }
    clientSocket.write(`${lines.join('\r\n')}\r\n\r\n`);
    // Whatever the client sent after its head is dropped, never forwarded.
    clientSocket.on('data', () => undefined);
    upstreamRes.pipe(clientSocket);
  });
  outgoing.on('error', (err: NodeJS.ErrnoException) => {
    if (settled || clientSocket.destroyed) return;
    settled = true;
    options.pool.failed(target);
    options.onGiveUp(
      err.code === 'ECONNREFUSED' ? 'refused' : err.code === 'ETIMEDOUT' ? 'timeout' : 'error',
      target,
      err,
    );
  });
  outgoing.end();
}

/**
 * Open tunnels and what admitted them. A tunnel lives as long as its client wants, so it is
 * re-checked like a request would be: a certificate that expires or is revoked, or a policy
 * that no longer allows it, closes the tunnel within the recheck period.
 */
export class Tunnels {
  private readonly open = new Map<
    Duplex,
    { socket: TLSSocket; method: string; path: string; requestId: string } | null
  >();
  private readonly timer: NodeJS.Timeout;

  constructor(
    periodMs: number,
    recheck: (tunnel: {
      socket: TLSSocket;
      method: string;
      path: string;
    }) => { reason: string; detail?: string } | null,
    onClosed: (requestId: string, reason: string, detail?: string) => void,
  ) {
    this.timer = setInterval(() => {
      for (const [clientSocket, tunnel] of this.open) {
        if (!tunnel) continue;
        const verdict = recheck(tunnel);
        if (verdict) {
          onClosed(tunnel.requestId, verdict.reason, verdict.detail);
          clientSocket.destroy();
        }
      }
    }, periodMs);
    this.timer.unref();
  }

  /** An upgrade request arrived on this socket (not admitted yet). */
  track(clientSocket: Duplex): void {
    this.open.set(clientSocket, null);
    clientSocket.once('close', () => this.open.delete(clientSocket));
  }

  admitted(clientSocket: Duplex, tunnel: { socket: TLSSocket; method: string; path: string; requestId: string }): void {
    if (this.open.has(clientSocket)) this.open.set(clientSocket, tunnel);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  destroyAll(): void {
    for (const socket of this.open.keys()) socket.destroy();
  }
}
