/** Whole-table access to a PostgreSQL store for `store copy` (table-copy.ts). */
import type pg from 'pg';
import { GatehouseError } from '../errors/errors.js';
import { POSTGRES_SCHEMA_VERSION, type PgDb } from './postgres-db.js';
import { COPIED_TABLES, type CopiedTable, type TableAccess, type TableReader, type TableRow } from './table-copy.js';

const PAGE = 1000;
/** Identity columns that only stand in for SQLite's rowid: not copied, made again in order. */
const STAND_INS: Partial<Record<CopiedTable, string>> = { certificates: 'seq' };
/** Insertion order: the identity column, else the primary key. */
const ORDER: Record<CopiedTable, string> = {
  tokens: 'id',
  certificates: 'seq',
  names: 'role, name',
  crl_numbers: 'scope',
  meta: 'key',
  audit_events: 'seq',
  secrets: 'name',
  secret_versions: 'name, version',
  secret_grants: 'name, subject',
  posture_reports: 'id',
  advisories: 'id',
};

async function columnInfo(
  client: pg.PoolClient | pg.Pool,
  table: CopiedTable,
): Promise<Array<{ name: string; identity: boolean }>> {
  const { rows } = await client.query(
    `SELECT column_name, is_identity FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`,
    [table],
  );
  return rows
    .map((r) => ({ name: String(r.column_name), identity: r.is_identity === 'YES' }))
    .filter((c) => c.name !== STAND_INS[table]);
}

export function postgresTables(db: PgDb): TableAccess {
  const columnsOf = async (table: CopiedTable) => (await columnInfo(db.pool, table)).map((c) => c.name);
  const schemaVersion = async () =>
    Number((await db.query('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations'))[0]!.v);
  const countsWith = async (client: pg.PoolClient | pg.Pool) => {
    const out: Partial<Record<CopiedTable, number>> = {};
    for (const t of COPIED_TABLES) out[t] = Number((await client.query(`SELECT COUNT(*) AS n FROM ${t}`)).rows[0].n);
    return out as Record<CopiedTable, number>;
  };
  // One client per snapshot or load; a failure rolls back before the client goes back to the pool.
  const withClient = <T>(fn: (client: pg.PoolClient) => Promise<T>, doing: string): Promise<T> =>
    db.withClient(async (client) => {
      try {
        return await fn(client);
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    }, doing);
  return {
    kind: 'postgres',
    knownSchemaVersion: POSTGRES_SCHEMA_VERSION,
    schemaVersion,
    columnsOf,
    counts: async () => {
      try {
        return await countsWith(db.pool);
      } catch (cause) {
        throw db.fail(cause, 'read');
      }
    },
    snapshot: (fn) =>
      withClient(async (client) => {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const reader: TableReader = {
          schemaVersion,
          columnsOf: async (table) => (await columnInfo(client, table)).map((c) => c.name),
          tableNames: async () =>
            (
              await client.query(`SELECT table_name FROM information_schema.tables
          WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations' ORDER BY table_name`)
            ).rows.map((r) => String(r.table_name)),
          async *rows(table, columns) {
            const cursor = `copy_${table}`;
            await client.query(
              `DECLARE ${cursor} NO SCROLL CURSOR FOR SELECT ${columns.map((c) => `"${c}"`).join(', ')} FROM ${table} ORDER BY ${ORDER[table]}`,
            );
            try {
              for (;;) {
                const { rows } = await client.query(`FETCH ${PAGE} FROM ${cursor}`);
                if (rows.length === 0) return;
                yield rows as TableRow[];
              }
            } finally {
              await client.query(`CLOSE ${cursor}`);
            }
          },
        };
        const result = await fn(reader);
        await client.query('COMMIT');
        return result;
      }, 'read'),
    load: (fill) =>
      withClient(async (client) => {
        await client.query('BEGIN');
        // Nobody may write while the copy fills the store (a replica started too early).
        await client.query(`LOCK TABLE ${COPIED_TABLES.join(', ')} IN EXCLUSIVE MODE`);
        const held = Object.entries(await countsWith(client)).filter(([, n]) => n > 0);
        if (held.length)
          throw new GatehouseError(
            'GH_STORE_IO',
            `the target store is not empty (${held.map(([t, n]) => `${t}: ${n}`).join(', ')}): copy into a new store`,
          );
        const identities = new Map<CopiedTable, string[]>();
        await fill(async (table, columns, rows) => {
          if (!identities.has(table))
            identities.set(
              table,
              (await columnInfo(client, table)).filter((c) => c.identity).map((c) => c.name),
            );
          const overriding = identities.get(table)!.some((c) => columns.includes(c)) ? ' OVERRIDING SYSTEM VALUE' : '';
          const values = rows
            .map((_, r) => `(${columns.map((_c, i) => `$${r * columns.length + i + 1}`).join(', ')})`)
            .join(', ');
          await client.query(
            `INSERT INTO ${table} (${columns.map((c) => `"${c}"`).join(', ')})${overriding} VALUES ${values}`,
            rows.flatMap((row) => columns.map((c) => row[c] ?? null)),
          );
        });
        // Copied identity values (the audit sequence, posture report IDs): new rows continue after them.
        for (const [table, columns] of identities) {
          for (const column of columns) {
            await client.query(
              `SELECT setval(pg_get_serial_sequence('${table}', '${column}'), COALESCE((SELECT MAX("${column}") FROM ${table}), 0) + 1, false)`,
            );
          }
        }
        await client.query('COMMIT');
      }, 'write'),
  };
}
