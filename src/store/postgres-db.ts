/**
 * The PostgreSQL store's connection pool, its errors, transactions and migrations, and the audit
 * append every mutation shares. Every decision that must hold across CA replicas sharing one
 * database is taken by the database, under its locks, never in this process.
 */
import pg from 'pg';
import { GatehouseError } from '../errors/errors.js';
import { GENESIS_HASH, auditHash } from './audit-chain.js';
import { POSTGRES_MIGRATIONS } from './postgres-schema.js';
import { AUDIT_HEAD_KEY, parseHead } from './rows.js';
import type { AuditHead, AuditInput } from './store-audit.js';

export interface PostgresOptions {
  /** postgres://user:pass@host:port/db?sslmode=… ; the standard PG* environment variables fill what the URL leaves out (node-postgres does that). */
  url?: string;
  /** Pool size bound (default 10). */
  poolMax?: number;
  /** Connection timeout (default 5000 ms); statement timeout (default 30000 ms). */
  connectTimeoutMs?: number;
  statementTimeoutMs?: number;
}

/** A pooled client inside a transaction. */
export type Tx = pg.PoolClient;
export type Row = Record<string, unknown>;

export const POSTGRES_SCHEMA_VERSION = POSTGRES_MIGRATIONS.length;

/** Replicas migrating one database at once take turns on this session lock (any constant; "GHMIGRAT"). */
const MIGRATION_LOCK = '4753574d49475241';
const TX_ATTEMPTS = 5;
/** Ten parameters a row, well under the protocol's 65 535 per statement. */
const AUDIT_ROWS_PER_INSERT = 1000;
const NETWORK_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ENOENT',
]);
// Class 08 (connection exception), 28 (authorization), 3D000 (no such database), 53300 (too many
// connections), 57P01–57P03 (server shutting down or starting): the server, not the statement.
const SERVER_UNAVAILABLE = /^(08|28|3D000$|53300$|57P0[123]$)/;

// TLS to the server failed: Node's certificate checks (OpenSSL's verify codes such as
// UNABLE_TO_VERIFY_LEAF_SIGNATURE or CERT_HAS_EXPIRED, ERR_TLS_CERT_ALTNAME_INVALID for a host the
// certificate does not name), handshake errors (ERR_SSL_*), and node-postgres's own when the server
// answers its SSLRequest with no. SQLSTATEs are five characters and never match.
const TLS_CODES =
  /^(ERR_TLS_|ERR_SSL_|UNABLE_TO_)|CERT|^(INVALID_CA|INVALID_PURPOSE|PATH_LENGTH_EXCEEDED|HOSTNAME_MISMATCH)$/;
const TLS_MESSAGES = /^(The server does not support SSL connections|There was an error establishing an SSL connection)/;

function isTlsFailure(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return (
    (typeof code === 'string' && code.length > 5 && TLS_CODES.test(code)) ||
    TLS_MESSAGES.test(String((err as Error).message))
  );
}

function isConnectionFailure(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (NETWORK_ERRORS.has(code) || SERVER_UNAVAILABLE.test(code))) return true;
  if (isTlsFailure(err)) return true;
  // The last two: a pooled client whose connection died mid-request (the server shut down) refuses further queries.
  return /timeout exceeded when trying to connect|Connection terminated|connection timeout|connection error and is not queryable|Client was closed and is not queryable/i.test(
    String((err as Error).message),
  );
}

/** Node's AggregateError (every address of a host refused) has an empty message of its own. */
function describe(err: unknown): string {
  const e = err as Error & { code?: string; errors?: Error[] };
  return e.message || e.errors?.map((inner) => inner.message).join('; ') || e.code || String(err);
}

const isRetryable = (err: unknown) => ['40001', '40P01'].includes((err as { code?: string }).code ?? '');

export class PgDb {
  readonly pool: pg.Pool;
  /** host:port/db, as node-postgres resolved the URL and the PG* variables: what every error names. */
  readonly target: string;
  private readonly user: string;
  private readonly password: string | undefined;

  constructor(options: PostgresOptions) {
    const config: pg.PoolConfig = {
      connectionString: options.url,
      max: options.poolMax ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
      statement_timeout: options.statementTimeoutMs ?? 30_000,
      application_name: 'gatehouse',
    };
    // A Client resolves the connection parameters when constructed, without connecting; it reads
    // the URL's sslrootcert, sslcert and sslkey files then, and throws when one is unreadable.
    let params: pg.Client;
    try {
      params = new pg.Client(config);
    } catch (cause) {
      throw new GatehouseError(
        'GH_CONFIG_INVALID',
        `the PostgreSQL store URL cannot be used: ${describe(cause)} (sslrootcert, sslcert and sslkey name files this process must be able to read)`,
        { cause },
      );
    }
    this.target = `${params.host}:${params.port}/${params.database}`;
    this.user = params.user ?? '';
    this.password = typeof params.password === 'string' && params.password !== '' ? params.password : undefined;
    this.pool = new pg.Pool(config);
    // An idle client whose connection dies (the server restarted) emits 'error' on the pool; the
    // next query reports it. Without a listener the event would end the process.
    this.pool.on('error', () => undefined);
  }

  /** The store error for `cause`, naming the database but never the password. */
  fail(cause: unknown, doing: string): GatehouseError {
    if (cause instanceof GatehouseError) return cause;
    let text = describe(cause);
    if (this.password) text = text.split(this.password).join('***');
    if (isTlsFailure(cause)) {
      const code = (cause as { code?: string }).code;
      text = `TLS to the database failed: ${text}${code ? ` (${code})` : ''}; check the URL's sslmode, that sslrootcert is the CA that signed the server's certificate, and that the certificate names the URL's host`;
    }
    if (isConnectionFailure(cause)) {
      return new GatehouseError(
        'GH_STORE_UNAVAILABLE',
        `cannot use the PostgreSQL store at ${this.target} as user ${this.user}: ${text}`,
        { cause },
      );
    }
    return new GatehouseError('GH_STORE_IO', `store ${doing} failed on PostgreSQL at ${this.target}: ${text}`, {
      cause,
    });
  }

  /** One statement on its own (autocommit): reads, and writes that are one statement. */
  async query(sql: string, params: unknown[] = [], doing = 'read'): Promise<Row[]> {
    try {
      return (await this.pool.query(sql, params)).rows as Row[];
    } catch (cause) {
      throw this.fail(cause, doing);
    }
  }

  /**
   * A pooled client for one job, and its release. A checked-out client has no 'error' listener
   * of the pool's: without this one, the server shutting down between two statements would be
   * an unhandled 'error' that ends the process. A client that saw one is discarded, not pooled.
   */
  async checkout(): Promise<{ client: pg.PoolClient; release(broken?: boolean): void }> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (cause) {
      throw this.fail(cause, 'connection');
    }
    let errored = false;
    const onError = () => {
      errored = true;
    };
    client.on('error', onError);
    return {
      client,
      release: (broken = false) => {
        client.off('error', onError);
        client.release(broken || errored);
      },
    };
  }

  /** Runs `fn` on one pooled client, released after; its errors become store errors naming `doing`. */
  async withClient<T>(fn: (client: pg.PoolClient) => Promise<T>, doing: string): Promise<T> {
    const { client, release } = await this.checkout();
    try {
      return await fn(client);
    } catch (cause) {
      throw this.fail(cause, doing);
    } finally {
      release();
    }
  }

  /**
   * Runs `fn` in one transaction on one pooled client: COMMIT when it returns, ROLLBACK when it
   * throws or when `commit(result)` says no (a refusal records nothing). A serialization failure
   * or deadlock is retried, the whole of `fn` again, a few times.
   */
  async transaction<T>(
    fn: (tx: Tx) => Promise<T>,
    options: { begin?: string; commit?: (result: T) => boolean; doing?: string } = {},
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const { client, release } = await this.checkout();
      let broken = false;
      try {
        await client.query(options.begin ?? 'BEGIN');
        const result = await fn(client);
        await client.query(options.commit?.(result) === false ? 'ROLLBACK' : 'COMMIT');
        return result;
      } catch (cause) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        if (isRetryable(cause) && attempt < TX_ATTEMPTS) {
          await new Promise((r) => setTimeout(r, Math.random() * 10 * attempt));
          continue;
        }
        throw this.fail(cause, options.doing ?? 'write');
      } finally {
        release(broken);
      }
    }
  }

  /**
   * Appends inside the caller's transaction, chained to the recorded head, and records the new
   * head. The upsert locks the head row (creating it on the first append) until commit, so
   * appends from every replica serialize on it and each chains to the one committed before it.
   */
  async appendAudit(tx: Tx, events: AuditInput[]): Promise<void> {
    if (events.length === 0) return;
    const locked = await tx.query(
      `INSERT INTO meta (key, value) VALUES ($1, 'null') ON CONFLICT (key) DO UPDATE SET value = meta.value RETURNING value`,
      [AUDIT_HEAD_KEY],
    );
    let prev =
      parseRecordedHead(locked.rows[0].value as string)?.hash ??
      ((await tx.query('SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1')).rows[0]?.hash as
        string | undefined) ??
      GENESIS_HASH;
    // Multi-row INSERTs: rows take their seq in VALUES order, the order they are chained in.
    let seq = 0;
    for (let start = 0; start < events.length; start += AUDIT_ROWS_PER_INSERT) {
      const values: unknown[] = [];
      const tuples: string[] = [];
      for (const e of events.slice(start, start + AUDIT_ROWS_PER_INSERT)) {
        const hash = auditHash(prev, e);
        const at = values.length;
        tuples.push(`(${Array.from({ length: 10 }, (_, i) => `$${at + i + 1}`).join(', ')})`);
        values.push(
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
        );
        prev = hash;
      }
      const inserted = await tx.query(
        `INSERT INTO audit_events (time, type, actor, serial, fingerprint, token_id, request_id, details, prev_hash, hash)
        VALUES ${tuples.join(', ')} RETURNING seq`,
        values,
      );
      seq = Math.max(seq, ...inserted.rows.map((r: Row) => Number(r.seq)));
    }
    await tx.query('UPDATE meta SET value = $2 WHERE key = $1', [AUDIT_HEAD_KEY, JSON.stringify({ seq, hash: prev })]);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** The recorded head; 'null' is what the very first append inserts to lock the row, and reads back in its own transaction. */
export function parseRecordedHead(value: string | undefined): AuditHead | null {
  return value === 'null' ? null : parseHead(value);
}

async function appliedVersion(client: pg.PoolClient): Promise<number> {
  const exists = await client.query(`SELECT to_regclass('schema_migrations') IS NOT NULL AS e`);
  if (!exists.rows[0].e) return 0;
  return Number((await client.query('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations')).rows[0].v);
}

function newerRefusal(applied: number, target: string): GatehouseError {
  return new GatehouseError(
    'GH_STORE_IO',
    `the PostgreSQL store at ${target} has schema version ${applied}, newer than this Gatehouse knows (${POSTGRES_SCHEMA_VERSION}); upgrade Gatehouse`,
  );
}

/** Applies the missing migrations, each in its own transaction, under the migration lock. */
export async function migrateDb(db: PgDb): Promise<{ from: number; to: number }> {
  const { client, release } = await db.checkout();
  let broken = false;
  try {
    await client.query(`SELECT pg_advisory_lock(x'${MIGRATION_LOCK}'::bigint)`);
    try {
      await client.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)',
      );
      const from = await appliedVersion(client);
      if (from > POSTGRES_SCHEMA_VERSION) throw newerRefusal(from, db.target);
      for (let v = from + 1; v <= POSTGRES_SCHEMA_VERSION; v++) {
        await client.query('BEGIN');
        try {
          await client.query(POSTGRES_MIGRATIONS[v - 1]!);
          await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [v, Date.now()]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK');
          throw new GatehouseError(
            'GH_STORE_IO',
            `migration ${v} of the PostgreSQL store at ${db.target} failed, nothing of it applied: ${describe(err)}`,
            { cause: err },
          );
        }
      }
      return { from, to: Math.max(from, POSTGRES_SCHEMA_VERSION) };
    } finally {
      await client.query(`SELECT pg_advisory_unlock(x'${MIGRATION_LOCK}'::bigint)`);
    }
  } catch (cause) {
    broken = isConnectionFailure(cause);
    throw db.fail(cause, 'migration');
  } finally {
    release(broken);
  }
}

/** Refuses a schema newer than this Gatehouse knows, and an older one (or none) unless migrating. */
export async function checkSchema(db: PgDb, migrate: boolean): Promise<void> {
  if (migrate) {
    await migrateDb(db);
    return;
  }
  await db.withClient(async (client) => {
    const applied = await appliedVersion(client);
    if (applied > POSTGRES_SCHEMA_VERSION) throw newerRefusal(applied, db.target);
    if (applied < POSTGRES_SCHEMA_VERSION) {
      throw new GatehouseError(
        'GH_STORE_IO',
        `the PostgreSQL store at ${db.target} has schema version ${applied} and this Gatehouse uses ${POSTGRES_SCHEMA_VERSION}: run \`gatehouse ca migrate\` first`,
      );
    }
  }, 'schema check');
}
