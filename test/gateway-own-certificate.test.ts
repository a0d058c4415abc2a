/**
 * The gateway checks its own certificate before it serves it (issue 12): a certificate no client
 * would accept (a client identity, names that miss what clients connect to, a chain to no CA of
 * the client bundle) stops the start with a message that says how to enroll a proper gateway
 * identity; on reload the previous certificate stays in force. The PKI is made by openssl.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTlsMaterial, type TlsFiles } from '../src/gateway/tls-material.js';
import { isGatehouseError } from '../src/errors/errors.js';
import { gatehouse } from './helpers/cli.js';
import { makeCa, makeLeaf, type OpensslCa, type OpensslLeaf } from './helpers/openssl-pki.js';
import { startGatewayProcess } from './helpers/gateway-process.js';
import { startEchoUpstream, type EchoUpstream } from './helpers/echo-upstream.js';
import { connect } from 'node:tls';
import { decodePem } from '../src/pki/pem.js';
import { makeTempDir } from './helpers/tmp.js';

const tmp = makeTempDir('gatehouse-gwcert-');
let ca: OpensslCa;
let otherCa: OpensslCa;
const leaf: Record<string, OpensslLeaf> = {};
let upstream: EchoUpstream;

before(async () => {
  ca = await makeCa(tmp.dir, 'Gateway Test Root');
  otherCa = await makeCa(tmp.dir, 'Some Other Root');
  [leaf.good, leaf.clientOnly, leaf.noEku, leaf.named, leaf.foreign] = await Promise.all([
    makeLeaf(ca, { file: 'good', cn: 'gw', eku: 'serverAuth', san: 'DNS:localhost,IP:127.0.0.1' }),
    makeLeaf(ca, { file: 'client-only', cn: 'laptop', eku: 'clientAuth', san: 'DNS:localhost,IP:127.0.0.1' }),
    makeLeaf(ca, { file: 'no-eku', cn: 'gw-any', eku: null, san: 'IP:127.0.0.1' }),
    makeLeaf(ca, {
      file: 'named',
      cn: 'gw-named',
      eku: 'serverAuth',
      san: 'DNS:gw.example.internal,DNS:*.apps.example.internal',
    }),
    makeLeaf(otherCa, { file: 'foreign', cn: 'gw-foreign', eku: 'serverAuth', san: 'DNS:localhost,IP:127.0.0.1' }),
  ]);
  upstream = await startEchoUpstream();
});

after(async () => {
  await upstream.close();
  tmp.cleanup();
});

function pemToDer(pem: string): Buffer {
  return decodePem(pem, 'CERTIFICATE')[0]!;
}

/** The certificate the gateway presents now, read by a client that verifies nothing. */
function servedCertificateDer(port: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, () => {
      const der = socket.getPeerCertificate().raw;
      socket.destroy();
      resolve(der);
    });
    socket.on('error', reject);
  });
}

const files = (l: OpensslLeaf, extra: Partial<TlsFiles> = {}): TlsFiles => ({
  cert: l.certPath,
  key: l.keyPath,
  clientCa: ca.certPath,
  ...extra,
});

function refusal(fn: () => unknown, pattern: RegExp): void {
  assert.throws(
    fn,
    (err) =>
      isGatehouseError(err, 'GH_CONFIG_INVALID') &&
      pattern.test(err.message) &&
      /gatehouse token create --role gateway/.test(err.message),
  );
}

test('gateway-own-certificate-a-server-certificate-of-the-client-ca-covering-the-listen-host-is-used', () => {
  assert.equal(loadTlsMaterial(files(leaf.good!), new Date(), '127.0.0.1:0').serverCert.serial.length > 0, true);
  assert.ok(loadTlsMaterial(files(leaf.good!), new Date(), '[::1]:0'), 'localhost names every loopback address');
  assert.ok(
    loadTlsMaterial(files(leaf.noEku!), new Date(), '127.0.0.1:0'),
    'no extended key usage restricts nothing (RFC 5280 §4.2.1.12)',
  );
  assert.ok(
    loadTlsMaterial(files(leaf.named!), new Date(), '0.0.0.0:443'),
    'the wildcard address names nothing to check',
  );
});

test('gateway-own-certificate-a-client-only-certificate-is-refused', () => {
  refusal(
    () => loadTlsMaterial(files(leaf.clientOnly!), new Date(), '127.0.0.1:0'),
    /not valid for TLS servers: its extended key usage lacks serverAuth/,
  );
});

test('gateway-own-certificate-names-clients-use-must-be-in-its-sans', () => {
  refusal(
    () => loadTlsMaterial(files(leaf.named!), new Date(), '127.0.0.1:8443'),
    /does not cover 127\.0\.0\.1, which clients connect to \(its names: DNS:gw\.example\.internal, DNS:\*\.apps\.example\.internal\)/,
  );
  refusal(() => loadTlsMaterial(files(leaf.good!), new Date(), '10.1.2.3:443'), /does not cover 10\.1\.2\.3/);
  // tls.serverNames say what clients use instead of the listen host; each must be covered.
  assert.ok(
    loadTlsMaterial(
      files(leaf.named!, { serverNames: ['gw.example.internal', 'shop.apps.example.internal'] }),
      new Date(),
      '10.1.2.3:443',
    ),
  );
  refusal(
    () =>
      loadTlsMaterial(
        files(leaf.named!, { serverNames: ['gw.example.internal', 'a.b.apps.example.internal'] }),
        new Date(),
        '10.1.2.3:443',
      ),
    /does not cover a\.b\.apps\.example\.internal/,
  );
});

test('gateway-own-certificate-must-chain-to-the-client-ca-bundle-unless-told-otherwise', () => {
  refusal(
    () => loadTlsMaterial(files(leaf.foreign!), new Date(), '127.0.0.1:0'),
    /does not chain to a CA of the client CA bundle/,
  );
  assert.ok(loadTlsMaterial(files(leaf.foreign!, { serverCertFromOtherCa: true }), new Date(), '127.0.0.1:0'));
});

test('gateway-own-certificate-bad-at-start-exits-78-with-the-reason', async () => {
  const r = await gatehouse([
    'gateway',
    '--listen',
    '127.0.0.1:0',
    '--cert',
    leaf.clientOnly!.certPath,
    '--key',
    leaf.clientOnly!.keyPath,
    '--client-ca',
    ca.certPath,
    '--upstream',
    upstream.url,
  ]);
  assert.equal(r.status, 78, r.stderr);
  assert.match(r.stderr, /lacks serverAuth, so clients will refuse it/);
});

test('gateway-own-certificate-bad-on-reload-keeps-the-last-good-one', async () => {
  const dir = makeTempDir('gatehouse-gwcert-live-');
  const cert = join(dir.dir, 'cert.pem');
  const key = join(dir.dir, 'key.pem');
  copyFileSync(leaf.good!.certPath, cert);
  copyFileSync(leaf.good!.keyPath, key);
  const gateway = await startGatewayProcess({ cert, key, clientCa: ca.certPath, upstream: upstream.url });
  try {
    // A client identity written over the gateway's files (a wrong `agent enroll --dir`).
    copyFileSync(leaf.clientOnly!.keyPath, key);
    copyFileSync(leaf.clientOnly!.certPath, cert);
    const failed = await gateway.waitForLog(
      (l) => l.msg === 'gateway.reload_failed' && /lacks serverAuth/.test(String(l.reason)),
    );
    assert.match(String(failed.effect), /previous state stays in force/);
    const served = await servedCertificateDer(gateway.port);
    assert.ok(
      served.equals(pemToDer(readFileSync(leaf.good!.certPath, 'utf8'))),
      'the good certificate is still served',
    );
  } finally {
    await gateway.stop();
    dir.cleanup();
  }
});
