/**
 * A CA whose state lives in a real PostgreSQL from `ca init` on, served by two `ca serve`
 * replicas with copies of one CA directory: single-use tokens and first claims of a name are
 * decided in the database (exactly one winner across replicas), a revocation made through one
 * replica is in the other's CRL (checked with openssl) within its refresh, CRL numbers never go
 * back across replicas, and the audit chain that both appended to verifies.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { enroll } from '../src/agent/enroll.js';
import { isGatehouseError } from '../src/errors/errors.js';
import { gatehouse, gatehouseOk } from './helpers/cli.js';
import { startCaProcess, type CaProcess } from './helpers/ca-process.js';
import { caRequest, newCsr } from './helpers/ca-http.js';
import { findLog } from './helpers/log-lines.js';
import { run } from './helpers/run.js';
import { makeTempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/procs.js';
import { postgresForFile } from './helpers/postgres.js';
import { POSTGRES_SCHEMA_VERSION } from '../src/store/postgres.js';

const postgres = postgresForFile();
const tmp = makeTempDir();
after(() => tmp.cleanup());
const cli = gatehouseOk;

test('ca-init-with-a-postgres-url-keeps-the-state-there-from-the-start', async () => {
  const url = await postgres.server.createDatabase();
  const dir = join(tmp.dir, 'ca-init');
  await cli(['ca', 'init', '--dir', dir, '--name', 'Acme', '--trust-domain', 'acme.internal'], {
    GATEHOUSE_STORE_URL: url,
  });
  const yaml = readFileSync(join(dir, 'gatehouse.yaml'), 'utf8');
  assert.match(yaml, /store:\n\s+kind: postgres\n\s+url: postgres:\/\/gatehouse@127\.0\.0\.1:\d+\/t_\d+/);
  assert.ok(!existsSync(join(dir, 'gatehouse.db')), 'no SQLite file');
  // Every later command finds the store through the config alone.
  const verified = JSON.parse(await cli(['audit', 'verify', '--dir', dir, '--json']));
  assert.equal(verified.ok, true);
  assert.equal(verified.count, 2, 'the admin identity and ca.initialized were recorded there');
  const migrated = JSON.parse(await cli(['ca', 'migrate', '--dir', dir, '--json']));
  assert.deepEqual(
    [migrated.from, migrated.to],
    [POSTGRES_SCHEMA_VERSION, POSTGRES_SCHEMA_VERSION],
    'init applied every migration: nothing left',
  );
  assert.match(migrated.store, /^postgres 127\.0\.0\.1:\d+\/t_\d+$/);
  // A second CA into the same database is refused, and leaves nothing behind.
  const again = await gatehouse(['ca', 'init', '--dir', join(tmp.dir, 'ca-init-2')], {
    env: { GATEHOUSE_STORE_URL: url },
  });
  assert.equal(again.status, 73, again.stderr);
  assert.match(
    again.stderr,
    /postgres 127\.0\.0\.1:\d+\/t_\d+ already holds a CA's state \(first event .*\): a replica of that CA needs a copy of its directory, not `ca init`/,
  );
  assert.ok(!existsSync(join(tmp.dir, 'ca-init-2')));
});

test('ca-serve-on-postgres-refuses-an-unreachable-store-clearly', async () => {
  const dir = join(tmp.dir, 'ca-init');
  const r = await gatehouse(['ca', 'serve', '--dir', dir, '--listen', '127.0.0.1:0'], {
    env: { GATEHOUSE_STORE_URL: 'postgres://gatehouse:hunter2-secret@127.0.0.1:1/gh' },
    timeoutMs: 20_000,
  });
  assert.equal(r.status, 69, r.stderr);
  assert.match(r.stderr, /GH_STORE_UNAVAILABLE/);
  assert.ok(!r.stderr.includes('hunter2'), 'no password in the message');
});

test('two-replicas-on-one-postgres-decide-tokens-names-revocations-and-the-audit-chain-together', async () => {
  const url = await postgres.server.createDatabase();
  const dirA = join(tmp.dir, 'replica-a');
  await cli(['ca', 'init', '--dir', dirA, '--name', 'Acme', '--trust-domain', 'acme.internal'], {
    GATEHOUSE_STORE_URL: url,
  });
  // A replica is a copy of the CA directory (keys, config, admin identity) on another machine.
  const dirB = join(tmp.dir, 'replica-b');
  cpSync(dirA, dirB, { recursive: true });
  const replicas: CaProcess[] = [await startCaProcess(dirA), await startCaProcess(dirB)];
  try {
    const [a, b] = replicas as [CaProcess, CaProcess];
    const urls = [a.url, b.url];

    // 50 enrollments with one single-use token, spread over both replicas: exactly one certificate.
    const single = (
      await cli(['token', 'create', '--dir', dirA, '--role', 'web', '--name', 'once', '--ttl', '10m'])
    ).trim();
    const once = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        enroll({ caUrl: urls[i % 2]!, token: single, dir: join(tmp.dir, `once-${i}`), name: 'once' }),
      ),
    );
    assert.equal(once.filter((r) => r.status === 'fulfilled').length, 1, 'one winner');
    for (const r of once) if (r.status === 'rejected') assert.ok(isGatehouseError(r.reason), String(r.reason));
    assert.equal(
      JSON.parse(await cli(['cert', 'list', '--dir', dirA, '--json'])).filter(
        (c: { name: string }) => c.name === 'once',
      ).length,
      1,
    );

    // 20 first enrollments of one name over both, each with its own token: one name, one holder.
    const tokens = await Promise.all(
      Array.from({ length: 20 }, async () =>
        (await cli(['token', 'create', '--dir', dirA, '--role', 'web', '--ttl', '10m'])).trim(),
      ),
    );
    const claims = await Promise.allSettled(
      tokens.map((token, i) =>
        enroll({ caUrl: urls[i % 2]!, token, dir: join(tmp.dir, `claim-${i}`), name: 'db-primary' }),
      ),
    );
    assert.equal(claims.filter((r) => r.status === 'fulfilled').length, 1, 'one holder of the name');

    // A revocation through replica A is in replica B's CRL within its refresh (2 s here).
    const winner = once.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ serial: string }>;
    const crlNumbers: bigint[] = [];
    const crlOf = async (replica: CaProcess) => {
      const file = join(tmp.dir, 'crl.der');
      const res = await caRequest(replica.url, 'crl', { ca: readFileSync(join(dirA, 'root.pem'), 'utf8') });
      assert.equal(res.status, 200);
      writeFileSync(file, res.body);
      const number = (await run('openssl', ['crl', '-inform', 'DER', '-in', file, '-noout', '-crlnumber'])).stdout;
      crlNumbers.push(BigInt(/crlNumber=(0x[0-9A-Fa-f]+)/.exec(number)?.[1] ?? 'x'));
      return (await run('openssl', ['crl', '-inform', 'DER', '-in', file, '-noout', '-text'])).stdout;
    };
    assert.ok(!(await crlOf(b)).toUpperCase().includes(winner.value.serial.toUpperCase()));
    await cli([
      'cert',
      'revoke',
      winner.value.serial,
      '--reason',
      'keyCompromise',
      '--identity',
      join(dirA, 'admin'),
      '--ca',
      a.url,
    ]);
    const revokedAt = Date.now();
    await waitFor(
      async () => (await crlOf(b)).toUpperCase().includes(winner.value.serial.toUpperCase()),
      15_000,
      "replica B's CRL to list the revocation made through A",
    );
    assert.ok(Date.now() - revokedAt < 10_000, 'within a few refresh intervals');
    await crlOf(a);
    await crlOf(b);
    for (let i = 1; i < crlNumbers.length; i++)
      assert.ok(crlNumbers[i]! >= crlNumbers[i - 1]!, `CRL numbers never go back: ${crlNumbers.join(', ')}`);

    // Both replicas appended to one audit chain.
    const verified = JSON.parse(await cli(['audit', 'verify', '--dir', dirB, '--json']));
    assert.equal(verified.ok, true, JSON.stringify(verified.firstBroken));
    const actors = new Set(
      (JSON.parse(await cli(['cert', 'list', '--dir', dirA, '--json'])) as Array<{ role: string }>).map((c) => c.role),
    );
    assert.ok(actors.has('ca-server'), 'each replica issued its own server certificate into the shared inventory');
  } finally {
    for (const r of replicas) await r.stop();
  }
});

test('postgres-down-gives-503-with-retry-after-healthz-says-why-and-the-ca-recovers-by-itself', async () => {
  const url = await postgres.server.createDatabase();
  const dir = join(tmp.dir, 'outage');
  await cli(['ca', 'init', '--dir', dir], { GATEHOUSE_STORE_URL: url });
  const ca = await startCaProcess(dir, ['--metrics-listen', '127.0.0.1:0']);
  const rootPem = readFileSync(join(dir, 'root.pem'), 'utf8');
  const health = async () => {
    const res = await fetch(ca.metricsUrl!.replace(/\/metrics$/, '/healthz'));
    return { status: res.status, body: (await res.json()) as { problem?: string; store?: { reachable: boolean } } };
  };
  try {
    const token = (
      await cli(['token', 'create', '--dir', dir, '--role', 'web', '--name', 'after-outage', '--ttl', '10m'])
    ).trim();
    assert.equal((await health()).status, 200);
    await postgres.server.halt();
    try {
      const { csr } = await newCsr({ commonName: 'after-outage' });
      const refused = await caRequest(ca.url, 'enroll', { ca: rootPem, body: { token, csr } });
      assert.equal(refused.status, 503, refused.text);
      assert.equal(refused.headers['retry-after'], '5');
      assert.equal(refused.json.error.code, 'GH_STORE_UNAVAILABLE');
      assert.match(refused.json.error.message, /^service unavailable: the CA cannot reach its store; retry after 5 s/);
      assert.ok(!refused.text.includes('127.0.0.1:'), 'the database is named in the log only');
      const down = await health();
      assert.equal(down.status, 503);
      assert.match(String(down.body.problem), /the postgres store does not answer/);
      assert.equal(down.body.store?.reachable, false);
      assert.ok(findLog(ca.output(), 'ca.request_failed', { code: 'GH_STORE_UNAVAILABLE' }), 'a clear log line');
    } finally {
      await postgres.server.resume();
    }
    // Back by itself: the token was not consumed by the refused attempt.
    await waitFor(async () => (await health()).status === 200, 20_000, 'the CA to see its store again');
    const identity = await enroll({ caUrl: ca.url, token, dir: join(tmp.dir, 'after-outage'), name: 'after-outage' });
    assert.equal(identity.name, 'after-outage');
    assert.equal(JSON.parse(await cli(['audit', 'verify', '--dir', dir, '--json'])).ok, true);
  } finally {
    await ca.stop();
  }
});
