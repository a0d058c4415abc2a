/** A header-echo app on 127.0.0.1 port 0, like the Go /headers app of the Traefik tutorial. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface EchoUpstream {
  url: string;
  close(): Promise<void>;
}

/** `maxHeaderSize`: Node's limit on the request head the app accepts (Node's default is 16 KiB). */
export async function startEchoUpstream(options: { maxHeaderSize?: number } = {}): Promise<EchoUpstream> {
  const server: Server = createServer({ ...(options.maxHeaderSize ? { maxHeaderSize: options.maxHeaderSize } : {}) }, (req, res) => {
    const body = JSON.stringify({ method: req.method, url: req.url, rawHeaders: req.rawHeaders, headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'keep-alive', 'keep-alive': 'timeout=5' });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
