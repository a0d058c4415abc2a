/**
 * Registration-authority mode's two halves: ExternalSigner against a real `cfssl serve` (and
 * against signers that stall, flood or babble), and checkExternalCertificate against real
 * cfssl output, openssl-made certificates and certificates built here to differ in one way each.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { ExternalSigner, type ExternalSignRequest } from '../src/ca/external-signer.js';
import { checkExternalCertificate, type ExternalCertificateExpectation } from '../src/ca/external-check.js';
import { isGatehouseError, type ErrorCode } from '../src/errors/errors.js';
import { buildIntermediateCertificate } from '../src/pki/ca-certificates.js';
import { parseCertificate } from '../src/pki/certificate.js';
import { generatePrivateKey, spkiDer } from '../src/pki/keys.js';
import {
  buildLeafCertificate,
  prepareSigningAuthority,
  randomSerial,
  type LeafProfile,
  type LeafSpec,
  type SigningAuthority,
} from '../src/pki/leaf-certificate.js';
import { OID } from '../src/pki/oids.js';
import { decodePem, toPem } from '../src/pki/pem.js';
import { x509, toCryptoKeys, webAlgorithmFor } from '../src/pki/x509-library.js';
import {
  AUTHED_PROFILE,
  CFSSL_EXPIRY_HOURS,
  issueTlsCredential,
  makeTestCa,
  startCfsslServer,
  type CfsslServer,
  type TestCa,
} from './helpers/cfssl-server.js';
import { opensslCsr, output } from './helpers/ca-http.js';
import { pickFreePort } from './helpers/proxy-peers.js';
import { run } from './helpers/run.js';
import { makeTempDir } from './helpers/tmp.js';

const HOUR_MS = 3_600_000;
const SUBJECT = { commonName: 'web-01', organization: 'Gatehouse', organizationalUnit: 'web' };
const SPIFFE_ID = 'spiffe://gatehouse.test/web/web-01';

async function expectCode(
  promise: Promise<unknown> | (() => unknown),
  code: ErrorCode,
  message: RegExp,
): Promise<Error> {
  let thrown: unknown;
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (err) {
    thrown = err;
  }
  assert.ok(
    isGatehouseError(thrown, code),
    `expected ${code}, got ${thrown instanceof Error ? `${(thrown as { code?: string }).code}: ${thrown.message}` : String(thrown)}`,
  );
  assert.match(thrown.message, message);
  return thrown;
}

function signRequest(csrPem: string, overrides: Partial<ExternalSignRequest> = {}): ExternalSignRequest {
  return { csrPem, profile: 'client', subject: SUBJECT, hosts: ['web-01.gatehouse.test', '10.0.0.7'], ...overrides };
}

function expectationFor(
  ca: TestCa,
  key: KeyObject,
  overrides: Partial<ExternalCertificateExpectation> = {},
): ExternalCertificateExpectation {
  return {
    spkiDer: spkiDer(key),
    subject: SUBJECT,
    sans: { dns: ['web-01.gatehouse.test'], ip: ['10.0.0.7'], uri: [] },
    profile: 'client',
    maxLifetimeMs: CFSSL_EXPIRY_HOURS * HOUR_MS,
    rootDer: ca.certDer,
    issuerDers: [],
    ...overrides,
  };
}

describe('external signer against cfssl serve over http', () => {
  const tmp = makeTempDir('gatehouse-cfssl-');
  let cfssl: CfsslServer;
  let csr: { keyPem: string; csr: string; keyPath: string };
  let spiffeCsr: { keyPem: string; csr: string };

  before(async () => {
    cfssl = await startCfsslServer({ dir: tmp.dir });
    csr = await opensslCsr(tmp.dir, 'web', '/CN=ignored-by-subject-override');
    spiffeCsr = await opensslCsr(tmp.dir, 'spiffe', '/CN=web-01', { addext: [`subjectAltName=URI:${SPIFFE_ID}`] });
  });
  after(async () => {
    await cfssl?.close();
    tmp.cleanup();
  });

  test('sign-returns-der-that-the-check-accepts', async () => {
    const der = await new ExternalSigner({ url: cfssl.url }).sign(signRequest(csr.csr));
    const cert = checkExternalCertificate(der, expectationFor(cfssl.ca, createPrivateKey(csr.keyPem)));
    assert.deepEqual(cert.extKeyUsage, [OID.clientAuth]);
    assert.equal(cert.der[0], 0x30, 'DER, not PEM');
  });

  test('sign-server-and-both-profiles-get-their-eku', async () => {
    const signer = new ExternalSigner({ url: cfssl.url });
    for (const profile of ['server', 'both'] as const) {
      const der = await signer.sign(signRequest(csr.csr, { profile }));
      checkExternalCertificate(der, expectationFor(cfssl.ca, createPrivateKey(csr.keyPem), { profile }));
      // The same certificate is not what a client profile asked for.
      await expectCode(
        () => checkExternalCertificate(der, expectationFor(cfssl.ca, createPrivateKey(csr.keyPem))),
        'GH_EXTERNAL_CA_MISMATCH',
        /serverAuth/,
      );
    }
  });

  test('authsign-with-the-key-returns-der', async () => {
    const der = await new ExternalSigner({ url: cfssl.url, authKeyHex: cfssl.authKeyHex }).sign(
      signRequest(csr.csr, { profile: AUTHED_PROFILE }),
    );
    checkExternalCertificate(der, expectationFor(cfssl.ca, createPrivateKey(csr.keyPem)));
  });

  test('authsign-wrong-key-refused-without-the-key-in-the-message', async () => {
    const wrongKey = 'aa'.repeat(16);
    const err = await expectCode(
      new ExternalSigner({ url: cfssl.url, authKeyHex: wrongKey }).sign(
        signRequest(csr.csr, { profile: AUTHED_PROFILE }),
      ),
      'GH_EXTERNAL_CA_REFUSED',
      /at http:\/\/127\.0\.0\.1:\d+\/api\/v1\/cfssl\/authsign refused .*invalid token/,
    );
    assert.ok(!err.message.includes(wrongKey) && !err.message.includes(cfssl.authKeyHex), err.message);
  });

  test('sign-on-authenticated-profile-refused', async () => {
    await expectCode(
      new ExternalSigner({ url: cfssl.url }).sign(signRequest(csr.csr, { profile: AUTHED_PROFILE })),
      'GH_EXTERNAL_CA_REFUSED',
      /authentication required/,
    );
  });

  test('unknown-profile-refused', async () => {
    // With the helper's default profile bound to an unshared key (cfssl falls back to the default).
    await expectCode(
      new ExternalSigner({ url: cfssl.url }).sign(signRequest(csr.csr, { profile: 'no-such-profile' })),
      'GH_EXTERNAL_CA_REFUSED',
      /\/api\/v1\/cfssl\/sign refused the request \(HTTP 400\): .*authentication required/,
    );
    await expectCode(
      new ExternalSigner({ url: cfssl.url, authKeyHex: cfssl.authKeyHex }).sign(
        signRequest(csr.csr, { profile: 'no-such-profile' }),
      ),
      'GH_EXTERNAL_CA_REFUSED',
      /\/api\/v1\/cfssl\/authsign refused the request \(HTTP 400\): .*invalid token/,
    );
  });

  test('spiffe-uri-in-hosts-becomes-a-uri-san-that-the-check-accepts', async () => {
    const der = await new ExternalSigner({ url: cfssl.url }).sign(signRequest(spiffeCsr.csr, { hosts: [SPIFFE_ID] }));
    const sans = parseCertificate(der).sans;
    // cfssl before 1.3 (Debian 12's 1.2.0) wrote every "hosts" entry as a DNS name, so no
    // certificate could carry a SPIFFE ID: .ci/run installs Debian 13's golang-cfssl (1.6.5).
    assert.deepEqual(
      { dns: sans.dns, uri: sans.uri },
      { dns: [], uri: [SPIFFE_ID] },
      'this cfssl cannot write URI SANs: install golang-cfssl 1.6 (Debian 13), as .ci/run does',
    );
    checkExternalCertificate(
      der,
      expectationFor(cfssl.ca, createPrivateKey(spiffeCsr.keyPem), { sans: { dns: [], ip: [], uri: [SPIFFE_ID] } }),
    );
    // The same certificate where a DNS name was asked for is refused, naming both.
    await expectCode(
      () =>
        checkExternalCertificate(
          der,
          expectationFor(cfssl.ca, createPrivateKey(spiffeCsr.keyPem), {
            sans: { dns: ['web-01.gatehouse.test'], ip: [], uri: [] },
          }),
        ),
      'GH_EXTERNAL_CA_MISMATCH',
      /SAN URI:spiffe:\/\/gatehouse\.test\/web\/web-01 that was not requested/,
    );
  });

  test('url-userinfo-and-query-stay-out-of-messages', async () => {
    const u = new URL(cfssl.url);
    const err = await expectCode(
      new ExternalSigner({ url: `http://user:pa55word@${u.host}/?token=s3cret` }).sign(
        signRequest(csr.csr, { profile: 'nope' }),
      ),
      'GH_EXTERNAL_CA_REFUSED',
      new RegExp(`at http://${escape(u.host)}/api/v1/cfssl/sign refused`),
    );
    assert.ok(!/pa55word|s3cret|user:/.test(err.message), err.message);
  });
});

describe('external signer against cfssl serve over https', () => {
  const tmp = makeTempDir('gatehouse-cfssl-tls-');
  let cfssl: CfsslServer;
  let tlsCa: TestCa;
  let otherCa: TestCa;
  let client: { certPem: string; keyPem: string };
  let csrPem: string;

  before(async () => {
    tlsCa = await makeTestCa('Signer TLS CA');
    otherCa = await makeTestCa('Unrelated CA');
    client = issueTlsCredential(tlsCa, 'gatehouse-ra', 'client');
    cfssl = await startCfsslServer({
      dir: tmp.dir,
      tls: issueTlsCredential(tlsCa, 'signer', 'server'),
      mutualTlsCaPem: tlsCa.certPem,
    });
    csrPem = (await opensslCsr(tmp.dir, 'web', '/CN=web-01')).csr;
  });
  after(async () => {
    await cfssl?.close();
    tmp.cleanup();
  });

  test('https-with-the-signer-ca-and-mutual-tls-signs', async () => {
    const der = await new ExternalSigner({ url: cfssl.url, tls: { caPem: tlsCa.certPem, ...client } }).sign(
      signRequest(csrPem),
    );
    assert.equal(parseCertificate(der).issuer.find((a) => a.type === 'CN')?.value, 'cfssl Test Root');
  });

  test('https-authsign-with-mutual-tls-signs', async () => {
    const signer = new ExternalSigner({
      url: cfssl.url,
      authKeyHex: cfssl.authKeyHex,
      tls: { caPem: tlsCa.certPem, ...client },
    });
    const der = await signer.sign(signRequest(csrPem, { profile: AUTHED_PROFILE }));
    assert.deepEqual(parseCertificate(der).extKeyUsage, [OID.clientAuth]);
  });

  test('https-signer-cert-not-from-the-given-ca-unreachable', async () => {
    await expectCode(
      new ExternalSigner({ url: cfssl.url, tls: { caPem: otherCa.certPem, ...client } }).sign(signRequest(csrPem)),
      'GH_EXTERNAL_CA_UNREACHABLE',
      /https:\/\/127\.0\.0\.1:\d+\/api\/v1\/cfssl\/sign presented a TLS certificate that the configured CA does not verify/,
    );
  });

  test('https-without-client-cert-unreachable', async () => {
    await expectCode(
      new ExternalSigner({ url: cfssl.url, tls: { caPem: tlsCa.certPem } }).sign(signRequest(csrPem)),
      'GH_EXTERNAL_CA_UNREACHABLE',
      /external CA at https:/,
    );
  });
});

describe('external signer against signers that misbehave', () => {
  const sockets = new Set<Socket>();
  const servers: Array<NetServer | HttpServer> = [];
  const listen = async (server: NetServer | HttpServer): Promise<string> => {
    server.on('connection', (s: Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  const answering = (status: number, body: string | Buffer, chunked = false) =>
    listen(
      createHttpServer((req, res) => {
        req.resume();
        res.writeHead(
          status,
          chunked
            ? { 'content-type': 'application/json' }
            : { 'content-type': 'text/html', 'content-length': Buffer.byteLength(body) },
        );
        if (!chunked) {
          res.end(body);
          return;
        }
        const data = Buffer.from(body);
        let at = 0;
        const next = () => {
          while (at < data.length) {
            const ok = res.write(data.subarray(at, (at += 16 * 1024)));
            if (!ok) {
              res.once('drain', next);
              return;
            }
          }
          res.end();
        };
        res.on('error', () => undefined);
        next();
      }),
    );
  after(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });
  const csrPem = '-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n';

  // The test's own timeout is the deadline should the signer's timer ever fail to fire.
  test('stalled-signer-unreachable-within-the-timeout', { timeout: 10_000 }, async () => {
    const url = await listen(createNetServer(() => undefined));
    const started = Date.now();
    await expectCode(
      new ExternalSigner({ url, timeoutMs: 500 }).sign(signRequest(csrPem)),
      'GH_EXTERNAL_CA_UNREACHABLE',
      /did not answer within 500 ms/,
    );
    assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
  });

  test('oversized-answer-unreachable', async () => {
    const url = await answering(200, `{"success":true,"result":{"certificate":"${'A'.repeat(1024 * 1024)}"}}`, true);
    await expectCode(
      new ExternalSigner({ url }).sign(signRequest(csrPem)),
      'GH_EXTERNAL_CA_UNREACHABLE',
      /body over the 262144-byte limit/,
    );
  });

  test('oversized-content-length-unreachable-before-reading', async () => {
    const url = await answering(200, Buffer.alloc(1024 * 1024, 0x20));
    await expectCode(
      new ExternalSigner({ url, maxResponseBytes: 4096 }).sign(signRequest(csrPem)),
      'GH_EXTERNAL_CA_UNREACHABLE',
      /body of 1048576 bytes, over the 4096-byte limit/,
    );
  });

  test('non-json-answer-unreachable', async () => {
    const url = await answering(200, '<html>hello</html>');
    await expectCode(
      new ExternalSigner({ url }).sign(signRequest(csrPem)),
      'GH_EXTERNAL_CA_UNREACHABLE',
      /HTTP 200 with a body that is not a cfssl JSON answer: <html>hello/,
    );
  });

  test('http-502-without-cfssl-body-unreachable', async () => {
    const url = await answering(502, '<html>Bad Gateway</html>');
    await expectCode(new ExternalSigner({ url }).sign(signRequest(csrPem)), 'GH_EXTERNAL_CA_UNREACHABLE', /HTTP 502/);
  });

  test('http-404-without-cfssl-body-refused', async () => {
    const url = await answering(404, 'not found');
    await expectCode(
      new ExternalSigner({ url }).sign(signRequest(csrPem)),
      'GH_EXTERNAL_CA_REFUSED',
      /HTTP 404 and no cfssl answer: not found/,
    );
  });

  test('success-without-certificate-unreachable', async () => {
    const url = await answering(200, '{"success":true,"result":{},"errors":[],"messages":[]}');
    await expectCode(
      new ExternalSigner({ url }).sign(signRequest(csrPem)),
      'GH_EXTERNAL_CA_UNREACHABLE',
      /no PEM certificate/,
    );
  });

  test('long-signer-error-bounded', async () => {
    const url = await answering(
      400,
      JSON.stringify({
        success: false,
        result: null,
        errors: [{ code: 2000, message: 'x'.repeat(5000) }],
        messages: [],
      }),
    );
    const err = await expectCode(
      new ExternalSigner({ url }).sign(signRequest(csrPem)),
      'GH_EXTERNAL_CA_REFUSED',
      /2000: x+…$/,
    );
    assert.ok(err.message.length < 500, `message is ${err.message.length} characters`);
  });

  test('connection-refused-unreachable', async () => {
    const port = await pickFreePort();
    await expectCode(
      new ExternalSigner({ url: `http://127.0.0.1:${port}` }).sign(signRequest(csrPem)),
      'GH_EXTERNAL_CA_UNREACHABLE',
      /refused the connection/,
    );
  });

  test('bad-options-are-config-errors', async () => {
    await expectCode(
      () => new ExternalSigner({ url: 'ftp://127.0.0.1' }),
      'GH_CONFIG_INVALID',
      /http:\/\/ or https:\/\//,
    );
    const err = await expectCode(
      () => new ExternalSigner({ url: 'http://127.0.0.1', authKeyHex: 'zz-secret' }),
      'GH_CONFIG_INVALID',
      /hex/,
    );
    assert.ok(!err.message.includes('zz-secret'));
  });
});

// ---------------------------------------------------------------- the check, with certificates built here

interface Issuer {
  authority: SigningAuthority;
  certDer: Buffer;
  key: KeyObject;
}

function leafSpec(key: KeyObject, overrides: Partial<LeafSpec> = {}): LeafSpec {
  const now = Date.now();
  return {
    serial: randomSerial(),
    ...SUBJECT,
    spkiDer: spkiDer(key),
    notBefore: new Date(now - 5 * 60_000),
    notAfter: new Date(now + 24 * HOUR_MS - 5 * 60_000),
    profile: 'client' as LeafProfile,
    dns: ['web-01.gatehouse.test'],
    ip: ['10.0.0.7'],
    uri: [SPIFFE_ID],
    email: [],
    ...overrides,
  };
}

/** For what buildLeafCertificate never writes: CA:TRUE, keyCertSign, an extra subject attribute. */
async function x509Leaf(
  issuer: Issuer,
  key: KeyObject,
  options: { name: string; ca?: boolean; usages?: number; extra?: x509.Extension[] },
): Promise<Buffer> {
  const keys = await toCryptoKeys(key);
  const issuerKeys = await toCryptoKeys(issuer.key);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial().toString('hex'),
    subject: options.name,
    issuer: new x509.Name(new Uint8Array(parseCertificate(issuer.certDer).subjectNameDer)),
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + HOUR_MS),
    publicKey: keys.publicKey,
    signingKey: issuerKeys.privateKey,
    signingAlgorithm: webAlgorithmFor(issuer.key).signing,
    extensions: [
      new x509.BasicConstraintsExtension(options.ca ?? false, undefined, true),
      new x509.KeyUsagesExtension(options.usages ?? x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([OID.clientAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: 'web-01.gatehouse.test' },
        { type: 'ip', value: '10.0.0.7' },
        { type: 'url', value: SPIFFE_ID },
      ]),
      ...(options.extra ?? []),
    ],
  });
  return Buffer.from(cert.rawData);
}

describe('checkExternalCertificate', () => {
  const tmp = makeTempDir('gatehouse-external-check-');
  let root: Issuer;
  let intermediate: Issuer;
  let otherRoot: Issuer;
  let otherIntermediate: Issuer;
  let key: KeyObject;
  let expected: ExternalCertificateExpectation;

  const makeRoot = async (name: string): Promise<Issuer> => {
    const ca = await makeTestCa(name);
    return { authority: ca.authority, certDer: ca.certDer, key: ca.authority.privateKey };
  };
  const makeIntermediate = async (parent: Issuer, name: string): Promise<Issuer> => {
    const k = generatePrivateKey('p256');
    const spec = {
      commonName: name,
      organization: 'Gatehouse tests',
      notBefore: new Date(Date.now() - HOUR_MS),
      notAfter: new Date(Date.now() + 30 * 24 * HOUR_MS),
    };
    const certDer = await buildIntermediateCertificate(k, { certDer: parent.certDer, key: parent.key }, spec);
    return { authority: prepareSigningAuthority(certDer, k), certDer, key: k };
  };

  before(async () => {
    root = await makeRoot('Check Root');
    otherRoot = await makeRoot('Check Root'); // same name, other key: only the signature tells them apart
    intermediate = await makeIntermediate(root, 'Check Issuing CA');
    otherIntermediate = await makeIntermediate(otherRoot, 'Check Issuing CA');
    key = generatePrivateKey('p256');
    expected = {
      spkiDer: spkiDer(key),
      subject: SUBJECT,
      sans: { dns: ['web-01.gatehouse.test'], ip: ['10.0.0.7'], uri: [SPIFFE_ID] },
      profile: 'client',
      maxLifetimeMs: 24 * HOUR_MS,
      rootDer: root.certDer,
      issuerDers: [intermediate.certDer],
    };
  });
  after(() => tmp.cleanup());
  const refused = (der: Buffer, message: RegExp, overrides: Partial<ExternalCertificateExpectation> = {}) =>
    expectCode(() => checkExternalCertificate(der, { ...expected, ...overrides }), 'GH_EXTERNAL_CA_MISMATCH', message);

  test('check-accepts-exact-certificate-from-issuing-ca-or-root', () => {
    for (const profile of ['client', 'server', 'both'] as const) {
      const viaIntermediate = buildLeafCertificate(intermediate.authority, leafSpec(key, { profile }));
      assert.equal(checkExternalCertificate(viaIntermediate, { ...expected, profile }).der, viaIntermediate);
    }
    checkExternalCertificate(buildLeafCertificate(root.authority, leafSpec(key)), expected);
  });

  test('check-accepts-openssl-made-certificate', async () => {
    const { csrPath, keyPem } = await opensslCsr(tmp.dir, 'leaf', '/O=Gatehouse/OU=web/CN=web-01');
    const ext = join(tmp.dir, 'leaf.ext');
    const lines = [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=clientAuth',
    ];
    writeFileSync(
      ext,
      [...lines, `subjectAltName=DNS:web-01.gatehouse.test,IP:10.0.0.7,URI:${SPIFFE_ID}`, ''].join('\n'),
    );
    const caCert = join(tmp.dir, 'ica.pem');
    const caKey = join(tmp.dir, 'ica-key.pem');
    writeFileSync(caCert, toPem('CERTIFICATE', intermediate.certDer));
    writeFileSync(caKey, intermediate.key.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    const out = join(tmp.dir, 'leaf.pem');
    const r = await run('openssl', [
      'x509',
      '-req',
      '-in',
      csrPath,
      '-CA',
      caCert,
      '-CAkey',
      caKey,
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      ext,
      '-out',
      out,
    ]);
    assert.equal(r.status, 0, output(r));
    const der = decodePem(readFileSync(out, 'utf8'), 'CERTIFICATE')[0]!;
    checkExternalCertificate(der, { ...expected, spkiDer: spkiDer(createPrivateKey(keyPem)) });
  });

  test('check-refuses-other-key', async () => {
    await refused(
      buildLeafCertificate(intermediate.authority, leafSpec(generatePrivateKey('p256'))),
      /for another public key than the CSR's/,
    );
  });

  test('check-refuses-extra-san', async () => {
    const dns = ['web-01.gatehouse.test', 'admin.gatehouse.test'];
    await refused(
      buildLeafCertificate(intermediate.authority, leafSpec(key, { dns })),
      /SAN DNS:admin\.gatehouse\.test that was not requested/,
    );
    await refused(
      buildLeafCertificate(intermediate.authority, leafSpec(key, { email: ['web@gatehouse.test'] })),
      /SAN email:web@gatehouse\.test that was not requested/,
    );
  });

  test('check-refuses-missing-san', async () => {
    await refused(
      buildLeafCertificate(intermediate.authority, leafSpec(key, { uri: [] })),
      new RegExp(`without the requested SAN URI:${escape(SPIFFE_ID)}`),
    );
  });

  test('check-refuses-other-subject', async () => {
    await refused(
      buildLeafCertificate(intermediate.authority, leafSpec(key, { organizationalUnit: 'admin' })),
      /subject OU="admin"; requested OU="web"/,
    );
    await refused(
      await x509Leaf(intermediate, key, { name: 'C=US, O=Gatehouse, OU=web, CN=web-01' }),
      /subject has C="US", which was not requested/,
    );
  });

  test('check-refuses-ca-true-and-ca-key-usage', async () => {
    await refused(
      await x509Leaf(intermediate, key, { name: 'O=Gatehouse, OU=web, CN=web-01', ca: true }),
      /basicConstraints CA:TRUE/,
    );
    const usages = x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign;
    await refused(
      await x509Leaf(intermediate, key, { name: 'O=Gatehouse, OU=web, CN=web-01', usages }),
      /keyUsage keyCertSign, which only a CA may have/,
    );
    await refused(
      await x509Leaf(intermediate, key, {
        name: 'O=Gatehouse, OU=web, CN=web-01',
        usages: x509.KeyUsageFlags.keyEncipherment,
      }),
      /lacks digitalSignature/,
    );
  });

  test('check-refuses-duplicate-unknown-critical-and-name-constraint-extensions', async () => {
    const name = 'O=Gatehouse, OU=web, CN=web-01';
    // A second SAN extension: parsers disagree on which one counts (Go refuses, Node shows the first).
    const evilSan = new x509.SubjectAlternativeNameExtension([
      { type: 'dns', value: 'evil.example' },
      { type: 'url', value: 'spiffe://gatehouse.test/admin/admin' },
    ]);
    await refused(
      await x509Leaf(intermediate, key, { name, extra: [evilSan] }),
      /malformed certificate: .*extension 2\.5\.29\.17 appears twice/,
    );
    await refused(
      await x509Leaf(intermediate, key, { name, extra: [new x509.BasicConstraintsExtension(true, 0, true)] }),
      /extension 2\.5\.29\.19 appears twice/,
    );
    // A private critical extension: openssl refuses the certificate ("unsupported certificate extension").
    const privateCritical = new x509.Extension('1.3.6.1.4.1.55555.1', true, new Uint8Array([0x05, 0x00]));
    await refused(
      await x509Leaf(intermediate, key, { name, extra: [privateCritical] }),
      /critical extension 1\.3\.6\.1\.4\.1\.55555\.1, which was not requested/,
    );
    // The same extension not critical is tolerated (peers ignore what they do not know).
    checkExternalCertificate(
      await x509Leaf(intermediate, key, {
        name,
        extra: [new x509.Extension('1.3.6.1.4.1.55555.1', false, new Uint8Array([0x05, 0x00]))],
      }),
      expected,
    );
    const nameConstraints = new x509.Extension('2.5.29.30', true, new Uint8Array([0x30, 0x00]));
    await refused(
      await x509Leaf(intermediate, key, { name, extra: [nameConstraints] }),
      /nameConstraints extension, which only a CA certificate may have/,
    );
  });

  test('check-refuses-wrong-eku', async () => {
    await refused(
      buildLeafCertificate(intermediate.authority, leafSpec(key, { profile: 'server' })),
      /extended key usage serverAuth, which profile client does not allow/,
    );
    const clientOnly = buildLeafCertificate(intermediate.authority, leafSpec(key, { profile: 'client' }));
    await refused(clientOnly, /without extended key usage serverAuth, which profile both needs/, { profile: 'both' });
  });

  test('check-refuses-too-long-lifetime', async () => {
    const now = Date.now();
    const der = buildLeafCertificate(
      intermediate.authority,
      leafSpec(key, { notBefore: new Date(now - 60_000), notAfter: new Date(now + 25 * HOUR_MS) }),
    );
    await refused(der, /longer than the allowed 24 h plus 5 min backdating/);
    // The same certificate passes a policy of 26 h: the bound, not the certificate, decides.
    checkExternalCertificate(der, { ...expected, maxLifetimeMs: 26 * HOUR_MS });
  });

  test('check-refuses-expired-and-not-yet-valid', async () => {
    const now = Date.now();
    await refused(
      buildLeafCertificate(
        intermediate.authority,
        leafSpec(key, { notBefore: new Date(now - 2 * HOUR_MS), notAfter: new Date(now - HOUR_MS) }),
      ),
      /that expired at/,
    );
    await refused(
      buildLeafCertificate(
        intermediate.authority,
        leafSpec(key, { notBefore: new Date(now + HOUR_MS), notAfter: new Date(now + 2 * HOUR_MS) }),
      ),
      /not valid before/,
    );
  });

  test('check-refuses-certificate-not-chained-to-root', async () => {
    await refused(
      buildLeafCertificate(otherRoot.authority, leafSpec(key)),
      /not signed by the configured root or any configured issuing CA/,
    );
    await refused(
      buildLeafCertificate(otherIntermediate.authority, leafSpec(key)),
      /not signed by the configured root or any configured issuing CA/,
    );
  });

  test('check-refuses-issuing-ca-of-another-root', async () => {
    const der = buildLeafCertificate(otherIntermediate.authority, leafSpec(key));
    await refused(
      der,
      /does not chain to the configured root: intermediate 1 certificate \(serial [0-9a-f]+\) is not signed by/,
      { issuerDers: [otherIntermediate.certDer] },
    );
  });

  test('check-refuses-garbage', async () => {
    await refused(Buffer.from('30030201', 'hex'), /malformed certificate/);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
