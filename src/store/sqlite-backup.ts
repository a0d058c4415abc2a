/**
 * The SQLite side of `gatehouse ca backup` and `ca restore`: a consistent copy of a database
 * that `ca serve` may be writing, and the checks a restored copy must pass.
 *
 * Never a file copy: in WAL mode the newest commits may live only in `gatehouse.db-wal`, and a
 * copy of the main file taken while a checkpoint writes into it can be torn. `VACUUM INTO` from a
 * read-only connection reads one snapshot inside one read transaction (WAL readers do not block
 * the writer, and the writer does not disturb the snapshot), and writes a compact, self-contained
 * database file with no `-wal` beside it.
 */
import { closeSync, constants, fsyncSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { GatehouseError } from '../errors/errors.js';
import { SQLITE_MIGRATIONS } from './sqlite-schema.js';

/** The schema version this Gatehouse writes (the number of migrations it knows). */
export const SQLITE_SCHEMA_VERSION = SQLITE_MIGRATIONS.length;

/**
 * Writes a consistent snapshot of the database at `sourcePath` to `destPath`, which must not
 * exist. The source is opened read-only: nothing in it changes, no migration runs.
 */
export function snapshotSqlite(sourcePath: string, destPath: string, options: { busyTimeoutMs?: number } = {}): void {
  let fd: number;
  try {
    // SQLite fills an existing empty file; creating it 0600 first means the copy of every token
    // hash and of the audit trail is never readable by others, not even for a moment.
    fd = openSync(destPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    closeSync(fd);
  } catch (cause) {
    throw new GatehouseError('GH_FILE_IO', `cannot create ${destPath}: ${(cause as NodeJS.ErrnoException).code}`, {
      cause,
    });
  }
  let db: Database.Database | undefined;
  try {
    db = new Database(sourcePath, { readonly: true, fileMustExist: true });
    db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
    db.prepare('VACUUM INTO ?').run(destPath);
  } catch (cause) {
    throw new GatehouseError(
      'GH_STORE_IO',
      `cannot take a snapshot of the store at ${sourcePath}: ${(cause as Error).message}`,
      { cause },
    );
  } finally {
    db?.close();
  }
  // SQLite does not fsync what VACUUM INTO wrote.
  fd = openSync(destPath, constants.O_RDONLY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export interface SqliteFileReport {
  /** `PRAGMA integrity_check` rows: `['ok']` when the file is sound. */
  integrity: string[];
  /** The highest migration recorded in schema_migrations (0 when there is none). */
  schemaVersion: number;
  rows: { certificates: number; tokens: number; auditEvents: number; names: number };
}

/** Reads a database file without writing to it: its integrity, schema version and row counts. */
export function inspectSqliteFile(path: string): SqliteFileReport {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const integrity = (db.pragma('integrity_check') as Array<{ integrity_check: string }>).map(
      (r) => r.integrity_check,
    );
    const count = (table: string) =>
      Number((db!.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n);
    const tables = new Set(
      (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map(
        (r) => r.name,
      ),
    );
    const countIf = (table: string) => (tables.has(table) ? count(table) : 0);
    const schemaVersion = tables.has('schema_migrations')
      ? Number((db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0)
      : 0;
    return {
      integrity,
      schemaVersion,
      rows: {
        certificates: countIf('certificates'),
        tokens: countIf('tokens'),
        auditEvents: countIf('audit_events'),
        names: countIf('names'),
      },
    };
  } catch (cause) {
    throw new GatehouseError('GH_STORE_IO', `cannot read the database ${path}: ${(cause as Error).message}`, { cause });
  } finally {
    db?.close();
  }
}

/**
 * Raises every CRL number of `scopes` to at least `floor`. A restored CA is behind the one it
 * replaces: relying parties refuse a CRL whose number is lower than one they have seen (a rolled
 * back CRL would un-revoke), so the restored CA must continue above anything the lost one signed.
 */
export function raiseCrlNumbers(path: string, floor: bigint, scopes: readonly string[]): void {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { fileMustExist: true });
    db.defaultSafeIntegers(true);
    const raise = db.prepare(
      'INSERT INTO crl_numbers (scope, value) VALUES (?, ?) ON CONFLICT(scope) DO UPDATE SET value = MAX(value, excluded.value)',
    );
    db.transaction(() => {
      for (const scope of scopes) raise.run(scope, floor);
    }).immediate();
  } catch (cause) {
    throw new GatehouseError('GH_STORE_IO', `cannot update the CRL numbers in ${path}: ${(cause as Error).message}`, {
      cause,
    });
  } finally {
    db?.close();
  }
}
