/**
 * The peer certificate read from the TLS session's DER (the gateway's per-connection fast path)
 * is the certificate Node's public accessors return, and what `openssl sess_id` finds in the
 * same session bytes, for full and resumed TLS 1.2 and 1.3 handshakes, with and without a
 * client certificate. A session layout the reader does not know falls back to the public API.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { checkPeerCertificate, peerCertificateDer, peerFromSession } from '../src/tls/peer-certificate.js';
import { makeCa, makeLeaf, type OpensslCa, type OpensslLeaf } from './helpers/openssl-pki.js';
import { makeTempDir } from './helpers/tmp.js';
import { run } from './helpers/run.js';

const tmp = makeTempDir('gatehouse-peercert-');
let ca: OpensslCa;
let server: OpensslLeaf;
let client: OpensslLeaf;

interface Seen {
  fromSession: Buffer | null | undefined;
  session: Buffer | undefined;
  publicRaw: Buffer | null;
  x509Raw: Buffer | null;
  fast: Buffer | null;
  reused: boolean;
  ok: boolean;
}

before(async () => {
  ca = await makeCa(tmp.dir, 'Peer Cert CA');
  [server, client] = await Promise.all([
    makeLeaf(ca, { file: 'server', cn: 'localhost', eku: 'serverAuth', san: 'DNS:localhost,IP:127.0.0.1' }),
    makeLeaf(ca, { file: 'client', subject: '/O=acme/OU=web/CN=alice' }),
  ]);
});
after(() => tmp.cleanup());

async function withServer(fn: (port: number, seen: Seen[]) => Promise<void>): Promise<void> {
  const seen: Seen[] = [];
  const srv: Server = createServer(
    {
      cert: server.pem,
      key: readFileSync(server.keyPath, 'utf8'),
      ca: ca.pem,
      requestCert: true,
      rejectUnauthorized: false,
    },
    (socket: TLSSocket) => {
      const session = socket.getSession();
      const publicRaw = socket.getPeerCertificate()?.raw ?? null;
      seen.push({
        session,
        fromSession: session ? peerFromSession(session) : undefined,
        publicRaw: publicRaw && publicRaw.length ? publicRaw : null,
        x509Raw: socket.getPeerX509Certificate()?.raw ?? null,
        fast: peerCertificateDer(socket),
        reused: socket.isSessionReused(),
        ok: checkPeerCertificate(socket).ok,
      });
      socket.end('bye');
    },
  );
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
  try {
    await fn((srv.address() as AddressInfo).port, seen);
  } finally {
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
}

/** One connection; resolves with the client's session for resumption. */
function hello(
  port: number,
  options: { version: 'TLSv1.2' | 'TLSv1.3'; withCert: boolean; session?: Buffer },
): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    let session: Buffer | undefined = options.session;
    const socket = connect({
      port,
      host: '127.0.0.1',
      servername: 'localhost',
      ca: ca.pem,
      minVersion: options.version,
      maxVersion: options.version,
      ...(options.withCert ? { cert: client.pem, key: readFileSync(client.keyPath, 'utf8') } : {}),
      ...(options.session ? { session: options.session } : {}),
    });
    socket.on('session', (s: Buffer) => {
      session = s;
    });
    socket.on('data', () => undefined);
    socket.on('error', reject);
    socket.on('close', () => resolve(session));
  });
}

for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
  test(`peer-certificate-from-session-equals-node-and-openssl-${version}-full-and-resumed`, async () => {
    await withServer(async (port, seen) => {
      const session = await hello(port, { version, withCert: true });
      assert.ok(session, 'the client got a session to resume');
      await hello(port, { version, withCert: true, session });
      assert.equal(seen.length, 2);
      assert.equal(seen[1]!.reused, true, 'the second connection resumed');
      for (const s of seen) {
        assert.ok(s.fromSession, 'the session carries the peer certificate');
        assert.deepEqual(s.fromSession, client.der, 'the exact client certificate');
        assert.deepEqual(s.fromSession, s.publicRaw, 'the same as getPeerCertificate().raw');
        assert.deepEqual(s.fromSession, s.x509Raw, 'and getPeerX509Certificate().raw');
        assert.deepEqual(s.fast, client.der);
        assert.equal(s.ok, true);
      }
      // An independent parser of the same bytes: OpenSSL's own SSL_SESSION decoder.
      const file = join(tmp.dir, `session-${version}.der`);
      writeFileSync(file, seen[0]!.session!, { mode: 0o600 });
      const r = await run('openssl', ['sess_id', '-inform', 'DER', '-in', file, '-cert']);
      assert.equal(r.status, 0, r.stderr);
      const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout)?.[0];
      assert.ok(pem, r.stdout);
      assert.equal(
        pem.replace(/\s+/g, ''),
        client.pem.trim().replace(/\s+/g, ''),
        'openssl finds the same certificate in the session',
      );
    });
  });

  test(`peer-certificate-absent-from-session-without-a-client-certificate-${version}`, async () => {
    await withServer(async (port, seen) => {
      await hello(port, { version, withCert: false });
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.fromSession, null, 'a well-formed session with no peer');
      assert.equal(seen[0]!.publicRaw, null);
      assert.equal(seen[0]!.fast, null);
      assert.equal(seen[0]!.ok, false);
    });
  });
}

test('peer-certificate-unknown-session-layout-falls-back-to-the-public-accessor', () => {
  assert.equal(peerFromSession(Buffer.from('not der')), undefined);
  assert.equal(peerFromSession(Buffer.from([0x30, 0x03, 0x02, 0x01])), undefined, 'truncated');
  // A [3] that does not hold a SEQUENCE is not taken for a certificate.
  assert.equal(peerFromSession(Buffer.from([0x30, 0x05, 0xa3, 0x03, 0x04, 0x01, 0x00])), undefined);
  assert.equal(
    peerFromSession(Buffer.from([0x30, 0x05, 0xa4, 0x03, 0x04, 0x01, 0x00])),
    null,
    'past [3] without one: no peer',
  );
});
