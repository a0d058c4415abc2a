/**
 * POST /renew over mutual TLS with the current certificate: a new chain for the same identity,
 * the role's current rules re-applied, and every way the presented certificate can be wrong
 * (absent, foreign, revoked, expired, wrong purpose, wrong name) refused with its code.
 * Then the agent's renewOnce against a live CA and against a CA that is down.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import * as pki from '../src/pki/index.js';
import { enroll } from '../src/agent/enroll.js';
import { renewOnce } from '../src/agent/renew.js';
import { GatehouseError } from '../src/errors/errors.js';
import { CA_FILES } from '../src/ca/ca-dir.js';
import type { CertRecord } from '../src/store/store-certificates.js';
import { startCaFixture, type CaFixture } from './helpers/ca-fixture.js';
import { startCaServerOnDir, type DirServer } from './helpers/ca-dir-server.js';
import {
  caRequest,
  enrollIdentity,
  expectError,
  intermediatePemOf,
  newCsr,
  opensslCsr,
  output,
  readIdentityPem,
  rootPemOf,
  splitCertificates,
  writeText,
  type HttpResult,
} from './helpers/ca-http.js';
import { run } from './helpers/run.js';
import { makeTempDir } from './helpers/tmp.js';

function renewRequest(
  url: string,
  rootPem: string,
  identity: { keyPem: string; certPem: string } | null,
  csr: string,
): Promise<HttpResult> {
  return caRequest(url, 'renew', {
    method: 'POST',
    ca: rootPem,
    body: { csr },
    ...(identity ? { key: identity.keyPem, cert: identity.certPem } : {}),
  });
}

async function certCount(fixture: { store: CaFixture['store'] }): Promise<number> {
  return (await fixture.store.listCerts()).length;
}

test('renew-with-current-cert-issues-new-chain-for-same-identity', async (t) => {
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const tmp = makeTempDir();
  t.after(() => tmp.cleanup());
  const old = await enrollIdentity(fixture, { role: 'web', name: 'web-r1' });
  const next = await newCsr({ commonName: 'web-r1' });
  const res = await renewRequest(fixture.url, rootPemOf(fixture), old, next.csr);
  assert.equal(res.status, 201, res.text);
  const renewed = res.json as Record<string, string>;
  assert.notEqual(renewed.serial, old.serial, 'new serial');
  assert.notEqual(renewed.fingerprint, old.fingerprint);
  assert.equal(renewed.name, 'web-r1');
  assert.equal(renewed.role, 'web');
  assert.equal(renewed.spiffeId, 'spiffe://test.internal/web/web-r1');
  assert.equal(renewed.spiffeId, old.spiffeId);

  // The new certificate carries the new key, and chains to the root.
  const [leafDer, intermediateDer] = pki.decodePem(renewed.chain!, 'CERTIFICATE');
  const leaf = pki.parseCertificate(leafDer!);
  assert.ok(leaf.spkiDer.equals(pki.spkiDer(next.key)), 'certificate is for the key of the renewal CSR');
  assert.ok(!leaf.spkiDer.equals(pki.spkiDer(pki.loadPrivateKey(old.keyPem))), 'not the old key');
  assert.equal(pki.toPem('CERTIFICATE', intermediateDer!), intermediatePemOf(fixture));
  const rootPath = writeText(tmp.dir, 'root.pem', renewed.root!);
  const intPath = writeText(tmp.dir, 'int.pem', intermediatePemOf(fixture));
  const leafPath = writeText(tmp.dir, 'leaf.pem', renewed.certificate!);
  const verify = await run('openssl', [
    'verify',
    '-x509_strict',
    '-purpose',
    'sslclient',
    '-CAfile',
    rootPath,
    '-untrusted',
    intPath,
    leafPath,
  ]);
  assert.equal(verify.status, 0, output(verify));
  const subject = await run('openssl', ['x509', '-in', leafPath, '-noout', '-subject', '-nameopt', 'RFC2253']);
  assert.equal(subject.stdout.trim(), 'subject=CN=web-r1,OU=web,O=Test Org');

  const stored = await fixture.store.getCert(renewed.serial!);
  assert.ok(stored);
  assert.equal(stored.renewedFrom, old.serial, 'renewedFrom links the old serial');
  assert.equal(stored.tokenId, null);
  assert.equal(stored.fingerprint, renewed.fingerprint);
  assert.equal(stored.name, 'web-r1');
  assert.equal(stored.spiffeId, old.spiffeId);
  assert.equal(
    (await fixture.store.getCert(old.serial))!.revokedAt,
    null,
    'renewal does not revoke the old certificate',
  );

  const events = (await fixture.store.listAudit({ type: 'ca.cert_renewed' })).filter(
    (e) => e.serial === renewed.serial,
  );
  assert.equal(events.length, 1, 'one ca.cert_renewed event');
  assert.equal(events[0]!.fingerprint, renewed.fingerprint);
  assert.equal(events[0]!.details.renewedFrom, old.serial);
  assert.equal(events[0]!.actor, old.spiffeId);

  // The renewed identity is itself current: it can renew again.
  const again = await renewRequest(
    fixture.url,
    rootPemOf(fixture),
    { keyPem: next.keyPem, certPem: renewed.chain! },
    (await newCsr({ commonName: 'web-r1' })).csr,
  );
  assert.equal(again.status, 201, again.text);
  assert.equal((await fixture.store.getCert(again.json.serial))!.renewedFrom, renewed.serial);
});

test('renewal-reapplies-role-current-rules-after-config-change', async () => {
  const fixture = await startCaFixture();
  let restarted: DirServer | undefined;
  try {
    const gw = await enrollIdentity(fixture, { role: 'gateway', name: 'gw-old', dns: ['old.test.internal'] });
    await fixture.server.close();

    const configPath = join(fixture.caDir, CA_FILES.config);
    const doc = YAML.parse(readFileSync(configPath, 'utf8')) as { roles: Record<string, { dns?: string[] }> };
    assert.deepEqual(doc.roles.gateway!.dns, ['localhost', '*.test.internal'], 'fixture config as expected');
    doc.roles.gateway!.dns = ['localhost'];
    writeFileSync(configPath, YAML.stringify(doc), { mode: 0o600 });
    restarted = await startCaServerOnDir(fixture.caDir);

    const before = await certCount(restarted);
    const sameSans = await newCsr({ commonName: 'gw-old', dns: ['old.test.internal'] });
    const err = expectError(await renewRequest(restarted.url, gw.rootPem, gw, sameSans.csr), 403, 'GH_CSR_POLICY');
    assert.match(err.message, /old\.test\.internal/);
    assert.equal(await certCount(restarted), before, 'nothing recorded');
    const refused = (await restarted.store.listAudit({ type: 'ca.cert_refused' })).filter(
      (e) => e.serial === gw.serial,
    );
    assert.equal(refused.length, 1, 'the refused renewal is audited with the presented serial');
    assert.equal(refused[0]!.details.code, 'GH_CSR_POLICY');

    // Control: what the role still allows is renewed.
    const allowed = await newCsr({ commonName: 'gw-old', dns: ['localhost'] });
    const ok = await renewRequest(restarted.url, gw.rootPem, gw, allowed.csr);
    assert.equal(ok.status, 201, ok.text);
    assert.equal((await restarted.store.getCert(ok.json.serial))!.renewedFrom, gw.serial);
  } finally {
    await restarted?.close();
    await fixture.close();
  }
});

test('renew-without-client-cert-refused-401-GH_AUTH_REQUIRED', async (t) => {
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const before = await certCount(fixture);
  const { csr } = await newCsr({ commonName: 'anon' });
  expectError(await renewRequest(fixture.url, rootPemOf(fixture), null, csr), 401, 'GH_AUTH_REQUIRED');
  assert.equal(await certCount(fixture), before);
});

test('renew-with-cert-from-another-ca-refused-401-GH_CERT_UNTRUSTED', async (t) => {
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const other = await startCaFixture();
  t.after(() => other.close());
  const tmp = makeTempDir();
  t.after(() => tmp.cleanup());
  const before = await certCount(fixture);

  // Same org, same trust domain, same name: only the issuing CA differs.
  const foreign = await enrollIdentity(other, { role: 'web', name: 'web-x' });
  const { csr } = await newCsr({ commonName: 'web-x' });
  expectError(
    await renewRequest(fixture.url, rootPemOf(fixture), foreign, csr),
    401,
    'GH_CERT_UNTRUSTED',
    'certificate from another Gatehouse CA',
  );

  // A self-signed client certificate made by openssl with a Gatehouse-looking subject.
  const keyPath = join(tmp.dir, 'self.key.pem');
  const certPath = join(tmp.dir, 'self.cert.pem');
  const r = await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    certPath,
    '-days',
    '1',
    '-subj',
    '/O=Test Org/OU=web/CN=web-x',
    '-addext',
    'basicConstraints=critical,CA:FALSE',
    '-addext',
    'keyUsage=critical,digitalSignature',
    '-addext',
    'extendedKeyUsage=clientAuth',
    '-addext',
    'subjectAltName=URI:spiffe://test.internal/web/web-x',
  ]);
  assert.equal(r.status, 0, output(r));
  const self = { keyPem: readFileSync(keyPath, 'utf8'), certPem: readFileSync(certPath, 'utf8') };
  expectError(
    await renewRequest(fixture.url, rootPemOf(fixture), self, csr),
    401,
    'GH_CERT_UNTRUSTED',
    'self-signed certificate',
  );
  assert.equal(await certCount(fixture), before);
});

test('renew-with-revoked-cert-refused-403-GH_CERT_REVOKED', async (t) => {
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const device = await enrollIdentity(fixture, { role: 'web', name: 'web-rev' });
  const admin = readIdentityPem(fixture.adminDir);
  const revoke = await caRequest(fixture.url, `admin/certs/${device.serial}/revoke`, {
    method: 'POST',
    ca: admin.ca,
    key: admin.key,
    cert: admin.cert,
    body: { reason: 'keyCompromise' },
  });
  assert.equal(revoke.status, 200, revoke.text);
  assert.equal(revoke.json.state, 'revoked');
  const before = await certCount(fixture);
  const { csr } = await newCsr({ commonName: 'web-rev' });
  const err = expectError(await renewRequest(fixture.url, rootPemOf(fixture), device, csr), 403, 'GH_CERT_REVOKED');
  assert.match(err.message, new RegExp(device.serial));
  assert.equal(await certCount(fixture), before);
});

test('renew-with-expired-cert-refused-401-GH_CERT_EXPIRED', async (t) => {
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const authority = fixture.server.authority;
  const key = pki.generatePrivateKey('p256');
  const now = Date.now();
  const der = pki.buildLeafCertificate(authority.issuer as pki.SigningAuthority, {
    serial: pki.randomSerial(),
    commonName: 'web-old',
    organizationalUnit: 'web',
    organization: 'Test Org',
    spkiDer: pki.spkiDer(key),
    notBefore: new Date(now - 2 * 86_400_000),
    notAfter: new Date(now - 3_600_000),
    profile: 'client',
    dns: [],
    ip: [],
    uri: ['spiffe://test.internal/web/web-old'],
    email: [],
  });
  const info = pki.parseCertificate(der);
  const record: CertRecord = {
    serial: info.serial,
    fingerprint: info.fingerprint,
    name: 'web-old',
    role: 'web',
    spiffeId: 'spiffe://test.internal/web/web-old',
    notBefore: info.notBefore,
    notAfter: info.notAfter,
    issuedAt: info.notBefore,
    certPem: pki.toPem('CERTIFICATE', der),
    tokenId: null,
    renewedFrom: null,
    lineage: info.serial,
    supersededBy: null,
    supersededAt: null,
    revokedAt: null,
    revocationReason: null,
  };
  assert.deepEqual(await fixture.store.commitIssuance({ cert: record, now: new Date(now), audit: [] }), { ok: true });
  const expired = { keyPem: pki.privateKeyToPem(key), certPem: record.certPem + authority.intermediatePem };
  const before = await certCount(fixture);
  const { csr } = await newCsr({ commonName: 'web-old' });
  expectError(await renewRequest(fixture.url, rootPemOf(fixture), expired, csr), 401, 'GH_CERT_EXPIRED');
  assert.equal(await certCount(fixture), before);
});

test('renew-changing-name-refused-400-GH_NAME_INVALID', async (t) => {
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const device = await enrollIdentity(fixture, { role: 'web', name: 'web-n1' });
  const before = await certCount(fixture);
  const { csr } = await newCsr({ commonName: 'web-n2' });
  const err = expectError(await renewRequest(fixture.url, rootPemOf(fixture), device, csr), 400, 'GH_NAME_INVALID');
  assert.match(err.message, /web-n1/);
  assert.equal(await certCount(fixture), before);
  // Without a CN the renewal keeps the current name.
  const noCn = await renewRequest(fixture.url, rootPemOf(fixture), device, (await newCsr({})).csr);
  assert.equal(noCn.status, 201, noCn.text);
  assert.equal(noCn.json.name, 'web-n1');
});

test('renew-with-server-only-gateway-cert-succeeds-and-keeps-server-profile', async (t) => {
  // A serverAuth-only certificate fails OpenSSL's client-purpose check, but a gateway must be
  // able to renew with it: /renew verifies the chain itself and requires the inventory record.
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const gw = await enrollIdentity(fixture, { role: 'gateway', name: 'gw-client', dns: ['localhost'] });
  const { csr } = await newCsr({ commonName: 'gw-client', dns: ['localhost'] });
  const renewed = await renewRequest(fixture.url, rootPemOf(fixture), gw, csr);
  assert.equal(renewed.status, 201, renewed.text);
  assert.equal(renewed.json.role, 'gateway');
  // The same certificate is still not accepted where a client identity is required.
  const { request } = await import('node:https');
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(
      `${fixture.url}/admin/certs`,
      { ca: rootPemOf(fixture), key: gw.keyPem, cert: gw.certPem },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end();
  });
  assert.equal(status, 401);
});

test('agent-renew-once-writes-new-identity-and-keeps-it-when-ca-down', async (t) => {
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const tmp = makeTempDir();
  t.after(() => tmp.cleanup());
  const dir = join(tmp.dir, 'agent');
  const { token } = await fixture.server.authority.createToken({ role: 'web' }, { actor: 'test' });
  const enrolled = await enroll({ caUrl: fixture.url, token, dir, name: 'agent-1' });
  assert.equal(enrolled.name, 'agent-1');
  const files = ['key.pem', 'cert.pem', 'ca.pem', 'agent.json'];
  const snapshot = () => Object.fromEntries(files.map((f) => [f, readFileSync(join(dir, f))]));
  const first = snapshot();

  const { previous, current } = await renewOnce({ dir });
  assert.equal(previous.serial, enrolled.serial);
  assert.notEqual(current.serial, previous.serial, 'a new serial');
  assert.equal(current.name, 'agent-1');
  assert.equal(current.spiffeId, 'spiffe://test.internal/web/agent-1');
  const second = snapshot();
  assert.ok(!second['key.pem']!.equals(first['key.pem']!), 'key.pem replaced');
  assert.ok(!second['cert.pem']!.equals(first['cert.pem']!), 'cert.pem replaced');
  assert.ok(second['ca.pem']!.equals(first['ca.pem']!), 'ca.pem unchanged');
  assert.equal(statSync(join(dir, 'key.pem')).mode & 0o777, 0o600, 'key.pem is 0600');
  assert.equal(existsSync(join(dir, '.staged')), false, 'no staged files left');
  const [leaf] = splitCertificates(second['cert.pem']!.toString('utf8'));
  const leafInfo = pki.parseCertificate(pki.decodePem(leaf!, 'CERTIFICATE')[0]!);
  assert.equal(leafInfo.serial, current.serial);
  assert.ok(
    leafInfo.spkiDer.equals(pki.spkiDer(pki.loadPrivateKey(second['key.pem']!.toString('utf8')))),
    'new key matches new certificate',
  );
  assert.equal((await fixture.store.getCert(current.serial))!.renewedFrom, previous.serial);

  // The CA goes away: renewOnce fails with GH_CA_UNREACHABLE and the identity stays byte-identical.
  await fixture.server.close();
  await assert.rejects(renewOnce({ dir }), (err: unknown) => {
    assert.ok(err instanceof GatehouseError, String(err));
    assert.equal(err.code, 'GH_CA_UNREACHABLE', err.message);
    return true;
  });
  const third = snapshot();
  for (const f of files) assert.ok(third[f]!.equals(second[f]!), `${f} unchanged after a failed renewal`);
  assert.equal(statSync(join(dir, 'key.pem')).mode & 0o777, 0o600);
  assert.equal(existsSync(join(dir, '.staged')), false, 'no staged files left after the failure');
});

test('opensslcsr-helper-produces-verifiable-csr', async (t) => {
  // Guard for the helper used by the other CA tests: openssl's CSR is accepted as-is by the CA.
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const tmp = makeTempDir();
  t.after(() => tmp.cleanup());
  const made = await opensslCsr(tmp.dir, 'r', '/CN=via-openssl');
  const { token } = await fixture.server.authority.createToken({ role: 'web' }, { actor: 'test' });
  const res = await caRequest(fixture.url, 'enroll', {
    method: 'POST',
    ca: rootPemOf(fixture),
    body: { token, csr: made.csr },
  });
  assert.equal(res.status, 201, res.text);
  const renewed = await renewRequest(
    fixture.url,
    rootPemOf(fixture),
    { keyPem: made.keyPem, certPem: res.json.chain },
    (await opensslCsr(tmp.dir, 'r2', '/CN=via-openssl')).csr,
  );
  assert.equal(renewed.status, 201, renewed.text);
});
