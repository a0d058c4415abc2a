/**
 * The gateway benchmark's ceiling row: a bare Node `https.createServer` that answers `200 ok` by
 * itself (no upstream, no policy engine, no identity headers), with the gateway's TLS settings,
 * so "gateway CPU ÷ this server's CPU" is what the gateway adds on top of Node's own TLS and HTTP.
 *
 *   node dist/bench/node-bare-server.js '{"port":…,"cert":…,"key":…,"clientCa":…,"accessLog":true,"workers":1}'
 *
 * - TLS: the context the gateway builds from the same files (`loadTlsMaterial`: chain, key,
 *   client CA bundle, TLS 1.2 minimum, its AEAD cipher list, honorCipherOrder), `requestCert: true`
 *   and `rejectUnauthorized: false`, as the gateway: the handshake completes and each request
 *   checks `socket.authorized`, answering 400 without a verified client certificate.
 * - HTTP: the gateway's default limits (src/gateway/config.ts): keepAliveTimeout 65 s,
 *   headersTimeout 15 s, requestTimeout 60 s, 16 KiB of headers, timeouts checked every second.
 * - GET answers 200 `ok`; any other method 403 (the bench's policy allows GET only), so the
 *   bench's functional check is the same for all three targets.
 * - Access log: with `accessLog`, one JSON line per request at info, through the project's
 *   logger with `batch: true` (one write per event-loop turn), as the gateway writes its own.
 * - `workers` > 1: node:cluster with that many workers sharing the port (as `gateway --workers`).
 * - SIGTERM: closes the listener and connections and exits (pending log lines are flushed on exit).
 */
import cluster from 'node:cluster';
import { createServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { loadTlsMaterial } from '../src/gateway/tls-material.js';
import { createLogger } from '../src/log/logger.js';

export interface NodeBareOptions {
  port: number;
  cert: string;
  key: string;
  clientCa: string;
  accessLog: boolean;
  workers: number;
}

const BODIES = {
  200: 'ok',
  400: '400 Bad Request: client certificate required',
  403: '403 Forbidden: only GET is allowed',
} as const;

function serve(o: NodeBareOptions): void {
  const logger = createLogger({
    batch: true,
    level: o.accessLog ? 'info' : 'warn',
    ...(cluster.isWorker ? { base: { worker: cluster.worker!.id } } : {}),
  });
  const logging = logger.enabled('info');
  const { context } = loadTlsMaterial({ cert: o.cert, key: o.key, clientCa: o.clientCa });
  let requests = 0;
  const server = createServer(
    {
      ...context,
      requestCert: true,
      rejectUnauthorized: false,
      keepAliveTimeout: 65_000,
      headersTimeout: 15_000,
      requestTimeout: 60_000,
      maxHeaderSize: 16 * 1024,
      connectionsCheckingInterval: 1000,
    },
    (req, res) => {
      const started = logging ? process.hrtime.bigint() : 0n;
      const socket = req.socket as TLSSocket;
      const status = !socket.authorized ? 400 : req.method === 'GET' ? 200 : 403;
      const body = BODIES[status];
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      if (logging) {
        logger.info('bare.request', {
          requestId: ++requests,
          method: req.method,
          path: req.url,
          http: req.httpVersion,
          tls: socket.getProtocol(),
          resumed: socket.isSessionReused(),
          status,
          durationMs: Number(process.hrtime.bigint() - started) / 1e6,
        });
      }
    },
  );
  server.listen(o.port, '127.0.0.1');
  process.once('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}

function main(): void {
  const raw = process.argv[2];
  if (!raw)
    throw new Error(
      'usage: node-bare-server.js \'{"port":…,"cert":…,"key":…,"clientCa":…,"accessLog":true,"workers":1}\'',
    );
  const o = JSON.parse(raw) as NodeBareOptions;
  if (o.workers > 1 && cluster.isPrimary) {
    for (let i = 0; i < o.workers; i++) cluster.fork();
    process.once('SIGTERM', () => {
      const workers = Object.values(cluster.workers ?? {});
      let left = workers.length;
      if (left === 0) process.exit(0);
      for (const w of workers) {
        w?.once('exit', () => {
          if (--left === 0) process.exit(0);
        });
        w?.process.kill('SIGTERM');
      }
    });
    return;
  }
  serve(o);
}

main();
