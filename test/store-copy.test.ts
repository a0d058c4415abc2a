/**
 * `gatehouse store copy` both ways against a real PostgreSQL: a CA used for everything (tokens,
 * enrollments, a renewal, a revocation, secrets, posture, advisories, CRLs) is copied from
 * SQLite to PostgreSQL and back, each copy identical row for row with a verifying audit chain,
 * and the CA then serves from PostgreSQL, continuing the chain and the CRL numbers.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { enrollAgent, startCaFixture } from './helpers/ca-fixture.js';
import { gatehouse } from './helpers/cli.js';
import { startCaProcess } from './helpers/ca-process.js';
import { startPostgres, type TestPostgres } from './helpers/postgres.js';
import { writeTree } from './helpers/system-tree.js';
import { reportPosture } from '../src/agent/posture-report.js';
import { renewOnce } from '../src/agent/renew.js';
import { enroll } from '../src/agent/enroll.js';
import { importAdvisories, parseAdvisories } from '../src/ca/vuln-import.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import { openPostgresStore } from '../src/store/postgres.js';
import { COPIED_TABLES, type TableAccess, type TableRow } from '../src/store/table-copy.js';

let pgServer: TestPostgres;
before(async () => {
  pgServer = await startPostgres();
});
after(async () => {
  await pgServer?.stop();
});

/** Every copied table's rows, values made comparable across the stores (BIGINT strings, BYTEA). */
async function contents(tables: TableAccess): Promise<Record<string, unknown[]>> {
  return tables.snapshot(async (reader) => {
    const out: Record<string, unknown[]> = {};
    for (const table of COPIED_TABLES) {
      const columns = (await reader.columnsOf(table)).sort();
      const rows: unknown[] = [];
      for await (const page of reader.rows(table, columns)) {
        rows.push(
          ...page.map((row: TableRow) =>
            Object.fromEntries(
              columns.map((c) => {
                const v = row[c];
                return [
                  c,
                  Buffer.isBuffer(v)
                    ? v.toString('hex')
                    : typeof v === 'string' &&
                        /^-?\d+$/.test(v) &&
                        /(_at|^time|^seq|^id|value|uses|version|size|score|not_)/.test(c)
                      ? Number(v)
                      : v,
                ];
              }),
            ),
          ),
        );
      }
      // Insertion order matters where it is the listing order; elsewhere each store orders by its key.
      out[table] = ['certificates', 'audit_events', 'posture_reports'].includes(table)
        ? rows
        : rows
            .map((r) => JSON.stringify(r))
            .sort()
            .map((r) => JSON.parse(r) as unknown);
    }
    return out;
  });
}

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => gatehouse(args, { env });

test('store-copy-sqlite-to-postgres-and-back-gives-identical-contents-and-the-ca-serves-from-it', async () => {
  const fixture = await startCaFixture({ crlCheckIntervalMs: 200 });
  const caDir = fixture.caDir;
  try {
    // A CA that has done everything once.
    const web = await enrollAgent(fixture, 'web', 'web-1');
    const doomed = await enrollAgent(fixture, 'web', 'doomed-1');
    await renewOnce({ dir: web.dir });
    await fixture.server.authority.revokeCertificate(doomed.identity.serial, 'keyCompromise', { actor: 'test' });
    await fixture.server.authority.createToken({ role: 'web', name: 'later' }, { actor: 'test' });
    await fixture.server.secrets.create(
      { name: 'db-password', value: Buffer.from('s3cret'), grants: ['role:web'] },
      { actor: 'test' },
    );
    await fixture.server.secrets.rotate('db-password', Buffer.from('s3cret-2'), 3_600_000, { actor: 'test' });
    await reportPosture({
      dir: web.dir,
      root: writeTree(join(fixture.root, 'system'), {
        'etc/os-release': 'ID=debian\nVERSION_ID="12"\n',
        'var/lib/dpkg/status': 'Package: openssl\nStatus: install ok installed\nVersion: 3.0.11-1~deb12u2\n',
      }),
    });
    const feed = JSON.parse(readFileSync(resolve('docs/examples/osv-fixture.json'), 'utf8')) as unknown[];
    await importAdvisories(
      fixture.store,
      parseAdvisories(feed, (i) => `r${i}`),
      { actor: 'test' },
      new Date(),
    );
    await fixture.server.crls.refresh(true);
    await fixture.server.close();
    await fixture.store.close();

    const sqliteBefore = openSqliteStore(join(caDir, 'gatehouse.db'), { readonly: true });
    const original = await contents(sqliteBefore.tableAccess());
    await sqliteBefore.close();
    for (const table of [
      'tokens',
      'certificates',
      'names',
      'crl_numbers',
      'meta',
      'audit_events',
      'secrets',
      'secret_versions',
      'secret_grants',
      'posture_reports',
      'advisories',
    ]) {
      assert.ok(original[table]!.length > 0, `the source has ${table} rows`);
    }

    const url = await pgServer.createDatabase();
    const toPg = await cli(['store', 'copy', '--from', `sqlite:${caDir}`, '--to', url, '--json']);
    assert.equal(toPg.status, 0, toPg.stderr);
    const report = JSON.parse(toPg.stdout);
    assert.equal(report.audit.ok, true);
    assert.equal(report.rows.audit_events, original.audit_events!.length);
    assert.match(report.to, /^postgres 127\.0\.0\.1:\d+\/t_\d+$/);
    const pg = await openPostgresStore({ url });
    assert.deepEqual(await contents(pg.tableAccess()), original, 'PostgreSQL holds exactly what SQLite held');
    await pg.close();

    // A copy never goes into a store that holds something.
    const again = await cli(['store', 'copy', '--from', `sqlite:${caDir}`, '--to', url]);
    assert.equal(again.status, 74, again.stderr);
    assert.match(again.stderr, /the target store is not empty \(tokens: \d+/);
    const onto = await cli(['store', 'copy', '--from', url, '--to', `sqlite:${caDir}`]);
    assert.equal(onto.status, 74);
    assert.match(onto.stderr, /gatehouse\.db already exists: copy into a new store/);

    // And back, into a new directory.
    const back = join(fixture.root, 'back');
    mkdirSync(back);
    const toSqlite = await cli(['store', 'copy', '--from', url, '--to', `sqlite:${back}`]);
    assert.equal(toSqlite.status, 0, toSqlite.stderr);
    assert.match(toSqlite.stdout, /audit trail: +intact: \d+ events/);
    const roundTrip = openSqliteStore(join(back, 'gatehouse.db'), { readonly: true });
    assert.deepEqual(await contents(roundTrip.tableAccess()), original, 'SQLite → PostgreSQL → SQLite changes nothing');
    await roundTrip.close();

    // The CA now serves from PostgreSQL: new work continues the chain and the CRL numbers.
    const crlBefore = (original.crl_numbers as Array<{ scope: string; value: number }>).find(
      (r) => r.scope === 'intermediate',
    )!.value;
    const ca = await startCaProcess(caDir, [], { GATEHOUSE_STORE_URL: url });
    try {
      const { token } = JSON.parse(
        (
          await cli(['token', 'create', '--dir', caDir, '--role', 'web', '--name', 'after-copy', '--json'], {
            GATEHOUSE_STORE_URL: url,
          })
        ).stdout,
      );
      await enroll({ caUrl: ca.url, token, dir: join(fixture.root, 'after-copy'), name: 'after-copy' });
      const revoke = await cli(['cert', 'revoke', web.identity.serial, '--dir', caDir], { GATEHOUSE_STORE_URL: url });
      assert.equal(revoke.status, 0, revoke.stderr);
    } finally {
      await ca.stop();
    }
    const verified = await cli(['audit', 'verify', '--dir', caDir, '--json'], { GATEHOUSE_STORE_URL: url });
    assert.equal(JSON.parse(verified.stdout).ok, true, verified.stdout);
    assert.ok(JSON.parse(verified.stdout).count > original.audit_events!.length);
    const after = await openPostgresStore({ url });
    assert.ok(
      (await after.nextCrlNumber('intermediate')) > BigInt(crlBefore),
      'CRL numbers continue above the copied ones',
    );
    await after.close();
  } finally {
    rmSync(fixture.root, { recursive: true, force: true });
  }
});
