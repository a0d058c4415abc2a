/**
 * The SQLite store's database: opened with its file modes, pragmas and migrations, and what every
 * area of the store (sqlite-*.ts) shares inside it: write transactions and read errors as
 * GH_STORE_IO, the meta values, and the audit append each mutation makes in its own transaction.
 */
import { chmodSync, closeSync, openSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { GatehouseError } from '../errors/errors.js';
import { GENESIS_HASH, auditHash } from './audit-chain.js';
import { AUDIT_HEAD_KEY, parseHead } from './rows.js';
import { SQLITE_MIGRATIONS } from './sqlite-schema.js';
import type { AuditInput } from './store-audit.js';

export interface SqliteStoreOptions {
  /** Milliseconds to wait for another process's write lock before failing. */
  busyTimeoutMs?: number;
  readonly?: boolean;
}

/**
 * The database holds every token hash and the audit chain: 0600, like the keys beside it.
 * SQLite creates its `-wal` and `-shm` files with the database file's own mode, so creating
 * that file 0600 first covers all three; an older store with wider modes is narrowed here.
 */
function restrictStoreFiles(path: string): void {
  closeSync(openSync(path, 'a', 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/** Opens (and, unless read-only, migrates) the database; any failure is GH_STORE_IO. */
export function openSqliteDatabase(path: string, options: SqliteStoreOptions = {}): Database.Database {
  let db: Database.Database;
  try {
    if (!options.readonly && path !== ':memory:') restrictStoreFiles(path);
    db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: false });
    db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
    if (!options.readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      migrate(db);
    }
  } catch (cause) {
    throw new GatehouseError('GH_STORE_IO', `cannot open the store at ${path}: ${(cause as Error).message}`, { cause });
  }
  return db;
}

function migrate(db: Database.Database): void {
  // The version is read inside the write transaction: processes opening an old store together
  // (`ca serve --workers N` after an upgrade) take turns, and each later one finds nothing to do.
  db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
    const applied =
      (db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
    if (applied > SQLITE_MIGRATIONS.length) {
      throw new GatehouseError(
        'GH_STORE_IO',
        `store schema version ${applied} is newer than this Gatehouse (${SQLITE_MIGRATIONS.length}); upgrade Gatehouse`,
      );
    }
    for (let v = applied + 1; v <= SQLITE_MIGRATIONS.length; v++) {
      db.exec(SQLITE_MIGRATIONS[v - 1]!);
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(v, Date.now());
    }
  }).immediate();
}

export class SqliteDb {
  private readonly stmt;

  constructor(readonly db: Database.Database) {
    this.stmt = {
      lastAudit: db.prepare('SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1'),
      getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      ),
      insertAudit:
        db.prepare(`INSERT INTO audit_events (time, type, actor, serial, fingerprint, token_id, request_id, details, prev_hash, hash)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    };
  }

  /** One IMMEDIATE transaction: it takes the write lock first, so its checks and writes see one state. */
  write<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn).immediate();
    } catch (cause) {
      if (cause instanceof GatehouseError) throw cause;
      throw new GatehouseError('GH_STORE_IO', `store write failed: ${(cause as Error).message}`, { cause });
    }
  }

  /** A read outside a transaction; its failure is GH_STORE_IO too. */
  read<T>(fn: () => T): T {
    try {
      return fn();
    } catch (cause) {
      throw new GatehouseError('GH_STORE_IO', `store read failed: ${(cause as Error).message}`, { cause });
    }
  }

  /**
   * Appends inside the caller's transaction and records the new head (seq and hash of the newest
   * event) in meta. New events chain to the recorded head rather than to the last row, so newest
   * events deleted behind the store's back leave a lasting break instead of a silently shorter chain.
   */
  appendAuditInTx(events: AuditInput[]): void {
    if (events.length === 0) return;
    const head = parseHead(this.metaValue(AUDIT_HEAD_KEY));
    let prev = head?.hash ?? (this.stmt.lastAudit.get() as { hash: string } | undefined)?.hash ?? GENESIS_HASH;
    let seq = 0;
    for (const e of events) {
      const hash = auditHash(prev, e);
      seq = Number(
        this.stmt.insertAudit.run(
          e.time.getTime(),
          e.type,
          e.actor,
          e.serial ?? null,
          e.fingerprint ?? null,
          e.tokenId ?? null,
          e.requestId ?? null,
          JSON.stringify(e.details ?? {}),
          prev,
          hash,
        ).lastInsertRowid,
      );
      prev = hash;
    }
    this.setMetaValue(AUDIT_HEAD_KEY, JSON.stringify({ seq, hash: prev }));
  }

  /** A meta value, read inside the caller's transaction or read. */
  metaValue(key: string): string | undefined {
    return (this.stmt.getMeta.get(key) as { value: string } | undefined)?.value;
  }

  /** Sets a meta value inside the caller's transaction. */
  setMetaValue(key: string, value: string): void {
    this.stmt.setMeta.run(key, value);
  }
}
