/**
 * Identities that cannot be forked or taken over (issue 11), over real HTTPS against a running
 * CA with the real agent code: only the newest certificate of a lineage renews; an older one
 * presented with another key revokes the whole lineage (RFC 9700 §4.14 reuse detection); a lost
 * answer retried with the same key gets the same certificate; a name stays reserved after
 * revocation and expiry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as pki from '../src/pki/index.js';
import { renewOnce, PENDING_KEY_FILE } from '../src/agent/renew.js';
import { loadIdentity } from '../src/agent/agent-state.js';
import { isGatehouseError } from '../src/errors/errors.js';
import { startCaFixture, enrollAgent as agentEnroll, type CaFixture } from './helpers/ca-fixture.js';
import { caRequest, enrollRequest, expectError, newCsr, rootPemOf, type HttpResult } from './helpers/ca-http.js';
import { pollUntil } from './helpers/poll.js';
import { gatehouse } from './helpers/cli.js';
import { run } from './helpers/run.js';

function renewRequest(
  fixture: CaFixture,
  identity: { keyPem: string; certPem: string },
  csr: string,
): Promise<HttpResult> {
  return caRequest(fixture.url, 'renew', {
    method: 'POST',
    ca: rootPemOf(fixture),
    body: { csr },
    key: identity.keyPem,
    cert: identity.certPem,
  });
}

function identityOf(dir: string): { keyPem: string; certPem: string } {
  return { keyPem: readFileSync(join(dir, 'key.pem'), 'utf8'), certPem: readFileSync(join(dir, 'cert.pem'), 'utf8') };
}

/** The serials (and reasons) `openssl crl` reads from the CA's published CRL. */
async function opensslCrlSerials(fixture: CaFixture): Promise<Map<string, string>> {
  const res = await caRequest(fixture.url, 'crl', { ca: rootPemOf(fixture) });
  assert.equal(res.status, 200);
  const path = join(fixture.root, `crl-${Date.now()}.der`);
  writeFileSync(path, res.body);
  const out = await run('openssl', ['crl', '-inform', 'DER', '-in', path, '-noout', '-text']);
  assert.equal(out.status, 0, out.stderr);
  const serials = new Map<string, string>();
  for (const m of out.stdout.matchAll(
    /Serial Number: ([0-9A-F]+)\s+Revocation Date: [^\n]+\n(?:\s+CRL entry extensions:\s+X509v3 CRL Reason Code:\s+([^\n]+))?/g,
  )) {
    serials.set(m[1]!.toLowerCase().replace(/^0+(?=.)/, ''), (m[2] ?? '').trim());
  }
  return serials;
}

test('lineage-a-copied-identity-renews-once-then-the-next-renewal-of-either-revokes-every-certificate', async (t) => {
  const fixture = await startCaFixture({ crlCheckIntervalMs: 100, metricsListen: '127.0.0.1:0' });
  t.after(() => fixture.close());
  const original = await agentEnroll(fixture, 'web', 'laptop-7');
  const copy = join(fixture.root, 'stolen');
  cpSync(original.dir, copy, { recursive: true });

  // The copy renews first, with its own new key: that is allowed (the CA cannot tell yet).
  const stolen = await renewOnce({ dir: copy });
  assert.equal(stolen.current.spiffeId, 'spiffe://test.internal/web/laptop-7');

  // The real device renews its (now superseded) certificate with another key: a fork.
  await assert.rejects(
    renewOnce({ dir: original.dir }),
    (err) =>
      isGatehouseError(err, 'GH_AGENT_MUST_REENROLL') &&
      /already renewed .* a copy of spiffe:\/\/test\.internal\/web\/laptop-7 exists/.test(err.message),
  );
  // And the copy's renewal is revoked with it: its next renewal is refused too.
  await assert.rejects(
    renewOnce({ dir: copy }),
    (err) => isGatehouseError(err, 'GH_AGENT_MUST_REENROLL') && /revoked/.test(err.message),
  );

  const lineage = await fixture.store.listCerts({ lineage: original.identity.serial });
  assert.deepEqual(
    lineage.map((c) => c.serial).sort(),
    [original.identity.serial, stolen.current.serial].sort(),
    "the lineage is the enrollment and the copy's renewal",
  );
  for (const c of lineage) assert.equal(c.revocationReason, 'keyCompromise', c.serial);

  // Every serial of the lineage is in the CRL, as openssl reads it.
  const listed = await pollUntil('the CRL lists the lineage', async () => {
    const serials = await opensslCrlSerials(fixture);
    return lineage.every((c) => serials.has(c.serial)) ? serials : undefined;
  });
  for (const c of lineage) assert.equal(listed.get(c.serial), 'Key Compromise');

  const detected = await fixture.store.listAudit({ type: 'ca.cert_reuse_detected' });
  assert.equal(detected.length, 1);
  assert.deepEqual(detected[0]!.details, {
    spiffeId: 'spiffe://test.internal/web/laptop-7',
    lineage: original.identity.serial,
    presentedSerial: original.identity.serial,
    renewedBy: stolen.current.serial,
  });
  const logged = fixture.logLines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l.msg === 'ca.cert_reuse_detected');
  assert.ok(logged, 'one clear log line');
  assert.equal(logged.level, 'error');
  assert.equal(logged.spiffeId, 'spiffe://test.internal/web/laptop-7');
  assert.equal(logged.presentedSerial, original.identity.serial);
  assert.equal(logged.renewedBy, stolen.current.serial);
  const metrics = await fixture.server.metrics!.registry.getSingleMetricAsString(
    'gatehouse_ca_renewal_reuse_detected_total',
  );
  assert.match(metrics, /gatehouse_ca_renewal_reuse_detected_total\{role="web"\} 1/);
});

test('lineage-a-lost-answer-retried-with-the-same-key-gets-the-same-certificate-and-another-key-is-a-fork', async (t) => {
  const fixture = await startCaFixture({ crlCheckIntervalMs: 100 });
  t.after(() => fixture.close());
  const { dir, identity } = await agentEnroll(fixture, 'web', 'retry-1');
  const current = identityOf(dir);
  const next = await newCsr({ commonName: 'retry-1' });

  const first = await renewRequest(fixture, current, next.csr);
  assert.equal(first.status, 201, first.text);
  // The answer was lost: the device asks again with the same certificate and the same CSR key.
  const again = await renewRequest(fixture, current, next.csr);
  assert.equal(again.status, 201, again.text);
  assert.equal(again.json.serial, first.json.serial, 'the same certificate, not a second one');
  assert.equal(again.json.certificate, first.json.certificate);
  assert.equal((await fixture.store.listCerts({ lineage: identity.serial })).length, 2, 'nothing new was issued');
  assert.equal((await fixture.store.listAudit({ type: 'ca.cert_renewal_replayed' })).length, 1);

  // The renewed certificate renews normally.
  const renewed = { keyPem: next.keyPem, certPem: first.json.chain as string };
  const third = await newCsr({ commonName: 'retry-1' });
  const onward = await renewRequest(fixture, renewed, third.csr);
  assert.equal(onward.status, 201, onward.text);

  // The first certificate with yet another key: reuse, and the whole lineage is revoked.
  const fork = await newCsr({ commonName: 'retry-1' });
  expectError(await renewRequest(fixture, current, fork.csr), 403, 'GH_CERT_REUSED');
  const lineage = await fixture.store.listCerts({ lineage: identity.serial });
  assert.equal(lineage.length, 3);
  assert.ok(lineage.every((c) => c.revocationReason === 'keyCompromise'));
  expectError(
    await renewRequest(
      fixture,
      { keyPem: third.keyPem, certPem: onward.json.chain as string },
      (await newCsr({ commonName: 'retry-1' })).csr,
    ),
    403,
    'GH_CERT_REVOKED',
  );
});

test('lineage-a-same-key-retry-after-the-grace-window-is-refused-without-revoking', async (t) => {
  const fixture = await startCaFixture({ configEdit: (yaml) => `${yaml}\nrenewal:\n  retryGrace: 0s\n` });
  t.after(() => fixture.close());
  const { dir, identity } = await agentEnroll(fixture, 'web', 'late-1');
  const current = identityOf(dir);
  const next = await newCsr({ commonName: 'late-1' });
  assert.equal((await renewRequest(fixture, current, next.csr)).status, 201);
  await pollUntil('a millisecond passes', async () =>
    Date.now() > (await fixture.store.getCert(identity.serial))!.supersededAt!.getTime() ? true : undefined,
  );
  expectError(await renewRequest(fixture, current, next.csr), 409, 'GH_CERT_SUPERSEDED');
  assert.ok(
    (await fixture.store.listCerts({ lineage: identity.serial })).every((c) => c.revokedAt === null),
    'the same key is the same machine: nothing is revoked',
  );
});

test('lineage-the-agent-keeps-its-renewal-key-so-a-lost-answer-is-fetched-again-not-forked', async (t) => {
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const { dir } = await agentEnroll(fixture, 'web', 'agent-retry');
  // A renewal whose answer never arrived: the agent had written its pending key, the CA issued.
  const pending = pki.generatePrivateKey('p256');
  writeFileSync(join(dir, PENDING_KEY_FILE), pki.privateKeyToPem(pending), { mode: 0o600 });
  const csr = await pki.buildCsrPem(pending, { commonName: 'agent-retry' });
  const lost = await renewRequest(fixture, identityOf(dir), csr);
  assert.equal(lost.status, 201, lost.text);

  const { current } = await renewOnce({ dir });
  assert.equal(current.serial, lost.json.serial, 'the agent fetched the renewal it had lost');
  assert.ok(!existsSync(join(dir, PENDING_KEY_FILE)), 'the pending key is gone once the renewal is on disk');
  assert.ok(pki.spkiDer(loadIdentity(dir).key).equals(pki.spkiDer(pending)));
  const next = await renewOnce({ dir });
  assert.notEqual(next.current.serial, current.serial, 'and renews onward normally');
  assert.ok((await fixture.store.listCerts({ name: 'agent-retry' })).every((c) => c.revokedAt === null));
});

test('lineage-the-pending-renewal-key-is-0600-while-a-renewal-is-in-flight', async (t) => {
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const { dir } = await agentEnroll(fixture, 'web', 'pending-mode');
  await fixture.server.close();
  await assert.rejects(renewOnce({ dir }), (err) => isGatehouseError(err, 'GH_CA_UNREACHABLE'));
  assert.equal(
    statSync(join(dir, PENDING_KEY_FILE)).mode & 0o777,
    0o600,
    'kept for the retry, readable by the owner only',
  );
});

test('names-a-revoked-and-an-expired-name-are-refused-to-an-unnamed-token-and-given-to-a-named-one', async (t) => {
  let offsetMs = 0;
  const fixture = await startCaFixture({ now: () => new Date(Date.now() + offsetMs) });
  t.after(() => fixture.close());
  const { authority } = fixture.server;
  const enrollWith = async (tokenRequest: { role: string; name?: string; namePattern?: string }, name: string) => {
    const { token } = await authority.createToken(tokenRequest, { actor: 'test' });
    return enrollRequest(fixture, { token, csr: (await newCsr({ commonName: name })).csr });
  };

  const revoked = await enrollWith({ role: 'web' }, 'desk-1');
  assert.equal(revoked.status, 201);
  await authority.revokeCertificate(revoked.json.serial as string, 'cessationOfOperation', { actor: 'test' });
  const expired = await enrollWith({ role: 'web' }, 'desk-2');
  assert.equal(expired.status, 201);
  offsetMs = 25 * 3_600_000; // past the 24 h lifetime of role web

  for (const [name, serial] of [
    ['desk-1', revoked.json.serial],
    ['desk-2', expired.json.serial],
  ] as const) {
    const refused = expectError(await enrollWith({ role: 'web' }, name), 409, 'GH_NAME_TAKEN', name);
    assert.match(
      refused.message,
      new RegExp(
        `spiffe://test\\.internal/web/${name} stays reserved .*${serial}.*token create --role web --name ${name}`,
      ),
    );
    expectError(
      await enrollWith({ role: 'web', namePattern: 'desk-*' }, name),
      409,
      'GH_NAME_TAKEN',
      `${name} with a pattern token`,
    );
    const replaced = await enrollWith({ role: 'web', name }, name);
    assert.equal(replaced.status, 201, replaced.text);
    assert.equal(replaced.json.spiffeId, `spiffe://test.internal/web/${name}`);
    const audit = (await fixture.store.listAudit({ type: 'ca.name_replaced' })).filter(
      (e) => e.details.spiffeId === replaced.json.spiffeId,
    );
    assert.equal(audit.length, 1, 'the re-enrollment is audited as a replacement');
    assert.equal(audit[0]!.details.previousSerial, serial);
  }
});

test('names-cli-lists-reserved-names-and-releases-one-refusing-an-active-name', async (t) => {
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const { authority } = fixture.server;
  const a = await agentEnroll(fixture, 'web', 'kiosk-1');
  await agentEnroll(fixture, 'web', 'kiosk-2');
  await authority.revokeCertificate(a.identity.serial, 'cessationOfOperation', { actor: 'test' });
  const remote = ['--identity', fixture.adminDir, '--ca', fixture.url];

  const list = await gatehouse(['name', 'list', '--json', ...remote]);
  assert.equal(list.status, 0, list.stderr);
  const names = JSON.parse(list.stdout) as Array<{ spiffeId: string; state: string; newestSerial: string }>;
  assert.deepEqual(
    names.filter((n) => n.spiffeId.includes('kiosk')).map((n) => [n.spiffeId, n.state]),
    [
      ['spiffe://test.internal/web/kiosk-1', 'revoked'],
      ['spiffe://test.internal/web/kiosk-2', 'active'],
    ],
  );
  const certList = await gatehouse(['cert', 'list', '--dir', fixture.caDir]);
  assert.equal(certList.status, 0, certList.stderr);
  assert.match(
    certList.stdout,
    /reserved names with no active certificate[\s\S]*spiffe:\/\/test\.internal\/web\/kiosk-1\s+revoked/,
  );
  assert.doesNotMatch(certList.stdout.split('reserved names')[1]!, /kiosk-2/);

  const active = await gatehouse(['name', 'release', 'web/kiosk-2', ...remote]);
  assert.equal(active.status, 73, active.stderr);
  assert.match(active.stderr, /held by an active certificate .*revoke it first/);
  const unknown = await gatehouse(['name', 'release', 'spiffe://test.internal/web/nobody', '--dir', fixture.caDir]);
  assert.equal(unknown.status, 66, unknown.stderr);
  const bad = await gatehouse(['name', 'release', 'kiosk-1', '--dir', fixture.caDir]);
  assert.equal(bad.status, 64, bad.stderr);

  const released = await gatehouse(['name', 'release', 'spiffe://test.internal/web/kiosk-1', ...remote]);
  assert.equal(released.status, 0, released.stderr);
  assert.match(released.stdout, /released spiffe:\/\/test\.internal\/web\/kiosk-1/);
  const events = await fixture.store.listAudit({ type: 'ca.name_released' });
  assert.equal(events.length, 1);
  assert.equal(events[0]!.actor, 'spiffe://test.internal/admin/admin');
  // Freed: an unnamed token enrolls it again.
  const { token } = await authority.createToken({ role: 'web' }, { actor: 'test' });
  const again = await enrollRequest(fixture, { token, csr: (await newCsr({ commonName: 'kiosk-1' })).csr });
  assert.equal(again.status, 201, again.text);
});

test('names-a-renewal-of-a-lineage-whose-name-was-given-to-another-enrollment-is-refused', async (t) => {
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const { authority } = fixture.server;
  const old = await agentEnroll(fixture, 'web', 'rebuilt-1');
  const { token } = await authority.createToken({ role: 'web', name: 'rebuilt-1' }, { actor: 'test' });
  assert.equal(
    (await enrollRequest(fixture, { token, csr: (await newCsr({ commonName: 'rebuilt-1' })).csr })).status,
    201,
  );
  const refused = expectError(
    await renewRequest(fixture, identityOf(old.dir), (await newCsr({ commonName: 'rebuilt-1' })).csr),
    409,
    'GH_NAME_TAKEN',
  );
  assert.match(refused.message, /was given to another enrollment/);
});
