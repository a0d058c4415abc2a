/**
 * The demo's backend: the small app of the source talks, which trusts the gateway's headers.
 * It greets the caller by the identity the gateway verified ("Welcome x.d.wott.local. We've
 * been expecting you.") and reflects every request header it received, like the Go `/headers`
 * app in the Traefik tutorial, so a forged header can be seen not to arrive.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenOn } from '../errors/listen.js';

export interface DemoApp {
  url: string;
  close(): Promise<void>;
}

export async function startDemoApp(host = '127.0.0.1', port = 0): Promise<DemoApp> {
  const server: Server = createServer((req, res) => {
    const name = req.headers['x-client-name'];
    const lines = [
      typeof name === 'string'
        ? `Welcome ${name}. We've been expecting you.`
        : 'Hello, stranger: no identity header arrived.',
      '',
      'Headers this app received:',
    ];
    for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`  ${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    const body = `${lines.join('\n')}\n`;
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await listenOn(server, { listen: `${host}:${port}`, host, port, what: "the demo's app" });
  return {
    url: `http://${host}:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
