/** The schema version a SQLite store file records (0 for a new or empty file), read without migrating it. */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';

export function sqliteSchemaVersion(path: string): number {
  if (!existsSync(path)) return 0;
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
    if (!table) return 0;
    return (db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
  } finally {
    db.close();
  }
}
