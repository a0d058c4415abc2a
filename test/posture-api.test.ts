/**
 * POST /v1/posture and `agent report` against a real CA over mutual TLS: a device reports a
 * fixture system (root login on), the CA stores its own score (not the one the agent claims) and
 * audits it; malformed, oversized and anonymous reports are refused and store nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { enrollAgent, startCaFixture } from './helpers/ca-fixture.js';
import { caRequest } from './helpers/ca-http.js';
import { gatehouse } from './helpers/cli.js';
import { reportPosture } from '../src/agent/posture-report.js';
import { isGatehouseError } from '../src/errors/errors.js';
import { runAgent } from '../src/agent/renew-scheduler.js';
import { createLogger } from '../src/log/logger.js';
import { waitFor } from './helpers/procs.js';
import { writeTree } from './helpers/system-tree.js';

function fixtureRoot(dir: string): string {
  const files: Record<string, string> = {
    'etc/os-release': 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
    'etc/ssh/sshd_config': 'PermitRootLogin yes\nPasswordAuthentication no\n',
    'run/systemd/timesync/synchronized': '',
    'var/lib/dpkg/status': 'Package: openssl\nStatus: install ok installed\nVersion: 3.0.11-1~deb12u2\n',
  };
  writeTree(dir, files);
  return dir;
}

test('posture-a-device-reports-over-mtls-the-ca-scores-stores-and-audits-it', async () => {
  const fixture = await startCaFixture();
  try {
    const device = await enrollAgent(fixture, 'web', 'laptop-1');
    const root = fixtureRoot(join(fixture.root, 'system'));
    const { report, received } = await reportPosture({ dir: device.dir, root, now: new Date('2026-03-01T00:00:00Z') });
    assert.ok(received);
    assert.equal(received.spiffeId, 'spiffe://test.internal/web/laptop-1');
    assert.equal(received.score, report.score);
    assert.ok(received.failing.includes('ssh-root-login'));
    const [stored] = await fixture.store.latestPosture();
    assert.equal(stored!.spiffeId, received.spiffeId);
    assert.equal(stored!.serial, device.identity.serial);
    assert.deepEqual(JSON.parse(stored!.report).packages, [
      {
        name: 'openssl',
        version: '3.0.11-1~deb12u2',
        source: 'openssl',
        sourceVersion: '3.0.11-1~deb12u2',
        architecture: null,
      },
    ]);
    const events = await fixture.store.listAudit({ type: 'ca.posture_reported' });
    assert.equal(events.length, 1);
    assert.equal(events[0]!.actor, received.spiffeId);

    // An agent claiming a perfect score is not believed: the CA scores the checks it sent.
    const identity = {
      ca: readFileSync(join(device.dir, 'ca.pem'), 'utf8'),
      key: readFileSync(join(device.dir, 'key.pem'), 'utf8'),
      cert: readFileSync(join(device.dir, 'cert.pem'), 'utf8'),
    };
    const boastful = await caRequest(fixture.url, 'v1/posture', {
      ...identity,
      body: { ...report, score: 100, failing: [] },
    });
    assert.equal(boastful.status, 201, boastful.text);
    assert.equal(boastful.json.score, report.score);
    assert.ok(boastful.json.failing.includes('ssh-root-login'));

    // Refused, audited, nothing stored: malformed, another format, oversized, no certificate.
    const before = (await fixture.store.postureHistory(received.spiffeId, 100)).length;
    const bad = await caRequest(fixture.url, 'v1/posture', {
      ...identity,
      body: { ...report, checks: [{ id: 'x', verdict: 'maybe', weight: 5, reason: 'r' }] },
    });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.json.error.code, 'GH_POSTURE_INVALID');
    assert.match(bad.json.error.message, /checks\.0\.verdict/);
    assert.equal(
      (await caRequest(fixture.url, 'v1/posture', { ...identity, body: { ...report, format: 2 } })).json.error.code,
      'GH_POSTURE_INVALID',
    );
    assert.equal(
      (await caRequest(fixture.url, 'v1/posture', { ...identity, body: 'not json' })).json.error.code,
      'GH_POSTURE_INVALID',
    );
    const huge = await caRequest(fixture.url, 'v1/posture', { ...identity, body: Buffer.alloc(3 * 1024 * 1024, 0x20) });
    assert.equal(huge.status, 413, huge.text);
    const anonymous = await caRequest(fixture.url, 'v1/posture', { ca: identity.ca, body: report });
    assert.equal(anonymous.status, 401, anonymous.text);
    assert.equal((await caRequest(fixture.url, 'v1/posture', { ...identity, method: 'PUT' })).status, 405);
    assert.equal((await fixture.store.postureHistory(received.spiffeId, 100)).length, before, 'nothing stored');
    assert.ok((await fixture.store.listAudit({ type: 'ca.posture_refused' })).length >= 4, 'refusals audited');

    // A revoked device cannot report.
    await fixture.server.authority.revokeCertificate(device.identity.serial, 'keyCompromise', { actor: 'test' });
    await assert.rejects(
      reportPosture({ dir: device.dir, root }),
      (err: unknown) => isGatehouseError(err) && /revoked/.test((err as Error).message),
    );
  } finally {
    await fixture.close();
  }
});

test('posture-agent-report-dry-run-prints-and-sends-nothing; without it the CA records the report', async () => {
  const fixture = await startCaFixture();
  try {
    const device = await enrollAgent(fixture, 'web', 'laptop-2');
    const root = fixtureRoot(join(fixture.root, 'system'));
    const dry = await gatehouse(['agent', 'report', '--dir', device.dir, '--root', root, '--dry-run', '--json']);
    assert.equal(dry.status, 0, dry.stderr);
    const printed = JSON.parse(dry.stdout);
    assert.equal(printed.format, 1);
    assert.ok(printed.failing.includes('ssh-root-login'));
    assert.equal(printed.received, undefined);
    assert.deepEqual(await fixture.store.latestPosture(), [], 'a dry run sends nothing');
    const sent = await gatehouse(['agent', 'report', '--dir', device.dir, '--root', root, '--ca', fixture.url]);
    assert.equal(sent.status, 0, sent.stderr);
    assert.match(sent.stdout, /^score \d+, recorded by the CA at /);
    assert.match(sent.stdout, /FAIL +ssh-root-login +sshd allows root to log in with a password/);
    assert.equal((await fixture.store.latestPosture()).length, 1);
  } finally {
    await fixture.close();
  }
});

test('posture-agent-run-reports-at-start-on-its-interval-and-after-a-renewal', async () => {
  const fixture = await startCaFixture();
  try {
    const device = await enrollAgent(fixture, 'web', 'laptop-3');
    const root = fixtureRoot(join(fixture.root, 'system'));
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({
      level: 'debug',
      write: (l) => void lines.push(JSON.parse(l) as Record<string, unknown>),
    });
    const controller = new AbortController();
    // random 0: the first report at once, then every 0.9 × 300 ms; no renewal is due yet.
    const running = runAgent({
      dir: device.dir,
      logger,
      signal: controller.signal,
      random: () => 0,
      posture: { intervalMs: 300, root },
      secrets: null,
    });
    try {
      await waitFor(
        () => lines.filter((l) => l.msg === 'agent.posture_reported').length >= 2,
        10_000,
        'two scheduled reports',
      );
    } finally {
      controller.abort();
      await running;
    }
    const reported = lines.filter((l) => l.msg === 'agent.posture_reported');
    assert.ok((reported[0]!.failing as string[]).includes('ssh-root-login'));
    assert.ok((await fixture.store.postureHistory('spiffe://test.internal/web/laptop-3', 100)).length >= 2);

    // With reports an hour apart, a renewal makes the next one happen at once.
    const after: Array<Record<string, unknown>> = [];
    const renewLogger = createLogger({
      level: 'debug',
      write: (l) => void after.push(JSON.parse(l) as Record<string, unknown>),
    });
    const later = () => new Date(Date.now() + 18 * 3_600_000);
    const second = new AbortController();
    const run2 = runAgent({
      dir: device.dir,
      logger: renewLogger,
      signal: second.signal,
      now: later,
      random: () => 0.99,
      posture: { intervalMs: 3_600_000, root },
      secrets: null,
    });
    try {
      await waitFor(
        () => after.some((l) => l.msg === 'agent.posture_reported'),
        10_000,
        'a report right after the renewal',
      );
    } finally {
      second.abort();
      await run2;
    }
    const renewedAt = after.findIndex((l) => l.msg === 'agent.cert_renewed');
    const reportedAt = after.findIndex((l) => l.msg === 'agent.posture_reported');
    assert.ok(renewedAt >= 0 && reportedAt > renewedAt, 'the report follows the renewal');
  } finally {
    await fixture.close();
  }
});

test('posture-fleet-posture-lists-scores-worst-first-locally-and-remotely-with-filters', async () => {
  const fixture = await startCaFixture({ metricsListen: '127.0.0.1:0' });
  try {
    const weak = await enrollAgent(fixture, 'web', 'weak-1');
    const strong = await enrollAgent(fixture, 'web', 'strong-1');
    const weakRoot = fixtureRoot(join(fixture.root, 'weak'));
    const strongRoot = fixtureRoot(join(fixture.root, 'strong'));
    writeFileSync(join(strongRoot, 'etc/ssh/sshd_config'), 'PermitRootLogin no\nPasswordAuthentication no\n');
    await reportPosture({ dir: weak.dir, root: weakRoot });
    await reportPosture({ dir: strong.dir, root: strongRoot });
    const local = await gatehouse(['fleet', 'posture', '--dir', fixture.caDir, '--json']);
    assert.equal(local.status, 0, local.stderr);
    const rows = JSON.parse(local.stdout) as Array<{
      name: string;
      spiffeId: string;
      score: number | null;
      reportedAt: string | null;
      failing: string[];
    }>;
    // The admin never reported: no score, listed first; then the weak device, then the strong one.
    assert.deepEqual(
      rows.map((r) => r.name),
      ['admin', 'weak-1', 'strong-1'],
    );
    assert.equal(rows[0]!.reportedAt, null);
    assert.ok(rows[1]!.failing.includes('ssh-root-login'));
    assert.ok(rows[1]!.score! < rows[2]!.score!);
    const remote = await gatehouse([
      'fleet',
      'posture',
      '--identity',
      fixture.adminDir,
      '--ca',
      fixture.url,
      '--below',
      String(rows[2]!.score),
      '--json',
    ]);
    assert.equal(remote.status, 0, remote.stderr);
    assert.deepEqual(
      JSON.parse(remote.stdout).map((r: { name: string }) => r.name),
      ['admin', 'weak-1'],
      'below the strong one: the weak one and the one without a score',
    );
    const stale = await gatehouse(['fleet', 'posture', '--dir', fixture.caDir, '--stale', '1h']);
    assert.equal(stale.status, 0, stale.stderr);
    assert.match(stale.stdout, /spiffe:\/\/test\.internal\/admin\/admin +- +never/);
    assert.doesNotMatch(stale.stdout, /weak-1/);
    assert.equal((await gatehouse(['fleet', 'posture', '--dir', fixture.caDir, '--below', 'x'])).status, 64);

    // Prometheus: identities per score band and the stale ones (the admin never reported).
    const band = (score: number) => (score < 50 ? '0-49' : score < 70 ? '50-69' : score < 90 ? '70-89' : '90-100');
    const bands = await fixture.server.metrics!.registry.getSingleMetricAsString('gatehouse_ca_posture_identities');
    assert.match(bands, /gatehouse_ca_posture_identities\{band="none"\} 1/);
    const expected = new Map<string, number>();
    for (const r of rows.slice(1)) expected.set(band(r.score!), (expected.get(band(r.score!)) ?? 0) + 1);
    for (const [b, n] of expected)
      assert.match(bands, new RegExp(`gatehouse_ca_posture_identities\\{band="${b}"\\} ${n}`));
    assert.match(
      await fixture.server.metrics!.registry.getSingleMetricAsString('gatehouse_ca_posture_stale_identities'),
      /gatehouse_ca_posture_stale_identities 1/,
    );
  } finally {
    await fixture.close();
  }
});

test('posture-a-report-larger-than-a-pipe-buffer-reaches-the-reader-whole (the CLI waits for stdout before it exits)', async () => {
  const tmp = await startCaFixture();
  try {
    const device = await enrollAgent(tmp, 'web', 'big-1');
    const root = fixtureRoot(join(tmp.root, 'big'));
    const many = Array.from(
      { length: 3000 },
      (_, i) => `Package: pkg-${i}\nStatus: install ok installed\nVersion: 1.${i}-1\n`,
    ).join('\n');
    writeFileSync(join(root, 'var/lib/dpkg/status'), many);
    const r = await gatehouse(['agent', 'report', '--dir', device.dir, '--root', root, '--dry-run', '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.length > 200_000, `${r.stdout.length} bytes`);
    assert.equal(JSON.parse(r.stdout).packages.length, 3000, 'the whole report, not the first 64 KiB');
  } finally {
    await tmp.close();
  }
});
