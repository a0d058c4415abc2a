/**
 * WebSocket (and any HTTP/1.1 Upgrade) pass-through. The request was admitted exactly like a
 * normal one (certificate, path, policy, identity headers); here the upstream's 101 answer is
 * relayed and the two sockets are joined. RFC 9110 §7.8: Upgrade and Connection are
 * hop-by-hop, so they are set again explicitly for the upstream hop.
 */
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { UpstreamPool, UpstreamTarget } from './upstream-pool.js';
import type { UpstreamFailure } from './proxy.js';

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
}

export function forwardUpgrade(options: UpgradeOptions): void {
  const { req, clientSocket } = options;
  const target = options.pool.pick();
  const headers = [...options.headers, 'Connection', 'Upgrade', 'Upgrade', String(req.headers.upgrade)];
  // A fresh connection, not the keep-alive pool: an upgraded socket never returns to it.
  const outgoing = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: `${target.basePath}${options.pathAndQuery}`, headers: headers as unknown as OutgoingHttpHeaders, timeout: options.connectTimeoutMs });
  outgoing.on('timeout', () => outgoing.destroy(Object.assign(new Error(`no answer within ${options.connectTimeoutMs} ms`), { code: 'ETIMEDOUT' })));
  outgoing.on('upgrade', (upstreamRes, upstreamSocket, upstreamHead) => {
    options.pool.succeeded(target);
    options.onUpgraded(target, upstreamRes.statusCode ?? 101);
    const lines = [`HTTP/1.1 ${upstreamRes.statusCode} ${upstreamRes.statusMessage}`];
    for (let i = 0; i < upstreamRes.rawHeaders.length; i += 2) lines.push(`${upstreamRes.rawHeaders[i]}: ${upstreamRes.rawHeaders[i + 1]}`);
    clientSocket.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (upstreamHead.length) clientSocket.write(upstreamHead);
    if (options.clientHead.length) upstreamSocket.write(options.clientHead);
    upstreamSocket.setTimeout(0);
    upstreamSocket.pipe(clientSocket).pipe(upstreamSocket);
    const closeBoth = () => { upstreamSocket.destroy(); clientSocket.destroy(); };
    upstreamSocket.on('error', closeBoth);
    clientSocket.on('error', closeBoth);
    upstreamSocket.on('close', closeBoth);
    clientSocket.on('close', closeBoth);
  });
  outgoing.on('response', (upstreamRes) => {
    // The app declined the upgrade: relay its answer as a normal response, then close.
    options.pool.succeeded(target);
    options.onUpgraded(target, upstreamRes.statusCode ?? 502);
    const lines = [`HTTP/1.1 ${upstreamRes.statusCode} ${upstreamRes.statusMessage}`];
    for (let i = 0; i < upstreamRes.rawHeaders.length; i += 2) {
      if (!/^(connection|keep-alive|transfer-encoding)$/i.test(upstreamRes.rawHeaders[i]!)) lines.push(`${upstreamRes.rawHeaders[i]}: ${upstreamRes.rawHeaders[i + 1]}`);
    }
    lines.push('connection: close');
    clientSocket.write(`${lines.join('\r\n')}\r\n\r\n`);
    upstreamRes.pipe(clientSocket);
  });
  outgoing.on('error', (err: NodeJS.ErrnoException) => {
    options.pool.failed(target);
    options.onGiveUp(err.code === 'ECONNREFUSED' ? 'refused' : err.code === 'ETIMEDOUT' ? 'timeout' : 'error', target, err);
  });
  outgoing.end();
}
