import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { chmodSync, existsSync, statSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { openSqliteStore } from '../src/store/sqlite.js';
import { verifyAuditChain } from '../src/store/audit-chain.js';
import { isGatehouseError } from '../src/errors/errors.js';
import { makeTempDir } from './helpers/tmp.js';
import { runStoreContract } from './store-contract.js';

runStoreContract('sqlite', async () => {
  const tmp = makeTempDir();
  return { store: openSqliteStore(join(tmp.dir, 'test.db')), cleanup: async () => tmp.cleanup() };
});

test('sqlite: opens-in-wal-mode-with-full-sync-and-migrations-recorded', async () => {
  const tmp = makeTempDir();
  try {
    const path = join(tmp.dir, 'g.db');
    const store = openSqliteStore(path);
    await store.close();
    const db = new Database(path, { readonly: true });
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.ok((db.prepare('SELECT COUNT(*) AS n FROM schema_migrations').get() as { n: number }).n >= 1);
    db.close();
    // Reopening applies nothing twice.
    await openSqliteStore(path).close();
  } finally {
    tmp.cleanup();
  }
});

test('sqlite: store-from-newer-gatehouse-refused', async () => {
  const tmp = makeTempDir();
  try {
    const path = join(tmp.dir, 'g.db');
    await openSqliteStore(path).close();
    const db = new Database(path);
    db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)').run();
    db.close();
    assert.throws(
      () => openSqliteStore(path),
      (err) => isGatehouseError(err, 'GH_STORE_IO') && /newer/.test(err.message),
    );
  } finally {
    tmp.cleanup();
  }
});

test('sqlite: garbage-database-file-refused-with-clear-error', () => {
  const tmp = makeTempDir();
  try {
    const path = join(tmp.dir, 'g.db');
    writeFileSync(path, 'this is not a database'.repeat(100));
    assert.throws(
      () => openSqliteStore(path),
      (err) => isGatehouseError(err, 'GH_STORE_IO') && err.message.includes(path),
    );
  } finally {
    tmp.cleanup();
  }
});

test('sqlite: modified-audit-event-breaks-chain-at-that-event', async () => {
  const tmp = makeTempDir();
  try {
    const path = join(tmp.dir, 'g.db');
    const store = openSqliteStore(path);
    const t = new Date('2026-01-01T00:00:00Z');
    for (let i = 0; i < 5; i++)
      await store.appendAudit([{ time: t, type: 'ca.admin_call', actor: `a${i}`, details: { i } }]);
    const events = await store.listAudit();
    const db = new Database(path);
    db.prepare("UPDATE audit_events SET actor = 'mallory' WHERE seq = ?").run(events[2]!.seq);
    db.close();
    const check = verifyAuditChain(await store.listAudit());
    assert.equal(check.ok, false);
    assert.equal(!check.ok && check.brokenAt, events[2]!.seq);
    const db2 = new Database(path);
    db2.prepare("UPDATE audit_events SET actor = 'a2' WHERE seq = ?").run(events[2]!.seq);
    db2.prepare('DELETE FROM audit_events WHERE seq = ?').run(events[1]!.seq);
    db2.close();
    const afterDelete = verifyAuditChain(await store.listAudit());
    assert.equal(
      !afterDelete.ok && afterDelete.brokenAt,
      events[2]!.seq,
      'deleting an event breaks the link of the one after it',
    );
    await store.close();
  } finally {
    tmp.cleanup();
  }
});

test('sqlite: upgrade-records-the-audit-head-from-the-last-event', async () => {
  const tmp = makeTempDir();
  try {
    const path = join(tmp.dir, 'g.db');
    const store = openSqliteStore(path);
    const t = new Date('2026-01-01T00:00:00Z');
    for (let i = 0; i < 3; i++)
      await store.appendAudit([{ time: t, type: 'ca.admin_call', actor: `a${i}`, details: { i } }]);
    const last = (await store.listAudit()).at(-1)!;
    await store.close();
    // Back to a store from before the head was recorded: schema version 1, no head.
    const db = new Database(path);
    db.prepare("DELETE FROM meta WHERE key = 'audit:head'").run();
    downgradeToVersion2(db);
    db.prepare('DELETE FROM schema_migrations WHERE version > 1').run();
    db.close();
    const upgraded = openSqliteStore(path);
    assert.deepEqual((await upgraded.readAuditTrail(() => undefined)).head, { seq: last.seq, hash: last.hash });
    await upgraded.close();
  } finally {
    tmp.cleanup();
  }
});

/** Undoes migrations 6 (advisories), 5 (posture), 4 (secrets) and 3 (lineage and names), so an upgrade from version 2 can be replayed. */
function downgradeToVersion2(db: Database.Database): void {
  db.exec(`DROP TABLE advisories; DROP TABLE posture_reports; DROP TABLE secret_grants; DROP TABLE secret_versions; DROP TABLE secrets;
    DROP TABLE names; DROP INDEX certificates_lineage;
    ALTER TABLE certificates DROP COLUMN lineage; ALTER TABLE certificates DROP COLUMN superseded_by; ALTER TABLE certificates DROP COLUMN superseded_at;
    DELETE FROM schema_migrations WHERE version > 2;`);
}

test('sqlite: upgrade-to-version-3-walks-renewals-into-lineages-and-reserves-each-name', async () => {
  const tmp = makeTempDir();
  try {
    const path = join(tmp.dir, 'g.db');
    await openSqliteStore(path).close();
    const db = new Database(path);
    downgradeToVersion2(db);
    // A version-2 inventory: a1 renewed twice (a2, then a3), and forked once from a1 (a2b: what
    // version 2 allowed); b1 alone, revoked.
    const insert =
      db.prepare(`INSERT INTO certificates (serial, fingerprint, name, role, spiffe_id, not_before, not_after, issued_at, cert_pem, renewed_from, revoked_at, revocation_reason)
      VALUES (?, ?, ?, 'web', ?, 0, 9999999999999, ?, '', ?, ?, ?)`);
    insert.run('a1', 'f-a1', 'a', 'spiffe://t/web/a', 1, null, null, null);
    insert.run('a2', 'f-a2', 'a', 'spiffe://t/web/a', 2, 'a1', null, null);
    insert.run('a2b', 'f-a2b', 'a', 'spiffe://t/web/a', 3, 'a1', null, null);
    insert.run('a3', 'f-a3', 'a', 'spiffe://t/web/a', 4, 'a2', null, null);
    insert.run('b1', 'f-b1', 'b', 'spiffe://t/web/b', 5, null, 6, 'keyCompromise');
    db.close();

    const store = openSqliteStore(path);
    const row = async (serial: string) => {
      const c = (await store.getCert(serial))!;
      return [c.lineage, c.supersededBy, c.supersededAt?.getTime() ?? null];
    };
    assert.deepEqual(await row('a1'), ['a1', 'a2b', 3], 'superseded by its newest renewal');
    assert.deepEqual(await row('a2'), ['a1', 'a3', 4]);
    assert.deepEqual(await row('a2b'), ['a1', null, null]);
    assert.deepEqual(await row('a3'), ['a1', null, null]);
    assert.deepEqual(await row('b1'), ['b1', null, null]);
    assert.deepEqual(
      (await store.listNameReservations()).map((r) => [r.name, r.lineage, r.reservedAt.getTime()]),
      [
        ['a', 'a1', 4],
        ['b', 'b1', 5],
      ],
      'a revoked name is reserved too',
    );
    await store.close();
  } finally {
    tmp.cleanup();
  }
});

test('sqlite: database-and-its-wal-and-shm-files-are-0600-and-older-wider-modes-are-narrowed', async () => {
  const tmp = makeTempDir();
  const previous = process.umask(0o022); // the common default, under which SQLite would make 0644 files
  try {
    const path = join(tmp.dir, 'g.db');
    const store = openSqliteStore(path);
    await store.setMeta('probe', 'x');
    const modes = (p: string) => (statSync(p).mode & 0o777).toString(8);
    for (const file of [path, `${path}-wal`, `${path}-shm`]) {
      assert.ok(existsSync(file), `${file} exists while the store is open`);
      assert.equal(modes(file), '600', file);
    }
    await store.close();
    // A store created by an older Gatehouse (0644) is narrowed when it is opened.
    chmodSync(path, 0o644);
    const reopened = openSqliteStore(path);
    await reopened.setMeta('probe', 'y');
    for (const file of [path, `${path}-wal`, `${path}-shm`])
      if (existsSync(file)) assert.equal(modes(file), '600', `${file} after reopening`);
    await reopened.close();
  } finally {
    process.umask(previous);
    tmp.cleanup();
  }
});

test('sqlite: processes-upgrading-one-store-at-once-take-turns', async () => {
  // `ca serve --workers N` after an upgrade: N processes open the old store together. Each must
  // read the schema version inside its write transaction, or two apply the same migration.
  const { spawn } = await import('node:child_process');
  const tmp = makeTempDir();
  try {
    const path = join(tmp.dir, 'g.db');
    await openSqliteStore(path).close();
    const db = new Database(path);
    downgradeToVersion2(db);
    db.close();
    const program = `import('${join(process.cwd(), 'dist/src/store/sqlite.js')}').then(async ({ openSqliteStore }) => {
      await openSqliteStore(process.argv[1]).close();
    }).catch((err) => { console.error(err.message); process.exit(1); });`;
    const results = await Promise.all(
      Array.from(
        { length: 6 },
        () =>
          new Promise<{ code: number | null; stderr: string }>((resolve) => {
            const child = spawn(process.execPath, ['-e', program, path], { stdio: ['ignore', 'ignore', 'pipe'] });
            let stderr = '';
            child.stderr.on('data', (d: Buffer) => {
              stderr += d.toString();
            });
            child.once('exit', (code) => resolve({ code, stderr }));
          }),
      ),
    );
    assert.deepEqual(
      results.map((r) => r.code),
      [0, 0, 0, 0, 0, 0],
      results.map((r) => r.stderr).join('\n'),
    );
    const check = new Database(path, { readonly: true });
    const versions = (
      check.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as Array<{ version: number }>
    ).map((r) => r.version);
    check.close();
    assert.deepEqual(
      versions,
      Array.from({ length: versions.length }, (_, i) => i + 1),
      'each migration recorded once',
    );
  } finally {
    tmp.cleanup();
  }
});
