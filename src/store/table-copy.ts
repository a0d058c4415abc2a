/**
 * Copying a whole store from one kind to the other (`gatehouse store copy`), table by table:
 * every row read from one consistent snapshot of the source, written to an empty target of the
 * same schema version in one transaction, so a copy is complete or absent. Columns are matched
 * by name; a source column the target lacks stops the copy (nothing may be dropped quietly).
 */
import { GatehouseError } from '../errors/errors.js';

/** The tables in an order that respects their references (secrets before their versions and grants). */
export const COPIED_TABLES = [
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
] as const;

export type CopiedTable = (typeof COPIED_TABLES)[number];
export type TableRow = Record<string, unknown>;

export interface TableReader {
  schemaVersion(): Promise<number>;
  /** Every table the store holds, but its migrations table. */
  tableNames(): Promise<string[]>;
  /** The columns a copy carries: generated stand-ins (PostgreSQL's certificates.seq) are left out. */
  columnsOf(table: CopiedTable): Promise<string[]>;
  /** The rows in their insertion order (rowid, or the identity column), in pages. */
  rows(table: CopiedTable, columns: readonly string[]): AsyncIterable<TableRow[]>;
}

export interface TableAccess {
  /** Runs `fn` inside one read-only snapshot: tables read in it agree with each other. */
  snapshot<T>(fn: (reader: TableReader) => Promise<T>): Promise<T>;
  /** Writes the tables in one transaction, refused unless every copied table is empty. */
  load(
    fill: (
      write: (table: CopiedTable, columns: readonly string[], rows: readonly TableRow[]) => Promise<void>,
    ) => Promise<void>,
  ): Promise<void>;
  /** Row counts per table, for the copy's report and its check. */
  counts(): Promise<Record<CopiedTable, number>>;
  schemaVersion(): Promise<number>;
  /** The newest schema of this kind of store that this Gatehouse knows (each kind numbers its own migrations). */
  readonly knownSchemaVersion: number;
  readonly kind: string;
  columnsOf(table: CopiedTable): Promise<string[]>;
}

export interface CopyReport {
  schemaVersion: number;
  tables: Record<CopiedTable, number>;
}

export async function copyTables(from: TableAccess, to: TableAccess): Promise<CopyReport> {
  // Each kind numbers its own migrations: both stores must be at this Gatehouse's newest schema.
  for (const [side, access] of [
    ['source', from],
    ['target', to],
  ] as const) {
    const version = await access.schemaVersion();
    if (version !== access.knownSchemaVersion)
      throw new GatehouseError(
        'GH_STORE_IO',
        `the ${side} ${access.kind} store has schema version ${version}, and this Gatehouse's is ${access.knownSchemaVersion}: ${version < access.knownSchemaVersion ? 'run `gatehouse ca migrate` on it first' : 'use a newer Gatehouse'}`,
      );
  }
  const fromVersion = from.knownSchemaVersion;
  const tables = await from.snapshot(async (reader) => {
    const held = await reader.tableNames();
    const unknown = held.filter((t) => !(COPIED_TABLES as readonly string[]).includes(t));
    if (unknown.length)
      throw new GatehouseError(
        'GH_STORE_IO',
        `the source store has tables this Gatehouse does not copy: ${unknown.join(', ')}`,
      );
    const copied: Partial<Record<CopiedTable, number>> = {};
    await to.load(async (write) => {
      for (const table of COPIED_TABLES) {
        const columns = await reader.columnsOf(table);
        const targetColumns = new Set(await to.columnsOf(table));
        const missing = columns.filter((c) => !targetColumns.has(c));
        if (missing.length)
          throw new GatehouseError(
            'GH_STORE_IO',
            `the target store's ${table} has no column ${missing.join(', ')}: the stores' schemas differ`,
          );
        let count = 0;
        for await (const page of reader.rows(table, columns)) {
          await write(table, columns, page);
          count += page.length;
        }
        copied[table] = count;
      }
    });
    return copied as Record<CopiedTable, number>;
  });
  const landed = await to.counts();
  for (const table of COPIED_TABLES) {
    if (landed[table] !== tables[table])
      throw new GatehouseError(
        'GH_STORE_IO',
        `the copy of ${table} holds ${landed[table]} rows, the source ${tables[table]}`,
      );
  }
  return { schemaVersion: fromVersion, tables };
}
