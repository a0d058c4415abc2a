/**
 * Embedded SQLite store (better-sqlite3). WAL mode with synchronous=FULL: a commit is on disk
 * before it returns, so an issued certificate survives a crash or power loss once the client
 * has it. Issuances arriving in the same event-loop turn share one transaction (group commit,
 * sqlite-issuance.ts), which keeps the fsync cost off each certificate without weakening that
 * guarantee. The class holds tokens, the audit trail and meta itself and hands the other areas
 * to one module each: certificates, secrets and posture (sqlite-*.ts, over sqlite-db.ts).
 */
import type Database from 'better-sqlite3';
import { ADVISORIES_VERSION_META, AUDIT_HEAD_KEY, auditFromRow, parseHead, tokenFromRow, type Row } from './rows.js';
import { SqliteCertificates } from './sqlite-certificates.js';
import { SqliteDb, openSqliteDatabase, type SqliteStoreOptions } from './sqlite-db.js';
import { SqliteIssuanceQueue } from './sqlite-issuance.js';
import { SqlitePosture } from './sqlite-posture.js';
import { SqliteSecrets } from './sqlite-secrets.js';
import { sqliteTables } from './sqlite-tables.js';
import type { Store } from './store.js';
import { auditQuery } from './audit-query.js';
import type { AuditFilter, AuditHead, AuditInput, AuditRecord } from './store-audit.js';
import type { IssuanceCommit, IssuanceOutcome } from './store-certificates.js';
import type { TokenRecord } from './store-tokens.js';
import type { TableAccess } from './table-copy.js';

export function openSqliteStore(path: string, options: SqliteStoreOptions = {}): SqliteStore {
  return new SqliteStore(openSqliteDatabase(path, options));
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  private readonly sqlite: SqliteDb;
  private readonly issuance: SqliteIssuanceQueue;
  private readonly certs: SqliteCertificates;
  private readonly secrets: SqliteSecrets;
  private readonly posture: SqlitePosture;
  private readonly stmt;

  constructor(private readonly db: Database.Database) {
    this.sqlite = new SqliteDb(db);
    this.issuance = new SqliteIssuanceQueue(this.sqlite);
    this.certs = new SqliteCertificates(this.sqlite);
    this.secrets = new SqliteSecrets(this.sqlite);
    this.posture = new SqlitePosture(this.sqlite);
    this.stmt = {
      getToken: db.prepare('SELECT * FROM tokens WHERE id = ?'),
    };
  }

  async insertToken(token: TokenRecord, audit: AuditInput): Promise<void> {
    this.sqlite.write(() => {
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
      this.sqlite.appendAuditInTx([audit]);
    });
  }

  async getToken(id: string): Promise<TokenRecord | null> {
    const row = this.sqlite.read(() => this.stmt.getToken.get(id) as Row | undefined);
    return row ? tokenFromRow(row) : null;
  }

  async listTokens(): Promise<TokenRecord[]> {
    return this.sqlite.read(() =>
      (this.db.prepare('SELECT * FROM tokens ORDER BY created_at DESC').all() as Row[]).map(tokenFromRow),
    );
  }

  async revokeToken(id: string, at: Date, audit: AuditInput): Promise<TokenRecord | null> {
    return this.sqlite.write(() => {
      const row = this.stmt.getToken.get(id) as Row | undefined;
      if (!row) return null;
      if (row.revoked_at === null) {
        this.db.prepare('UPDATE tokens SET revoked_at = ? WHERE id = ?').run(at.getTime(), id);
        this.sqlite.appendAuditInTx([audit]);
      }
      return tokenFromRow(this.stmt.getToken.get(id) as Row);
    });
  }

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
    if (events.length) this.sqlite.write(() => this.sqlite.appendAuditInTx(events));
  }

  async listAudit(filter: AuditFilter = {}): Promise<AuditRecord[]> {
    const { sql, params } = auditQuery(filter, 'sqlite');
    return this.sqlite.read(() => (this.db.prepare(sql).all(...params) as Row[]).map(auditFromRow));
  }

  async readAuditTrail(visit: (record: AuditRecord) => void): Promise<{ head: AuditHead | null }> {
    // A deferred transaction that only reads: in WAL mode every statement in it sees one snapshot.
    return this.sqlite.read(() =>
      this.db.transaction(() => {
        const head = parseHead(this.sqlite.metaValue(AUDIT_HEAD_KEY));
        for (const row of this.db.prepare('SELECT * FROM audit_events ORDER BY seq').iterate())
          visit(auditFromRow(row as Row));
        return { head };
      })(),
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
    const row = this.sqlite.read(
      () => this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined,
    );
    return row?.value ?? null;
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.sqlite.write(() =>
      this.db
        .prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value')
        .run(key, value),
    );
  }

  /** Whole tables, for `store copy` (not part of Store: a copy is between two stores' files or servers). */
  tableAccess(): TableAccess {
    this.issuance.flushPending();
    return sqliteTables(this.db);
  }

  async close(): Promise<void> {
    this.issuance.flushPending();
    this.db.close();
  }
}
