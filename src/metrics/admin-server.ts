/**
 * The admin listener of the gateway and the CA, separate from their TLS listeners: Prometheus
 * `/metrics` and `/healthz` over plain HTTP. It serves no identity and no control, so it needs
 * no client certificate; bind it to a private address (127.0.0.1 in the examples).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenOn } from '../errors/listen.js';
import type { Logger } from '../log/logger.js';

export interface Health {
  healthy: boolean;
  details: Record<string, unknown>;
}

export interface AdminServerOptions {
  /** HOST:PORT as configured, for messages; `host` and `port` are what is bound. */
  listen: string;
  host: string;
  port: number;
  /** Log event prefix: `gateway` or `ca`. */
  component: string;
  logger: Logger;
  metrics(): Promise<{ contentType: string; body: string }>;
  health(): Health | Promise<Health>;
}

export interface AdminServer {
  port: number;
  close(): Promise<void>;
}

export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('405 Method Not Allowed\n');
      return;
    }
    if (path === '/metrics') {
      options.metrics().then(
        ({ contentType, body }) =>
          res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body),
        (err: unknown) => {
          options.logger.error(`${options.component}.metrics_failed`, { err });
          res
            .writeHead(500, { 'content-type': 'text/plain' })
            .end(`500 metrics unavailable: see the ${options.component} log\n`);
        },
      );
      return;
    }
    if (path === '/healthz') {
      Promise.resolve()
        .then(() => options.health())
        .then(
          (health) => {
            const body = JSON.stringify({ status: health.healthy ? 'ok' : 'unhealthy', ...health.details });
            res
              .writeHead(health.healthy ? 200 : 503, {
                'content-type': 'application/json',
                'cache-control': 'no-store',
              })
              .end(body);
          },
          (err: unknown) => {
            options.logger.error('admin.health_failed', { err });
            res
              .writeHead(503, { 'content-type': 'application/json', 'cache-control': 'no-store' })
              .end(JSON.stringify({ status: 'unhealthy', problems: ['health check failed: see the log'] }));
          },
        );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('404 Not Found: try /metrics or /healthz\n');
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  const { host, port } = options;
  await listenOn(server, {
    listen: options.listen,
    host,
    port,
    what: `the ${options.component === 'ca' ? 'CA' : options.component}'s /metrics and /healthz listener`,
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
