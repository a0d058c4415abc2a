/**
 * The agent sees revocation: `agent status` and `agent run` check the identity's certificate
 * against the CA's CRL, fetched over real HTTPS from a real CA, and believe a CRL only when it is
 * signed by the issuing CA of cert.pem (which chains to the pinned ca.pem). An impostor HTTPS
 * server, holding a genuine certificate of the same CA, serves forged and altered CRLs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:https';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import YAML from 'yaml';
import { CRL_FILE, fetchCaCrl } from '../src/agent/revocation.js';
import { runAgent } from '../src/agent/renew-scheduler.js';
import { checkStatusWithRevocation } from '../src/agent/status.js';
import { isGatehouseError } from '../src/errors/errors.js';
import { createLogger } from '../src/log/logger.js';
import { parseCertificate } from '../src/pki/certificate.js';
import { buildCrl } from '../src/pki/crl.js';
import { assertCrlNotOlder, verifyCrlForCertificate } from '../src/pki/crl-verify.js';
import { parseCrl } from '../src/pki/crl-parse.js';
import { generatePrivateKey, signatureAlgorithmFor } from '../src/pki/keys.js';
import { decodePem } from '../src/pki/pem.js';
import { enrollAgent, startCaFixture, type CaFixture } from './helpers/ca-fixture.js';
import {} from './helpers/ca-http.js';
import { pollUntil } from './helpers/poll.js';
import { CLI_PATH, gatehouse } from './helpers/cli.js';
import { buildTestPki, issueLeaf, makeCrl, makeCrlWithoutNextUpdate } from './helpers/crl-pki.js';

const ISO = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/;
const HOUR = 3_600_000;

async function withCa(
  t: { after(fn: () => unknown): void },
  options: Parameters<typeof startCaFixture>[0] = {},
): Promise<CaFixture> {
  const fixture = await startCaFixture(options);
  t.after(() => fixture.close().catch(() => undefined));
  return fixture;
}

async function device(fixture: CaFixture, name = 'dev-1'): Promise<{ dir: string; serial: string }> {
  const { dir, identity } = await enrollAgent(fixture, 'web', name);
  return { dir, serial: identity.serial };
}

/** Revokes on the CA and republishes its CRL at once (a running CA does so within its check interval). */
async function revoke(
  fixture: CaFixture,
  serial: string,
  reason: 'keyCompromise' | 'superseded' = 'keyCompromise',
): Promise<void> {
  await fixture.server.authority.revokeCertificate(serial, reason, { actor: 'test' });
  await fixture.server.crls.refresh(true);
}

function status(dir: string, ...args: string[]) {
  return gatehouse(['agent', 'status', '--dir', dir, ...args]);
}

/** An HTTPS server with a genuine server certificate of the same CA, serving whatever CRL it is given. */
async function startImpostor(
  fixture: CaFixture,
  t: { after(fn: () => unknown): void },
): Promise<{ url: string; serve(body: Buffer): void }> {
  const { dir } = await enrollAgent(fixture, 'gateway', 'impostor', { ip: ['127.0.0.1'] });
  let body: Buffer = Buffer.alloc(0);
  const server: Server = createServer(
    { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
    (req, res) => {
      res.writeHead(/^\/crl(\/[0-9a-f]{16})?$/.test(req.url ?? '') ? 200 : 404, {
        'content-type': 'application/pkix-crl',
      });
      res.end(body);
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, serve: (b) => void (body = b) };
}

/** A CRL with the issuing intermediate's name and key identifier, signed by another key. */
function forgedCrl(intermediateDer: Buffer, serial: string): Buffer {
  const intermediate = parseCertificate(intermediateDer);
  const key = generatePrivateKey('p256');
  const impostor = {
    certDer: intermediateDer,
    subjectNameDer: intermediate.subjectNameDer,
    keyIdentifier: intermediate.subjectKeyId!,
    notBefore: intermediate.notBefore,
    notAfter: intermediate.notAfter,
    privateKey: key,
    algorithm: signatureAlgorithmFor(key),
  };
  const now = new Date();
  return buildCrl(impostor, {
    crlNumber: 1_000_000n,
    thisUpdate: now,
    nextUpdate: new Date(now.getTime() + HOUR),
    entries: [{ serial, revokedAt: now, reason: 'keyCompromise' }],
  });
}

/** `promise`, or a failure naming `what` once `ms` have passed: a missed event fails instead of hanging. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  return {
    lines,
    logger: createLogger({ level: 'debug', write: (l) => void lines.push(JSON.parse(l) as Record<string, unknown>) }),
  };
}

function readEnv(path: string): Record<string, string> {
  return Object.fromEntries(
    readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

test('status-fresh-identity-is-ok-and-stores-the-verified-crl', async (t) => {
  const fixture = await withCa(t);
  const { dir } = await device(fixture);
  const r = await status(dir);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^OK: certificate valid for .*; not revoked \(CRL #\d+ of /);
  assert.equal(statSync(join(dir, CRL_FILE)).mode & 0o777, 0o644, 'public data, like cert.pem');
  assert.ok(parseCrl(readFileSync(join(dir, CRL_FILE))).revoked.size === 0);
});

test('status-revoked-is-critical-exit-2-with-time-and-reason', async (t) => {
  const fixture = await withCa(t);
  const { dir, serial } = await device(fixture);
  await device(fixture, 'bystander').then((other) => revoke(fixture, other.serial, 'superseded'));
  assert.equal((await status(dir)).status, 0, "another machine's revocation is not ours");
  await revoke(fixture, serial);
  const r = await status(dir);
  assert.equal(r.status, 2, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`^CRITICAL: certificate revoked at ${ISO.source} \\(reason keyCompromise\\)\\n$`));
  const json = JSON.parse((await status(dir, '--json')).stdout) as {
    level: string;
    revocation: Record<string, unknown>;
  };
  assert.equal(json.level, 'CRITICAL');
  assert.equal(json.revocation.revoked, true);
  assert.equal(json.revocation.reason, 'keyCompromise');
  assert.match(String(json.revocation.revokedAt), ISO);
  assert.equal(json.revocation.source, 'ca');
});

test('status-ca-down-stored-crl-listing-the-cert-stays-critical', async (t) => {
  const fixture = await withCa(t);
  const { dir, serial } = await device(fixture);
  await revoke(fixture, serial);
  assert.equal((await status(dir)).status, 2);
  await fixture.server.close();
  const r = await status(dir);
  assert.equal(r.status, 2, r.stdout + r.stderr);
  assert.match(
    r.stdout,
    new RegExp(
      `^CRITICAL: certificate revoked at ${ISO.source} \\(reason keyCompromise\\); CA unreachable \\(cannot reach the CA .*\\), per the CRL last checked at ${ISO.source}`,
    ),
  );
  const offline = await status(dir, '--offline');
  assert.equal(offline.status, 2);
  assert.match(offline.stdout, /^CRITICAL: certificate revoked at .*offline \(--offline\)/);
});

test('status-ca-down-says-what-it-knows-and-when-it-last-checked', async (t) => {
  const fixture = await withCa(t);
  const { dir } = await device(fixture);
  const never = await device(fixture, 'never-checked');
  assert.equal((await status(dir)).status, 0);
  const checkedAt = statSync(join(dir, CRL_FILE)).mtime.toISOString();
  await fixture.server.close();
  const r = await status(dir);
  assert.equal(r.status, 0, 'an unreachable CA keeps the expiry-based level while the stored CRL is current');
  assert.match(
    r.stdout,
    new RegExp(
      `^OK: certificate valid for .*; CA unreachable \\(cannot reach the CA at https://127\\.0\\.0\\.1:\\d+: ECONNREFUSED\\); last CRL checked at ${checkedAt.replace(/\./g, '\\.')}, certificate not listed\\n$`,
    ),
  );
  const json = JSON.parse((await status(dir, '--json')).stdout) as { revocation: Record<string, unknown> };
  assert.equal(json.revocation.source, 'stored');
  assert.equal(json.revocation.lastCheckedAt, checkedAt);
  // Never checked and the CA is gone: revocation is unknown, which monitoring should see.
  const unknown = await status(never.dir);
  assert.equal(unknown.status, 1, unknown.stdout);
  assert.match(
    unknown.stdout,
    /^WARNING: certificate valid for .*; CA unreachable \(.*\); no verified CRL stored, revocation unknown/,
  );
});

test('status-stored-crl-past-its-next-update-is-a-warning-when-the-ca-is-down', async (t) => {
  const fixture = await withCa(t, {
    configEdit: (yaml) => YAML.stringify({ ...YAML.parse(yaml), crl: { lifetime: '1m', renewBefore: '30s' } }),
  });
  const { dir } = await device(fixture);
  assert.equal((await checkStatusWithRevocation(dir, { now: new Date() })).level, 'OK');
  await fixture.server.close();
  const later = await checkStatusWithRevocation(dir, { now: new Date(Date.now() + 5 * 60_000) });
  assert.equal(later.level, 'WARNING', later.message);
  assert.match(later.message, /last CRL checked at .*, certificate not listed, but that CRL passed its nextUpdate/);
});

test('status-refuses-forged-foreign-and-altered-crls-and-stores-none', async (t) => {
  const fixture = await withCa(t);
  const { dir, serial } = await device(fixture);
  const impostor = await startImpostor(fixture, t);
  const [, intermediateDer] = decodePem(readFileSync(join(dir, 'cert.pem'), 'utf8'), 'CERTIFICATE');
  const foreign = await buildTestPki('Foreign');
  // The genuine CRL listing our serial, with one byte of the listed serial changed: the signature no longer holds.
  await revoke(fixture, serial);
  const genuine = parseCrl(await fetchCaCrl(fixture.url, readFileSync(join(dir, 'ca.pem'), 'utf8'))).der;
  const altered = Buffer.from(genuine);
  const at = altered.indexOf(Buffer.from(serial.length % 2 ? `0${serial}` : serial, 'hex'));
  assert.ok(at > 0, 'the CRL lists our serial');
  altered[at + 1]! ^= 0x01;
  const cases: Array<[string, Buffer, RegExp]> = [
    ["forged with the intermediate's name and key id", forgedCrl(intermediateDer!, serial), /signature/i],
    [
      'signed by a foreign CA',
      makeCrl(foreign.intermediate, { crlNumber: 9n, revoked: [serial] }),
      /not the subject of the certificate|issuer/,
    ],
    ['altered after signing', altered, /signature/i],
  ];
  for (const [what, crl, why] of cases) {
    impostor.serve(crl);
    const r = await status(dir, '--ca', impostor.url, '--json');
    const report = JSON.parse(r.stdout) as {
      level: string;
      message: string;
      revocation: { revoked: boolean; refused: string };
    };
    assert.equal(
      r.status,
      1,
      `${what}: refused, so revocation is unknown (WARNING), never CRITICAL on its word: ${report.message}`,
    );
    assert.equal(report.revocation.revoked, false, what);
    assert.match(report.revocation.refused, /^the CRL from https:\/\/127\.0\.0\.1:\d+ was refused: /, what);
    assert.match(report.revocation.refused, why, what);
    assert.equal(existsSync(join(dir, CRL_FILE)), false, `${what}: a refused CRL is never stored`);
  }
  // A refused CRL does not replace a good stored one either, and a tampered stored file is ignored.
  assert.equal((await status(dir)).status, 2);
  const good = readFileSync(join(dir, CRL_FILE));
  impostor.serve(forgedCrl(intermediateDer!, '01'));
  const kept = await status(dir, '--ca', impostor.url);
  assert.equal(kept.status, 2, kept.stdout);
  assert.match(kept.stdout, /^CRITICAL: certificate revoked at .*the CA's CRL was refused/);
  assert.deepEqual(readFileSync(join(dir, CRL_FILE)), good);
  writeFileSync(join(dir, CRL_FILE), altered);
  const ignored = await status(dir, '--offline');
  assert.equal(ignored.status, 1, ignored.stdout);
  assert.match(ignored.stdout, /no verified CRL stored, revocation unknown; the stored crl\.pem was ignored: /);
});

test('status-refuses-a-rolled-back-crl-from-the-ca', async (t) => {
  const fixture = await withCa(t);
  const { dir, serial } = await device(fixture);
  const impostor = await startImpostor(fixture, t);
  const rootPem = readFileSync(join(dir, 'ca.pem'), 'utf8');
  const before = await fetchCaCrl(fixture.url, rootPem);
  await revoke(fixture, serial);
  assert.equal((await status(dir)).status, 2);
  impostor.serve(before); // genuine, correctly signed, but older: it would un-revoke
  const r = await status(dir, '--ca', impostor.url);
  assert.equal(r.status, 2, r.stdout);
  assert.match(r.stdout, /rolled-back CRL is refused/);
});

test('crl-verify-checks-issuer-chain-and-dates', async () => {
  const { root, intermediate } = await buildTestPki('Verify');
  const leaf = issueLeaf(intermediate, 'leaf-1');
  const chain = [leaf.der, intermediate.certDer];
  const now = new Date();
  const listed = verifyCrlForCertificate(
    makeCrl(intermediate, { crlNumber: 2n, revoked: [leaf.serial] }),
    chain,
    root.certDer,
    now,
  );
  assert.equal(listed.entry?.reason, 'keyCompromise');
  assert.equal(listed.stale, false);
  assert.equal(verifyCrlForCertificate(makeCrl(intermediate, { crlNumber: 3n }), chain, root.certDer, now).entry, null);
  const refuses = (crl: Buffer, pattern: RegExp, rootDer = root.certDer) =>
    assert.throws(
      () => verifyCrlForCertificate(crl, chain, rootDer, now),
      (err) => isGatehouseError(err) && pattern.test(err.message),
    );
  refuses(makeCrl(root, { crlNumber: 2n, revoked: [leaf.serial] }), /not the subject/, root.certDer);
  refuses(makeCrl(intermediate, { crlNumber: 2n, thisUpdate: new Date(now.getTime() + HOUR) }), /in the future/);
  refuses(
    makeCrl(intermediate, { crlNumber: 2n, thisUpdate: now, nextUpdate: new Date(now.getTime() - 1) }),
    /not after its thisUpdate/,
  );
  refuses(makeCrlWithoutNextUpdate(intermediate, leaf.serial), /no nextUpdate/);
  const other = await buildTestPki('Other');
  refuses(makeCrl(intermediate, { crlNumber: 2n }), /not signed by the pinned root/, other.root.certDer);
  const stale = verifyCrlForCertificate(
    makeCrl(intermediate, {
      crlNumber: 4n,
      thisUpdate: new Date(now.getTime() - 2 * HOUR),
      nextUpdate: new Date(now.getTime() - HOUR),
    }),
    chain,
    root.certDer,
    now,
  );
  assert.equal(stale.stale, true, 'a stale CRL is still authentic: it is flagged, not refused');
  const newer = parseCrl(makeCrl(intermediate, { crlNumber: 5n }));
  assert.throws(() => assertCrlNotOlder(parseCrl(makeCrl(intermediate, { crlNumber: 4n })), newer), /rolled-back/);
  assert.doesNotThrow(() => assertCrlNotOlder(newer, newer));
});

test('agent-run-sees-revocation-at-the-next-check-logs-runs-hook-and-stops', async (t) => {
  const fixture = await withCa(t);
  const { dir, serial } = await device(fixture);
  const envFile = join(fixture.root, 'hook-env');
  const { lines, logger } = capture();
  const controller = new AbortController();
  t.after(() => controller.abort());
  const running = runAgent({
    dir,
    logger,
    signal: controller.signal,
    revocationCheckIntervalMs: 50,
    onRenew: `env > '${envFile}'`,
  });
  await pollUntil(
    'a first revocation check',
    async () => lines.find((l) => l.msg === 'agent.revocation_checked'),
    10_000,
  );
  await revoke(fixture, serial);
  await assert.rejects(
    within(running, 10_000, 'agent run stopping on revocation'),
    (err) =>
      isGatehouseError(err, 'GH_AGENT_MUST_REENROLL') &&
      /revoked at .* \(reason keyCompromise\).*enroll/i.test(err.message),
  );
  const revoked = lines.find((l) => l.msg === 'agent.cert_revoked');
  assert.ok(revoked, 'agent.cert_revoked is logged');
  assert.equal(revoked.level, 'error');
  assert.equal(revoked.serial, serial);
  assert.equal(revoked.reason, 'keyCompromise');
  assert.match(String(revoked.revokedAt), ISO);
  const env = readEnv(envFile);
  assert.equal(env.GATEHOUSE_EVENT, 'revoked');
  assert.equal(env.GATEHOUSE_SERIAL, serial);
  assert.equal(env.GATEHOUSE_DIR, dir);
  assert.equal(env.GATEHOUSE_REVOCATION_REASON, 'keyCompromise');
  assert.equal(env.GATEHOUSE_REVOKED_AT, revoked.revokedAt);
});

test('agent-run-ca-unreachable-for-a-check-warns-and-keeps-running', async (t) => {
  const fixture = await withCa(t);
  const { dir } = await device(fixture);
  await fixture.server.close();
  const { lines, logger } = capture();
  const controller = new AbortController();
  t.after(() => controller.abort());
  const running = runAgent({ dir, logger, signal: controller.signal, revocationCheckIntervalMs: 20 });
  await pollUntil(
    'three failed revocation checks',
    async () => (lines.filter((l) => l.msg === 'agent.revocation_check_failed').length >= 3 ? true : undefined),
    10_000,
  );
  controller.abort();
  await within(running, 5_000, 'agent run stopping on abort'); // resolves: an unreachable CA never stops the agent
  const failed = lines.filter((l) => l.msg === 'agent.revocation_check_failed');
  assert.ok(failed.every((l) => l.level === 'warn' && /cannot reach the CA/.test(String(l.reason))));
  assert.ok(!lines.some((l) => l.msg === 'agent.cert_revoked'));
});

test('cli-agent-run-exits-75-on-revocation-and-runs-the-hook', async (t) => {
  const fixture = await withCa(t);
  const { dir, serial } = await device(fixture);
  const envFile = join(fixture.root, 'hook-env');
  const child = spawn(
    process.execPath,
    [
      CLI_PATH,
      'agent',
      'run',
      '--dir',
      dir,
      '--revocation-check-interval',
      '100ms',
      '--on-renew',
      `env > '${envFile}'`,
    ],
    { env: { ...process.env, GATEHOUSE_LOG_LEVEL: 'debug' } },
  );
  t.after(() => void child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await pollUntil(
    "the agent's first revocation check",
    async () => (stderr.includes('"agent.revocation_checked"') ? true : undefined),
    15_000,
  );
  await revoke(fixture, serial);
  const code = await within(exited, 15_000, 'agent run exiting on revocation').catch((err: Error) =>
    assert.fail(`${err.message}\n${stderr}`),
  );
  assert.equal(code, 75, stderr);
  const event = stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l.msg === 'agent.cert_revoked');
  assert.equal(event?.serial, serial, stderr);
  assert.match(stderr, /GH_AGENT_MUST_REENROLL/);
  assert.equal(readEnv(envFile).GATEHOUSE_EVENT, 'revoked');
});

test('cli-agent-run-refuses-a-bad-revocation-check-interval', async (t) => {
  const fixture = await withCa(t);
  const { dir } = await device(fixture);
  for (const bad of ['0s', 'soon']) {
    const r = await gatehouse(['agent', 'run', '--dir', dir, '--revocation-check-interval', bad]);
    assert.equal(r.status, 64, `${bad}: ${r.stderr}`);
    assert.match(r.stderr, /--revocation-check-interval/);
  }
});
