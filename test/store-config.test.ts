/**
 * Where a CA's store is: `store:` in gatehouse.yaml, GATEHOUSE_STORE_URL over it, and a URL
 * that never shows its password in messages or in the config `ca init` writes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCaConfig } from '../src/config/ca-config.js';
import { describeStore, redactedStoreUrl, urlWithoutPassword } from '../src/ca/store-open.js';
import { isGatehouseError } from '../src/errors/errors.js';
import { gatehouse } from './helpers/cli.js';
import { makeTempDir } from './helpers/tmp.js';

const BASE =
  'org: Acme\ntrustDomain: acme.internal\nkeys: { root: root.key, intermediate: intermediate.key }\nroles: { web: { profile: client } }\n';

test('store-config-defaults-to-sqlite-and-reads-postgres-from-the-file-or-the-environment', () => {
  assert.deepEqual(parseCaConfig(BASE, 'test', {}).store, { kind: 'sqlite', url: null, poolMax: 10 });
  const fromFile = parseCaConfig(
    `${BASE}store: { kind: postgres, url: 'postgres://ca@db.internal:5433/gatehouse?sslmode=verify-full', poolMax: 20 }\n`,
    'test',
    {},
  );
  assert.deepEqual(fromFile.store, {
    kind: 'postgres',
    url: 'postgres://ca@db.internal:5433/gatehouse?sslmode=verify-full',
    poolMax: 20,
  });
  const fromEnv = parseCaConfig(BASE, 'test', { GATEHOUSE_STORE_URL: 'postgres://ca@10.0.0.5/gh' });
  assert.deepEqual(fromEnv.store, { kind: 'postgres', url: 'postgres://ca@10.0.0.5/gh', poolMax: 10 });
  assert.equal(
    parseCaConfig(`${BASE}store: { kind: postgres, url: 'postgres://x@y/z' }\n`, 'test', {
      GATEHOUSE_STORE_URL: 'sqlite',
    }).store.kind,
    'sqlite',
    '`sqlite` in the environment names the file',
  );
  for (const [yaml, message] of [
    ['store: { kind: mysql }\n', /store\.kind/],
    ["store: { kind: postgres, url: 'mysql://x' }\n", /store\.url: a postgres:\/\/ URL/],
    ["store: { url: 'postgres://x@y/z' }\n", /store\.url: is for kind: postgres/],
    ['store: { kind: postgres, poolMax: 0 }\n', /store\.poolMax/],
  ] as const) {
    assert.throws(
      () => parseCaConfig(BASE + yaml, 'gatehouse.yaml', {}),
      (err: unknown) => isGatehouseError(err, 'GH_CONFIG_INVALID') && message.test((err as Error).message),
      yaml,
    );
  }
});

test('store-urls-are-shown-without-user-or-password', () => {
  const url = 'postgres://ca:s3cret-pw@db.internal:5433/gatehouse?sslmode=require';
  assert.equal(redactedStoreUrl(url, {}), 'db.internal:5433/gatehouse');
  assert.equal(
    redactedStoreUrl('postgres://', { PGHOST: 'pg.local', PGPORT: '6432', PGDATABASE: 'ca' }),
    'pg.local:6432/ca',
    'the PG* variables fill what the URL leaves out',
  );
  assert.equal(redactedStoreUrl('postgres://', {}), 'localhost:5432/(default)');
  assert.equal(urlWithoutPassword(url), 'postgres://ca@db.internal:5433/gatehouse?sslmode=require');
  assert.equal(urlWithoutPassword('postgres://ca@db/x'), 'postgres://ca@db/x');
  const described = describeStore('/ca', { store: { kind: 'postgres', url, poolMax: 10 } }, {});
  assert.equal(described, 'postgres db.internal:5433/gatehouse');
  assert.ok(!described.includes('s3cret'));
});

test('ca-backup-of-a-postgres-ca-says-to-use-postgresql-tools', async () => {
  const tmp = makeTempDir();
  try {
    const dir = join(tmp.dir, 'ca');
    assert.equal((await gatehouse(['ca', 'init', '--dir', dir])).status, 0);
    const r = await gatehouse(['ca', 'backup', '--dir', dir, '--out', join(tmp.dir, 'b')], {
      env: { GATEHOUSE_STORE_URL: 'postgres://ca:pw@127.0.0.1:1/gh' },
    });
    assert.equal(r.status, 64, r.stderr);
    assert.match(
      r.stderr,
      /this CA's state is in PostgreSQL \(postgres 127\.0\.0\.1:1\/gh\): back the database up with PostgreSQL's own tools/,
    );
    assert.ok(!r.stderr.includes(':pw@'), 'no password in the message');
    assert.ok(!/store:/.test(readFileSync(join(dir, 'gatehouse.yaml'), 'utf8')), 'a SQLite CA writes no store section');
  } finally {
    tmp.cleanup();
  }
});
