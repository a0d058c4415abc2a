/**
 * The admin API over mutual TLS (curl and Node as clients), its refusals and audit trail, and
 * revocation as relying parties see it: CRLs checked by `openssl crl` and enforced by Node's
 * TLS stack, including a revocation made by another process on the same store.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as pki from '../src/pki/index.js';
import { CA_FILES } from '../src/ca/ca-dir.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import { startCaFixture, type CaFixture } from './helpers/ca-fixture.js';
import {
  caRequest,
  enrollIdentity,
  enrollRequest,
  expectError,
  intermediatePemOf,
  newCsr,
  output,
  readIdentityPem,
  rootPemOf,
  writeText,
  type EnrolledIdentity,
  type HttpResult,
  type IdentityFilesPem,
} from './helpers/ca-http.js';
import { pollUntil } from './helpers/poll.js';
import { run } from './helpers/run.js';
import { makeTempDir } from './helpers/tmp.js';

interface CurlResult {
  status: number;
  body: string;
  headers: Record<string, string>;
}

let curlCount = 0;
/** curl as an independent mTLS client; returns the HTTP status, body and response headers. */
async function curl(dir: string, args: string[]): Promise<CurlResult> {
  const n = ++curlCount;
  const out = join(dir, `curl-${n}.out`);
  const hdr = join(dir, `curl-${n}.hdr`);
  const r = await run('curl', ['-sS', '-o', out, '-D', hdr, '-w', '%{http_code}', ...args]);
  assert.equal(r.status, 0, `curl ${args.join(' ')}; ${output(r)}`);
  const headers: Record<string, string> = {};
  for (const line of readFileSync(hdr, 'utf8').split(/\r?\n/)) {
    const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
    if (m) headers[m[1]!.toLowerCase()] = m[2]!;
  }
  return { status: Number(r.stdout), body: readFileSync(out, 'utf8'), headers };
}

function curlIdentity(dir: string): string[] {
  return ['--cert', join(dir, 'cert.pem'), '--key', join(dir, 'key.pem'), '--cacert', join(dir, 'ca.pem')];
}

function admin(
  fixture: CaFixture,
  path: string,
  options: { method?: string; body?: object; identity?: IdentityFilesPem | { key: string; cert: string } | null } = {},
): Promise<HttpResult> {
  const identity = options.identity === undefined ? readIdentityPem(fixture.adminDir) : options.identity;
  return caRequest(fixture.url, path, {
    ca: rootPemOf(fixture),
    ...(options.method ? { method: options.method } : {}),
    ...(options.body ? { body: options.body } : {}),
    ...(identity ? { key: identity.key, cert: identity.cert } : {}),
  });
}

const asIdentity = (e: EnrolledIdentity) => ({ key: e.keyPem, cert: e.certPem });

async function auditByRequest(fixture: CaFixture, type: string, requestId: string) {
  return (await fixture.store.listAudit({ type })).filter((e) => e.requestId === requestId);
}

interface CrlView {
  text: string;
  number: bigint;
  entries: Map<string, { reason: string | null; revokedAt: Date }>;
}

/** `openssl crl -text` of a CRL file: CRL number and revoked entries (serial uppercase hex → reason). */
async function opensslCrl(path: string, inform: 'DER' | 'PEM'): Promise<CrlView> {
  const r = await run('openssl', ['crl', '-inform', inform, '-in', path, '-noout', '-text']);
  assert.equal(r.status, 0, `openssl crl -text; ${output(r)}`);
  const text = r.stdout;
  const number = /X509v3 CRL Number:\s*\n\s*(\d+)/.exec(text);
  assert.ok(number, `CRL number in\n${text}`);
  const entries = new Map<string, { reason: string | null; revokedAt: Date }>();
  const section = text.split(/^Revoked Certificates:$/m)[1]?.split(/^\s+Signature Algorithm:/m)[0] ?? '';
  for (const m of section.matchAll(
    /Serial Number: ([0-9A-F]+)\n\s+Revocation Date: (.+)\n(?:\s+CRL entry extensions:\n\s+X509v3 CRL Reason Code:\s*\n\s+(.+)\n)?/g,
  )) {
    entries.set(m[1]!, { revokedAt: new Date(m[2]!), reason: m[3]?.trim() ?? null });
  }
  assert.equal(entries.size, (section.match(/Serial Number:/g) ?? []).length, `every entry read:\n${section}`);
  return { text, number: BigInt(number[1]!), entries };
}

/** `openssl crl -verify`: OpenSSL 3.0 exits 0 even on failure, so success is status 0 and "verify OK". */
async function opensslCrlVerify(path: string, inform: 'DER' | 'PEM', caFile: string): Promise<boolean> {
  const r = await run('openssl', ['crl', '-inform', inform, '-in', path, '-noout', '-CAfile', caFile, '-verify']);
  const text = r.stdout + r.stderr;
  return r.status === 0 && /^verify OK$/m.test(text) && !/verify failure|error/i.test(text);
}

async function fetchCrl(
  fixture: CaFixture,
  path: 'crl' | 'crl/root' | 'crl?format=pem' | 'crl/root?format=pem',
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  const res = await caRequest(fixture.url, path, { ca: rootPemOf(fixture), headers });
  assert.equal(res.status, 200, `GET /${path}: ${res.text.slice(0, 300)}`);
  return res;
}

const serialKey = (serial: string) => serial.toUpperCase();

describe('ca-admin api', () => {
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

  async function assertAdminCallAudited(
    requestId: string,
    method: string,
    path: string,
    status: number,
  ): Promise<void> {
    const calls = await auditByRequest(fixture, 'ca.admin_call', requestId);
    assert.equal(calls.length, 1, `one ca.admin_call for ${method} ${path} (request ${requestId})`);
    assert.deepEqual(calls[0]!.details, { method, path, status });
    assert.equal(calls[0]!.actor, 'spiffe://test.internal/admin/admin');
  }

  test('admin-api-with-admin-identity-manages-tokens-certs-and-audit', async () => {
    const adminArgs = curlIdentity(fixture.adminDir);

    // curl creates a token.
    const created = await curl(tmp.dir, [
      ...adminArgs,
      '-H',
      'content-type: application/json',
      '--data-binary',
      JSON.stringify({ role: 'web', ttl: '1h', uses: 2, names: 'dev-*' }),
      `${fixture.url}/admin/tokens`,
    ]);
    assert.equal(created.status, 201, created.body);
    const token = JSON.parse(created.body) as {
      token: string;
      id: string;
      role: string;
      uses: number;
      maxUses: number;
      names: string | null;
      expiresAt: string;
      revokedAt: string | null;
      createdBy: string;
    };
    assert.match(
      token.token,
      new RegExp(`^GHTKN-1-${fixture.server.authority.rootFingerprint}-${token.id}-[a-z2-7]{32}$`),
    );
    assert.equal(token.role, 'web');
    assert.equal(token.maxUses, 2);
    assert.equal(token.uses, 0);
    assert.equal(token.names, 'dev-*');
    assert.equal(token.revokedAt, null);
    assert.equal(token.createdBy, 'spiffe://test.internal/admin/admin');
    const ttl = new Date(token.expiresAt).getTime() - Date.now();
    assert.ok(ttl > 55 * 60_000 && ttl <= 3_600_000, `ttl 1h, got ${ttl} ms`);
    await assertAdminCallAudited(created.headers['x-request-id']!, 'POST', '/admin/tokens', 201);
    const createdEvent = (await fixture.store.listAudit({ type: 'ca.token_created' })).filter(
      (e) => e.tokenId === token.id,
    );
    assert.equal(createdEvent.length, 1);
    assert.ok(
      !JSON.stringify(createdEvent).includes(token.token.slice(-32)),
      'the audit event does not hold the secret',
    );

    // The token works.
    const device = await newCsr({ commonName: 'dev-1' });
    const enrolled = await enrollRequest(fixture, { token: token.token, csr: device.csr });
    assert.equal(enrolled.status, 201, enrolled.text);
    const deviceSerial = enrolled.json.serial as string;

    // Node lists tokens: metadata only, never the secret.
    const list = await admin(fixture, 'admin/tokens');
    assert.equal(list.status, 200, list.text);
    const listed = (list.json.tokens as Array<Record<string, unknown>>).find((x) => x.id === token.id);
    assert.ok(listed, 'the token is listed');
    assert.equal(listed.uses, 1);
    assert.ok(!list.text.includes(token.token.slice(-32)), 'token list holds no secret');
    assert.ok(!/secret/i.test(list.text), 'token list holds no secret hash field');
    await assertAdminCallAudited(list.headers['x-request-id'] as string, 'GET', '/admin/tokens', 200);

    // Revoke the token: it no longer enrolls.
    const revokedToken = await admin(fixture, `admin/tokens/${token.id}/revoke`, { method: 'POST', body: {} });
    assert.equal(revokedToken.status, 200, revokedToken.text);
    assert.ok(revokedToken.json.revokedAt, 'revokedAt set');
    expectError(
      await enrollRequest(fixture, { token: token.token, csr: (await newCsr({ commonName: 'dev-2' })).csr }),
      401,
      'GH_TOKEN_REVOKED',
    );
    expectError(
      await admin(fixture, 'admin/tokens/0000000000000000/revoke', { method: 'POST', body: {} }),
      404,
      'GH_TOKEN_NOT_FOUND',
    );

    // curl lists certificates.
    const certs = await curl(tmp.dir, [...adminArgs, `${fixture.url}/admin/certs`]);
    assert.equal(certs.status, 200, certs.body);
    const certList = (JSON.parse(certs.body) as { certificates: Array<Record<string, unknown>> }).certificates;
    const listedDevice = certList.find((c) => c.serial === deviceSerial);
    assert.ok(listedDevice, 'the enrolled device is listed');
    assert.equal(listedDevice.state, 'active');
    assert.equal(listedDevice.name, 'dev-1');
    assert.equal(listedDevice.tokenId, token.id);
    assert.ok(
      certList.some((c) => c.role === 'admin' && c.name === 'admin'),
      'the admin certificate is listed',
    );
    await assertAdminCallAudited(certs.headers['x-request-id']!, 'GET', '/admin/certs', 200);

    // Show and revoke one certificate.
    const shown = await admin(fixture, `admin/certs/${deviceSerial}`);
    assert.equal(shown.status, 200, shown.text);
    assert.equal(shown.json.certificate, enrolled.json.certificate);
    assert.equal(shown.json.fingerprint, enrolled.json.fingerprint);
    expectError(await admin(fixture, 'admin/certs/abcdef0123'), 404, 'GH_CERT_NOT_FOUND');
    const revoked = await admin(fixture, `admin/certs/${deviceSerial}/revoke`, {
      method: 'POST',
      body: { reason: 'keyCompromise' },
    });
    assert.equal(revoked.status, 200, revoked.text);
    assert.equal(revoked.json.state, 'revoked');
    assert.equal(revoked.json.revocationReason, 'keyCompromise');
    await assertAdminCallAudited(
      revoked.headers['x-request-id'] as string,
      'POST',
      `/admin/certs/${deviceSerial}/revoke`,
      200,
    );
    expectError(
      await admin(fixture, `admin/certs/${deviceSerial}/revoke`, { method: 'POST', body: { reason: 'notAReason' } }),
      400,
      'GH_USAGE',
    );

    // Bad requests are refused with their codes and still audited as calls.
    const badRole = await admin(fixture, 'admin/tokens', { method: 'POST', body: { role: 'nosuchrole' } });
    expectError(badRole, 400, 'GH_ROLE_UNKNOWN');
    await assertAdminCallAudited(badRole.headers['x-request-id'] as string, 'POST', '/admin/tokens', 400);
    expectError(
      await admin(fixture, 'admin/tokens', { method: 'POST', body: { role: 'web', ttl: 'forever' } }),
      400,
      'GH_USAGE',
    );
    expectError(await admin(fixture, 'admin/nothing'), 404, 'GH_NOT_FOUND');

    // The audit endpoint.
    const audit = await admin(fixture, `admin/audit?type=ca.cert_revoked&serial=${deviceSerial}`);
    assert.equal(audit.status, 200, audit.text);
    const events = audit.json.events as Array<{
      type: string;
      serial: string;
      actor: string;
      details: Record<string, unknown>;
      seq: number;
    }>;
    assert.equal(events.length, 1, audit.text);
    assert.equal(events[0]!.serial, deviceSerial);
    assert.equal(events[0]!.actor, 'spiffe://test.internal/admin/admin');
    assert.equal(events[0]!.details.reason, 'keyCompromise');
    const limited = await admin(fixture, 'admin/audit?limit=2');
    assert.equal((limited.json.events as unknown[]).length, 2);
    const afterSeq = await admin(fixture, `admin/audit?after=${events[0]!.seq}&type=ca.admin_call`);
    assert.ok(
      (afterSeq.json.events as Array<{ seq: number; type: string }>).every(
        (e) => e.seq > events[0]!.seq && e.type === 'ca.admin_call',
      ),
    );
    const byActor = await admin(
      fixture,
      `admin/audit?actor=${encodeURIComponent('spiffe://test.internal/admin/admin')}&type=ca.token_created`,
    );
    assert.ok((byActor.json.events as Array<{ tokenId: string }>).some((e) => e.tokenId === token.id));
  });

  test('admin-api-refusals-403-401-each-audited-as-admin-refused', async () => {
    const web = await enrollIdentity(fixture, { role: 'web', name: 'web-nosy' });
    const forbidden = await admin(fixture, 'admin/certs', { identity: asIdentity(web) });
    const e1 = expectError(forbidden, 403, 'GH_AUTH_FORBIDDEN');
    assert.match(e1.message, /admin/);

    const anonymous = await admin(fixture, 'admin/tokens', { method: 'POST', body: { role: 'web' }, identity: null });
    const e2 = expectError(anonymous, 401, 'GH_AUTH_REQUIRED');

    // curl without a client certificate, as an independent peer.
    const curlAnon = await curl(tmp.dir, ['--cacert', join(fixture.adminDir, 'ca.pem'), `${fixture.url}/admin/certs`]);
    assert.equal(curlAnon.status, 401, curlAnon.body);
    assert.equal(JSON.parse(curlAnon.body).error.code, 'GH_AUTH_REQUIRED');

    // A second admin, revoked by the first.
    const admin2 = await enrollIdentity(fixture, { role: 'admin', name: 'admin-2' });
    const works = await admin(fixture, 'admin/tokens', { identity: asIdentity(admin2) });
    assert.equal(works.status, 200, 'a fresh admin identity works');
    const revoke = await admin(fixture, `admin/certs/${admin2.serial}/revoke`, {
      method: 'POST',
      body: { reason: 'cessationOfOperation' },
    });
    assert.equal(revoke.status, 200, revoke.text);
    const revokedCall = await admin(fixture, 'admin/tokens', {
      method: 'POST',
      body: { role: 'admin' },
      identity: asIdentity(admin2),
    });
    const e3 = expectError(revokedCall, 403, 'GH_CERT_REVOKED');

    const tokensBefore = (await fixture.store.listTokens()).length;
    for (const [err, code, actor] of [
      [e1, 'GH_AUTH_FORBIDDEN', web.spiffeId],
      [e2, 'GH_AUTH_REQUIRED', 'anonymous'],
      [e3, 'GH_CERT_REVOKED', 'anonymous'],
    ] as const) {
      const refused = await auditByRequest(fixture, 'ca.admin_refused', err.requestId);
      assert.equal(refused.length, 1, `one ca.admin_refused for ${code}`);
      assert.equal(refused[0]!.details.code, code);
      assert.equal(refused[0]!.actor, actor);
      assert.equal(
        (await auditByRequest(fixture, 'ca.admin_call', err.requestId)).length,
        0,
        `a refused call is not an admin call (${code})`,
      );
    }
    assert.equal((await auditByRequest(fixture, 'ca.admin_refused', curlAnon.headers['x-request-id']!)).length, 1);
    assert.equal((await fixture.store.listTokens()).length, tokensBefore, 'no token was created by a refused call');
  });

  test('admin-cert-list-filters-expiring-within-and-state', async () => {
    const a = await enrollIdentity(fixture, { role: 'web', name: 'filter-a' });
    const b = await enrollIdentity(fixture, { role: 'gateway', name: 'filter-b', dns: ['localhost'] });
    const r = await admin(fixture, `admin/certs/${a.serial}/revoke`, {
      method: 'POST',
      body: { reason: 'superseded' },
    });
    assert.equal(r.status, 200);
    const now = new Date();
    const all = await fixture.store.listCerts();
    const active = all
      .filter((c) => c.revokedAt === null && c.notAfter > now)
      .map((c) => c.serial)
      .sort();
    const revoked = all
      .filter((c) => c.revokedAt !== null)
      .map((c) => c.serial)
      .sort();
    assert.ok(revoked.includes(a.serial));

    const expiring = await admin(fixture, 'admin/certs?expiringWithin=48h');
    assert.equal(expiring.status, 200, expiring.text);
    const expiringSerials = (expiring.json.certificates as Array<{ serial: string; state: string }>)
      .map((c) => c.serial)
      .sort();
    assert.deepEqual(
      expiringSerials,
      active,
      'expiringWithin=48h returns exactly the active certificates (all live 24h)',
    );
    assert.ok(expiringSerials.includes(b.serial) && !expiringSerials.includes(a.serial));
    assert.ok((expiring.json.certificates as Array<{ state: string }>).every((c) => c.state === 'active'));

    const soon = await admin(fixture, 'admin/certs?expiringWithin=1h');
    assert.deepEqual(soon.json.certificates, [], 'nothing expires within the hour');

    const revokedList = await admin(fixture, 'admin/certs?state=revoked');
    assert.deepEqual((revokedList.json.certificates as Array<{ serial: string }>).map((c) => c.serial).sort(), revoked);
    assert.ok(
      (revokedList.json.certificates as Array<{ state: string; revocationReason: string }>).every(
        (c) => c.state === 'revoked',
      ),
    );

    const gateways = await admin(fixture, 'admin/certs?role=gateway&state=active');
    assert.ok((gateways.json.certificates as Array<{ role: string }>).every((c) => c.role === 'gateway'));
    assert.ok((gateways.json.certificates as Array<{ serial: string }>).some((c) => c.serial === b.serial));

    expectError(await admin(fixture, 'admin/certs?state=bogus'), 400, 'GH_USAGE');
    expectError(await admin(fixture, 'admin/certs?expiringWithin=soon'), 400, 'GH_USAGE');
  });
});

describe('ca-admin revocation and CRLs', () => {
  let fixture: CaFixture;
  let tmp: ReturnType<typeof makeTempDir>;
  let rootPath: string;
  let intermediatePath: string;
  before(async () => {
    fixture = await startCaFixture();
    tmp = makeTempDir();
    rootPath = writeText(tmp.dir, 'root.pem', rootPemOf(fixture));
    intermediatePath = writeText(tmp.dir, 'intermediate.pem', intermediatePemOf(fixture));
  });
  after(async () => {
    await fixture?.close();
    tmp?.cleanup();
  });

  let n = 0;
  const saveCrl = (res: HttpResult, ext: 'der' | 'pem') => writeText(tmp.dir, `crl-${++n}.${ext}`, res.body);

  test('revoked-device-listed-in-crl-verified-by-openssl', async () => {
    const a = await enrollIdentity(fixture, { role: 'web', name: 'crl-a' });
    const b = await enrollIdentity(fixture, { role: 'web', name: 'crl-b' });

    const initial = await fetchCrl(fixture, 'crl');
    assert.equal(initial.headers['content-type'], 'application/pkix-crl');
    const c0 = await opensslCrl(saveCrl(initial, 'der'), 'DER');
    assert.ok(!c0.entries.has(serialKey(a.serial)));

    const revokeA = await admin(fixture, `admin/certs/${a.serial}/revoke`, {
      method: 'POST',
      body: { reason: 'keyCompromise' },
    });
    assert.equal(revokeA.status, 200, revokeA.text);
    const afterA = await fetchCrl(fixture, 'crl');
    const derPath = saveCrl(afterA, 'der');
    const c1 = await opensslCrl(derPath, 'DER');
    assert.ok(
      c1.text.includes(`Serial Number: ${serialKey(a.serial)}`),
      `openssl lists ${serialKey(a.serial)}:\n${c1.text}`,
    );
    assert.equal(c1.entries.get(serialKey(a.serial))?.reason, 'Key Compromise');
    assert.ok(!c1.entries.has(serialKey(b.serial)));
    assert.ok(c1.number > c0.number, `CRL number increases: ${c0.number} → ${c1.number}`);
    assert.equal(
      await opensslCrlVerify(derPath, 'DER', intermediatePath),
      true,
      '/crl verifies against the intermediate',
    );
    assert.equal(await opensslCrlVerify(derPath, 'DER', rootPath), false, 'control: /crl is not signed by the root');

    const rootCrl = await fetchCrl(fixture, 'crl/root');
    const rootCrlPath = saveCrl(rootCrl, 'der');
    assert.equal(await opensslCrlVerify(rootCrlPath, 'DER', rootPath), true, '/crl/root verifies against the root');
    assert.equal((await opensslCrl(rootCrlPath, 'DER')).entries.size, 0, 'the root CRL lists nothing');

    // PEM by query and by Accept header.
    const pem = await fetchCrl(fixture, 'crl?format=pem');
    assert.equal(pem.headers['content-type'], 'application/x-pem-file');
    assert.match(pem.text, /^-----BEGIN X509 CRL-----\n/);
    const pemPath = saveCrl(pem, 'pem');
    assert.ok((await opensslCrl(pemPath, 'PEM')).entries.has(serialKey(a.serial)));
    assert.equal(await opensslCrlVerify(pemPath, 'PEM', intermediatePath), true);
    const byAccept = await fetchCrl(fixture, 'crl', { accept: 'application/x-pem-file' });
    assert.match(byAccept.text, /^-----BEGIN X509 CRL-----\n/);
    const rootPem = await fetchCrl(fixture, 'crl/root?format=pem');
    assert.match(rootPem.text, /^-----BEGIN X509 CRL-----\n/);

    // A second revocation: a higher CRL number, both listed.
    const revokeB = await admin(fixture, `admin/certs/${b.serial}/revoke`, {
      method: 'POST',
      body: { reason: 'superseded' },
    });
    assert.equal(revokeB.status, 200, revokeB.text);
    const c2 = await opensslCrl(saveCrl(await fetchCrl(fixture, 'crl'), 'der'), 'DER');
    assert.ok(c2.number > c1.number, `CRL number increases: ${c1.number} → ${c2.number}`);
    assert.equal(c2.entries.get(serialKey(a.serial))?.reason, 'Key Compromise');
    assert.equal(c2.entries.get(serialKey(b.serial))?.reason, 'Superseded');

    // Revoking again keeps the first reason and time.
    const again = await admin(fixture, `admin/certs/${a.serial}/revoke`, {
      method: 'POST',
      body: { reason: 'superseded' },
    });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.revocationReason, 'keyCompromise');
    assert.equal(again.json.revokedAt, revokeA.json.revokedAt);
    const stored = await fixture.store.getCert(a.serial);
    assert.equal(stored!.revocationReason, 'keyCompromise');
    assert.equal(stored!.revokedAt!.toISOString(), revokeA.json.revokedAt);
    const c3 = await opensslCrl(saveCrl(await fetchCrl(fixture, 'crl'), 'der'), 'DER');
    assert.equal(c3.entries.get(serialKey(a.serial))?.reason, 'Key Compromise');
    assert.equal(
      c3.entries.get(serialKey(a.serial))?.revokedAt.getTime(),
      c2.entries.get(serialKey(a.serial))?.revokedAt.getTime(),
    );
    assert.equal(
      (await fixture.store.listAudit({ type: 'ca.cert_revoked', serial: a.serial })).length,
      1,
      'one revocation event',
    );
  });

  test('node-tls-with-both-crls-accepts-fresh-device-and-refuses-revoked', async (t) => {
    const gw = await enrollIdentity(fixture, {
      role: 'gateway',
      name: 'crl-gw',
      dns: ['localhost'],
      ip: ['127.0.0.1'],
    });
    const fresh = await enrollIdentity(fixture, { role: 'web', name: 'tls-fresh' });
    const gone = await enrollIdentity(fixture, { role: 'web', name: 'tls-revoked' });
    const r = await admin(fixture, `admin/certs/${gone.serial}/revoke`, {
      method: 'POST',
      body: { reason: 'keyCompromise' },
    });
    assert.equal(r.status, 200, r.text);
    const intermediateCrl = (await fetchCrl(fixture, 'crl?format=pem')).text;
    const rootCrl = (await fetchCrl(fixture, 'crl/root?format=pem')).text;

    /** A relying party: Node https with both CAs as anchors and both CRLs (an array). */
    const startRelyingParty = async (rejectUnauthorized: boolean) => {
      const errors: Error[] = [];
      const server: Server = createServer(
        {
          key: gw.keyPem,
          cert: gw.certPem,
          ca: [rootPemOf(fixture), intermediatePemOf(fixture)],
          crl: [intermediateCrl, rootCrl],
          requestCert: true,
          rejectUnauthorized,
        },
        (req, res) => {
          const socket = req.socket as TLSSocket;
          const cn = socket
            .getPeerX509Certificate()
            ?.subject.split('\n')
            .find((l) => l.startsWith('CN='));
          res.end(`authorized=${socket.authorized} error=${String(socket.authorizationError ?? '')} ${cn}`);
        },
      );
      server.on('tlsClientError', (err) => errors.push(err));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      t.after(
        () =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      );
      return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, errors };
    };

    // Enforcing: the fresh device is served, the revoked one never gets a response.
    const strict = await startRelyingParty(true);
    const ok = await caRequest(strict.url, '/', { ca: rootPemOf(fixture), key: fresh.keyPem, cert: fresh.certPem });
    assert.equal(ok.status, 200);
    assert.equal(ok.text, 'authorized=true error= CN=tls-fresh', 'both CRLs present: the fresh device verifies');
    assert.equal(strict.errors.length, 0, `no TLS error for the fresh device: ${strict.errors.map(String).join('; ')}`);
    await assert.rejects(
      caRequest(strict.url, '/', { ca: rootPemOf(fixture), key: gone.keyPem, cert: gone.certPem, timeoutMs: 10_000 }),
      (err: Error) =>
        /ECONNRESET|socket hang up|disconnected|alert|revoked/i.test(
          `${(err as NodeJS.ErrnoException).code} ${err.message}`,
        ),
      'the revoked device fails the handshake',
    );
    await pollUntil(
      'server-side TLS error for the revoked client',
      async () => (strict.errors.length ? true : undefined),
      5000,
      20,
    );

    // Reporting: the same configuration says why: CERT_REVOKED (not a missing CRL or another error).
    const lenient = await startRelyingParty(false);
    const revoked = await caRequest(lenient.url, '/', { ca: rootPemOf(fixture), key: gone.keyPem, cert: gone.certPem });
    assert.equal(revoked.text, 'authorized=false error=CERT_REVOKED CN=tls-revoked');
    const freshAgain = await caRequest(lenient.url, '/', {
      ca: rootPemOf(fixture),
      key: fresh.keyPem,
      cert: fresh.certPem,
    });
    assert.equal(freshAgain.text, 'authorized=true error= CN=tls-fresh');
  });

  test('crl-regenerated-after-revocation-by-another-process', async (t) => {
    const local = await startCaFixture({ crlCheckIntervalMs: 200 });
    t.after(() => local.close());
    const device = await enrollIdentity(local, { role: 'web', name: 'other-process' });
    const before = await fetchCrl(local, 'crl');
    const beforeView = await opensslCrl(saveCrl(before, 'der'), 'DER');
    assert.ok(!beforeView.entries.has(serialKey(device.serial)));

    // Another process: its own connection to the same database file.
    const store2 = openSqliteStore(join(local.caDir, CA_FILES.database));
    try {
      const at = new Date();
      const revoked = await store2.revokeCert(device.serial, 'keyCompromise', at, {
        time: at,
        type: 'ca.cert_revoked',
        actor: 'local:other-process',
        serial: device.serial,
        details: { reason: 'keyCompromise' },
      });
      assert.ok(revoked?.revokedAt, 'revoked through the second connection');
    } finally {
      await store2.close();
    }

    const view = await pollUntil(
      'GET /crl lists the serial revoked by another process',
      async () => {
        const res = await fetchCrl(local, 'crl');
        const parsed = await opensslCrl(saveCrl(res, 'der'), 'DER');
        return parsed.entries.has(serialKey(device.serial)) ? parsed : undefined;
      },
      10_000,
      100,
    );
    assert.equal(view.entries.get(serialKey(device.serial))?.reason, 'Key Compromise');
    assert.ok(view.number > beforeView.number);
    const intermediatePath2 = writeText(tmp.dir, 'local-intermediate.pem', intermediatePemOf(local));
    const latest = saveCrl(await fetchCrl(local, 'crl'), 'der');
    assert.equal(await opensslCrlVerify(latest, 'DER', intermediatePath2), true);
  });
});

// The CRL assertions above compare store serials (lowercase hex) with openssl's uppercase output.
test('store-serials-are-lowercase-hex-as-openssl-prints-uppercase', async (t) => {
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const d = await enrollIdentity(fixture, { role: 'web', name: 'serial-format' });
  assert.match(d.serial, /^[0-9a-f]+$/);
  const der = pki.decodePem(d.leafPem, 'CERTIFICATE')[0]!;
  assert.equal(pki.parseCertificate(der).serial, d.serial);
  const tmp = makeTempDir();
  t.after(() => tmp.cleanup());
  const r = await run('openssl', ['x509', '-in', writeText(tmp.dir, 'c.pem', d.leafPem), '-noout', '-serial']);
  assert.equal(r.stdout.trim(), `serial=${d.serial.toUpperCase()}`);
});
