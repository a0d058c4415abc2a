/**
 * The secrets of the SQLite store (issue 13): names, sealed versions and grants, each mutation in
 * one write transaction with its audit events. SQLite's write lock orders them, so a rotation,
 * grant or rekey decides on the state it then writes; PostgresSecrets has the same semantics.
 */
import type Database from 'better-sqlite3';
import { date, secretFromRow, secretVersionFromRow, type Row } from './rows.js';
import type { SqliteDb } from './sqlite-db.js';
import type { AuditInput } from './store-audit.js';
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

const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

export class SqliteSecrets {
  private readonly db: Database.Database;

  constructor(private readonly sqlite: SqliteDb) {
    this.db = sqlite.db;
  }

  /**
   * Inside a write transaction: the sealed version is under the store's master key, or this is
   * the first sealed version and its key becomes the store's. A rekey that committed since the
   * caller sealed makes this KEY_CHANGED, so nothing sealed under a retired key is ever stored.
   */
  private secretKeyRefusal(keyId: string): SecretWriteOutcome | null {
    const current = this.sqlite.metaValue(SECRETS_KEY_ID_META);
    if (current === undefined) {
      this.sqlite.setMetaValue(SECRETS_KEY_ID_META, keyId);
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
    return this.sqlite.write((): SecretWriteOutcome => {
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
      this.sqlite.appendAuditInTx([audit]);
      return { ok: true };
    });
  }

  async rotateSecret(
    input: { version: NewSecretVersion; at: Date; previousExpiresAt: Date | null },
    audit: AuditInput,
  ): Promise<SecretWriteOutcome> {
    const v = input.version;
    return this.sqlite.write((): SecretWriteOutcome => {
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
      this.sqlite.appendAuditInTx([audit]);
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
    return this.sqlite.write((): SecretGrantOutcome => {
      if (!this.db.prepare('SELECT 1 FROM secrets WHERE name = ?').get(name)) return { ok: false, reason: 'NOT_FOUND' };
      const granted = new Set(this.grantedSubjects(name));
      const changed = [...new Set(subjects)].filter((s) => !granted.has(s));
      if (granted.size + changed.length > limit) return { ok: false, reason: 'TOO_MANY_GRANTS', limit };
      const insert = this.db.prepare('INSERT INTO secret_grants (name, subject, granted_at) VALUES (?, ?, ?)');
      for (const subject of changed) insert.run(name, subject, at.getTime());
      if (changed.length) {
        this.db.prepare('UPDATE secrets SET updated_at = ? WHERE name = ?').run(at.getTime(), name);
        this.sqlite.appendAuditInTx(auditFor(changed));
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
    return this.sqlite.write((): SecretGrantOutcome => {
      if (!this.db.prepare('SELECT 1 FROM secrets WHERE name = ?').get(name)) return { ok: false, reason: 'NOT_FOUND' };
      const granted = this.grantedSubjects(name);
      const unique = [...new Set(subjects)];
      const missing = unique.filter((s) => !granted.includes(s));
      if (missing.length) return { ok: false, reason: 'NOT_GRANTED', subjects: missing, granted };
      const remove = this.db.prepare('DELETE FROM secret_grants WHERE name = ? AND subject = ?');
      for (const subject of unique) remove.run(name, subject);
      this.db.prepare('UPDATE secrets SET updated_at = ? WHERE name = ?').run(at.getTime(), name);
      this.sqlite.appendAuditInTx(auditFor(unique));
      return { ok: true, changed: unique };
    });
  }

  async deleteSecret(
    name: string,
    audit: (versions: SecretVersionRecord[]) => AuditInput,
  ): Promise<{ secret: SecretRecord; versions: number } | null> {
    return this.sqlite.write(() => {
      const row = this.db.prepare('SELECT * FROM secrets WHERE name = ?').get(name) as Row | undefined;
      if (!row) return null;
      const versions = (
        this.db.prepare('SELECT * FROM secret_versions WHERE name = ? ORDER BY version').all(name) as Row[]
      ).map(secretVersionFromRow);
      // Explicit rather than by cascade alone: a store opened without foreign keys must not keep ciphertexts.
      this.db.prepare('DELETE FROM secret_versions WHERE name = ?').run(name);
      this.db.prepare('DELETE FROM secret_grants WHERE name = ?').run(name);
      this.db.prepare('DELETE FROM secrets WHERE name = ?').run(name);
      this.sqlite.appendAuditInTx([audit(versions)]);
      return { secret: secretFromRow(row), versions: versions.length };
    });
  }

  async getSecret(name: string): Promise<SecretRecord | null> {
    const row = this.sqlite.read(
      () => this.db.prepare('SELECT * FROM secrets WHERE name = ?').get(name) as Row | undefined,
    );
    return row ? secretFromRow(row) : null;
  }

  async listSecrets(): Promise<SecretRecord[]> {
    return this.sqlite.read(() =>
      (this.db.prepare('SELECT * FROM secrets ORDER BY name').all() as Row[]).map(secretFromRow),
    );
  }

  async listSecretVersions(name: string, now: Date): Promise<SecretVersionRecord[]> {
    return this.sqlite.read(() =>
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
    const row = this.sqlite.read(
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
    return this.sqlite.read(() =>
      (this.db.prepare('SELECT * FROM secret_grants WHERE name = ? ORDER BY subject').all(name) as Row[]).map((r) => ({
        name: r.name as string,
        subject: r.subject as string,
        grantedAt: date(r.granted_at),
      })),
    );
  }

  async listSecretsGranted(subjects: string[]): Promise<SecretListing[]> {
    if (subjects.length === 0) return [];
    return this.sqlite.read(() =>
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
    return this.sqlite.read(() => this.grantHolds(name, subjects));
  }

  async commitSecretRead(read: SecretReadCommit, audit: AuditInput): Promise<'OK' | 'NOT_GRANTED' | 'GONE'> {
    return this.sqlite.write(() => {
      if (!this.grantHolds(read.name, read.subjects)) return 'NOT_GRANTED';
      const row = this.db
        .prepare('SELECT checksum, expires_at FROM secret_versions WHERE name = ? AND version = ?')
        .get(read.name, read.version) as { checksum: string; expires_at: number | null } | undefined;
      if (!row || (row.expires_at !== null && row.expires_at <= read.at.getTime()) || row.checksum !== read.checksum)
        return 'GONE';
      this.db
        .prepare('UPDATE secret_versions SET last_read_at = ?, last_read_by = ? WHERE name = ? AND version = ?')
        .run(read.at.getTime(), read.by, read.name, read.version);
      this.sqlite.appendAuditInTx([audit]);
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
    if (this.sqlite.read(() => this.db.prepare(`${select} LIMIT 1`).get(now.getTime())) === undefined) return [];
    return this.sqlite.write(() => {
      const rows = (this.db.prepare(select).all(now.getTime()) as Row[]).map((r) => ({
        name: r.name as string,
        version: Number(r.version),
        expiresAt: date(r.expires_at),
      }));
      const remove = this.db.prepare('DELETE FROM secret_versions WHERE name = ? AND version = ?');
      for (const r of rows) remove.run(r.name, r.version);
      this.sqlite.appendAuditInTx(rows.map(auditFor));
      return rows.map(({ name, version }) => ({ name, version }));
    });
  }

  async rekeySecrets(
    toKeyId: string,
    reseal: (v: Pick<SecretVersionRecord, 'name' | 'version' | 'keyId' | 'sealedKey'>) => Buffer,
    audit: (resealed: number) => AuditInput,
  ): Promise<number> {
    return this.sqlite.write(() => {
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
      this.sqlite.setMetaValue(SECRETS_KEY_ID_META, toKeyId);
      this.sqlite.appendAuditInTx([audit(rows.length)]);
      return rows.length;
    });
  }
}
