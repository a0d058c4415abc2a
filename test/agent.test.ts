import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { enroll } from '../src/agent/enroll.js';
import { runAgent } from '../src/agent/renew-scheduler.js';
import { backoffMs, renewalTime } from '../src/agent/renew-timing.js';
import { checkStatus, STATUS_EXIT } from '../src/agent/status.js';
import { loadIdentity } from '../src/agent/agent-state.js';
import { recoverIdentityDir, writeIdentityDir } from '../src/files/identity-dir.js';
import { isGatehouseError } from '../src/errors/errors.js';
import { createLogger } from '../src/log/logger.js';
import { startCaFixture, type CaFixture } from './helpers/ca-fixture.js';
import { makeTempDir } from './helpers/tmp.js';

const HOUR = 3_600_000;

async function enrolledDevice(fixture: CaFixture, name = 'dev-1'): Promise<string> {
  const { token } = await fixture.server.authority.createToken({ role: 'web' }, { actor: 'test' });
  const dir = join(fixture.root, name);
  await enroll({ caUrl: fixture.url, token, dir, name });
  return dir;
}

function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(['key.pem', 'cert.pem', 'ca.pem'].map((f) => [f, readFileSync(join(dir, f), 'utf8')]));
}

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  return {
    lines,
    logger: createLogger({ level: 'debug', write: (l) => void lines.push(JSON.parse(l) as Record<string, unknown>) }),
  };
}

test('renewal-time-falls-around-two-thirds-with-jitter', () => {
  const nb = new Date(0);
  const na = new Date(24 * HOUR);
  const fractions = Array.from({ length: 2000 }, () => renewalTime(nb, na).getTime() / (24 * HOUR));
  assert.ok(
    Math.min(...fractions) >= 0.6 - 1e-9 && Math.max(...fractions) <= 0.7334,
    `${Math.min(...fractions)}–${Math.max(...fractions)}`,
  );
  assert.ok(
    Math.max(...fractions) - Math.min(...fractions) > 0.1,
    'a fleet spreads over more than 10 % of the lifetime',
  );
  assert.equal(renewalTime(nb, na, () => 0.5).getTime(), 16 * HOUR);
});

test('backoff-grows-exponentially-and-is-capped', () => {
  assert.equal(
    backoffMs(0, 1000, 300_000, () => 1),
    1000,
  );
  assert.equal(
    backoffMs(3, 1000, 300_000, () => 1),
    8000,
  );
  assert.equal(
    backoffMs(40, 1000, 300_000, () => 1),
    300_000,
  );
  assert.ok(backoffMs(5, 1000, 300_000, () => 0) >= 1000, 'never below the base');
});

test('agent-run-renews-writes-atomically-then-runs-hook', async (t) => {
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const dir = await enrolledDevice(fixture);
  const before = loadIdentity(dir);
  const marker = join(fixture.root, 'hook-ran');
  const { lines, logger } = capture();
  // A clock 18 h ahead (past the latest renewal point, 73 %) puts the 24 h certificate past its renewal point.
  await runAgent({
    dir,
    logger,
    now: () => new Date(Date.now() + 18 * HOUR),
    maxRenewals: 1,
    onRenew: `echo "$GATEHOUSE_SERIAL $GATEHOUSE_EVENT" > '${marker}'`,
  });
  const after = loadIdentity(dir);
  assert.notEqual(after.leaf.serial, before.leaf.serial);
  assert.ok(
    !after.key.export({ type: 'pkcs8', format: 'der' }).equals(before.key.export({ type: 'pkcs8', format: 'der' })),
    'a new key each renewal',
  );
  assert.equal(statSync(join(dir, 'key.pem')).mode & 0o777, 0o600);
  assert.equal(
    readFileSync(marker, 'utf8').trim(),
    `${after.leaf.serial} renewed`,
    'the hook ran after the new files were in place',
  );
  assert.ok(lines.some((l) => l.msg === 'agent.cert_renewed' && l.serial === after.leaf.serial));
  assert.equal(existsSync(join(dir, '.staged')), false);
});

test('agent-run-renewal-refused-as-revoked-says-enroll-again-runs-hook-and-keeps-files', async (t) => {
  // The CA republishes its CRL only every 10 minutes here, so the agent learns of the
  // revocation from the refused renewal rather than from the CRL.
  const fixture = await startCaFixture({ crlCheckIntervalMs: 600_000 });
  t.after(() => fixture.close());
  const dir = await enrolledDevice(fixture);
  const before = snapshot(dir);
  const serial = loadIdentity(dir).leaf.serial;
  await fixture.server.authority.revokeCertificate(serial, 'keyCompromise', { actor: 'test' });
  const marker = join(fixture.root, 'hook-ran');
  const { lines, logger } = capture();
  await assert.rejects(
    runAgent({
      dir,
      logger,
      now: () => new Date(Date.now() + 18 * HOUR),
      onRenew: `echo "$GATEHOUSE_SERIAL $GATEHOUSE_EVENT" > '${marker}'`,
    }),
    (err) => isGatehouseError(err, 'GH_AGENT_MUST_REENROLL') && /revoked.*enroll again/.test(err.message),
  );
  assert.deepEqual(snapshot(dir), before, 'the current files are never deleted or changed');
  const revoked = lines.find((l) => l.msg === 'agent.cert_revoked');
  assert.equal(revoked?.level, 'error');
  assert.equal(revoked?.serial, serial);
  assert.equal(revoked?.source, 'renewal-refused');
  assert.equal(readFileSync(marker, 'utf8').trim(), `${serial} revoked`);
});

test('agent-run-expired-while-machine-was-off-says-enroll-again', async (t) => {
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const dir = await enrolledDevice(fixture);
  const { logger } = capture();
  await assert.rejects(
    runAgent({ dir, logger, now: () => new Date(Date.now() + 25 * HOUR) }),
    (err) => isGatehouseError(err, 'GH_AGENT_MUST_REENROLL') && /expired at .* new join token/.test(err.message),
  );
});

test('agent-run-ca-down-retries-with-backoff-and-keeps-current-cert', async (t) => {
  const fixture = await startCaFixture();
  const dir = await enrolledDevice(fixture);
  await fixture.server.close(); // the CA dies; the directory stays
  t.after(() => fixture.close().catch(() => undefined));
  const before = snapshot(dir);
  const { lines, logger } = capture();
  const controller = new AbortController();
  const watcher = setInterval(() => {
    if (lines.filter((l) => l.msg === 'agent.renew_failed').length >= 4) controller.abort();
  }, 5);
  await runAgent({
    dir,
    logger,
    signal: controller.signal,
    now: () => new Date(Date.now() + 18 * HOUR),
    retryBaseMs: 5,
    retryCapMs: 40,
  });
  clearInterval(watcher);
  const failures = lines.filter((l) => l.msg === 'agent.renew_failed');
  assert.ok(failures.length >= 4);
  assert.deepEqual(
    failures.slice(0, 4).map((l) => l.attempt),
    [1, 2, 3, 4],
  );
  assert.ok(failures.every((l) => l.code === 'GH_CA_UNREACHABLE' && Number(l.retryInMs) <= 40));
  assert.deepEqual(snapshot(dir), before);
});

test('agent-status-exit-codes-ok-warning-critical-unknown', async (t) => {
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const dir = await enrolledDevice(fixture);
  const now = Date.now();
  assert.equal(checkStatus(dir, new Date(now)).level, 'OK');
  assert.equal(checkStatus(dir, new Date(now + 20 * HOUR)).level, 'WARNING');
  assert.equal(
    checkStatus(dir, new Date(now + 2 * HOUR), 23 * HOUR).level,
    'WARNING',
    '--warn-within overrides the default',
  );
  const expired = checkStatus(dir, new Date(now + 25 * HOUR));
  assert.equal(expired.level, 'CRITICAL');
  assert.match(expired.message, /expired/);
  assert.equal(checkStatus(join(fixture.root, 'nothing-here'), new Date(now)).level, 'UNKNOWN');
  assert.deepEqual(STATUS_EXIT, { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 });
  // A key that does not match the certificate is critical.
  const other = await enrolledDevice(fixture, 'dev-2');
  writeFileSync(join(dir, 'key.pem'), readFileSync(join(other, 'key.pem')), { mode: 0o600 });
  assert.equal(checkStatus(dir, new Date(now)).level, 'CRITICAL');
});

test('identity-dir-sealed-stage-is-completed-unsealed-is-discarded', () => {
  const tmp = makeTempDir();
  try {
    const dir = join(tmp.dir, 'id');
    writeIdentityDir(dir, { keyPem: 'KEY1', certPem: 'CERT1', caPem: 'CA1' });
    // A crash after staging but before the COMMIT marker: the old identity stays.
    mkdirSync(join(dir, '.staged'));
    writeFileSync(join(dir, '.staged', 'key.pem'), 'KEY2', { mode: 0o600 });
    assert.equal(recoverIdentityDir(dir), 'discarded');
    assert.equal(readFileSync(join(dir, 'key.pem'), 'utf8'), 'KEY1');
    // A crash after the COMMIT marker, with only the key moved: recovery finishes the set.
    mkdirSync(join(dir, '.staged'));
    writeFileSync(join(dir, '.staged', 'cert.pem'), 'CERT3');
    writeFileSync(join(dir, '.staged', 'ca.pem'), 'CA3');
    writeFileSync(join(dir, 'key.pem'), 'KEY3', { mode: 0o600 });
    writeFileSync(join(dir, '.staged', 'COMMIT'), '');
    assert.equal(recoverIdentityDir(dir), 'completed');
    assert.deepEqual(
      [
        readFileSync(join(dir, 'key.pem'), 'utf8'),
        readFileSync(join(dir, 'cert.pem'), 'utf8'),
        readFileSync(join(dir, 'ca.pem'), 'utf8'),
      ],
      ['KEY3', 'CERT3', 'CA3'],
    );
    assert.equal(existsSync(join(dir, '.staged')), false);
    assert.equal(recoverIdentityDir(dir), 'none');
  } finally {
    tmp.cleanup();
  }
});

test('identity-dir-refuses-world-readable-key', async (t) => {
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const dir = await enrolledDevice(fixture);
  const { chmodSync } = await import('node:fs');
  chmodSync(join(dir, 'key.pem'), 0o644);
  assert.throws(
    () => loadIdentity(dir),
    (err) => isGatehouseError(err, 'GH_CA_DIR_PERMS') && /chmod 600/.test(err.message),
  );
});
