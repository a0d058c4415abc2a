/**
 * PostgreSQL store (node-postgres), for CA replicas sharing one database: the same contract as
 * SqliteStore (test/store-contract.ts). Each mutation is one transaction on a pooled client in
 * READ COMMITTED; whatever must hold across replicas — a token's uses, a name's first claim, a
 * renewal of the lineage head, CRL numbers, the audit chain — is decided by a conditional write or
 * a row lock in the database, so each later statement sees what the winner committed. The class
 * holds tokens, the audit trail and meta itself and hands the other areas to one module each:
 * issuance, certificates, secrets and posture (postgres-*.ts, over postgres-db.ts).
 */
import { PostgresCertificates } from './postgres-certificates.js';
import { PgDb, checkSchema, migrateDb, parseRecordedHead, type PostgresOptions, type Row } from './postgres-db.js';
import { PgIssuanceQueue } from './postgres-issuance.js';
import { PostgresPosture } from './postgres-posture.js';
import { PostgresSecrets } from './postgres-secrets.js';
import { ADVISORIES_VERSION_META, AUDIT_HEAD_KEY, auditFromRow, tokenFromRow } from './rows.js';
import { postgresTables } from './postgres-tables.js';
import type { TableAccess } from './table-copy.js';
import type { Store } from './store.js';
import { auditQuery } from './audit-query.js';
import type { AuditFilter, AuditHead, AuditInput, AuditRecord } from './store-audit.js';
import type { IssuanceCommit, IssuanceOutcome } from './store-certificates.js';
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

export class PostgresStore implements Store {
  readonly kind = 'postgres';
  private readonly issuance: PgIssuanceQueue;
  private readonly certs: PostgresCertificates;
  private readonly secrets: PostgresSecrets;
  private readonly posture: PostgresPosture;

  constructor(private readonly db: PgDb) {
    this.issuance = new PgIssuanceQueue(db);
    this.certs = new PostgresCertificates(db);
    this.secrets = new PostgresSecrets(db);
    this.posture = new PostgresPosture(db);
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

  getCert: Store['getCert'] = (serial) => this.certs.getCert(serial);
  listCerts: Store['listCerts'] = (filter) => this.certs.listCerts(filter);
  countCertsByState: Store['countCertsByState'] = (now) => this.certs.countCertsByState(now);
  revokeCert: Store['revokeCert'] = (serial, reason, at, audit) => this.certs.revokeCert(serial, reason, at, audit);
  revokeLineage: Store['revokeLineage'] = (lineage, reason, at, auditFor, leading) =>
    this.certs.revokeLineage(lineage, reason, at, auditFor, leading);
  getNameReservation: Store['getNameReservation'] = (role, name) => this.certs.getNameReservation(role, name);
  listNameReservations: Store['listNameReservations'] = () => this.certs.listNameReservations();
  releaseName: Store['releaseName'] = (role, name, audit) => this.certs.releaseName(role, name, audit);
  listRevokedUnexpired: Store['listRevokedUnexpired'] = (now) => this.certs.listRevokedUnexpired(now);
  revocationVersion: Store['revocationVersion'] = () => this.certs.revocationVersion();
  nextCrlNumber: Store['nextCrlNumber'] = (scope) => this.certs.nextCrlNumber(scope);

  async appendAudit(events: AuditInput[]): Promise<void> {
    if (events.length) await this.db.transaction((tx) => this.db.appendAudit(tx, events));
  }

  async listAudit(filter: AuditFilter = {}): Promise<AuditRecord[]> {
    const { sql, params } = auditQuery(filter, 'postgres');
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

  recordPosture: Store['recordPosture'] = (record, keep, audit) => this.posture.recordPosture(record, keep, audit);
  latestPosture: Store['latestPosture'] = () => this.posture.latestPosture();
  latestPostureScores: Store['latestPostureScores'] = () => this.posture.latestPostureScores();
  postureHistory: Store['postureHistory'] = (spiffeId, limit) => this.posture.postureHistory(spiffeId, limit);
  importAdvisories: Store['importAdvisories'] = (records, audit) => this.posture.importAdvisories(records, audit);
  listAdvisories: Store['listAdvisories'] = () => this.posture.listAdvisories();

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
