/**
 * What it costs a TLS server to learn the client certificate's DER, per connection, by each
 * API Node offers: the justification for src/tls/peer-certificate.ts reading it from
 * `getSession()` (test/tls-peer-certificate.test.ts cross-checks that path against the others
 * and `openssl sess_id`). Each mode runs on fresh mutual-TLS connections from this process and
 * times only the call, in the server's connection handler, with process.hrtime.
 *
 *   node dist/bench/peer-cert.js        (BENCH_PEER_CERT_CONNECTIONS, default 400 per mode)
 */
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { isEntryPoint, runAsScript } from './entry.js';
import { makeTempRoot } from './fixtures.js';
import { makeGatewayPki } from './gateway-pki.js';
import { readFileSync } from 'node:fs';
import { peerCertificateDer } from '../src/tls/peer-certificate.js';
import { median } from './stats.js';

const MODES: Record<string, (s: TLSSocket) => unknown> = {
  'getSession() + DER walk (the gateway)': (s) => peerCertificateDer(s),
  'getPeerCertificate()': (s) => s.getPeerCertificate().raw,
  'getPeerX509Certificate().raw': (s) => s.getPeerX509Certificate()?.raw,
  'getPeerCertificate(true) (chain)': (s) => s.getPeerCertificate(true).raw,
};

export async function runPeerCertBench(): Promise<void> {
  const connections = Number(process.env.BENCH_PEER_CERT_CONNECTIONS ?? 400);
  const root = makeTempRoot();
  const pki = await makeGatewayPki(root);
  const rows: [string, number][] = [];
  for (const [name, call] of Object.entries(MODES)) {
    const samples: number[] = [];
    const server = createServer(
      {
        cert: readFileSync(pki.serverCert),
        key: readFileSync(pki.serverKey),
        ca: readFileSync(pki.clientCaBundle),
        requestCert: true,
        rejectUnauthorized: false,
      },
      (socket) => {
        const t = process.hrtime.bigint();
        call(socket);
        samples.push(Number(process.hrtime.bigint() - t) / 1000);
        socket.end();
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.address() as AddressInfo).port;
    for (let i = 0; i < connections; i++) {
      await new Promise<void>((resolve) => {
        const c = connect({
          port,
          host: '127.0.0.1',
          servername: 'localhost',
          ca: pki.client.caPem,
          cert: pki.client.certPem,
          key: pki.client.keyPem,
        });
        c.on('data', () => undefined);
        c.on('error', () => resolve());
        c.on('close', () => resolve());
      });
    }
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rows.push([name, median(samples)]);
  }
  process.stdout.write(
    `Peer certificate DER per connection, ${connections} mutual-TLS connections each, Node ${process.version}, median µs of the call:\n`,
  );
  for (const [name, us] of rows) process.stdout.write(`  ${name.padEnd(40)} ${us.toFixed(1).padStart(8)} µs\n`);
}

if (isEntryPoint(import.meta.url)) runAsScript('peer-cert', runPeerCertBench);
