/**
 * The store contract against a real PostgreSQL started for this file (test/helpers/postgres.ts),
 * and what only a shared database has: migrations, connection errors, and two stores (two pools,
 * as two CA replicas) racing on one database.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import {
  POSTGRES_SCHEMA_VERSION,
  migratePostgres,
  openPostgresStore,
  type PostgresStore,
} from '../src/store/postgres.js';
import { verifyAuditChain } from '../src/store/audit-chain.js';
import { isGatehouseError } from '../src/errors/errors.js';
import type { CertRecord } from '../src/store/store-certificates.js';
import { freePort, startPostgres } from './helpers/postgres.js';
import { runStoreContract } from './store-contract.js';

const server = await startPostgres();
after(() => server.stop());

runStoreContract('postgres', async () => {
  const store = await openPostgresStore({ url: await server.createDatabase(), migrate: true });
  return { store, cleanup: async () => undefined };
});

const T0 = new Date('2026-01-01T00:00:00Z');

async function sql(url: string, text: string): Promise<Array<Record<string, unknown>>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows;
  } finally {
    await client.end();
  }
}

/** Two stores on one new database: two pools, as two CA replicas. */
async function replicas(): Promise<[PostgresStore, PostgresStore]> {
  const url = await server.createDatabase();
  return [await openPostgresStore({ url, migrate: true }), await openPostgresStore({ url })];
}

function cert(serial: string): CertRecord {
  return {
    serial,
    fingerprint: `fp-${serial}`,
    name: `dev-${serial}`,
    role: 'web',
    spiffeId: `spiffe://t/web/dev-${serial}`,
    notBefore: T0,
    notAfter: new Date(T0.getTime() + 86_400_000),
    issuedAt: T0,
    certPem: `PEM ${serial}`,
    tokenId: null,
    renewedFrom: null,
    lineage: serial,
    supersededBy: null,
    supersededAt: null,
    revokedAt: null,
    revocationReason: null,
  };
}

test('postgres: migrations-recorded-once-and-not-applied-twice', async () => {
  const url = await server.createDatabase();
  assert.deepEqual(await migratePostgres({ url }), { from: 0, to: POSTGRES_SCHEMA_VERSION });
  assert.deepEqual(await migratePostgres({ url }), { from: POSTGRES_SCHEMA_VERSION, to: POSTGRES_SCHEMA_VERSION });
  const versions = (await sql(url, 'SELECT version FROM schema_migrations ORDER BY version')).map((r) => r.version);
  assert.deepEqual(
    versions,
    Array.from({ length: POSTGRES_SCHEMA_VERSION }, (_, i) => i + 1),
  );
  const store = await openPostgresStore({ url });
  await store.setMeta('k', 'v');
  assert.equal(await store.getMeta('k'), 'v');
  await store.close();
});

test('postgres: schema-newer-than-this-gatehouse-refused', async () => {
  const url = await server.createDatabase();
  await migratePostgres({ url });
  await sql(url, 'INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)');
  const newer = (err: unknown) =>
    isGatehouseError(err, 'GH_STORE_IO') &&
    /schema version 999, newer than this Gatehouse knows .*upgrade Gatehouse/.test(err.message);
  await assert.rejects(openPostgresStore({ url }), newer);
  await assert.rejects(openPostgresStore({ url, migrate: true }), newer);
  await assert.rejects(migratePostgres({ url }), newer);
});

test('postgres: older-schema-refused-without-migrate-and-upgraded-with-it', async () => {
  const url = await server.createDatabase();
  await assert.rejects(
    openPostgresStore({ url }),
    (err) => isGatehouseError(err, 'GH_STORE_IO') && /schema version 0 .*run `gatehouse ca migrate`/.test(err.message),
  );
  assert.deepEqual(
    await sql(url, `SELECT to_regclass('certificates') AS t`),
    [{ t: null }],
    'a refusal changes nothing',
  );
  const store = await openPostgresStore({ url, migrate: true });
  assert.equal(await store.revocationVersion(), 0);
  await store.close();
  assert.deepEqual(await migratePostgres({ url }), { from: POSTGRES_SCHEMA_VERSION, to: POSTGRES_SCHEMA_VERSION });
});

test('postgres: replicas-migrating-at-once-take-turns-and-apply-each-migration-once', async () => {
  const url = await server.createDatabase();
  const results = await Promise.all(Array.from({ length: 4 }, () => migratePostgres({ url })));
  assert.deepEqual(
    results.map((r) => r.to),
    [1, 1, 1, 1].map(() => POSTGRES_SCHEMA_VERSION),
  );
  assert.equal(results.filter((r) => r.from === 0).length, 1, JSON.stringify(results));
  const versions = (await sql(url, 'SELECT version FROM schema_migrations ORDER BY version')).map((r) => r.version);
  assert.deepEqual(
    versions,
    Array.from({ length: POSTGRES_SCHEMA_VERSION }, (_, i) => i + 1),
  );
});

test('postgres: wrong-password-and-unreachable-server-are-store-unavailable-without-the-password', async () => {
  const db = new URL(await server.createDatabase()).pathname.slice(1);
  const { user, password } = server.passwordRole;
  const wrong = 'Wr0ng-secret-in-url';
  await migratePostgres({ url: `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${server.port}/${db}` });
  const unavailable = (where: string, secret: string) => (err: unknown) => {
    assert.ok(isGatehouseError(err, 'GH_STORE_UNAVAILABLE'), String(err));
    assert.ok(err.message.includes(where), err.message);
    assert.ok(!err.message.includes(secret) && !String((err.cause as Error)?.message).includes(secret), err.message);
    return true;
  };
  const badLogin = await openPostgresStore({ url: `postgres://${user}:${wrong}@127.0.0.1:${server.port}/${db}` }).catch(
    (err: unknown) => err,
  );
  unavailable(`127.0.0.1:${server.port}/${db}`, wrong)(badLogin);
  assert.match((badLogin as Error).message, /password authentication failed/);
  const closed = await freePort();
  await assert.rejects(
    openPostgresStore({
      url: `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${closed}/${db}`,
      connectTimeoutMs: 2000,
    }),
    unavailable(`127.0.0.1:${closed}/${db}`, password),
  );
  await assert.rejects(
    migratePostgres({ url: `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${closed}/${db}` }),
    unavailable(`127.0.0.1:${closed}/${db}`, password),
  );
  // The right password opens it: the refusals above were about the login and the port alone.
  const store = await openPostgresStore({
    url: `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${server.port}/${db}`,
  });
  assert.equal(await store.getMeta('none'), null);
  await store.close();
});

test('postgres: a-single-use-token-raced-through-two-replicas-is-used-once', async () => {
  const [a, b] = await replicas();
  try {
    await a.insertToken(
      {
        id: 'race',
        secretHash: 'ab'.repeat(32),
        role: 'web',
        name: null,
        namePattern: null,
        maxUses: 1,
        uses: 0,
        expiresAt: new Date(T0.getTime() + 3_600_000),
        createdAt: T0,
        createdBy: 'test',
        revokedAt: null,
      },
      { time: T0, type: 'ca.token_created', actor: 'test' },
    );
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        (i % 2 ? a : b).commitIssuance({
          cert: cert(i.toString(16).padStart(2, '0')),
          consumeTokenId: 'race',
          now: T0,
          audit: [{ time: T0, type: 'ca.cert_issued', actor: 'test', details: { i } }],
        }),
      ),
    );
    assert.equal(outcomes.filter((o) => o.ok).length, 1, JSON.stringify(outcomes));
    assert.equal(outcomes.filter((o) => !o.ok && o.reason === 'TOKEN_USED').length, 49);
    assert.equal((await b.listCerts()).length, 1);
    assert.equal((await a.getToken('race'))!.uses, 1);
    assert.equal((await a.listAudit({ type: 'ca.cert_issued' })).length, 1, 'the losers audited nothing');
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('postgres: audit-appends-from-two-replicas-form-one-unbroken-chain', async () => {
  const [a, b] = await replicas();
  try {
    const append = (store: PostgresStore, who: string, i: number) =>
      store.appendAudit([
        { time: T0, type: 'ca.admin_call', actor: who, details: { i, part: 1 } },
        { time: T0, type: 'ca.admin_call', actor: who, details: { i, part: 2 } },
      ]);
    await Promise.all(Array.from({ length: 40 }, (_, i) => append(i % 2 ? a : b, i % 2 ? 'a' : 'b', i)));
    const events = await a.listAudit();
    assert.equal(events.length, 80);
    assert.deepEqual(verifyAuditChain(events), { ok: true, count: 80 });
    const seen: number[] = [];
    const { head } = await b.readAuditTrail((e) => void seen.push(e.seq));
    assert.deepEqual(
      head,
      { seq: events.at(-1)!.seq, hash: events.at(-1)!.hash },
      'the recorded head is the last event',
    );
    assert.deepEqual(
      seen,
      events.map((e) => e.seq),
    );
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('postgres: crl-numbers-from-two-replicas-are-distinct-and-increasing', async () => {
  const [a, b] = await replicas();
  try {
    const run = async (store: PostgresStore) => {
      const got: bigint[] = [];
      for (let i = 0; i < 25; i++) got.push(await store.nextCrlNumber('intermediate'));
      return got;
    };
    // Four callers at once, two on each replica, each taking its numbers one after another.
    const runs = await Promise.all([run(a), run(b), run(a), run(b)]);
    for (const got of runs)
      assert.deepEqual(
        got,
        [...got].sort((x, y) => (x < y ? -1 : 1)),
        'increasing for each caller',
      );
    const all = runs.flat().sort((x, y) => (x < y ? -1 : 1));
    assert.deepEqual(
      all,
      Array.from({ length: 100 }, (_, i) => BigInt(i + 1)),
      'each number given once, none skipped',
    );
    assert.equal(await a.nextCrlNumber('intermediate'), 101n);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('postgres: a-renewal-racing-a-lineage-revocation-on-another-replica-never-stays-unrevoked', async () => {
  const [a, b] = await replicas();
  try {
    // The revocation lands at varying points of the renewal's transaction, including while the
    // renewal holds its target's row: its new certificate must be revoked too, or refused.
    for (let round = 0; round < 40; round++) {
      const first = cert(`r${round}-0`);
      await a.commitIssuance({ cert: first, now: T0, audit: [] });
      const renewal = {
        ...cert(`r${round}-1`),
        name: first.name,
        spiffeId: first.spiffeId,
        lineage: first.serial,
        renewedFrom: first.serial,
      };
      const [renewed] = await Promise.all([
        a.commitIssuance({
          cert: renewal,
          renews: first.serial,
          nameClaim: 'lineage',
          now: T0,
          audit: [{ time: T0, type: 'ca.cert_renewed', actor: 'test' }],
        }),
        // eslint-disable-next-line no-restricted-syntax -- a 0–3.5 ms offset varies the interleaving per round
        new Promise((r) => setTimeout(r, (round % 8) * 0.5)).then(() =>
          b.revokeLineage(first.serial, 'keyCompromise', T0, (c) => ({
            time: T0,
            type: 'ca.cert_revoked',
            actor: 'test',
            serial: c.serial,
          })),
        ),
      ]);
      const unrevoked = (await a.listCerts({ lineage: first.serial })).filter((c) => c.revokedAt === null);
      assert.deepEqual(
        unrevoked.map((c) => c.serial),
        [],
        `round ${round}: renewal ${JSON.stringify(renewed)}`,
      );
    }
    assert.deepEqual(verifyAuditChain(await a.listAudit()).ok, true);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});
