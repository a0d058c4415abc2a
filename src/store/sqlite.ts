/**
 * Embedded SQLite store (better-sqlite3). WAL mode with synchronous=FULL: a commit is on disk
 * before it returns, so an issued certificate survives a crash or power loss once the client
 * has it. Issuances arriving in the same event-loop turn share one transaction (group commit),
 * which keeps the fsync cost off each certificate without weakening that guarantee.
 */
import { chmodSync, closeSync, openSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { GatehouseError } from '../errors/errors.js';
import type { CrlReason } from '../pki/crl.js';
import { GENESIS_HASH, auditHash } from './audit-chain.js';
import { SQLITE_MIGRATIONS } from './sqlite-schema.js';
import {
  ADVISORIES_VERSION_META,
  AUDIT_HEAD_KEY,
  auditFromRow,
  certFromRow,
  date,
  parseHead,
  postureFromRow,
  reservationFromRow,
  secretFromRow,
  secretVersionFromRow,
  tokenFromRow,
  type Row,
} from './rows.js';
import { sqliteTables } from './sqlite-tables.js';
import type { TableAccess } from './table-copy.js';
import type { Store } from './store.js';
import type { AuditFilter, AuditHead, AuditInput, AuditRecord } from './store-audit.js';
import type {
  CertFilter,
  CertRecord,
  CertState,
  IssuanceCommit,
  IssuanceOutcome,
  NameClaim,
  NameReservation,
  RevokedSerial,
} from './store-certificates.js';
import type { PostureRecord, AdvisoryImport, AdvisoryRecord } from './store-posture.js';
import {
  SECRETS_KEY_ID_META,
  type NewSecretVersion,
  type SecretGrantOutcome,
  type SecretGrantRecord,
  type SecretListing,
  type SecretReadCommit,
  type SecretRecord,
  type SecretVersionRecord,
  type SecretWriteOutcome,
} from './store-secrets.js';
import type { TokenRecord } from './store-tokens.js';

interface PendingIssuance {
  commit: IssuanceCommit;
  resolve: (outcome: IssuanceOutcome) => void;
  reject: (err: unknown) => void;
}

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

export function openSqliteStore(path: string, options: SqliteStoreOptions = {}): SqliteStore {
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
  return new SqliteStore(db);
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

const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  private pending: PendingIssuance[] = [];
  private flushScheduled = false;
  private readonly stmt;

  constructor(private readonly db: Database.Database) {
    this.stmt = {
      insertCert:
        db.prepare(`INSERT INTO certificates (serial, fingerprint, name, role, spiffe_id, not_before, not_after, issued_at, cert_pem, token_id, renewed_from, lineage)
        VALUES (@serial, @fingerprint, @name, @role, @spiffeId, @notBefore, @notAfter, @issuedAt, @certPem, @tokenId, @renewedFrom, @lineage)`),
      consumeToken: db.prepare(
        'UPDATE tokens SET uses = uses + 1 WHERE id = ? AND uses < max_uses AND revoked_at IS NULL AND expires_at > ?',
      ),
      getToken: db.prepare('SELECT * FROM tokens WHERE id = ?'),
      getCert: db.prepare('SELECT * FROM certificates WHERE serial = ?'),
      // The same rows as listCerts({ name, role, state: 'active', now, limit: 1 }) (the certificates_name index).
      activeHolder: db.prepare(
        'SELECT serial, lineage FROM certificates WHERE name = ? AND role = ? AND revoked_at IS NULL AND not_after > ? ORDER BY issued_at DESC, serial LIMIT 1',
      ),
      lineageHead: db.prepare(
        'SELECT serial, revoked_at, not_after FROM certificates WHERE lineage = ? ORDER BY issued_at DESC, rowid DESC LIMIT 1',
      ),
      renewalTarget: db.prepare('SELECT superseded_by, revoked_at FROM certificates WHERE serial = ?'),
      supersede: db.prepare('UPDATE certificates SET superseded_by = ?, superseded_at = ? WHERE serial = ?'),
      getName: db.prepare('SELECT * FROM names WHERE role = ? AND name = ?'),
      // A reservation keeps its date while its lineage holds it; a replacement starts a new one.
      claimName: db.prepare(`INSERT INTO names (role, name, spiffe_id, lineage, reserved_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT(role, name) DO UPDATE SET spiffe_id = excluded.spiffe_id, lineage = excluded.lineage,
          reserved_at = CASE WHEN names.lineage = excluded.lineage THEN names.reserved_at ELSE excluded.reserved_at END`),
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

  private write<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn).immediate();
    } catch (cause) {
      if (cause instanceof GatehouseError) throw cause;
      throw new GatehouseError('GH_STORE_IO', `store write failed: ${(cause as Error).message}`, { cause });
    }
  }

  private read<T>(fn: () => T): T {
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
  private appendAuditInTx(events: AuditInput[]): void {
    if (events.length === 0) return;
    const head = parseHead((this.stmt.getMeta.get(AUDIT_HEAD_KEY) as { value: string } | undefined)?.value);
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
    this.stmt.setMeta.run(AUDIT_HEAD_KEY, JSON.stringify({ seq, hash: prev }));
  }

  async insertToken(token: TokenRecord, audit: AuditInput): Promise<void> {
    this.write(() => {
      this.db
        .prepare(
          `INSERT INTO tokens (id, secret_hash, role, name, name_pattern, max_uses, uses, expires_at, created_at, created_by)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          token.id,
          token.secretHash,
          token.role,
          token.name,
          token.namePattern,
          token.maxUses,
          token.uses,
          token.expiresAt.getTime(),
          token.createdAt.getTime(),
          token.createdBy,
        );
      this.appendAuditInTx([audit]);
    });
  }

  async getToken(id: string): Promise<TokenRecord | null> {
    const row = this.read(() => this.stmt.getToken.get(id) as Row | undefined);
    return row ? tokenFromRow(row) : null;
  }

  async listTokens(): Promise<TokenRecord[]> {
    return this.read(() =>
      (this.db.prepare('SELECT * FROM tokens ORDER BY created_at DESC').all() as Row[]).map(tokenFromRow),
    );
  }

  async revokeToken(id: string, at: Date, audit: AuditInput): Promise<TokenRecord | null> {
    return this.write(() => {
      const row = this.stmt.getToken.get(id) as Row | undefined;
      if (!row) return null;
      if (row.revoked_at === null) {
        this.db.prepare('UPDATE tokens SET revoked_at = ? WHERE id = ?').run(at.getTime(), id);
        this.appendAuditInTx([audit]);
      }
      return tokenFromRow(this.stmt.getToken.get(id) as Row);
    });
  }

  commitIssuance(commit: IssuanceCommit): Promise<IssuanceOutcome> {
    return new Promise((resolve, reject) => {
      this.pending.push({ commit, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flushIssuances());
      }
    });
  }

  private flushIssuances(): void {
    const batch = this.pending;
    this.pending = [];
    this.flushScheduled = false;
    let outcomes: IssuanceOutcome[];
    try {
      outcomes = this.write(() => batch.map(({ commit }) => this.commitOneInTx(commit)));
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => p.resolve(outcomes[i]!));
  }

  private commitOneInTx({
    cert,
    consumeTokenId,
    now,
    audit,
    nameClaim = 'replace',
    renews,
  }: IssuanceCommit): IssuanceOutcome {
    // Every check reads before anything is written, so a refusal leaves this item's (and the
    // batch's) state untouched; the transaction holds SQLite's write lock, so nothing changes
    // between a check and the writes. Items earlier in the batch were written on this
    // connection in this transaction, so two issuances in one batch see each other here.
    const nameRefusal = this.nameClaimRefusal(cert, nameClaim, now);
    if (nameRefusal) return nameRefusal;
    if (renews !== undefined) {
      const target = this.stmt.renewalTarget.get(renews) as
        { superseded_by: string | null; revoked_at: number | null } | undefined;
      if (!target || target.superseded_by !== null || target.revoked_at !== null) {
        return { ok: false, reason: 'NOT_LINEAGE_HEAD', supersededBy: target?.superseded_by ?? null };
      }
    }
    if (consumeTokenId !== undefined) {
      // The conditional UPDATE is the race arbiter: of N concurrent enrollments on a
      // single-use token, exactly one sees a changed row.
      if (this.stmt.consumeToken.run(consumeTokenId, now.getTime()).changes !== 1) {
        const row = this.stmt.getToken.get(consumeTokenId) as Row | undefined;
        if (!row) return { ok: false, reason: 'TOKEN_UNKNOWN' };
        if (row.revoked_at !== null) return { ok: false, reason: 'TOKEN_REVOKED' };
        if (Number(row.expires_at) <= now.getTime()) return { ok: false, reason: 'TOKEN_EXPIRED' };
        return { ok: false, reason: 'TOKEN_USED' };
      }
    }
    this.stmt.insertCert.run({
      serial: cert.serial,
      fingerprint: cert.fingerprint,
      name: cert.name,
      role: cert.role,
      spiffeId: cert.spiffeId,
      notBefore: cert.notBefore.getTime(),
      notAfter: cert.notAfter.getTime(),
      issuedAt: cert.issuedAt.getTime(),
      certPem: cert.certPem,
      tokenId: cert.tokenId,
      renewedFrom: cert.renewedFrom,
      lineage: cert.lineage,
    });
    if (renews !== undefined) this.stmt.supersede.run(cert.serial, cert.issuedAt.getTime(), renews);
    this.stmt.claimName.run(cert.role, cert.name, cert.spiffeId, cert.lineage, now.getTime());
    this.appendAuditInTx(audit);
    return { ok: true };
  }

  /** Why `cert` may not take its name under `claim`, or null (store-certificates.ts NameClaim). */
  private nameClaimRefusal(cert: CertRecord, claim: NameClaim, now: Date): IssuanceOutcome | null {
    if (claim === 'replace') return null;
    const reserved = this.stmt.getName.get(cert.role, cert.name) as Row | undefined;
    if (reserved && reserved.lineage !== cert.lineage) {
      const head = this.stmt.lineageHead.get(reserved.lineage) as
        { serial: string; revoked_at: number | null; not_after: number } | undefined;
      const active = head !== undefined && head.revoked_at === null && head.not_after > now.getTime();
      return { ok: false, reason: 'NAME_TAKEN', heldBy: head?.serial ?? (reserved.lineage as string), active };
    }
    if (claim === 'first') {
      // An active holder without a reservation (a store upgraded mid-flight): still not taken over.
      const holder = this.stmt.activeHolder.get(cert.name, cert.role, now.getTime()) as
        { serial: string; lineage: string | null } | undefined;
      if (holder && (holder.lineage ?? holder.serial) !== cert.lineage)
        return { ok: false, reason: 'NAME_TAKEN', heldBy: holder.serial, active: true };
    }
    return null;
  }

  async getCert(serial: string): Promise<CertRecord | null> {
    const row = this.read(() => this.stmt.getCert.get(serial) as Row | undefined);
    return row ? certFromRow(row) : null;
  }

  async listCerts(filter: CertFilter = {}): Promise<CertRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const now = (filter.now ?? new Date()).getTime();
    if (filter.role) {
      where.push('role = ?');
      params.push(filter.role);
    }
    if (filter.name) {
      where.push('name = ?');
      params.push(filter.name);
    }
    if (filter.lineage) {
      where.push('lineage = ?');
      params.push(filter.lineage);
    }
    if (filter.state === 'revoked') where.push('revoked_at IS NOT NULL');
    if (filter.state === 'expired') {
      where.push('revoked_at IS NULL AND not_after <= ?');
      params.push(now);
    }
    if (filter.state === 'active' || filter.expiringBefore) {
      where.push('revoked_at IS NULL AND not_after > ?');
      params.push(now);
    }
    if (filter.expiringBefore) {
      where.push('not_after < ?');
      params.push(filter.expiringBefore.getTime());
    }
    if (filter.excludeSuperseded) {
      // Issue order, not notAfter: a renewal in the same second has the same notAfter (whole seconds in DER).
      where.push(`NOT EXISTS (SELECT 1 FROM certificates later WHERE later.name = certificates.name AND later.role = certificates.role
        AND later.revoked_at IS NULL AND (later.issued_at, later.rowid) > (certificates.issued_at, certificates.rowid))`);
    }
    const sql = `SELECT * FROM certificates ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY issued_at DESC, serial LIMIT ?`;
    params.push(filter.limit ?? 10_000);
    return this.read(() => (this.db.prepare(sql).all(...params) as Row[]).map(certFromRow));
  }

  async countCertsByState(now: Date): Promise<Record<CertState, number>> {
    // Counts over indexes: no certificate row is read except revoked ones (the unary + keeps the
    // last count on the small revoked index instead of visiting every unexpired row).
    const t = now.getTime();
    const row = this.read(
      () =>
        this.db
          .prepare(
            `SELECT
        (SELECT COUNT(*) FROM certificates) AS total,
        (SELECT COUNT(*) FROM certificates WHERE not_after > ?) AS unexpired,
        (SELECT COUNT(*) FROM certificates WHERE revoked_at IS NOT NULL) AS revoked,
        (SELECT COUNT(*) FROM certificates WHERE revoked_at IS NOT NULL AND +not_after > ?) AS revoked_unexpired`,
          )
          .get(t, t) as Record<string, number>,
    );
    const active = row.unexpired! - row.revoked_unexpired!;
    return { active, revoked: row.revoked!, expired: row.total! - row.revoked! - active };
  }

  async revokeCert(serial: string, reason: CrlReason, at: Date, audit: AuditInput): Promise<CertRecord | null> {
    return this.write(() => {
      const select = this.db.prepare('SELECT * FROM certificates WHERE serial = ?');
      const row = select.get(serial) as Row | undefined;
      if (!row) return null;
      if (row.revoked_at === null) {
        this.db
          .prepare('UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE serial = ?')
          .run(at.getTime(), reason, serial);
        this.db
          .prepare(
            `INSERT INTO meta (key, value) VALUES ('revocation_version', '1')
          ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1`,
          )
          .run();
        this.appendAuditInTx([audit]);
      }
      return certFromRow(select.get(serial) as Row);
    });
  }

  async revokeLineage(
    lineage: string,
    reason: CrlReason,
    at: Date,
    auditFor: (cert: CertRecord) => AuditInput,
    leading: AuditInput[] = [],
  ): Promise<CertRecord[]> {
    return this.write(() => {
      const rows = this.db
        .prepare('SELECT * FROM certificates WHERE lineage = ? AND revoked_at IS NULL ORDER BY issued_at, rowid')
        .all(lineage) as Row[];
      if (rows.length === 0) {
        this.appendAuditInTx(leading);
        return [];
      }
      const revoke = this.db.prepare('UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE serial = ?');
      const revoked = rows.map((row) => {
        revoke.run(at.getTime(), reason, row.serial);
        return { ...certFromRow(row), revokedAt: at, revocationReason: reason };
      });
      this.db
        .prepare(
          `INSERT INTO meta (key, value) VALUES ('revocation_version', '1')
        ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1`,
        )
        .run();
      this.appendAuditInTx([...leading, ...revoked.map(auditFor)]);
      return revoked;
    });
  }

  async getNameReservation(role: string, name: string): Promise<NameReservation | null> {
    const row = this.read(() => this.stmt.getName.get(role, name) as Row | undefined);
    return row ? reservationFromRow(row) : null;
  }

  async listNameReservations(): Promise<NameReservation[]> {
    return this.read(() =>
      (this.db.prepare('SELECT * FROM names ORDER BY role, name').all() as Row[]).map(reservationFromRow),
    );
  }

  async releaseName(role: string, name: string, audit: AuditInput): Promise<NameReservation | null> {
    return this.write(() => {
      const row = this.stmt.getName.get(role, name) as Row | undefined;
      if (!row) return null;
      this.db.prepare('DELETE FROM names WHERE role = ? AND name = ?').run(role, name);
      this.appendAuditInTx([audit]);
      return reservationFromRow(row);
    });
  }

  async listRevokedUnexpired(now: Date): Promise<RevokedSerial[]> {
    return this.read(() =>
      (
        this.db
          .prepare(
            'SELECT serial, revoked_at, revocation_reason FROM certificates WHERE revoked_at IS NOT NULL AND not_after > ? ORDER BY revoked_at',
          )
          .all(now.getTime()) as Row[]
      ).map((r) => ({
        serial: r.serial as string,
        revokedAt: date(r.revoked_at),
        reason: r.revocation_reason as CrlReason,
      })),
    );
  }

  async revocationVersion(): Promise<number> {
    const row = this.read(
      () =>
        this.db.prepare("SELECT value FROM meta WHERE key = 'revocation_version'").get() as
          { value: string } | undefined,
    );
    return row ? Number(row.value) : 0;
  }

  async nextCrlNumber(scope: string): Promise<bigint> {
    return this.write(() => {
      this.db
        .prepare(
          'INSERT INTO crl_numbers (scope, value) VALUES (?, 1) ON CONFLICT(scope) DO UPDATE SET value = value + 1',
        )
        .run(scope);
      return BigInt(
        (this.db.prepare('SELECT value FROM crl_numbers WHERE scope = ?').get(scope) as { value: number }).value,
      );
    });
  }

  async appendAudit(events: AuditInput[]): Promise<void> {
    if (events.length) this.write(() => this.appendAuditInTx(events));
  }

  async listAudit(filter: AuditFilter = {}): Promise<AuditRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.type) {
      where.push('type = ?');
      params.push(filter.type);
    }
    if (filter.actor) {
      where.push('actor LIKE ?');
      params.push(`%${filter.actor}%`);
    }
    if (filter.serial) {
      where.push('serial = ?');
      params.push(filter.serial);
    }
    if (filter.since) {
      where.push('time >= ?');
      params.push(filter.since.getTime());
    }
    if (filter.until) {
      where.push('time < ?');
      params.push(filter.until.getTime());
    }
    if (filter.afterSeq !== undefined) {
      where.push('seq > ?');
      params.push(filter.afterSeq);
    }
    if (filter.hash) {
      where.push('hash = ?');
      params.push(filter.hash);
    }
    const sql = `SELECT * FROM audit_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq LIMIT ?`;
    params.push(filter.limit ?? 1_000_000);
    return this.read(() => (this.db.prepare(sql).all(...params) as Row[]).map(auditFromRow));
  }

  async readAuditTrail(visit: (record: AuditRecord) => void): Promise<{ head: AuditHead | null }> {
    // A deferred transaction that only reads: in WAL mode every statement in it sees one snapshot.
    return this.read(() =>
      this.db.transaction(() => {
        const head = parseHead((this.stmt.getMeta.get(AUDIT_HEAD_KEY) as { value: string } | undefined)?.value);
        for (const row of this.db.prepare('SELECT * FROM audit_events ORDER BY seq').iterate())
          visit(auditFromRow(row as Row));
        return { head };
      })(),
    );
  }

  // ------------------------------------------------------------------ secrets

  /**
   * Inside a write transaction: the sealed version is under the store's master key, or this is
   * the first sealed version and its key becomes the store's. A rekey that committed since the
   * caller sealed makes this KEY_CHANGED, so nothing sealed under a retired key is ever stored.
   */
  private secretKeyRefusal(keyId: string): SecretWriteOutcome | null {
    const current = (this.stmt.getMeta.get(SECRETS_KEY_ID_META) as { value: string } | undefined)?.value;
    if (current === undefined) {
      this.stmt.setMeta.run(SECRETS_KEY_ID_META, keyId);
      return null;
    }
    return current === keyId ? null : { ok: false, reason: 'KEY_CHANGED', keyId: current };
  }

  private insertSecretVersion(v: NewSecretVersion): void {
    this.db
      .prepare(
        `INSERT INTO secret_versions (name, version, created_at, expires_at, key_id, sealed_key, iv, ciphertext, tag, checksum, size)
      VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        v.name,
        v.version,
        v.createdAt.getTime(),
        v.keyId,
        v.sealedKey,
        v.iv,
        v.ciphertext,
        v.tag,
        v.checksum,
        v.size,
      );
  }

  async createSecret(
    input: { version: NewSecretVersion; grants: string[]; at: Date },
    audit: AuditInput,
  ): Promise<SecretWriteOutcome> {
    const v = input.version;
    return this.write((): SecretWriteOutcome => {
      const existing = this.db.prepare('SELECT name FROM secrets WHERE lower(name) = lower(?)').get(v.name) as
        { name: string } | undefined;
      if (existing) return { ok: false, reason: 'EXISTS', existing: existing.name };
      const keyRefusal = this.secretKeyRefusal(v.keyId);
      if (keyRefusal) return keyRefusal;
      const at = input.at.getTime();
      this.db
        .prepare('INSERT INTO secrets (name, created_at, updated_at, current_version) VALUES (?, ?, ?, ?)')
        .run(v.name, at, at, v.version);
      this.insertSecretVersion(v);
      const grant = this.db.prepare('INSERT OR IGNORE INTO secret_grants (name, subject, granted_at) VALUES (?, ?, ?)');
      for (const subject of input.grants) grant.run(v.name, subject, at);
      this.appendAuditInTx([audit]);
      return { ok: true };
    });
  }

  async rotateSecret(
    input: { version: NewSecretVersion; at: Date; previousExpiresAt: Date | null },
    audit: AuditInput,
  ): Promise<SecretWriteOutcome> {
    const v = input.version;
    return this.write((): SecretWriteOutcome => {
      const secret = this.db.prepare('SELECT current_version FROM secrets WHERE name = ?').get(v.name) as
        { current_version: number } | undefined;
      if (!secret) return { ok: false, reason: 'NOT_FOUND' };
      const previous = Number(secret.current_version);
      if (previous !== v.version - 1) return { ok: false, reason: 'VERSION_CHANGED', currentVersion: previous };
      const keyRefusal = this.secretKeyRefusal(v.keyId);
      if (keyRefusal) return keyRefusal;
      if (input.previousExpiresAt === null)
        this.db.prepare('DELETE FROM secret_versions WHERE name = ? AND version = ?').run(v.name, previous);
      else
        this.db
          .prepare('UPDATE secret_versions SET expires_at = ? WHERE name = ? AND version = ?')
          .run(input.previousExpiresAt.getTime(), v.name, previous);
      this.insertSecretVersion(v);
      this.db
        .prepare('UPDATE secrets SET current_version = ?, updated_at = ? WHERE name = ?')
        .run(v.version, input.at.getTime(), v.name);
      this.appendAuditInTx([audit]);
      return { ok: true };
    });
  }

  private grantedSubjects(name: string): string[] {
    return (
      this.db.prepare('SELECT subject FROM secret_grants WHERE name = ? ORDER BY subject').all(name) as Array<{
        subject: string;
      }>
    ).map((r) => r.subject);
  }

  async grantSecret(
    name: string,
    subjects: string[],
    at: Date,
    limit: number,
    auditFor: (changed: string[]) => AuditInput[],
  ): Promise<SecretGrantOutcome> {
    return this.write((): SecretGrantOutcome => {
      if (!this.db.prepare('SELECT 1 FROM secrets WHERE name = ?').get(name)) return { ok: false, reason: 'NOT_FOUND' };
      const granted = new Set(this.grantedSubjects(name));
      const changed = [...new Set(subjects)].filter((s) => !granted.has(s));
      if (granted.size + changed.length > limit) return { ok: false, reason: 'TOO_MANY_GRANTS', limit };
      const insert = this.db.prepare('INSERT INTO secret_grants (name, subject, granted_at) VALUES (?, ?, ?)');
      for (const subject of changed) insert.run(name, subject, at.getTime());
      if (changed.length) {
        this.db.prepare('UPDATE secrets SET updated_at = ? WHERE name = ?').run(at.getTime(), name);
        this.appendAuditInTx(auditFor(changed));
      }
      return { ok: true, changed };
    });
  }

  async ungrantSecret(
    name: string,
    subjects: string[],
    at: Date,
    auditFor: (changed: string[]) => AuditInput[],
  ): Promise<SecretGrantOutcome> {
    return this.write((): SecretGrantOutcome => {
      if (!this.db.prepare('SELECT 1 FROM secrets WHERE name = ?').get(name)) return { ok: false, reason: 'NOT_FOUND' };
      const granted = this.grantedSubjects(name);
      const unique = [...new Set(subjects)];
      const missing = unique.filter((s) => !granted.includes(s));
      if (missing.length) return { ok: false, reason: 'NOT_GRANTED', subjects: missing, granted };
      const remove = this.db.prepare('DELETE FROM secret_grants WHERE name = ? AND subject = ?');
      for (const subject of unique) remove.run(name, subject);
      this.db.prepare('UPDATE secrets SET updated_at = ? WHERE name = ?').run(at.getTime(), name);
      this.appendAuditInTx(auditFor(unique));
      return { ok: true, changed: unique };
    });
  }

  async deleteSecret(
    name: string,
    audit: (versions: SecretVersionRecord[]) => AuditInput,
  ): Promise<{ secret: SecretRecord; versions: number } | null> {
    return this.write(() => {
      const row = this.db.prepare('SELECT * FROM secrets WHERE name = ?').get(name) as Row | undefined;
      if (!row) return null;
      const versions = (
        this.db.prepare('SELECT * FROM secret_versions WHERE name = ? ORDER BY version').all(name) as Row[]
      ).map(secretVersionFromRow);
      // Explicit rather than by cascade alone: a store opened without foreign keys must not keep ciphertexts.
      this.db.prepare('DELETE FROM secret_versions WHERE name = ?').run(name);
      this.db.prepare('DELETE FROM secret_grants WHERE name = ?').run(name);
      this.db.prepare('DELETE FROM secrets WHERE name = ?').run(name);
      this.appendAuditInTx([audit(versions)]);
      return { secret: secretFromRow(row), versions: versions.length };
    });
  }

  async getSecret(name: string): Promise<SecretRecord | null> {
    const row = this.read(() => this.db.prepare('SELECT * FROM secrets WHERE name = ?').get(name) as Row | undefined);
    return row ? secretFromRow(row) : null;
  }

  async listSecrets(): Promise<SecretRecord[]> {
    return this.read(() => (this.db.prepare('SELECT * FROM secrets ORDER BY name').all() as Row[]).map(secretFromRow));
  }

  async listSecretVersions(name: string, now: Date): Promise<SecretVersionRecord[]> {
    return this.read(() =>
      (
        this.db
          .prepare(
            'SELECT * FROM secret_versions WHERE name = ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY version DESC',
          )
          .all(name, now.getTime()) as Row[]
      ).map(secretVersionFromRow),
    );
  }

  async getSecretVersion(name: string, version: number, now: Date): Promise<SecretVersionRecord | null> {
    const row = this.read(
      () =>
        this.db
          .prepare(
            'SELECT * FROM secret_versions WHERE name = ? AND version = ? AND (expires_at IS NULL OR expires_at > ?)',
          )
          .get(name, version, now.getTime()) as Row | undefined,
    );
    return row ? secretVersionFromRow(row) : null;
  }

  async listSecretGrants(name: string): Promise<SecretGrantRecord[]> {
    return this.read(() =>
      (this.db.prepare('SELECT * FROM secret_grants WHERE name = ? ORDER BY subject').all(name) as Row[]).map((r) => ({
        name: r.name as string,
        subject: r.subject as string,
        grantedAt: date(r.granted_at),
      })),
    );
  }

  async listSecretsGranted(subjects: string[]): Promise<SecretListing[]> {
    if (subjects.length === 0) return [];
    return this.read(() =>
      (
        this.db
          .prepare(
            `SELECT s.name, s.current_version, s.updated_at, v.checksum, v.size FROM secrets s
        JOIN secret_versions v ON v.name = s.name AND v.version = s.current_version
        WHERE EXISTS (SELECT 1 FROM secret_grants g WHERE g.name = s.name AND g.subject IN (${placeholders(subjects.length)}))
        ORDER BY s.name`,
          )
          .all(...subjects) as Row[]
      ).map((r) => ({
        name: r.name as string,
        version: Number(r.current_version),
        checksum: r.checksum as string,
        size: Number(r.size),
        updatedAt: date(r.updated_at),
      })),
    );
  }

  private grantHolds(name: string, subjects: string[]): boolean {
    if (subjects.length === 0) return false;
    return (
      this.db
        .prepare(`SELECT 1 FROM secret_grants WHERE name = ? AND subject IN (${placeholders(subjects.length)}) LIMIT 1`)
        .get(name, ...subjects) !== undefined
    );
  }

  async isSecretGranted(name: string, subjects: string[]): Promise<boolean> {
    return this.read(() => this.grantHolds(name, subjects));
  }

  async commitSecretRead(read: SecretReadCommit, audit: AuditInput): Promise<'OK' | 'NOT_GRANTED' | 'GONE'> {
    return this.write(() => {
      if (!this.grantHolds(read.name, read.subjects)) return 'NOT_GRANTED';
      const row = this.db
        .prepare('SELECT checksum, expires_at FROM secret_versions WHERE name = ? AND version = ?')
        .get(read.name, read.version) as { checksum: string; expires_at: number | null } | undefined;
      if (!row || (row.expires_at !== null && row.expires_at <= read.at.getTime()) || row.checksum !== read.checksum)
        return 'GONE';
      this.db
        .prepare('UPDATE secret_versions SET last_read_at = ?, last_read_by = ? WHERE name = ? AND version = ?')
        .run(read.at.getTime(), read.by, read.name, read.version);
      this.appendAuditInTx([audit]);
      return 'OK';
    });
  }

  async purgeExpiredSecretVersions(
    now: Date,
    auditFor: (v: { name: string; version: number; expiresAt: Date }) => AuditInput,
  ): Promise<Array<{ name: string; version: number }>> {
    const select =
      'SELECT name, version, expires_at FROM secret_versions WHERE expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at, name, version';
    // A read first (over the partial index): the common case, nothing expired, takes no write lock.
    if (this.read(() => this.db.prepare(`${select} LIMIT 1`).get(now.getTime())) === undefined) return [];
    return this.write(() => {
      const rows = (this.db.prepare(select).all(now.getTime()) as Row[]).map((r) => ({
        name: r.name as string,
        version: Number(r.version),
        expiresAt: date(r.expires_at),
      }));
      const remove = this.db.prepare('DELETE FROM secret_versions WHERE name = ? AND version = ?');
      for (const r of rows) remove.run(r.name, r.version);
      this.appendAuditInTx(rows.map(auditFor));
      return rows.map(({ name, version }) => ({ name, version }));
    });
  }

  async rekeySecrets(
    toKeyId: string,
    reseal: (v: Pick<SecretVersionRecord, 'name' | 'version' | 'keyId' | 'sealedKey'>) => Buffer,
    audit: (resealed: number) => AuditInput,
  ): Promise<number> {
    return this.write(() => {
      // The sealed data keys only: the ciphertexts are not touched, nor read.
      const rows = (
        this.db
          .prepare('SELECT name, version, key_id, sealed_key FROM secret_versions ORDER BY name, version')
          .all() as Row[]
      ).map((r) => ({
        name: r.name as string,
        version: Number(r.version),
        keyId: r.key_id as string,
        sealedKey: r.sealed_key as Buffer,
      }));
      const update = this.db.prepare(
        'UPDATE secret_versions SET key_id = ?, sealed_key = ? WHERE name = ? AND version = ?',
      );
      for (const v of rows) update.run(toKeyId, reseal(v), v.name, v.version);
      this.stmt.setMeta.run(SECRETS_KEY_ID_META, toKeyId);
      this.appendAuditInTx([audit(rows.length)]);
      return rows.length;
    });
  }

  async recordPosture(record: Omit<PostureRecord, 'id'>, keep: number, audit: AuditInput): Promise<PostureRecord> {
    return this.write(() => {
      const { lastInsertRowid } = this.db
        .prepare('INSERT INTO posture_reports (spiffe_id, serial, received_at, score, report) VALUES (?, ?, ?, ?, ?)')
        .run(record.spiffeId, record.serial, record.receivedAt.getTime(), record.score, record.report);
      // The history is bounded per identity: the oldest beyond `keep` go in the same transaction.
      this.db
        .prepare(
          `DELETE FROM posture_reports WHERE spiffe_id = ? AND id NOT IN (
        SELECT id FROM posture_reports WHERE spiffe_id = ? ORDER BY id DESC LIMIT ?)`,
        )
        .run(record.spiffeId, record.spiffeId, Math.max(1, keep));
      this.appendAuditInTx([audit]);
      return { ...record, id: Number(lastInsertRowid) };
    });
  }

  async latestPosture(): Promise<PostureRecord[]> {
    return this.read(() =>
      (
        this.db
          .prepare(
            `SELECT p.* FROM posture_reports p
      JOIN (SELECT spiffe_id, MAX(id) AS id FROM posture_reports GROUP BY spiffe_id) newest ON newest.id = p.id
      ORDER BY p.spiffe_id`,
          )
          .all() as Row[]
      ).map(postureFromRow),
    );
  }

  async latestPostureScores(): Promise<Array<Pick<PostureRecord, 'spiffeId' | 'score' | 'receivedAt'>>> {
    return this.read(() =>
      (
        this.db
          .prepare(
            `SELECT p.spiffe_id, p.score, p.received_at FROM posture_reports p
      JOIN (SELECT spiffe_id, MAX(id) AS id FROM posture_reports GROUP BY spiffe_id) newest ON newest.id = p.id
      ORDER BY p.spiffe_id`,
          )
          .all() as Row[]
      ).map((row) => ({
        spiffeId: String(row.spiffe_id),
        score: row.score === null ? null : Number(row.score),
        receivedAt: new Date(Number(row.received_at)),
      })),
    );
  }

  async postureHistory(spiffeId: string, limit: number): Promise<PostureRecord[]> {
    return this.read(() =>
      (
        this.db
          .prepare('SELECT * FROM posture_reports WHERE spiffe_id = ? ORDER BY id DESC LIMIT ?')
          .all(spiffeId, limit) as Row[]
      ).map(postureFromRow),
    );
  }

  async importAdvisories(
    records: readonly AdvisoryRecord[],
    audit: (counts: AdvisoryImport) => AuditInput,
  ): Promise<AdvisoryImport> {
    return this.write(() => {
      const held = this.db.prepare('SELECT modified FROM advisories WHERE id = ?');
      const upsert = this.db
        .prepare(`INSERT INTO advisories (id, modified, severity, record, imported_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT(id) DO UPDATE SET modified = excluded.modified, severity = excluded.severity, record = excluded.record, imported_at = excluded.imported_at`);
      const counts = { added: 0, updated: 0, unchanged: 0 };
      const now = Date.now();
      for (const r of records) {
        const row = held.get(r.id) as { modified: string } | undefined;
        if (row && Date.parse(row.modified) >= Date.parse(r.modified)) {
          // a feed older than what is held changes nothing
          counts.unchanged++;
          continue;
        }
        upsert.run(r.id, r.modified, r.severity, r.record, now);
        if (row) counts.updated++;
        else counts.added++;
      }
      // A counter, not a time: two imports within one millisecond still differ.
      if (counts.added + counts.updated > 0) {
        const version = Number(
          (
            this.db.prepare('SELECT value FROM meta WHERE key = ?').get(ADVISORIES_VERSION_META) as
              { value: string } | undefined
          )?.value ?? 0,
        );
        this.stmt.setMeta.run(ADVISORIES_VERSION_META, String(version + 1));
      }
      this.appendAuditInTx([audit(counts)]);
      return counts;
    });
  }

  async listAdvisories(): Promise<AdvisoryRecord[]> {
    return this.read(() =>
      (this.db.prepare('SELECT id, modified, severity, record FROM advisories ORDER BY id').all() as Row[]).map(
        (row) => ({
          id: String(row.id),
          modified: String(row.modified),
          severity: String(row.severity),
          record: String(row.record),
        }),
      ),
    );
  }

  async advisoriesVersion(): Promise<string> {
    return (await this.getMeta(ADVISORIES_VERSION_META)) ?? '0';
  }

  async getMeta(key: string): Promise<string | null> {
    const row = this.read(
      () => this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined,
    );
    return row?.value ?? null;
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.write(() =>
      this.db
        .prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value')
        .run(key, value),
    );
  }

  /** Whole tables, for `store copy` (not part of Store: a copy is between two stores' files or servers). */
  tableAccess(): TableAccess {
    if (this.pending.length) this.flushIssuances();
    return sqliteTables(this.db);
  }

  async close(): Promise<void> {
    if (this.pending.length) this.flushIssuances();
    this.db.close();
  }
}
