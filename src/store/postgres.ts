/**
 * PostgreSQL store (node-postgres), for CA replicas sharing one database: the same contract as
 * SqliteStore (test/store-contract.ts). Each mutation is one transaction on a pooled client in
 * READ COMMITTED; whatever must hold across replicas — a token's uses, a name's first claim, a
 * renewal of the lineage head, CRL numbers, the audit chain — is decided by a conditional write or
 * a row lock in the database, so each later statement sees what the winner committed.
 */
import type { CrlReason } from '../pki/crl.js';
import { PgDb, checkSchema, migrateDb, parseRecordedHead, type PostgresOptions, type Row } from './postgres-db.js';
import { PgIssuanceQueue } from './postgres-issuance.js';
import { PostgresSecrets } from './postgres-secrets.js';
import {
  ADVISORIES_VERSION_META,
  AUDIT_HEAD_KEY,
  auditFromRow,
  certFromRow,
  postureFromRow,
  reservationFromRow,
  tokenFromRow,
} from './rows.js';
import { postgresTables } from './postgres-tables.js';
import type { TableAccess } from './table-copy.js';
import type { Store } from './store.js';
import type { AuditFilter, AuditHead, AuditInput, AuditRecord } from './store-audit.js';
import type {
  CertFilter,
  CertRecord,
  CertState,
  IssuanceCommit,
  IssuanceOutcome,
  NameReservation,
  RevokedSerial,
} from './store-certificates.js';
import type { AdvisoryImport, AdvisoryRecord, PostureRecord } from './store-posture.js';
import type { TokenRecord } from './store-tokens.js';

export { POSTGRES_SCHEMA_VERSION, type PostgresOptions } from './postgres-db.js';

/** Opens a pool and checks the schema: refuses (GatehouseError GH_STORE_IO) a database whose schema is newer than this Gatehouse knows, and one older than it (message: run `gatehouse ca migrate`) unless `migrate: true`, which applies missing migrations first. */
export async function openPostgresStore(options: PostgresOptions & { migrate?: boolean }): Promise<PostgresStore> {
  const db = new PgDb(options);
  try {
    await checkSchema(db, options.migrate ?? false);
  } catch (err) {
    await db.close();
    throw err;
  }
  return new PostgresStore(db);
}

/** Applies missing migrations, each in its own transaction, under a pg_advisory_lock so that replicas migrating at once take turns; returns the versions before and after. */
export async function migratePostgres(options: PostgresOptions): Promise<{ from: number; to: number }> {
  const db = new PgDb({ ...options, poolMax: 1 });
  try {
    return await migrateDb(db);
  } finally {
    await db.close();
  }
}

const AUDIT_PAGE = 1000;
const REVOCATION_VERSION_BUMP = `INSERT INTO meta (key, value) VALUES ('revocation_version', '1')
  ON CONFLICT (key) DO UPDATE SET value = (meta.value::bigint + 1)::text`;

export class PostgresStore implements Store {
  readonly kind = 'postgres';
  private readonly secrets: PostgresSecrets;
  private readonly issuance: PgIssuanceQueue;

  constructor(private readonly db: PgDb) {
    this.secrets = new PostgresSecrets(db);
    this.issuance = new PgIssuanceQueue(db);
  }

  async insertToken(token: TokenRecord, audit: AuditInput): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO tokens (id, secret_hash, role, name, name_pattern, max_uses, uses, expires_at, created_at, created_by)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [
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
        ],
      );
      await this.db.appendAudit(tx, [audit]);
    });
  }

  async getToken(id: string): Promise<TokenRecord | null> {
    const [row] = await this.db.query('SELECT * FROM tokens WHERE id = $1', [id]);
    return row ? tokenFromRow(row) : null;
  }

  async listTokens(): Promise<TokenRecord[]> {
    return (await this.db.query('SELECT * FROM tokens ORDER BY created_at DESC')).map(tokenFromRow);
  }

  revokeToken(id: string, at: Date, audit: AuditInput): Promise<TokenRecord | null> {
    return this.db.transaction(async (tx) => {
      const row = (await tx.query('SELECT * FROM tokens WHERE id = $1 FOR UPDATE', [id])).rows[0] as Row | undefined;
      if (!row) return null;
      if (row.revoked_at !== null) return tokenFromRow(row);
      const updated = await tx.query('UPDATE tokens SET revoked_at = $2 WHERE id = $1 RETURNING *', [id, at.getTime()]);
      await this.db.appendAudit(tx, [audit]);
      return tokenFromRow(updated.rows[0] as Row);
    });
  }

  /** Issuances share transactions with those waiting beside them (postgres-issuance.ts); a refusal records nothing and consumes no use. */
  commitIssuance(commit: IssuanceCommit): Promise<IssuanceOutcome> {
    return this.issuance.submit(commit);
  }

  async getCert(serial: string): Promise<CertRecord | null> {
    const [row] = await this.db.query('SELECT * FROM certificates WHERE serial = $1', [serial]);
    return row ? certFromRow(row) : null;
  }

  async listCerts(filter: CertFilter = {}): Promise<CertRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const p = (value: unknown) => `$${params.push(value)}`;
    const now = (filter.now ?? new Date()).getTime();
    if (filter.role) where.push(`role = ${p(filter.role)}`);
    if (filter.name) where.push(`name = ${p(filter.name)}`);
    if (filter.lineage) where.push(`lineage = ${p(filter.lineage)}`);
    if (filter.state === 'revoked') where.push('revoked_at IS NOT NULL');
    if (filter.state === 'expired') where.push(`revoked_at IS NULL AND not_after <= ${p(now)}`);
    if (filter.state === 'active' || filter.expiringBefore) where.push(`revoked_at IS NULL AND not_after > ${p(now)}`);
    if (filter.expiringBefore) where.push(`not_after < ${p(filter.expiringBefore.getTime())}`);
    if (filter.excludeSuperseded) {
      // Issue order, not notAfter: a renewal in the same second has the same notAfter (whole seconds in DER).
      where.push(`NOT EXISTS (SELECT 1 FROM certificates later WHERE later.name = certificates.name AND later.role = certificates.role
        AND later.revoked_at IS NULL AND (later.issued_at, later.seq) > (certificates.issued_at, certificates.seq))`);
    }
    const sql = `SELECT * FROM certificates ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY issued_at DESC, serial LIMIT ${p(filter.limit ?? 10_000)}`;
    return (await this.db.query(sql, params)).map(certFromRow);
  }

  async countCertsByState(now: Date): Promise<Record<CertState, number>> {
    const [row] = await this.db.query(
      `SELECT
        (SELECT COUNT(*) FROM certificates) AS total,
        (SELECT COUNT(*) FROM certificates WHERE not_after > $1) AS unexpired,
        (SELECT COUNT(*) FROM certificates WHERE revoked_at IS NOT NULL) AS revoked,
        (SELECT COUNT(*) FROM certificates WHERE revoked_at IS NOT NULL AND not_after > $1) AS revoked_unexpired`,
      [now.getTime()],
    );
    const n = (k: string) => Number(row![k]);
    const active = n('unexpired') - n('revoked_unexpired');
    return { active, revoked: n('revoked'), expired: n('total') - n('revoked') - active };
  }

  revokeCert(serial: string, reason: CrlReason, at: Date, audit: AuditInput): Promise<CertRecord | null> {
    return this.db.transaction(async (tx) => {
      const row = (await tx.query('SELECT * FROM certificates WHERE serial = $1 FOR UPDATE', [serial])).rows[0] as
        Row | undefined;
      if (!row) return null;
      if (row.revoked_at !== null) return certFromRow(row);
      const updated = await tx.query(
        'UPDATE certificates SET revoked_at = $2, revocation_reason = $3 WHERE serial = $1 RETURNING *',
        [serial, at.getTime(), reason],
      );
      await tx.query(REVOCATION_VERSION_BUMP);
      await this.db.appendAudit(tx, [audit]);
      return certFromRow(updated.rows[0] as Row);
    });
  }

  revokeLineage(
    lineage: string,
    reason: CrlReason,
    at: Date,
    auditFor: (cert: CertRecord) => AuditInput,
    leading: AuditInput[] = [],
  ): Promise<CertRecord[]> {
    return this.db.transaction(async (tx) => {
      // Locked until stable: a renewal committed while this waited on its target's row is not
      // in the first statement's snapshot, so select again until no new certificate shows up.
      // A renewal starting later must lock a certificate held here, and finds it revoked.
      let rows: Row[] = [];
      for (;;) {
        const locked = (
          await tx.query(
            'SELECT * FROM certificates WHERE lineage = $1 AND revoked_at IS NULL ORDER BY issued_at, seq FOR UPDATE',
            [lineage],
          )
        ).rows as Row[];
        const same = locked.length === rows.length && locked.every((r, i) => r.serial === rows[i]!.serial);
        rows = locked;
        if (same) break;
      }
      if (rows.length === 0) {
        await this.db.appendAudit(tx, leading);
        return [];
      }
      await tx.query('UPDATE certificates SET revoked_at = $2, revocation_reason = $3 WHERE serial = ANY($1::text[])', [
        rows.map((r) => r.serial),
        at.getTime(),
        reason,
      ]);
      const revoked = rows.map((row) => ({ ...certFromRow(row), revokedAt: at, revocationReason: reason }));
      await tx.query(REVOCATION_VERSION_BUMP);
      await this.db.appendAudit(tx, [...leading, ...revoked.map(auditFor)]);
      return revoked;
    });
  }

  async getNameReservation(role: string, name: string): Promise<NameReservation | null> {
    const [row] = await this.db.query('SELECT * FROM names WHERE role = $1 AND name = $2', [role, name]);
    return row ? reservationFromRow(row) : null;
  }

  async listNameReservations(): Promise<NameReservation[]> {
    return (await this.db.query('SELECT * FROM names ORDER BY role, name')).map(reservationFromRow);
  }

  releaseName(role: string, name: string, audit: AuditInput): Promise<NameReservation | null> {
    return this.db.transaction(async (tx) => {
      const row = (await tx.query('DELETE FROM names WHERE role = $1 AND name = $2 RETURNING *', [role, name]))
        .rows[0] as Row | undefined;
      if (!row) return null;
      await this.db.appendAudit(tx, [audit]);
      return reservationFromRow(row);
    });
  }

  async listRevokedUnexpired(now: Date): Promise<RevokedSerial[]> {
    return (
      await this.db.query(
        'SELECT serial, revoked_at, revocation_reason FROM certificates WHERE revoked_at IS NOT NULL AND not_after > $1 ORDER BY revoked_at',
        [now.getTime()],
      )
    ).map((r) => ({
      serial: r.serial as string,
      revokedAt: new Date(Number(r.revoked_at)),
      reason: r.revocation_reason as CrlReason,
    }));
  }

  async revocationVersion(): Promise<number> {
    const [row] = await this.db.query("SELECT value FROM meta WHERE key = 'revocation_version'");
    return row ? Number(row.value) : 0;
  }

  async nextCrlNumber(scope: string): Promise<bigint> {
    // One statement: the row lock of the upsert orders concurrent callers, each reads its own increment.
    const [row] = await this.db.query(
      'INSERT INTO crl_numbers (scope, value) VALUES ($1, 1) ON CONFLICT (scope) DO UPDATE SET value = crl_numbers.value + 1 RETURNING value',
      [scope],
      'write',
    );
    return BigInt(row!.value as string);
  }

  async appendAudit(events: AuditInput[]): Promise<void> {
    if (events.length) await this.db.transaction((tx) => this.db.appendAudit(tx, events));
  }

  async listAudit(filter: AuditFilter = {}): Promise<AuditRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const p = (value: unknown) => `$${params.push(value)}`;
    if (filter.type) where.push(`type = ${p(filter.type)}`);
    // ILIKE: SQLite's LIKE ignores ASCII case, and both stores must find the same events.
    if (filter.actor) where.push(`actor ILIKE ${p(`%${filter.actor}%`)}`);
    if (filter.serial) where.push(`serial = ${p(filter.serial)}`);
    if (filter.since) where.push(`time >= ${p(filter.since.getTime())}`);
    if (filter.until) where.push(`time < ${p(filter.until.getTime())}`);
    if (filter.afterSeq !== undefined) where.push(`seq > ${p(filter.afterSeq)}`);
    if (filter.hash) where.push(`hash = ${p(filter.hash)}`);
    const sql = `SELECT * FROM audit_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq LIMIT ${p(filter.limit ?? 1_000_000)}`;
    return (await this.db.query(sql, params)).map(auditFromRow);
  }

  readAuditTrail(visit: (record: AuditRecord) => void): Promise<{ head: AuditHead | null }> {
    // One REPEATABLE READ snapshot for the head and every page: appends committed meanwhile are not seen.
    return this.db.transaction(
      async (tx) => {
        const head = parseRecordedHead(
          (await tx.query('SELECT value FROM meta WHERE key = $1', [AUDIT_HEAD_KEY])).rows[0]?.value as
            string | undefined,
        );
        for (let after = 0; ;) {
          const page = (
            await tx.query('SELECT * FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2', [after, AUDIT_PAGE])
          ).rows as Row[];
          for (const row of page) visit(auditFromRow(row));
          if (page.length < AUDIT_PAGE) return { head };
          after = Number(page.at(-1)!.seq);
        }
      },
      { begin: 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', doing: 'audit read' },
    );
  }

  createSecret: Store['createSecret'] = (input, audit) => this.secrets.createSecret(input, audit);
  rotateSecret: Store['rotateSecret'] = (input, audit) => this.secrets.rotateSecret(input, audit);
  grantSecret: Store['grantSecret'] = (name, subjects, at, limit, auditFor) =>
    this.secrets.grantSecret(name, subjects, at, limit, auditFor);
  ungrantSecret: Store['ungrantSecret'] = (name, subjects, at, auditFor) =>
    this.secrets.ungrantSecret(name, subjects, at, auditFor);
  deleteSecret: Store['deleteSecret'] = (name, audit) => this.secrets.deleteSecret(name, audit);
  getSecret: Store['getSecret'] = (name) => this.secrets.getSecret(name);
  listSecrets: Store['listSecrets'] = () => this.secrets.listSecrets();
  listSecretVersions: Store['listSecretVersions'] = (name, now) => this.secrets.listSecretVersions(name, now);
  getSecretVersion: Store['getSecretVersion'] = (name, version, now) =>
    this.secrets.getSecretVersion(name, version, now);
  listSecretGrants: Store['listSecretGrants'] = (name) => this.secrets.listSecretGrants(name);
  listSecretsGranted: Store['listSecretsGranted'] = (subjects) => this.secrets.listSecretsGranted(subjects);
  isSecretGranted: Store['isSecretGranted'] = (name, subjects) => this.secrets.isSecretGranted(name, subjects);
  commitSecretRead: Store['commitSecretRead'] = (read, audit) => this.secrets.commitSecretRead(read, audit);
  purgeExpiredSecretVersions: Store['purgeExpiredSecretVersions'] = (now, auditFor) =>
    this.secrets.purgeExpiredSecretVersions(now, auditFor);
  rekeySecrets: Store['rekeySecrets'] = (toKeyId, reseal, audit) => this.secrets.rekeySecrets(toKeyId, reseal, audit);

  recordPosture(record: Omit<PostureRecord, 'id'>, keep: number, audit: AuditInput): Promise<PostureRecord> {
    return this.db.transaction(async (tx) => {
      const inserted = await tx.query(
        'INSERT INTO posture_reports (spiffe_id, serial, received_at, score, report) VALUES ($1, $2, $3, $4, $5) RETURNING id',
        [record.spiffeId, record.serial, record.receivedAt.getTime(), record.score, record.report],
      );
      // The history is bounded per identity: the oldest beyond `keep` go in the same transaction.
      await tx.query(
        `DELETE FROM posture_reports WHERE spiffe_id = $1 AND id NOT IN (
        SELECT id FROM posture_reports WHERE spiffe_id = $1 ORDER BY id DESC LIMIT $2)`,
        [record.spiffeId, Math.max(1, keep)],
      );
      await this.db.appendAudit(tx, [audit]);
      return { ...record, id: Number(inserted.rows[0].id) };
    });
  }

  async latestPosture(): Promise<PostureRecord[]> {
    return (
      await this.db.query(`SELECT p.* FROM posture_reports p
      JOIN (SELECT spiffe_id, MAX(id) AS id FROM posture_reports GROUP BY spiffe_id) newest ON newest.id = p.id
      ORDER BY p.spiffe_id`)
    ).map(postureFromRow);
  }

  async latestPostureScores(): Promise<Array<Pick<PostureRecord, 'spiffeId' | 'score' | 'receivedAt'>>> {
    return (
      await this.db.query(`SELECT p.spiffe_id, p.score, p.received_at FROM posture_reports p
      JOIN (SELECT spiffe_id, MAX(id) AS id FROM posture_reports GROUP BY spiffe_id) newest ON newest.id = p.id
      ORDER BY p.spiffe_id`)
    ).map((row) => ({
      spiffeId: String(row.spiffe_id),
      score: row.score === null ? null : Number(row.score),
      receivedAt: new Date(Number(row.received_at)),
    }));
  }

  async postureHistory(spiffeId: string, limit: number): Promise<PostureRecord[]> {
    return (
      await this.db.query('SELECT * FROM posture_reports WHERE spiffe_id = $1 ORDER BY id DESC LIMIT $2', [
        spiffeId,
        limit,
      ])
    ).map(postureFromRow);
  }

  importAdvisories(
    records: readonly AdvisoryRecord[],
    audit: (counts: AdvisoryImport) => AuditInput,
  ): Promise<AdvisoryImport> {
    return this.db.transaction(async (tx) => {
      // The version row, locked (created at 0) first: imports from several replicas take turns.
      const version = Number(
        (
          await tx.query(
            `INSERT INTO meta (key, value) VALUES ($1, '0') ON CONFLICT (key) DO UPDATE SET value = meta.value RETURNING value`,
            [ADVISORIES_VERSION_META],
          )
        ).rows[0].value,
      );
      const held = new Map(
        (
          (await tx.query('SELECT id, modified FROM advisories WHERE id = ANY($1::text[])', [records.map((r) => r.id)]))
            .rows as Row[]
        ).map((r) => [r.id as string, r.modified as string]),
      );
      const counts = { added: 0, updated: 0, unchanged: 0 };
      const now = Date.now();
      for (const r of records) {
        const modified = held.get(r.id);
        if (modified !== undefined && Date.parse(modified) >= Date.parse(r.modified)) {
          // a feed older than what is held changes nothing
          counts.unchanged++;
          continue;
        }
        await tx.query(
          `INSERT INTO advisories (id, modified, severity, record, imported_at) VALUES ($1, $2, $3, $4, $5)
          ON CONFLICT (id) DO UPDATE SET modified = excluded.modified, severity = excluded.severity, record = excluded.record, imported_at = excluded.imported_at`,
          [r.id, r.modified, r.severity, r.record, now],
        );
        held.set(r.id, r.modified);
        if (modified !== undefined) counts.updated++;
        else counts.added++;
      }
      // A counter, not a time: two imports within one millisecond still differ.
      if (counts.added + counts.updated > 0)
        await tx.query('UPDATE meta SET value = $2 WHERE key = $1', [ADVISORIES_VERSION_META, String(version + 1)]);
      await this.db.appendAudit(tx, [audit(counts)]);
      return counts;
    });
  }

  async listAdvisories(): Promise<AdvisoryRecord[]> {
    return (await this.db.query('SELECT id, modified, severity, record FROM advisories ORDER BY id')).map((row) => ({
      id: String(row.id),
      modified: String(row.modified),
      severity: String(row.severity),
      record: String(row.record),
    }));
  }

  async advisoriesVersion(): Promise<string> {
    return (await this.getMeta(ADVISORIES_VERSION_META)) ?? '0';
  }

  async getMeta(key: string): Promise<string | null> {
    const [row] = await this.db.query('SELECT value FROM meta WHERE key = $1', [key]);
    return (row?.value as string | undefined) ?? null;
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.db.query(
      'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      [key, value],
      'write',
    );
  }

  /** Whole tables, for `store copy` (not part of Store: a copy is between two stores). */
  tableAccess(): TableAccess {
    return postgresTables(this.db);
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
