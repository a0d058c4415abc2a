/**
 * The gateway's revocation checker (src/gateway/revocation/revocation.ts) as a relying party: CRL files
 * and URLs (a real Gatehouse CA over HTTPS, plain HTTP servers that misbehave), CRLs made by
 * src/pki/crl.ts and by `openssl ca`, refusals that keep the last good CRL, staleness under an
 * injected clock, and the generation counter the gateway uses to recheck open connections.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { isGatehouseError } from '../src/errors/errors.js';
import { createLogger } from '../src/log/logger.js';
import * as pki from '../src/pki/index.js';
import { RevocationChecker, type RevocationOptions } from '../src/gateway/revocation/revocation.js';
import {
  buildTestPki,
  issueLeaf,
  makeCrl,
  makeCrlWithoutNextUpdate,
  replaceFile,
  type TestCa,
  type TestLeaf,
} from './helpers/crl-pki.js';
import { generateCrl, makeCa, makeLeaf, revokeLeaf } from './helpers/openssl-pki.js';
import { startCaFixture, type CaFixture } from './helpers/ca-fixture.js';
import { enrollIdentity } from './helpers/ca-http.js';
import { pollUntil, waitFor } from './helpers/poll.js';
import { makeTempDir } from './helpers/tmp.js';

interface Started {
  checker: RevocationChecker;
  lines: string[];
  events(name: string): Array<Record<string, unknown>>;
}

function newChecker(t: TestContext, options: Omit<RevocationOptions, 'logger'>): Started {
  const lines: string[] = [];
  const checker = new RevocationChecker({
    logger: createLogger({ level: 'debug', write: (line) => void lines.push(line) }),
    ...options,
  });
  t.after(() => checker.close());
  return {
    checker,
    lines,
    events: (name) => lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.msg === name),
  };
}

async function startChecker(t: TestContext, options: Omit<RevocationOptions, 'logger'>): Promise<Started> {
  const started = newChecker(t, options);
  await started.checker.start();
  return started;
}

const chainOf = (leaf: TestLeaf, ca: TestCa) => [leaf.der, ca.certDer];

function assertRefused(
  verdict: ReturnType<RevocationChecker['check']>,
  reason: 'REVOKED' | 'CRL_STALE' | 'CRL_MISSING',
  detail: RegExp,
): void {
  assert.equal(verdict.ok, false, `refused (${reason}), got ${JSON.stringify(verdict)}`);
  if (verdict.ok) return;
  assert.equal(verdict.reason, reason, verdict.detail);
  assert.match(verdict.detail, detail);
}

async function assertStartRefused(checker: RevocationChecker, message: RegExp): Promise<void> {
  await assert.rejects(checker.start(), (err: unknown) => {
    assert.ok(isGatehouseError(err, 'GH_CONFIG_INVALID'), String(err));
    assert.match(err.message, message);
    return true;
  });
}

describe('gateway-revocation crl files', () => {
  let tmp: ReturnType<typeof makeTempDir>;
  let ours: Awaited<ReturnType<typeof buildTestPki>>;
  let foreign: Awaited<ReturnType<typeof buildTestPki>>;
  let leafA: TestLeaf;
  let leafB: TestLeaf;
  let n = 0;
  /** A fresh directory per test, so watchers and files never cross tests. */
  const dirFor = () => {
    const dir = join(tmp.dir, `t${++n}`);
    mkdirSync(dir, { recursive: true });
    return dir;
  };
  const writeCrls = (
    dir: string,
    intermediateCrl: Buffer | string,
    rootCrl: Buffer | string = pki.toPem('X509 CRL', makeCrl(ours.root, { crlNumber: 1n })),
  ) => {
    const intPath = join(dir, 'intermediate.crl');
    const rootPath = join(dir, 'root.crl.pem');
    writeFileSync(intPath, intermediateCrl);
    writeFileSync(rootPath, rootCrl);
    return [intPath, rootPath];
  };

  before(async () => {
    tmp = makeTempDir('gatehouse-revocation-');
    ours = await buildTestPki('Gateway');
    foreign = await buildTestPki('Foreign');
    leafA = issueLeaf(ours.intermediate, 'device-a', '80c0ffee01'); // top bit set: a padded INTEGER
    leafB = issueLeaf(ours.intermediate, 'device-b');
  });
  after(() => tmp?.cleanup());

  test('revoked-leaf-refused-with-serial-reason-and-issuer', async (t) => {
    const sources = writeCrls(dirFor(), makeCrl(ours.intermediate, { crlNumber: 1n, revoked: [leafA.serial] }));
    const { checker } = await startChecker(t, { sources, trustBundle: ours.bundlePem });
    assertRefused(
      checker.check(chainOf(leafA, ours.intermediate)),
      'REVOKED',
      /^client certificate serial 80c0ffee01 was revoked at \S+ \(keyCompromise\) by "O=Gatehouse Test, CN=Gateway Issuing"$/,
    );
    assertRefused(checker.check([pki.parseCertificate(leafA.der)]), 'REVOKED', /80c0ffee01/);
  });

  test('unrevoked-leaf-allowed', async (t) => {
    const sources = writeCrls(dirFor(), makeCrl(ours.intermediate, { crlNumber: 1n, revoked: [leafA.serial] }));
    const { checker } = await startChecker(t, { sources, trustBundle: ours.bundlePem });
    assert.deepEqual(checker.check(chainOf(leafB, ours.intermediate)), { ok: true });
    assert.deepEqual(
      checker.check([leafB.der, ours.intermediate.certDer, ours.root.certDer]),
      { ok: true },
      'the root at the end is the anchor, not checked',
    );
  });

  test('revoked-intermediate-refused-through-root-crl', async (t) => {
    const intermediateSerial = pki.parseCertificate(ours.intermediate.certDer).serial;
    const sources = writeCrls(
      dirFor(),
      makeCrl(ours.intermediate, { crlNumber: 1n }),
      makeCrl(ours.root, { crlNumber: 2n, revoked: [intermediateSerial] }),
    );
    const { checker } = await startChecker(t, { sources, trustBundle: ours.bundlePem });
    assertRefused(
      checker.check(chainOf(leafB, ours.intermediate)),
      'REVOKED',
      new RegExp(
        `^CA certificate "O=Gatehouse Test, CN=Gateway Issuing" serial ${intermediateSerial} was revoked .* by "O=Gatehouse Test, CN=Gateway Root"$`,
      ),
    );
    assertRefused(
      checker.check([...chainOf(leafB, ours.intermediate), ours.root.certDer]),
      'REVOKED',
      /CA certificate/,
    );
  });

  test('leaf-issuer-without-crl-is-crl-missing', async (t) => {
    const [, rootPath] = writeCrls(dirFor(), makeCrl(ours.intermediate, { crlNumber: 1n }));
    const { checker } = await startChecker(t, { sources: [rootPath!], trustBundle: ours.bundlePem });
    assertRefused(
      checker.check(chainOf(leafB, ours.intermediate)),
      'CRL_MISSING',
      /^no CRL is loaded for "O=Gatehouse Test, CN=Gateway Issuing", the issuer of the client certificate \(serial [0-9a-f]+\)$/,
    );
    const none = await startChecker(t, { sources: [], trustBundle: ours.bundlePem });
    assert.deepEqual(
      none.checker.check(chainOf(leafB, ours.intermediate)),
      { ok: true },
      'control: no sources configured, no CRL checks',
    );
  });

  test('crl-from-foreign-ca-refused-at-start-naming-the-source', async (t) => {
    const [intPath, rootPath] = writeCrls(
      dirFor(),
      makeCrl(foreign.intermediate, { crlNumber: 1n, revoked: [leafB.serial] }),
    );
    const { checker, events } = newChecker(t, { sources: [intPath!, rootPath!], trustBundle: ours.bundlePem });
    await assertStartRefused(
      checker,
      new RegExp(
        `^CRL source ${intPath} cannot be used: CRL issuer "O=Gatehouse Test, CN=Foreign Issuing" is not a CA of the trust bundle$`,
      ),
    );
    const refused = events('gateway.crl_refused');
    assert.equal(refused.length, 1);
    assert.equal(refused[0]!.level, 'error');
    assert.equal(refused[0]!.code, 'GH_CRL_SIGNATURE');
  });

  test('crl-spoofing-issuer-name-with-another-key-refused-at-start', async (t) => {
    const impostor = (await buildTestPki('Gateway')).intermediate; // same Name, another key
    const [intPath, rootPath] = writeCrls(dirFor(), makeCrl(impostor, { crlNumber: 99n, revoked: [leafB.serial] }));
    const { checker } = newChecker(t, { sources: [intPath!, rootPath!], trustBundle: ours.bundlePem });
    await assertStartRefused(
      checker,
      /intermediate\.crl cannot be used: CRL authority key identifier [0-9a-f]+ is not the key identifier/,
    );
  });

  test('two-cas-sharing-a-name-are-told-apart-by-key-identifier', async (t) => {
    // Both in the bundle (a CA key rollover keeps the Name): each CRL covers only its own key's certificates.
    const rolled = (await buildTestPki('Gateway')).intermediate;
    const rolledLeaf = issueLeaf(rolled, 'rolled-device');
    const dir = dirFor();
    const [intPath] = writeCrls(dir, makeCrl(ours.intermediate, { crlNumber: 1n }));
    const rolledPath = join(dir, 'rolled.crl');
    writeFileSync(rolledPath, makeCrl(rolled, { crlNumber: 1n, revoked: [leafB.serial, rolledLeaf.serial] }));
    const { checker } = await startChecker(t, {
      sources: [intPath!, rolledPath],
      trustBundle: ours.bundlePem + rolled.certPem,
    });
    assert.deepEqual(
      checker.check(chainOf(leafB, ours.intermediate)),
      { ok: true },
      "the other key's CRL does not speak for this certificate",
    );
    assertRefused(checker.check(chainOf(rolledLeaf, rolled)), 'REVOKED', new RegExp(rolledLeaf.serial));
  });

  test('crl-without-next-update-refused-at-start', async (t) => {
    const [intPath, rootPath] = writeCrls(dirFor(), makeCrlWithoutNextUpdate(ours.intermediate, leafA.serial));
    const { checker } = newChecker(t, { sources: [intPath!, rootPath!], trustBundle: ours.bundlePem });
    await assertStartRefused(checker, /CRL has no nextUpdate, so its staleness cannot be judged/);
  });

  test('unreadable-file-source-fails-start-naming-it', async (t) => {
    const dir = dirFor();
    const [, rootPath] = writeCrls(dir, makeCrl(ours.intermediate, { crlNumber: 1n }));
    const missing = join(dir, 'missing.crl');
    const { checker } = newChecker(t, { sources: [rootPath!, missing], trustBundle: ours.bundlePem });
    await assertStartRefused(
      checker,
      new RegExp(`^CRL source ${missing} cannot be used: cannot read the file: ENOENT$`),
    );
  });

  test('tampered-crl-on-refresh-refused-and-old-kept', async (t) => {
    const sources = writeCrls(dirFor(), makeCrl(ours.intermediate, { crlNumber: 1n, revoked: [leafA.serial] }));
    const { checker, events } = await startChecker(t, { sources, trustBundle: ours.bundlePem, watchFiles: false });
    const generation = checker.generation;
    const tampered = Buffer.from(makeCrl(ours.intermediate, { crlNumber: 2n, revoked: [leafA.serial, leafB.serial] }));
    tampered[tampered.length - 3]! ^= 0x01; // inside the signature
    replaceFile(sources[0]!, tampered);
    await checker.refresh();
    assert.deepEqual(checker.check(chainOf(leafB, ours.intermediate)), { ok: true }, 'the tampered CRL was not used');
    assertRefused(checker.check(chainOf(leafA, ours.intermediate)), 'REVOKED', /80c0ffee01/);
    assert.equal(checker.generation, generation, 'nothing changed');
    const status = checker.status()[0]!;
    assert.equal(status.crlNumber, '1', 'CRL 1 stays in force');
    assert.match(
      status.lastError ?? '',
      /^CRL signature does not verify with the public key of "O=Gatehouse Test, CN=Gateway Issuing"$/,
    );
    const refused = events('gateway.crl_refused').at(-1)!;
    assert.equal(refused.level, 'error');
    assert.deepEqual(refused.kept, {
      issuer: 'O=Gatehouse Test, CN=Gateway Issuing',
      crlNumber: '1',
      nextUpdate: status.nextUpdate!.toISOString(),
    });
  });

  test('broken-or-deleted-file-on-refresh-keeps-old', async (t) => {
    const sources = writeCrls(dirFor(), makeCrl(ours.intermediate, { crlNumber: 1n, revoked: [leafA.serial] }));
    const { checker, events } = await startChecker(t, { sources, trustBundle: ours.bundlePem, watchFiles: false });
    replaceFile(sources[0]!, 'this is not a CRL\n');
    await checker.refresh();
    assertRefused(checker.check(chainOf(leafA, ours.intermediate)), 'REVOKED', /80c0ffee01/);
    assert.match(
      checker.status()[0]!.lastError ?? '',
      /^CRL is neither DER \(a SEQUENCE\) nor PEM with an "X509 CRL" block$/,
    );
    assert.equal(events('gateway.crl_refused').at(-1)!.code, 'GH_CRL_INVALID');

    rmSync(sources[0]!);
    await checker.refresh();
    assertRefused(checker.check(chainOf(leafA, ours.intermediate)), 'REVOKED', /80c0ffee01/);
    assert.equal(checker.status()[0]!.lastError, 'cannot read the file: ENOENT');
    assert.equal(events('gateway.crl_unreachable').at(-1)!.level, 'warn');
    assert.deepEqual(checker.check(chainOf(leafB, ours.intermediate)), { ok: true });
  });

  test('file-change-picked-up-by-directory-watch-before-the-interval', async (t) => {
    const sources = writeCrls(dirFor(), makeCrl(ours.intermediate, { crlNumber: 1n }));
    const { checker } = await startChecker(t, { sources, trustBundle: ours.bundlePem, refreshIntervalMs: 3_600_000 });
    assert.deepEqual(checker.check(chainOf(leafB, ours.intermediate)), { ok: true });
    replaceFile(
      sources[0]!,
      pki.toPem('X509 CRL', makeCrl(ours.intermediate, { crlNumber: 2n, revoked: [leafB.serial] })),
    );
    await pollUntil(
      'the watch loads the new CRL',
      async () => (checker.check(chainOf(leafB, ours.intermediate)).ok ? undefined : true),
      5000,
    );
    assert.equal(checker.status()[0]!.crlNumber, '2');
  });

  test('file-change-picked-up-by-interval-when-not-watched', async (t) => {
    const sources = writeCrls(dirFor(), makeCrl(ours.intermediate, { crlNumber: 1n }));
    const { checker } = await startChecker(t, {
      sources,
      trustBundle: ours.bundlePem,
      refreshIntervalMs: 150,
      watchFiles: false,
    });
    writeFileSync(sources[0]!, makeCrl(ours.intermediate, { crlNumber: 2n, revoked: [leafB.serial] }));
    await pollUntil(
      'the interval loads the new CRL',
      async () => (checker.check(chainOf(leafB, ours.intermediate)).ok ? undefined : true),
      5000,
    );
  });

  test('close-stops-refreshing', async (t) => {
    const sources = writeCrls(dirFor(), makeCrl(ours.intermediate, { crlNumber: 1n }));
    const { checker } = await startChecker(t, { sources, trustBundle: ours.bundlePem, refreshIntervalMs: 100 });
    // A twin left open on the same file: once it has the new CRL, a checker still refreshing would too.
    const { checker: twin } = await startChecker(t, { sources, trustBundle: ours.bundlePem, refreshIntervalMs: 100 });
    checker.close();
    replaceFile(sources[0]!, makeCrl(ours.intermediate, { crlNumber: 2n, revoked: [leafB.serial] }));
    await waitFor(() => !twin.check(chainOf(leafB, ours.intermediate)).ok, 5_000, 'the open twin to load the new CRL');
    assert.deepEqual(
      checker.check(chainOf(leafB, ours.intermediate)),
      { ok: true },
      'neither watch nor interval ran after close()',
    );
    assert.equal(checker.status()[0]!.crlNumber, '1');
  });

  test('older-crl-number-refused-and-newer-kept', async (t) => {
    const sources = writeCrls(
      dirFor(),
      makeCrl(ours.intermediate, { crlNumber: 5n, revoked: [leafA.serial, leafB.serial] }),
    );
    const { checker } = await startChecker(t, { sources, trustBundle: ours.bundlePem, watchFiles: false });
    // Validly signed by the right CA, just older: replaying it would un-revoke device B.
    replaceFile(sources[0]!, makeCrl(ours.intermediate, { crlNumber: 4n, revoked: [leafA.serial] }));
    await checker.refresh();
    assertRefused(
      checker.check(chainOf(leafB, ours.intermediate)),
      'REVOKED',
      new RegExp(`serial ${leafB.serial} was revoked`),
    );
    assert.match(
      checker.status()[0]!.lastError ?? '',
      /^CRL number 4 is older than the CRL in force \(number 5\); a rolled-back CRL is refused$/,
    );
    replaceFile(sources[0]!, makeCrl(ours.intermediate, { crlNumber: 6n, revoked: [leafA.serial] }));
    await checker.refresh();
    assert.deepEqual(
      checker.check(chainOf(leafB, ours.intermediate)),
      { ok: true },
      'control: a newer CRL is accepted and un-lists B',
    );
  });

  test('stale-crl-fails-closed-after-next-update-plus-grace', async (t) => {
    let nowMs = Date.now();
    const thisUpdate = new Date(Math.floor(nowMs / 1000) * 1000 - 60_000);
    const nextUpdate = new Date(thisUpdate.getTime() + 3_600_000);
    const sources = writeCrls(dirFor(), makeCrl(ours.intermediate, { crlNumber: 1n, thisUpdate, nextUpdate }));
    const { checker, events } = await startChecker(t, {
      sources,
      trustBundle: ours.bundlePem,
      graceMs: 600_000,
      now: () => new Date(nowMs),
      watchFiles: false,
      refreshIntervalMs: 3_600_000,
    });
    nowMs = nextUpdate.getTime() + 600_000;
    assert.deepEqual(
      checker.check(chainOf(leafB, ours.intermediate)),
      { ok: true },
      'at nextUpdate + grace exactly, still usable',
    );
    assert.equal(checker.status()[0]!.stale, false);
    nowMs += 1;
    assertRefused(
      checker.check(chainOf(leafB, ours.intermediate)),
      'CRL_STALE',
      new RegExp(
        `^the CRL of "O=Gatehouse Test, CN=Gateway Issuing" passed its nextUpdate ${nextUpdate.toISOString()} more than 600 s ago$`,
      ),
    );
    assert.equal(checker.status()[0]!.stale, true);
    assert.equal(checker.status()[0]!.ageSeconds, Math.floor((nowMs - thisUpdate.getTime()) / 1000));
    checker.check(chainOf(leafB, ours.intermediate));
    const stale = events('gateway.crl_stale');
    assert.equal(stale.length, 1, 'logged once, not per check');
    assert.equal(stale[0]!.level, 'warn');
    assert.match(String(stale[0]!.effect), /refused \(CRL_STALE\)/);
  });

  test('stale-crl-allowed-only-with-unsafe-fail-open-and-warned', async (t) => {
    let nowMs = Date.now();
    const nextUpdate = new Date(nowMs + 60_000);
    const sources = writeCrls(
      dirFor(),
      makeCrl(ours.intermediate, { crlNumber: 1n, revoked: [leafA.serial], nextUpdate }),
    );
    const { checker, events } = await startChecker(t, {
      sources,
      trustBundle: ours.bundlePem,
      graceMs: 0,
      unsafeFailOpenOnStaleCrl: true,
      now: () => new Date(nowMs),
      watchFiles: false,
    });
    assert.equal(
      events('gateway.unsafe_fail_open_on_stale_crl')[0]?.level,
      'warn',
      'the unsafe option is announced at start',
    );
    nowMs = nextUpdate.getTime() + 1;
    assert.deepEqual(
      checker.check(chainOf(leafB, ours.intermediate)),
      { ok: true },
      'stale, allowed by the unsafe option',
    );
    assertRefused(checker.check(chainOf(leafA, ours.intermediate)), 'REVOKED', /80c0ffee01/);
    assert.match(String(events('gateway.crl_stale')[0]?.effect), /allowed anyway \(unsafeFailOpenOnStaleCrl\)/);
  });

  test('generation-moves-when-crls-change-or-go-stale-only', async (t) => {
    let nowMs = Date.now();
    const sources = writeCrls(dirFor(), makeCrl(ours.intermediate, { crlNumber: 1n }));
    const { checker } = await startChecker(t, {
      sources,
      trustBundle: ours.bundlePem,
      graceMs: 0,
      now: () => new Date(nowMs),
      watchFiles: false,
      refreshIntervalMs: 3_600_000,
    });
    // What the gateway does per connection: keep the verdict with the generation it was made at.
    const chain = chainOf(leafB, ours.intermediate);
    const cached = { generation: checker.generation, verdict: checker.check(chain) };
    assert.ok(cached.generation >= 2, 'two CRLs loaded at start');
    assert.deepEqual(cached.verdict, { ok: true });
    await checker.refresh();
    assert.equal(checker.generation, cached.generation, 'the same files again: no change');
    replaceFile(sources[0]!, 'garbage');
    await checker.refresh();
    assert.equal(checker.generation, cached.generation, 'a refused CRL: no change');

    replaceFile(
      sources[0]!,
      makeCrl(ours.intermediate, { crlNumber: 2n, revoked: [leafB.serial], nextUpdate: new Date(nowMs + 60_000) }),
    );
    await checker.refresh();
    assert.equal(
      checker.generation,
      cached.generation + 1,
      'device B revoked after it connected: the generation moved',
    );
    assertRefused(checker.check(chain), 'REVOKED', /was revoked/);
    nowMs += 60_001;
    assert.equal(checker.generation, cached.generation + 2, 'the intermediate CRL went stale');
    assert.equal(checker.generation, cached.generation + 2, 'reading again changes nothing');
  });

  test('crl-from-openssl-ca-refuses-its-revoked-leaf', async (t) => {
    const dir = dirFor();
    const ca = await makeCa(dir, 'openssl-ca', {
      keyType: 'rsa',
      firstSerial: 'FFF0',
      subject: '/O=Gatehouse Test/CN=OpenSSL Test CA',
    });
    const revoked = await makeLeaf(ca, { cn: 'openssl-revoked' });
    const kept = await makeLeaf(ca, { cn: 'openssl-kept' });
    await revokeLeaf(ca, revoked.certPath, 'keyCompromise');
    const crlPath = join(dir, 'openssl.crl.pem');
    writeFileSync(crlPath, await generateCrl(ca));
    const { checker } = await startChecker(t, { sources: [crlPath], trustBundle: [ca.certDer] });
    assertRefused(
      checker.check([revoked.der, ca.certDer]),
      'REVOKED',
      /^client certificate serial fff0 was revoked at .* \(keyCompromise\) by "CN=OpenSSL Test CA, O=Gatehouse Test"$/,
    );
    assert.deepEqual(checker.check([kept.der, ca.certDer]), { ok: true });
    assert.equal(checker.status()[0]!.crlNumber, '4096');
  });

  test('crl-with-100000-entries-finds-the-one-revoked-serial', async (t) => {
    const dir = dirFor();
    const revoked: pki.RevokedEntry[] = Array.from({ length: 100_000 }, (_, i) => ({
      serial: pki.randomSerial().toString('hex'),
      revokedAt: new Date(Date.UTC(2024, 0, 1) + i * 1000),
      reason: 'superseded',
    }));
    revoked.splice(50_000, 0, {
      serial: leafA.serial,
      revokedAt: new Date('2025-01-01T00:00:00Z'),
      reason: 'keyCompromise',
    });
    const [bigPath] = writeCrls(dir, makeCrl(ours.intermediate, { crlNumber: 1n, revoked }));
    const small = join(dir, 'small.crl');
    writeFileSync(small, makeCrl(ours.intermediate, { crlNumber: 1n, revoked: [leafA.serial] }));
    const large = await startChecker(t, { sources: [bigPath!], trustBundle: ours.bundlePem, watchFiles: false });
    const tiny = await startChecker(t, { sources: [small], trustBundle: ours.bundlePem, watchFiles: false });
    assert.equal(large.checker.status()[0]!.entries, 100_001);
    assertRefused(
      large.checker.check(chainOf(leafA, ours.intermediate)),
      'REVOKED',
      /revoked at 2025-01-01T00:00:00.000Z \(keyCompromise\)/,
    );
    assert.deepEqual(large.checker.check(chainOf(leafB, ours.intermediate)), { ok: true });

    const leaf = [pki.parseCertificate(leafB.der)];
    const timeChecks = (checker: RevocationChecker) => {
      const started = performance.now();
      for (let i = 0; i < 20_000; i++) checker.check(leaf);
      return performance.now() - started;
    };
    timeChecks(tiny.checker); // warm up
    const [tinyMs, largeMs] = [
      Math.min(timeChecks(tiny.checker), timeChecks(tiny.checker)),
      Math.min(timeChecks(large.checker), timeChecks(large.checker)),
    ];
    t.diagnostic(`20 000 checks: ${largeMs.toFixed(1)} ms with 100 001 entries, ${tinyMs.toFixed(1)} ms with 1`);
    // Reported, not asserted: a timed test is noise on a shared 2-core machine; the cost is measured in bench/crl-parse.ts.
  });

  test('invalid-options-refused-with-the-field', () => {
    const refused = (options: Partial<RevocationOptions>, message: RegExp) =>
      assert.throws(
        () => new RevocationChecker({ sources: [], trustBundle: ours.bundlePem, ...options }),
        (err: unknown) => isGatehouseError(err, 'GH_CONFIG_INVALID') && message.test(err.message),
      );
    refused(
      { sources: ['ftp://example.test/crl'] },
      /^revocation sources\[0\]: only file paths and http\(s\):\/\/ URLs are supported$/,
    );
    refused({ sources: ['/a.crl', '/b.crl', '/a.crl'] }, /^revocation sources\[2\]: listed twice$/);
    refused({ sources: [''] }, /^revocation sources\[0\]: empty$/);
    refused({ sources: ['https://exa mple/crl'] }, /^revocation sources\[0\]: invalid URL$/);
    refused(
      { trustBundle: 'no certificates here' },
      /^revocation trust bundle: the trust bundle for CRL signatures holds no certificate$/,
    );
    refused({ refreshIntervalMs: 0 }, /^revocation refreshIntervalMs: 0 is not a valid duration$/);
    refused({ graceMs: -1 }, /^revocation graceMs: -1/);
    refused(
      { refreshIntervalMs: 30 * 86_400_000 },
      /^revocation refreshIntervalMs: 2592000000 is not a valid duration$/,
    );
  });
});

// ------------------------------------------------------------------ URL sources

interface CrlServer {
  url: string;
  requests: number;
  close(): Promise<void>;
}

/** A plain HTTP server on 127.0.0.1 port 0 whose answers the test scripts. */
async function startCrlServer(
  handler: (req: IncomingMessage, res: ServerResponse, nth: number) => void,
): Promise<CrlServer> {
  const state = { requests: 0 };
  const server = createServer((req, res) => handler(req, res, ++state.requests));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get requests() {
      return state.requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('gateway-revocation crl urls', () => {
  let fixture: CaFixture;
  let trustBundle: string;
  before(async () => {
    fixture = await startCaFixture();
    trustBundle = fixture.server.authority.rootPem + fixture.server.authority.intermediatePem;
  });
  after(async () => {
    await fixture?.close();
  });

  test('https-crl-url-refresh-picks-up-a-new-revocation', async (t) => {
    const identity = await enrollIdentity(fixture, { role: 'web', name: 'url-revoked' });
    const other = await enrollIdentity(fixture, { role: 'web', name: 'url-kept' });
    const { checker } = await startChecker(t, {
      sources: [`${fixture.url}/crl`, `${fixture.url}/crl/root`],
      ca: fixture.server.authority.rootPem,
      trustBundle,
      refreshIntervalMs: 200,
    });
    const chain = pki.decodePem(identity.certPem, 'CERTIFICATE');
    assert.equal(chain.length, 2, 'leaf and intermediate');
    const generation = checker.generation;
    assert.deepEqual(checker.check(chain), { ok: true });
    assert.deepEqual(
      checker.status().map((s) => [s.source, s.kind, s.issuer, s.lastError]),
      [
        [`${fixture.url}/crl`, 'url', pki.formatDn(pki.parseCertificate(chain[1]!).subject), null],
        [
          `${fixture.url}/crl/root`,
          'url',
          pki.formatDn(pki.parseCertificatePem(fixture.server.authority.rootPem)[0]!.subject),
          null,
        ],
      ],
    );

    await fixture.server.authority.revokeCertificate(identity.serial, 'keyCompromise', { actor: 'test' });
    await fixture.server.crls.refresh(true);
    const verdict = await pollUntil(
      'the checker fetches the new CRL',
      async () => {
        const v = checker.check(chain);
        return v.ok ? undefined : v;
      },
      5000,
    );
    assertRefused(verdict, 'REVOKED', new RegExp(`serial ${identity.serial} was revoked at .* \\(keyCompromise\\)`));
    assert.ok(checker.generation > generation, 'the generation moved, so open connections get rechecked');
    assert.deepEqual(checker.check(pki.decodePem(other.certPem, 'CERTIFICATE')), { ok: true });
  });

  test('https-crl-url-with-untrusted-server-certificate-not-loaded-and-fails-closed', async (t) => {
    const identity = await enrollIdentity(fixture, { role: 'web', name: 'url-untrusted' });
    const stranger = await buildTestPki('Stranger');
    const { checker, events } = await startChecker(t, {
      sources: [`${fixture.url}/crl`],
      ca: stranger.root.certPem,
      trustBundle,
      refreshIntervalMs: 60_000,
    });
    assertRefused(checker.check(pki.decodePem(identity.certPem, 'CERTIFICATE')), 'CRL_MISSING', /no CRL is loaded for/);
    assert.match(checker.status()[0]!.lastError ?? '', /certificate/i);
    assert.equal(events('gateway.crl_pending').length, 1, 'start says the source is pending and what that means');
  });

  test('url-down-at-start-fails-closed-then-loads-in-background', async (t) => {
    const { intermediate, bundlePem } = await buildTestPki('Url');
    const leaf = issueLeaf(intermediate, 'url-leaf');
    const crl = makeCrl(intermediate, { crlNumber: 1n });
    const server = await startCrlServer((_req, res, nth) => {
      if (nth === 1) res.writeHead(503).end('starting');
      else res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(crl);
    });
    t.after(() => server.close());
    const { checker, events } = await startChecker(t, {
      sources: [`${server.url}/crl`],
      trustBundle: bundlePem,
      refreshIntervalMs: 60_000,
    });
    assertRefused(checker.check(chainOf(leaf, intermediate)), 'CRL_MISSING', /"O=Gatehouse Test, CN=Url Issuing"/);
    assert.equal(checker.status()[0]!.lastError, 'HTTP 503 Service Unavailable');
    assert.equal(events('gateway.crl_unreachable')[0]?.level, 'warn');
    await pollUntil(
      'the background retry loads the CRL',
      async () => (checker.check(chainOf(leaf, intermediate)).ok ? true : undefined),
      5000,
    );
    assert.equal(checker.status()[0]!.crlNumber, '1');
    assert.equal(server.requests, 2, 'one failed fetch at start, one retry');
  });

  test('refresh-requested-during-a-fetch-runs-again-after-it', async (t) => {
    const { intermediate, bundlePem } = await buildTestPki('Queued');
    const leaf = issueLeaf(intermediate, 'queued-leaf');
    let published = makeCrl(intermediate, { crlNumber: 1n });
    let holdMs = 0;
    const server = await startCrlServer((_req, res) => {
      const body = published; // what the CA had when the request arrived
      setTimeout(() => res.writeHead(200).end(body), holdMs);
    });
    t.after(() => server.close());
    const { checker } = await startChecker(t, {
      sources: [`${server.url}/crl`],
      trustBundle: bundlePem,
      refreshIntervalMs: 3_600_000,
    });
    holdMs = 300;
    const slow = checker.refresh();
    await pollUntil('the slow fetch reached the server', async () => (server.requests >= 2 ? true : undefined));
    published = makeCrl(intermediate, { crlNumber: 2n, revoked: [leaf.serial] });
    holdMs = 0;
    await checker.refresh(); // prompted by the revocation, which the running fetch cannot see
    await slow;
    assertRefused(checker.check(chainOf(leaf, intermediate)), 'REVOKED', new RegExp(leaf.serial));
    assert.equal(server.requests, 3, 'start, the slow fetch, one more after it');
  });

  test('url-answers-beyond-size-or-time-limits-refused', async (t) => {
    const { bundlePem } = await buildTestPki('Limits');
    const server = await startCrlServer((req, res) => {
      if (req.url === '/huge') {
        res.writeHead(200);
        const chunk = Buffer.alloc(64 * 1024);
        const pump = () => {
          while (res.write(chunk)) if (res.writableLength > 1 << 20) break;
        };
        pump();
        res.on('drain', pump);
      }
      // /silent: never answers
    });
    t.after(() => server.close());
    const { checker } = await startChecker(t, {
      sources: [`${server.url}/huge`, `${server.url}/silent`],
      trustBundle: bundlePem,
      maxCrlBytes: 256 * 1024,
      fetchTimeoutMs: 400,
      refreshIntervalMs: 60_000,
    });
    const [huge, silent] = checker.status();
    assert.equal(huge!.lastError, 'the answer is larger than the 262144-byte limit');
    assert.equal(silent!.lastError, 'no complete answer within 400 ms');
  });

  test('url-credentials-and-query-never-logged-or-reported', async (t) => {
    const { bundlePem } = await buildTestPki('Secrets');
    const server = await startCrlServer((_req, res) => res.writeHead(404).end());
    t.after(() => server.close());
    const source = server.url.replace('http://', 'http://crl-user:hunter2-secret@') + '/crl?token=tok-secret-123';
    const { checker, lines } = await startChecker(t, {
      sources: [source],
      trustBundle: bundlePem,
      refreshIntervalMs: 60_000,
    });
    assert.ok(server.requests >= 1, 'control: the source was fetched');
    const shown = JSON.stringify(checker.status()) + lines.join('');
    assert.ok(lines.length > 0, 'control: something was logged');
    assert.equal(/hunter2|tok-secret/.test(shown), false, shown);
    assert.equal(checker.status()[0]!.source, `${server.url}/crl?…`);
  });
});
