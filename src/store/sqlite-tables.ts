/** Whole-table access to a SQLite store for `store copy` (table-copy.ts). */
import type Database from 'better-sqlite3';
import { GatehouseError } from '../errors/errors.js';
import { SQLITE_MIGRATIONS } from './sqlite-schema.js';
import { COPIED_TABLES, type CopiedTable, type TableAccess, type TableReader, type TableRow } from './table-copy.js';

const PAGE = 1000;

export function sqliteTables(db: Database.Database): TableAccess {
  const columnsOf = async (table: CopiedTable) =>
    (db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>).map((c) => c.name);
  const schemaVersion = async () =>
    (db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
  const counts = async () =>
    Object.fromEntries(
      COPIED_TABLES.map((t) => [t, (db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n]),
    ) as Record<CopiedTable, number>;
  const reader: TableReader = {
    schemaVersion,
    columnsOf,
    tableNames: async () =>
      (
        db
          .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY name",
          )
          .all() as Array<{ name: string }>
      ).map((r) => r.name),
    async *rows(table, columns) {
      // Keyset pages on rowid: insertion order, which the certificates' listing order is.
      const page = db.prepare(
        `SELECT rowid AS "__rowid", ${columns.map((c) => `"${c}"`).join(', ')} FROM ${table} WHERE rowid > ? ORDER BY rowid LIMIT ${PAGE}`,
      );
      let after = 0;
      for (;;) {
        const rows = page.all(after) as TableRow[];
        if (rows.length === 0) return;
        after = Number(rows[rows.length - 1]!.__rowid);
        yield rows.map(({ __rowid: _rowid, ...row }) => row);
      }
    },
  };
  return {
    kind: 'sqlite',
    knownSchemaVersion: SQLITE_MIGRATIONS.length,
    schemaVersion,
    columnsOf,
    counts,
    async snapshot(fn) {
      // A deferred transaction in WAL mode reads one snapshot from its first read to its end.
      db.exec('BEGIN');
      try {
        return await fn(reader);
      } finally {
        db.exec('COMMIT');
      }
    },
    async load(fill) {
      db.exec('BEGIN IMMEDIATE');
      try {
        const held = Object.entries(await counts()).filter(([, n]) => n > 0);
        if (held.length)
          throw new GatehouseError(
            'GH_STORE_IO',
            `the target store is not empty (${held.map(([t, n]) => `${t}: ${n}`).join(', ')}): copy into a new store`,
          );
        const integerColumns = new Map<string, Set<string>>();
        await fill(async (table, columns, rows) => {
          let integers = integerColumns.get(table);
          if (!integers) {
            integers = new Set(
              (db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string; type: string }>)
                .filter((c) => /INT/i.test(c.type))
                .map((c) => c.name),
            );
            integerColumns.set(table, integers);
          }
          const insert = db.prepare(
            `INSERT INTO ${table} (${columns.map((c) => `"${c}"`).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`,
          );
          // PostgreSQL gives its BIGINTs as strings: stored as integers here, as the SQLite store writes them.
          for (const row of rows)
            insert.run(columns.map((c) => (integers.has(c) && typeof row[c] === 'string' ? Number(row[c]) : row[c])));
        });
        db.exec('COMMIT');
      } catch (err) {
        db.exec('ROLLBACK');
        throw err;
      }
    },
  };
}
