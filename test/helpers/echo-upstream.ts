/** A header-echo app on 127.0.0.1 port 0, like the Go /headers app of the Traefik tutorial. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface EchoUpstream {
  url: string;
  /** How many HTTP requests (not upgrades) reached the app so far. */
  requestCount(): number;
  close(): Promise<void>;
}

/**
 * `name` is echoed back, to tell upstreams apart; `delayMs` holds each answer back;
 * `maxHeaderSize` is Node's limit on the request head the app accepts (default 16 KiB).
 */
export async function startEchoUpstream(
  options: { name?: string; delayMs?: number; maxHeaderSize?: number } = {},
): Promise<EchoUpstream> {
  let requests = 0;
  const server: Server = createServer(
    { ...(options.maxHeaderSize ? { maxHeaderSize: options.maxHeaderSize } : {}) },
    (req, res) => {
      requests++;
      const body = JSON.stringify({
        upstream: options.name ?? 'echo',
        method: req.method,
        url: req.url,
        rawHeaders: req.rawHeaders,
        headers: req.headers,
      });
      if (options.delayMs) {
        setTimeout(
          () =>
            res
              .writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
              .end(body),
          options.delayMs,
        );
        return;
      }
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        connection: 'keep-alive',
        'keep-alive': 'timeout=5',
      });
      res.end(body);
    },
  );
  // After an Upgrade the bytes are echoed back; the head reports the identity the app was told.
  server.on('upgrade', (req, socket) => {
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${req.headers.upgrade}\r\nConnection: Upgrade\r\nX-Seen-Client: ${req.headers['x-client-name'] ?? '-'}\r\n\r\n`,
    );
    socket.on('data', (data: Buffer) => socket.write(data));
    socket.on('end', () => socket.end());
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requestCount: () => requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
