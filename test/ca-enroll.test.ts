/**
 * POST /enroll against a real CA over real TLS: curl and OpenSSL as independent peers for the
 * happy path, every refusal with its exact status and code, the store left consistent (no
 * token use consumed, no certificate recorded) and no secret in the audit trail or the logs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as pki from '../src/pki/index.js';
import { startCaFixture, type CaFixture } from './helpers/ca-fixture.js';
import {
  caRequest,
  enrollRequest,
  expectError,
  intermediatePemOf,
  newCsr,
  opensslCsr,
  output,
  rootPemOf,
  splitCertificates,
  writeText,
  type HttpResult,
} from './helpers/ca-http.js';
import { pollUntil, waitFor } from './helpers/poll.js';
import { run } from './helpers/run.js';
import { makeTempDir } from './helpers/tmp.js';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const randomSecret = () => Array.from(randomBytes(32), (b) => BASE32[b & 31]).join('');
const secretOf = (token: string) => token.slice(-32);

async function sanList(certPath: string): Promise<string[]> {
  const r = await run('openssl', ['x509', '-in', certPath, '-noout', '-ext', 'subjectAltName']);
  assert.equal(r.status, 0, output(r));
  const body = r.stdout.split('\n').slice(1).join(' ').trim();
  return body ? body.split(/,\s*/).map((s) => s.trim()) : [];
}

async function subjectOf(certPath: string): Promise<string> {
  const r = await run('openssl', ['x509', '-in', certPath, '-noout', '-subject', '-nameopt', 'RFC2253']);
  assert.equal(r.status, 0, output(r));
  return r.stdout.trim().replace(/^subject=\s*/, '');
}

async function opensslVerify(
  dir: string,
  issued: { certificate: string; chain: string; root: string },
  purpose: 'sslclient' | 'sslserver',
): Promise<void> {
  const [leaf, intermediate, ...rest] = splitCertificates(issued.chain);
  assert.ok(leaf && intermediate, 'chain holds the leaf and the intermediate');
  assert.equal(rest.length, 0, 'chain holds exactly the leaf and the intermediate');
  assert.equal(leaf, splitCertificates(issued.certificate)[0], 'chain starts with the returned certificate');
  const leafPath = writeText(dir, `leaf-${purpose}.pem`, leaf);
  const intPath = writeText(dir, 'intermediate.pem', intermediate);
  const rootPath = writeText(dir, 'root.pem', issued.root);
  const r = await run('openssl', [
    'verify',
    '-x509_strict',
    '-purpose',
    purpose,
    '-CAfile',
    rootPath,
    '-untrusted',
    intPath,
    leafPath,
  ]);
  assert.equal(r.status, 0, `openssl verify -purpose ${purpose}; ${output(r)}`);
  assert.match(r.stdout, /: OK\s*$/, output(r));
}

async function certCount(fixture: CaFixture): Promise<number> {
  return (await fixture.store.listCerts()).length;
}

async function certsOfToken(fixture: CaFixture, tokenId: string) {
  return (await fixture.store.listCerts()).filter((c) => c.tokenId === tokenId);
}

describe('ca-enroll happy paths', () => {
  let fixture: CaFixture;
  let tmp: ReturnType<typeof makeTempDir>;
  before(async () => {
    fixture = await startCaFixture();
    tmp = makeTempDir();
  });
  after(async () => {
    await fixture?.close();
    tmp?.cleanup();
  });

  test('enroll-with-curl-and-openssl-csr-issues-web-cert-201', async () => {
    const { token, record: tokenRecord } = await fixture.server.authority.createToken(
      { role: 'web' },
      { actor: 'test' },
    );
    const made = await opensslCsr(tmp.dir, 'web-1', '/CN=web-1');
    const bodyPath = writeText(tmp.dir, 'enroll.json', JSON.stringify({ token, csr: made.csr }));
    const rootPath = join(fixture.caDir, 'root.pem');
    const outPath = join(tmp.dir, 'enroll-response.json');
    const r = await run('curl', [
      '-sS',
      '--cacert',
      rootPath,
      '-H',
      'content-type: application/json',
      '--data-binary',
      `@${bodyPath}`,
      '-o',
      outPath,
      '-w',
      '%{http_code}',
      `${fixture.url}/enroll`,
    ]);
    assert.equal(r.status, 0, `curl; ${output(r)}`);
    const body = readFileSync(outPath, 'utf8');
    assert.equal(r.stdout, '201', `HTTP status; body ${body}`);
    const issued = JSON.parse(body) as Record<string, string>;

    // Recorded durably before the response was sent: it is there as soon as curl returns.
    const stored = await fixture.store.getCert(issued.serial!);
    assert.ok(stored, `certificate ${issued.serial} is in the store`);
    assert.equal(stored.fingerprint, issued.fingerprint);
    assert.equal(stored.tokenId, tokenRecord.id);
    assert.equal(stored.certPem, issued.certificate);

    const leafDer = pki.decodePem(issued.certificate!, 'CERTIFICATE')[0]!;
    assert.equal(pki.sha256Hex(leafDer), issued.fingerprint, 'fingerprint is the SHA-256 of the DER');
    assert.equal(issued.name, 'web-1');
    assert.equal(issued.role, 'web');
    assert.equal(issued.spiffeId, 'spiffe://test.internal/web/web-1');
    assert.equal(issued.root, readFileSync(rootPath, 'utf8'), 'root returned is the CA root');
    assert.ok(new Date(issued.notAfter!) > new Date(issued.notBefore!));

    await opensslVerify(tmp.dir, issued as never, 'sslclient');
    const leafPath = writeText(tmp.dir, 'web-1.cert.pem', issued.certificate!);
    assert.equal(await subjectOf(leafPath), 'CN=web-1,OU=web,O=Test Org');
    assert.deepEqual(await sanList(leafPath), ['URI:spiffe://test.internal/web/web-1']);

    // The certificate carries the key of the openssl-generated CSR.
    const certKey = await run('openssl', ['x509', '-in', leafPath, '-noout', '-pubkey']);
    const csrKey = await run('openssl', ['pkey', '-in', made.keyPath, '-pubout']);
    assert.equal(certKey.status, 0, output(certKey));
    assert.equal(certKey.stdout, csrKey.stdout, 'certificate public key = CSR key');

    const used = (await fixture.store.listAudit({ type: 'ca.token_used' })).filter((e) => e.serial === issued.serial);
    assert.equal(used.length, 1, 'one ca.token_used event for the serial');
    assert.equal(used[0]!.fingerprint, issued.fingerprint);
    assert.equal(used[0]!.tokenId, tokenRecord.id);
    const issuedEvents = (await fixture.store.listAudit({ type: 'ca.cert_issued' })).filter(
      (e) => e.serial === issued.serial,
    );
    assert.equal(issuedEvents.length, 1, 'one ca.cert_issued event for the serial');
    assert.equal(issuedEvents[0]!.fingerprint, issued.fingerprint);
    assert.equal(issuedEvents[0]!.details.spiffeId, issued.spiffeId);
    assert.equal((await fixture.store.getToken(tokenRecord.id))!.uses, 1);
  });

  test('enroll-gateway-with-allowed-sans-issues-usable-server-cert', async (t) => {
    const { token } = await fixture.server.authority.createToken({ role: 'gateway' }, { actor: 'test' });
    const made = await opensslCsr(tmp.dir, 'gw-1', '/CN=gw-1', {
      addext: ['subjectAltName=DNS:localhost,IP:127.0.0.1'],
    });
    const res = await enrollRequest(fixture, { token, csr: made.csr });
    assert.equal(res.status, 201, res.text);
    const issued = res.json as Record<string, string>;
    assert.equal(issued.role, 'gateway');
    const leafPath = writeText(tmp.dir, 'gw-1.cert.pem', issued.certificate!);
    assert.deepEqual(
      (await sanList(leafPath)).sort(),
      ['DNS:localhost', 'IP Address:127.0.0.1', 'URI:spiffe://test.internal/gateway/gw-1'].sort(),
    );
    assert.equal(await subjectOf(leafPath), 'CN=gw-1,OU=gateway,O=Test Org');
    await opensslVerify(tmp.dir, issued as never, 'sslserver');

    // Usable as a real TLS server certificate: curl, trusting only the root, accepts it.
    const server = createServer({ key: made.keyPem, cert: issued.chain }, (_req, res2) => res2.end('hello from gw-1'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );
    const port = (server.address() as AddressInfo).port;
    const rootPath = writeText(tmp.dir, 'gw-root.pem', issued.root!);
    const byIp = await run('curl', ['-sS', '--cacert', rootPath, `https://127.0.0.1:${port}/`]);
    assert.equal(byIp.status, 0, `curl by IP SAN; ${output(byIp)}`);
    assert.equal(byIp.stdout, 'hello from gw-1');
    const byName = await run('curl', [
      '-sS',
      '--cacert',
      rootPath,
      '--resolve',
      `localhost:${port}:127.0.0.1`,
      `https://localhost:${port}/`,
    ]);
    assert.equal(byName.status, 0, `curl by DNS SAN; ${output(byName)}`);
    assert.equal(byName.stdout, 'hello from gw-1');
    // Control: a name the certificate does not carry is refused by curl (exit 60: peer certificate not OK).
    const wrongName = await run('curl', [
      '-sS',
      '--cacert',
      rootPath,
      '--resolve',
      `other.test.internal:${port}:127.0.0.1`,
      `https://other.test.internal:${port}/`,
    ]);
    assert.notEqual(wrongName.status, 0, `curl must refuse a name the certificate lacks; ${output(wrongName)}`);
  });

  test('enroll-gateway-with-foreign-dns-san-refused-403-naming-san-and-allowed-list', async () => {
    const { token, record } = await fixture.server.authority.createToken({ role: 'gateway' }, { actor: 'test' });
    const before = await certCount(fixture);
    const made = await newCsr({ commonName: 'gw-2', dns: ['localhost', 'evil.example'] });
    const err = expectError(await enrollRequest(fixture, { token, csr: made.csr }), 403, 'GH_CSR_POLICY');
    assert.match(err.message, /evil\.example/, err.message);
    assert.ok(
      err.message.includes('localhost') && err.message.includes('*.test.internal'),
      `message names the allowed list: ${err.message}`,
    );
    assert.equal((await fixture.store.getToken(record.id))!.uses, 0, 'token use not consumed');
    assert.equal(await certCount(fixture), before, 'no certificate recorded');
  });

  test('enroll-without-cn-takes-name-from-token-then-from-hint', async () => {
    const fixed = await fixture.server.authority.createToken(
      { role: 'web', name: 'named-by-token' },
      { actor: 'test' },
    );
    const noCn = await newCsr({});
    const byToken = await enrollRequest(fixture, { token: fixed.token, csr: noCn.csr, nameHint: 'ignored-hint' });
    assert.equal(byToken.status, 201, byToken.text);
    assert.equal(byToken.json.name, 'named-by-token');
    assert.equal(byToken.json.spiffeId, 'spiffe://test.internal/web/named-by-token');

    const open = await fixture.server.authority.createToken({ role: 'web' }, { actor: 'test' });
    const byHint = await enrollRequest(fixture, { token: open.token, csr: (await newCsr({})).csr, nameHint: 'host-7' });
    assert.equal(byHint.status, 201, byHint.text);
    assert.equal(byHint.json.name, 'host-7');

    const another = await fixture.server.authority.createToken({ role: 'web' }, { actor: 'test' });
    expectError(
      await enrollRequest(fixture, { token: another.token, csr: (await newCsr({})).csr, nameHint: 'bad hint' }),
      400,
      'GH_NAME_INVALID',
    );
    expectError(
      await enrollRequest(fixture, { token: another.token, csr: (await newCsr({})).csr }),
      400,
      'GH_NAME_INVALID',
      'no name anywhere',
    );
    assert.equal((await fixture.store.getToken(another.record.id))!.uses, 0);
  });

  test('enroll-token-with-3-uses-enrolls-exactly-3-then-409', async () => {
    const { token, record } = await fixture.server.authority.createToken({ role: 'web', uses: 3 }, { actor: 'test' });
    const serials: string[] = [];
    for (let i = 1; i <= 3; i++) {
      const made = await newCsr({ commonName: `multi-${i}` });
      const res = await enrollRequest(fixture, { token, csr: made.csr });
      assert.equal(res.status, 201, `machine ${i}: ${res.text}`);
      serials.push(res.json.serial);
    }
    const fourth = await newCsr({ commonName: 'multi-4' });
    expectError(await enrollRequest(fixture, { token, csr: fourth.csr }), 409, 'GH_TOKEN_USED');
    assert.equal(new Set(serials).size, 3);
    const certs = await certsOfToken(fixture, record.id);
    assert.deepEqual(certs.map((c) => c.serial).sort(), [...serials].sort());
    assert.equal((await fixture.store.getToken(record.id))!.uses, 3);
  });
});

describe('ca-enroll refusals', () => {
  let fixture: CaFixture;
  let tmp: ReturnType<typeof makeTempDir>;
  before(async () => {
    fixture = await startCaFixture();
    tmp = makeTempDir();
  });
  after(async () => {
    await fixture?.close();
    tmp?.cleanup();
  });

  const newToken = (extra: { name?: string; namePattern?: string; role?: string } = {}) =>
    fixture.server.authority.createToken({ role: extra.role ?? 'web', ...extra }, { actor: 'test' });

  /** Sends `csr` with a fresh token; asserts the refusal, that the use was not consumed and nothing was recorded. */
  async function refusedCsr(
    csr: string | object,
    status: number,
    code: string,
    tokenOptions: Parameters<typeof newToken>[0] = {},
  ): Promise<{ message: string; tokenId: string; token: string }> {
    const { token, record } = await newToken(tokenOptions);
    const before = await certCount(fixture);
    const err = expectError(await enrollRequest(fixture, { token, csr }), status, code);
    const after = await fixture.store.getToken(record.id);
    assert.equal(after!.uses, 0, 'token use not consumed');
    assert.equal(after!.revokedAt, null);
    assert.equal(await certCount(fixture), before, 'no certificate recorded');
    assert.deepEqual(await certsOfToken(fixture, record.id), []);
    return { message: err.message, tokenId: record.id, token };
  }

  test('enroll-garbage-csr-refused-400-GH_CSR_MALFORMED', async () => {
    await refusedCsr('this is not a certificate request', 400, 'GH_CSR_MALFORMED');
    await refusedCsr(
      '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n',
      400,
      'GH_CSR_MALFORMED',
    );
  });

  test('enroll-truncated-csr-refused-400-GH_CSR_MALFORMED', async () => {
    const { csr } = await newCsr({ commonName: 'trunc-1' });
    const der = pki.decodePem(csr, 'CERTIFICATE REQUEST')[0]!;
    await refusedCsr(
      pki.toPem('CERTIFICATE REQUEST', der.subarray(0, Math.floor(der.length / 2))),
      400,
      'GH_CSR_MALFORMED',
    );
    await refusedCsr(pki.toPem('CERTIFICATE REQUEST', der.subarray(0, der.length - 1)), 400, 'GH_CSR_MALFORMED');
    // PEM text cut in the middle (no END line).
    await refusedCsr(csr.slice(0, Math.floor(csr.length / 2)), 400, 'GH_CSR_MALFORMED');
  });

  test('enroll-csr-with-bad-signature-refused-400-GH_CSR_SIGNATURE', async () => {
    const { csr } = await newCsr({ commonName: 'badsig-1' });
    const der = Buffer.from(pki.decodePem(csr, 'CERTIFICATE REQUEST')[0]!);
    // The last byte of the DER is the last byte of the ECDSA signature's s value.
    der[der.length - 1] = der[der.length - 1]! ^ 0x01;
    await refusedCsr(pki.toPem('CERTIFICATE REQUEST', der), 400, 'GH_CSR_SIGNATURE');
  });

  test('enroll-csr-asking-ca-true-refused-403-GH_CSR_POLICY', async () => {
    const made = await opensslCsr(tmp.dir, 'ca-true', '/CN=ca-true', { addext: ['basicConstraints=critical,CA:TRUE'] });
    const { message } = await refusedCsr(made.csr, 403, 'GH_CSR_POLICY');
    assert.match(message, /CA:TRUE/);
  });

  test('enroll-csr-with-ou-admin-for-web-token-refused-403-GH_CSR_POLICY', async () => {
    const made = await opensslCsr(tmp.dir, 'ou-admin', '/CN=sneaky/OU=admin');
    const { message } = await refusedCsr(made.csr, 403, 'GH_CSR_POLICY');
    assert.match(message, /OU=admin/);
  });

  test('enroll-client-role-with-dns-san-refused-403-GH_CSR_POLICY', async () => {
    const made = await newCsr({ commonName: 'web-dns', dns: ['web.test.internal'] });
    const { message } = await refusedCsr(made.csr, 403, 'GH_CSR_POLICY');
    assert.match(message, /web\.test\.internal/);
    const withIp = await newCsr({ commonName: 'web-ip', ip: ['127.0.0.1'] });
    await refusedCsr(withIp.csr, 403, 'GH_CSR_POLICY');
  });

  test('enroll-csr-with-email-san-refused-403-GH_CSR_POLICY', async () => {
    const made = await opensslCsr(tmp.dir, 'email', '/CN=mailer', {
      addext: ['subjectAltName=email:mailer@example.com'],
    });
    const { message } = await refusedCsr(made.csr, 403, 'GH_CSR_POLICY');
    assert.match(message, /mailer@example\.com/);
  });

  test('enroll-csr-with-foreign-uri-san-refused-403-GH_CSR_POLICY', async () => {
    const made = await opensslCsr(tmp.dir, 'uri', '/CN=web-uri', {
      addext: ['subjectAltName=URI:spiffe://test.internal/admin/web-uri'],
    });
    const { message } = await refusedCsr(made.csr, 403, 'GH_CSR_POLICY');
    assert.match(message, /spiffe:\/\/test\.internal\/admin\/web-uri/);
    const other = await opensslCsr(tmp.dir, 'uri2', '/CN=web-uri', {
      addext: ['subjectAltName=URI:https://evil.example/'],
    });
    await refusedCsr(other.csr, 403, 'GH_CSR_POLICY');
  });

  test('enroll-unsafe-names-refused-400-GH_NAME_INVALID', async () => {
    for (const name of [
      'a b',
      'x"y',
      '../x',
      'a'.repeat(64),
      '-leading-dash',
      'semi;colon',
      'slash/name',
      'caf\u00e9',
    ]) {
      const made = await newCsr({ commonName: name });
      const { message } = await refusedCsr(made.csr, 400, 'GH_NAME_INVALID');
      assert.ok(message.length > 0, name);
    }
    // Control: 63 characters from the safe set is the longest accepted name.
    const { token } = await newToken();
    const longest = await newCsr({ commonName: 'a'.repeat(63) });
    const ok = await enrollRequest(fixture, { token, csr: longest.csr });
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.json.name, 'a'.repeat(63));
  });

  test('enroll-name-outside-token-pattern-refused-400-GH_NAME_INVALID', async () => {
    const made = await newCsr({ commonName: 'web-7' });
    const { message } = await refusedCsr(made.csr, 400, 'GH_NAME_INVALID', { namePattern: 'db-*' });
    assert.match(message, /db-\*/);
  });

  test('enroll-name-differing-from-token-fixed-name-refused-400-GH_NAME_INVALID', async () => {
    const made = await newCsr({ commonName: 'other-name' });
    const { message } = await refusedCsr(made.csr, 400, 'GH_NAME_INVALID', { name: 'fixed-name' });
    assert.match(message, /fixed-name/);
  });

  test('enroll-rsa-1024-csr-refused-400-GH_CSR_KEY_UNSUPPORTED', async () => {
    const made = await opensslCsr(tmp.dir, 'rsa1024', '/CN=weak-rsa', { newkey: ['-newkey', 'rsa:1024'] });
    await refusedCsr(made.csr, 400, 'GH_CSR_KEY_UNSUPPORTED');
  });

  test('enroll-unknown-token-refused-401-GH_TOKEN_INVALID', async () => {
    const before = await certCount(fixture);
    const fp = fixture.server.authority.rootFingerprint;
    const { csr } = await newCsr({ commonName: 'nobody' });
    const unknown = `GHTKN-1-${fp}-${randomBytes(8).toString('hex')}-${randomSecret()}`;
    expectError(await enrollRequest(fixture, { token: unknown, csr }), 401, 'GH_TOKEN_INVALID');
    // A known ID with the wrong secret is just as unknown.
    const { token, record } = await newToken();
    const wrongSecret = `${token.slice(0, -32)}${randomSecret()}`;
    expectError(await enrollRequest(fixture, { token: wrongSecret, csr }), 401, 'GH_TOKEN_INVALID');
    assert.equal((await fixture.store.getToken(record.id))!.uses, 0);
    assert.equal(await certCount(fixture), before);
  });

  test('enroll-garbage-token-refused-401-GH_TOKEN_INVALID', async () => {
    const before = await certCount(fixture);
    const { csr } = await newCsr({ commonName: 'nobody' });
    for (const token of [
      'garbage',
      '',
      'GHTKN-1-abc',
      `GHTKN-1-${fixture.server.authority.rootFingerprint}-0011223344556677-TOOSHORT`,
    ]) {
      expectError(await enrollRequest(fixture, { token, csr }), 401, 'GH_TOKEN_INVALID', JSON.stringify(token));
    }
    assert.equal(await certCount(fixture), before);
  });

  test('enroll-token-for-another-ca-refused-401-GH_TOKEN_INVALID', async () => {
    const before = await certCount(fixture);
    const { token, record } = await newToken();
    const otherFp = pki.sha256Hex(Buffer.from('another CA root'));
    const forOtherCa = token.replace(fixture.server.authority.rootFingerprint, otherFp);
    assert.notEqual(forOtherCa, token);
    const { csr } = await newCsr({ commonName: 'other-ca' });
    const err = expectError(await enrollRequest(fixture, { token: forOtherCa, csr }), 401, 'GH_TOKEN_INVALID');
    assert.match(err.message, /different CA|root fingerprint/i);
    assert.equal((await fixture.store.getToken(record.id))!.uses, 0);
    assert.equal(await certCount(fixture), before);
  });

  test('enroll-expired-token-refused-401-GH_TOKEN_EXPIRED', async () => {
    const { token, record } = await fixture.server.authority.createToken({ role: 'web', ttlMs: 1 }, { actor: 'test' });
    await waitFor(() => Date.now() > record.expiresAt.getTime() + 1, 1_000, "the token's 1 ms lifetime to pass", 2);
    const before = await certCount(fixture);
    const { csr } = await newCsr({ commonName: 'late' });
    expectError(await enrollRequest(fixture, { token, csr }), 401, 'GH_TOKEN_EXPIRED');
    assert.equal((await fixture.store.getToken(record.id))!.uses, 0);
    assert.equal(await certCount(fixture), before);
  });

  test('enroll-revoked-token-refused-401-GH_TOKEN_REVOKED', async () => {
    const { token, record } = await newToken();
    await fixture.server.authority.revokeToken(record.id, { actor: 'test' });
    const before = await certCount(fixture);
    const { csr } = await newCsr({ commonName: 'revoked-token' });
    expectError(await enrollRequest(fixture, { token, csr }), 401, 'GH_TOKEN_REVOKED');
    assert.equal((await fixture.store.getToken(record.id))!.uses, 0);
    assert.equal(await certCount(fixture), before);
  });

  test('enroll-with-used-token-refused-409-GH_TOKEN_USED', async () => {
    const { token, record } = await newToken();
    const first = await newCsr({ commonName: 'first' });
    assert.equal((await enrollRequest(fixture, { token, csr: first.csr })).status, 201);
    const before = await certCount(fixture);
    const second = await newCsr({ commonName: 'second' });
    expectError(await enrollRequest(fixture, { token, csr: second.csr }), 409, 'GH_TOKEN_USED');
    assert.equal((await fixture.store.getToken(record.id))!.uses, 1);
    assert.equal(await certCount(fixture), before);
    assert.equal((await certsOfToken(fixture, record.id)).length, 1);
  });

  /** The access log line for a request, once the server has finished the response. */
  async function accessLogLine(requestId: string): Promise<Record<string, unknown>> {
    return pollUntil(
      `access log line for request ${requestId}`,
      async () => {
        for (const line of fixture.logLines) {
          const parsed = JSON.parse(line) as Record<string, unknown>;
          if (parsed.msg === 'ca.request' && parsed.requestId === requestId) return parsed;
        }
        return undefined;
      },
      3000,
      20,
    );
  }

  for (const chunked of [false, true]) {
    test(`enroll-oversized-body-${chunked ? 'chunked' : 'with-content-length'}-refused-413-GH_BODY_TOO_LARGE-and-ca-keeps-serving`, async () => {
      const { token, record } = await newToken();
      const before = await certCount(fixture);
      const big = { token, csr: 'A'.repeat(70 * 1024) };
      const err = expectError(await enrollRequest(fixture, big, { chunked }), 413, 'GH_BODY_TOO_LARGE');
      assert.equal((await fixture.store.getToken(record.id))!.uses, 0);
      assert.equal(await certCount(fixture), before);
      // The refusal is logged like any request, and the CA is still up afterwards.
      const line = await accessLogLine(err.requestId);
      assert.equal(line.status, 413);
      assert.equal(line.path, '/enroll');
      const health = await caRequest(fixture.url, 'health', { ca: rootPemOf(fixture) });
      assert.equal(health.status, 200);
    });
  }

  test('enroll-non-json-body-refused-400-GH_BODY_INVALID', async () => {
    expectError(
      await enrollRequest(fixture, 'token=abc&csr=def', {
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      }),
      400,
      'GH_BODY_INVALID',
    );
    expectError(await enrollRequest(fixture, '{"token": '), 400, 'GH_BODY_INVALID');
    expectError(await enrollRequest(fixture, '["token"]'), 400, 'GH_BODY_INVALID');
    expectError(await enrollRequest(fixture, ''), 400, 'GH_BODY_INVALID');
  });

  test('enroll-missing-or-mistyped-fields-refused-400-GH_BODY_INVALID', async () => {
    const { token, record } = await newToken();
    const { csr } = await newCsr({ commonName: 'fields' });
    expectError(await enrollRequest(fixture, { token }), 400, 'GH_BODY_INVALID', 'missing csr');
    expectError(await enrollRequest(fixture, { csr }), 400, 'GH_BODY_INVALID', 'missing token');
    expectError(await enrollRequest(fixture, { token, csr: 42 }), 400, 'GH_BODY_INVALID', 'csr not a string');
    expectError(await enrollRequest(fixture, { token, csr: null }), 400, 'GH_BODY_INVALID', 'csr null');
    assert.equal((await fixture.store.getToken(record.id))!.uses, 0);
  });

  test('enroll-with-get-refused-405-GH_METHOD_NOT_ALLOWED', async () => {
    const res = await caRequest(fixture.url, 'enroll', { ca: rootPemOf(fixture) });
    expectError(res, 405, 'GH_METHOD_NOT_ALLOWED');
    assert.equal(res.headers.allow, 'POST');
  });

  test('unknown-path-refused-404-GH_NOT_FOUND', async () => {
    expectError(await caRequest(fixture.url, 'no-such-endpoint', { ca: rootPemOf(fixture) }), 404, 'GH_NOT_FOUND');
    expectError(
      await caRequest(fixture.url, 'enroll/extra', { method: 'POST', ca: rootPemOf(fixture), body: {} }),
      404,
      'GH_NOT_FOUND',
    );
  });

  test('token-still-usable-after-enrollment-refused-for-bad-csr', async () => {
    const { token, record } = await newToken();
    const bad = await newCsr({ commonName: 'bad name' });
    expectError(await enrollRequest(fixture, { token, csr: bad.csr }), 400, 'GH_NAME_INVALID');
    const badSig = Buffer.from(pki.decodePem((await newCsr({ commonName: 'x' })).csr, 'CERTIFICATE REQUEST')[0]!);
    badSig[badSig.length - 1] = badSig[badSig.length - 1]! ^ 0xff;
    expectError(
      await enrollRequest(fixture, { token, csr: pki.toPem('CERTIFICATE REQUEST', badSig) }),
      400,
      'GH_CSR_SIGNATURE',
    );
    const good = await newCsr({ commonName: 'good-name' });
    const res = await enrollRequest(fixture, { token, csr: good.csr });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.name, 'good-name');
    assert.equal((await fixture.store.getToken(record.id))!.uses, 1);
  });

  test('intermediate-and-root-served-match-fixture', async () => {
    // Sanity of the helpers used above: /roots serves the root the tests trust.
    const res = await caRequest(fixture.url, 'roots', { ca: rootPemOf(fixture) });
    assert.equal(res.status, 200);
    assert.equal(res.text, rootPemOf(fixture));
    assert.notEqual(intermediatePemOf(fixture), rootPemOf(fixture));
  });
});

describe('ca-enroll audit and secrecy', () => {
  test('refused-enrollments-audited-without-token-secret-or-private-key', async (t) => {
    const fixture = await startCaFixture();
    t.after(() => fixture.close());
    const tmp = makeTempDir();
    t.after(() => tmp.cleanup());
    const authority = fixture.server.authority;
    const tokens: string[] = [];
    const keys: string[] = [];
    const responses: HttpResult[] = [];

    // cert_refused: a valid token with a CSR its role may not have.
    const a = await authority.createToken({ role: 'web' }, { actor: 'test' });
    tokens.push(a.token);
    const caTrue = await opensslCsr(tmp.dir, 'ca-true', '/CN=ca-true', {
      addext: ['basicConstraints=critical,CA:TRUE'],
    });
    keys.push(caTrue.keyPem);
    responses.push(await enrollRequest(fixture, { token: a.token, csr: caTrue.csr }));
    expectError(responses.at(-1)!, 403, 'GH_CSR_POLICY');

    // token_refused: wrong CA pin, revoked, used, unknown.
    const b = await authority.createToken({ role: 'web' }, { actor: 'test' });
    tokens.push(b.token);
    const good = await newCsr({ commonName: 'audited' });
    keys.push(good.keyPem);
    const wrongPin = b.token.replace(authority.rootFingerprint, 'f'.repeat(64));
    tokens.push(wrongPin);
    expectError(await enrollRequest(fixture, { token: wrongPin, csr: good.csr }), 401, 'GH_TOKEN_INVALID');
    await authority.revokeToken(b.record.id, { actor: 'test' });
    expectError(await enrollRequest(fixture, { token: b.token, csr: good.csr }), 401, 'GH_TOKEN_REVOKED');
    const c = await authority.createToken({ role: 'web' }, { actor: 'test' });
    tokens.push(c.token);
    assert.equal((await enrollRequest(fixture, { token: c.token, csr: good.csr })).status, 201);
    expectError(
      await enrollRequest(fixture, { token: c.token, csr: (await newCsr({ commonName: 'again' })).csr }),
      409,
      'GH_TOKEN_USED',
    );
    const unknown = `GHTKN-1-${authority.rootFingerprint}-${randomBytes(8).toString('hex')}-${randomSecret()}`;
    tokens.push(unknown);
    expectError(await enrollRequest(fixture, { token: unknown, csr: good.csr }), 401, 'GH_TOKEN_INVALID');

    const audit = await fixture.store.listAudit();
    const certRefused = audit.filter((e) => e.type === 'ca.cert_refused');
    assert.ok(
      certRefused.some((e) => e.tokenId === a.record.id && e.details.code === 'GH_CSR_POLICY'),
      `ca.cert_refused for token ${a.record.id}: ${JSON.stringify(certRefused)}`,
    );
    const tokenRefused = audit.filter((e) => e.type === 'ca.token_refused');
    for (const [id, code] of [
      [b.record.id, 'GH_TOKEN_INVALID'],
      [b.record.id, 'GH_TOKEN_REVOKED'],
      [c.record.id, 'GH_TOKEN_USED'],
    ] as const) {
      assert.ok(
        tokenRefused.some((e) => e.tokenId === id && e.details.code === code),
        `ca.token_refused ${code} for ${id}: ${JSON.stringify(tokenRefused)}`,
      );
    }
    assert.ok(
      tokenRefused.every((e) => e.actor === 'anonymous' && typeof e.requestId === 'string'),
      'refusals name the actor and request',
    );

    const auditText = JSON.stringify(audit);
    const logText = fixture.logLines.join('');
    assert.ok(fixture.logLines.length > 0, 'the CA logged something');
    for (const [where, text] of [
      ['audit table', auditText],
      ['log', logText],
    ] as const) {
      for (const token of tokens) {
        assert.ok(!text.includes(token), `${where} contains a whole token`);
        assert.ok(!text.includes(secretOf(token)), `${where} contains a token secret`);
      }
      assert.ok(!/PRIVATE KEY/.test(text), `${where} contains a private key PEM`);
      for (const key of keys) {
        const body = key.split('\n').slice(1, -2).join('');
        assert.ok(body.length > 40 && !text.includes(body.slice(0, 40)), `${where} contains private key material`);
      }
    }
  });
});
