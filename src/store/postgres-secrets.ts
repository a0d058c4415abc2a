/**
 * The secret methods of the PostgreSQL store (issue 13), with SqliteStore's semantics. A
 * mutation locks its secret's row (FOR UPDATE) and, when it seals, the store's master-key row in
 * meta, so rotations, grants and rekeys from several replicas take turns in the database.
 */
import { secretFromRow, secretVersionFromRow } from './rows.js';
import type { PgDb, Row, Tx } from './postgres-db.js';
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

const rows = async (tx: Tx, sql: string, params: unknown[]): Promise<Row[]> =>
  (await tx.query(sql, params)).rows as Row[];

/**
 * Locks the store's master-key row until commit (creating it with `keyId` for the first sealed
 * version). A rekey holds the same lock, so a version sealed under a retired key is refused.
 */
async function keyRefusal(tx: Tx, keyId: string): Promise<SecretWriteOutcome | null> {
  const [row] = await rows(
    tx,
    'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = meta.value RETURNING value',
    [SECRETS_KEY_ID_META, keyId],
  );
  const current = row!.value as string;
  return current === keyId ? null : { ok: false, reason: 'KEY_CHANGED', keyId: current };
}

async function insertVersion(tx: Tx, v: NewSecretVersion): Promise<void> {
  await tx.query(
    `INSERT INTO secret_versions (name, version, created_at, expires_at, key_id, sealed_key, iv, ciphertext, tag, checksum, size)
    VALUES ($1, $2, $3, NULL, $4, $5, $6, $7, $8, $9, $10)`,
    [v.name, v.version, v.createdAt.getTime(), v.keyId, v.sealedKey, v.iv, v.ciphertext, v.tag, v.checksum, v.size],
  );
}

const lockSecret = async (tx: Tx, name: string): Promise<Row | undefined> =>
  (await rows(tx, 'SELECT * FROM secrets WHERE name = $1 FOR UPDATE', [name]))[0];
const existingName = async (tx: Tx, name: string): Promise<string | undefined> =>
  (await rows(tx, 'SELECT name FROM secrets WHERE lower(name) = lower($1)', [name]))[0]?.name as string | undefined;
const grantedSubjects = async (tx: Tx, name: string): Promise<string[]> =>
  (await rows(tx, 'SELECT subject FROM secret_grants WHERE name = $1 ORDER BY subject', [name])).map(
    (r) => r.subject as string,
  );
const okOnly = { commit: (o: { ok: boolean }) => o.ok };

export class PostgresSecrets {
  constructor(private readonly db: PgDb) {}

  createSecret(
    input: { version: NewSecretVersion; grants: string[]; at: Date },
    audit: AuditInput,
  ): Promise<SecretWriteOutcome> {
    const v = input.version;
    return this.db.transaction(async (tx): Promise<SecretWriteOutcome> => {
      const existing = await existingName(tx, v.name);
      if (existing !== undefined) return { ok: false, reason: 'EXISTS', existing };
      const refusal = await keyRefusal(tx, v.keyId);
      if (refusal) return refusal;
      const at = input.at.getTime();
      // ON CONFLICT covers the lower(name) index too: a create of the same name committed meanwhile.
      const inserted = await tx.query(
        'INSERT INTO secrets (name, created_at, updated_at, current_version) VALUES ($1, $2, $2, $3) ON CONFLICT DO NOTHING',
        [v.name, at, v.version],
      );
      if (inserted.rowCount !== 1)
        return { ok: false, reason: 'EXISTS', existing: (await existingName(tx, v.name)) ?? v.name };
      await insertVersion(tx, v);
      for (const subject of input.grants) {
        await tx.query(
          'INSERT INTO secret_grants (name, subject, granted_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
          [v.name, subject, at],
        );
      }
      await this.db.appendAudit(tx, [audit]);
      return { ok: true };
    }, okOnly);
  }

  rotateSecret(
    input: { version: NewSecretVersion; at: Date; previousExpiresAt: Date | null },
    audit: AuditInput,
  ): Promise<SecretWriteOutcome> {
    const v = input.version;
    return this.db.transaction(async (tx): Promise<SecretWriteOutcome> => {
      const secret = await lockSecret(tx, v.name);
      if (!secret) return { ok: false, reason: 'NOT_FOUND' };
      const previous = Number(secret.current_version);
      if (previous !== v.version - 1) return { ok: false, reason: 'VERSION_CHANGED', currentVersion: previous };
      const refusal = await keyRefusal(tx, v.keyId);
      if (refusal) return refusal;
      if (input.previousExpiresAt === null)
        await tx.query('DELETE FROM secret_versions WHERE name = $1 AND version = $2', [v.name, previous]);
      else
        await tx.query('UPDATE secret_versions SET expires_at = $3 WHERE name = $1 AND version = $2', [
          v.name,
          previous,
          input.previousExpiresAt.getTime(),
        ]);
      await insertVersion(tx, v);
      await tx.query('UPDATE secrets SET current_version = $2, updated_at = $3 WHERE name = $1', [
        v.name,
        v.version,
        input.at.getTime(),
      ]);
      await this.db.appendAudit(tx, [audit]);
      return { ok: true };
    }, okOnly);
  }

  grantSecret(
    name: string,
    subjects: string[],
    at: Date,
    limit: number,
    auditFor: (changed: string[]) => AuditInput[],
  ): Promise<SecretGrantOutcome> {
    return this.db.transaction(async (tx): Promise<SecretGrantOutcome> => {
      if (!(await lockSecret(tx, name))) return { ok: false, reason: 'NOT_FOUND' };
      const granted = new Set(await grantedSubjects(tx, name));
      const changed = [...new Set(subjects)].filter((s) => !granted.has(s));
      if (granted.size + changed.length > limit) return { ok: false, reason: 'TOO_MANY_GRANTS', limit };
      for (const subject of changed)
        await tx.query('INSERT INTO secret_grants (name, subject, granted_at) VALUES ($1, $2, $3)', [
          name,
          subject,
          at.getTime(),
        ]);
      if (changed.length) {
        await tx.query('UPDATE secrets SET updated_at = $2 WHERE name = $1', [name, at.getTime()]);
        await this.db.appendAudit(tx, auditFor(changed));
      }
      return { ok: true, changed };
    }, okOnly);
  }

  ungrantSecret(
    name: string,
    subjects: string[],
    at: Date,
    auditFor: (changed: string[]) => AuditInput[],
  ): Promise<SecretGrantOutcome> {
    return this.db.transaction(async (tx): Promise<SecretGrantOutcome> => {
      if (!(await lockSecret(tx, name))) return { ok: false, reason: 'NOT_FOUND' };
      const granted = await grantedSubjects(tx, name);
      const unique = [...new Set(subjects)];
      const missing = unique.filter((s) => !granted.includes(s));
      if (missing.length) return { ok: false, reason: 'NOT_GRANTED', subjects: missing, granted };
      await tx.query('DELETE FROM secret_grants WHERE name = $1 AND subject = ANY($2::text[])', [name, unique]);
      await tx.query('UPDATE secrets SET updated_at = $2 WHERE name = $1', [name, at.getTime()]);
      await this.db.appendAudit(tx, auditFor(unique));
      return { ok: true, changed: unique };
    }, okOnly);
  }

  deleteSecret(
    name: string,
    audit: (versions: SecretVersionRecord[]) => AuditInput,
  ): Promise<{ secret: SecretRecord; versions: number } | null> {
    return this.db.transaction(async (tx) => {
      const row = await lockSecret(tx, name);
      if (!row) return null;
      const versions = (await rows(tx, 'SELECT * FROM secret_versions WHERE name = $1 ORDER BY version', [name])).map(
        secretVersionFromRow,
      );
      // Explicit rather than by cascade alone, as in SQLite: no ciphertext outlives its secret.
      await tx.query('DELETE FROM secret_versions WHERE name = $1', [name]);
      await tx.query('DELETE FROM secret_grants WHERE name = $1', [name]);
      await tx.query('DELETE FROM secrets WHERE name = $1', [name]);
      await this.db.appendAudit(tx, [audit(versions)]);
      return { secret: secretFromRow(row), versions: versions.length };
    });
  }

  async getSecret(name: string): Promise<SecretRecord | null> {
    const [row] = await this.db.query('SELECT * FROM secrets WHERE name = $1', [name]);
    return row ? secretFromRow(row) : null;
  }

  async listSecrets(): Promise<SecretRecord[]> {
    return (await this.db.query('SELECT * FROM secrets ORDER BY name')).map(secretFromRow);
  }

  async listSecretVersions(name: string, now: Date): Promise<SecretVersionRecord[]> {
    return (
      await this.db.query(
        'SELECT * FROM secret_versions WHERE name = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY version DESC',
        [name, now.getTime()],
      )
    ).map(secretVersionFromRow);
  }

  async getSecretVersion(name: string, version: number, now: Date): Promise<SecretVersionRecord | null> {
    const [row] = await this.db.query(
      'SELECT * FROM secret_versions WHERE name = $1 AND version = $2 AND (expires_at IS NULL OR expires_at > $3)',
      [name, version, now.getTime()],
    );
    return row ? secretVersionFromRow(row) : null;
  }

  async listSecretGrants(name: string): Promise<SecretGrantRecord[]> {
    return (await this.db.query('SELECT * FROM secret_grants WHERE name = $1 ORDER BY subject', [name])).map((r) => ({
      name: r.name as string,
      subject: r.subject as string,
      grantedAt: new Date(Number(r.granted_at)),
    }));
  }

  async listSecretsGranted(subjects: string[]): Promise<SecretListing[]> {
    if (subjects.length === 0) return [];
    return (
      await this.db.query(
        `SELECT s.name, s.current_version, s.updated_at, v.checksum, v.size FROM secrets s
        JOIN secret_versions v ON v.name = s.name AND v.version = s.current_version
        WHERE EXISTS (SELECT 1 FROM secret_grants g WHERE g.name = s.name AND g.subject = ANY($1::text[]))
        ORDER BY s.name`,
        [subjects],
      )
    ).map((r) => ({
      name: r.name as string,
      version: Number(r.current_version),
      checksum: r.checksum as string,
      size: Number(r.size),
      updatedAt: new Date(Number(r.updated_at)),
    }));
  }

  async isSecretGranted(name: string, subjects: string[]): Promise<boolean> {
    if (subjects.length === 0) return false;
    return (
      (
        await this.db.query('SELECT 1 FROM secret_grants WHERE name = $1 AND subject = ANY($2::text[]) LIMIT 1', [
          name,
          subjects,
        ])
      ).length > 0
    );
  }

  commitSecretRead(read: SecretReadCommit, audit: AuditInput): Promise<'OK' | 'NOT_GRANTED' | 'GONE'> {
    return this.db.transaction(
      async (tx) => {
        // A share lock on the secret: an ungrant, rotation or delete (FOR UPDATE) waits for this decision, or this waits for it.
        await tx.query('SELECT 1 FROM secrets WHERE name = $1 FOR SHARE', [read.name]);
        if (
          read.subjects.length === 0 ||
          (
            await rows(tx, 'SELECT 1 FROM secret_grants WHERE name = $1 AND subject = ANY($2::text[]) LIMIT 1', [
              read.name,
              read.subjects,
            ])
          ).length === 0
        )
          return 'NOT_GRANTED';
        const [row] = await rows(
          tx,
          'SELECT checksum, expires_at FROM secret_versions WHERE name = $1 AND version = $2 FOR UPDATE',
          [read.name, read.version],
        );
        if (
          !row ||
          (row.expires_at !== null && Number(row.expires_at) <= read.at.getTime()) ||
          row.checksum !== read.checksum
        )
          return 'GONE';
        await tx.query(
          'UPDATE secret_versions SET last_read_at = $3, last_read_by = $4 WHERE name = $1 AND version = $2',
          [read.name, read.version, read.at.getTime(), read.by],
        );
        await this.db.appendAudit(tx, [audit]);
        return 'OK';
      },
      { commit: (outcome) => outcome === 'OK' },
    );
  }

  async purgeExpiredSecretVersions(
    now: Date,
    auditFor: (v: { name: string; version: number; expiresAt: Date }) => AuditInput,
  ): Promise<Array<{ name: string; version: number }>> {
    // A read first (over the partial index): the common case, nothing expired, opens no transaction.
    if (
      (
        await this.db.query('SELECT 1 FROM secret_versions WHERE expires_at IS NOT NULL AND expires_at <= $1 LIMIT 1', [
          now.getTime(),
        ])
      ).length === 0
    )
      return [];
    return this.db.transaction(async (tx) => {
      // Two purges at once: the second DELETE waits on the first's row locks, then finds the rows gone.
      const deleted = (
        await rows(
          tx,
          'DELETE FROM secret_versions WHERE expires_at IS NOT NULL AND expires_at <= $1 RETURNING name, version, expires_at',
          [now.getTime()],
        )
      )
        .map((r) => ({ name: r.name as string, version: Number(r.version), expiresAt: new Date(Number(r.expires_at)) }))
        .sort(
          (a, b) =>
            a.expiresAt.getTime() - b.expiresAt.getTime() ||
            (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) ||
            a.version - b.version,
        );
      await this.db.appendAudit(tx, deleted.map(auditFor));
      return deleted.map(({ name, version }) => ({ name, version }));
    });
  }

  rekeySecrets(
    toKeyId: string,
    reseal: (v: Pick<SecretVersionRecord, 'name' | 'version' | 'keyId' | 'sealedKey'>) => Buffer,
    audit: (resealed: number) => AuditInput,
  ): Promise<number> {
    return this.db.transaction(async (tx) => {
      // The key row first: a version sealed meanwhile either committed before (and is read here) or waits and is refused.
      await tx.query(
        'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = meta.value',
        [SECRETS_KEY_ID_META, toKeyId],
      );
      const versions = (
        await rows(
          tx,
          'SELECT name, version, key_id, sealed_key FROM secret_versions ORDER BY name, version FOR UPDATE',
          [],
        )
      ).map((r) => ({
        name: r.name as string,
        version: Number(r.version),
        keyId: r.key_id as string,
        sealedKey: r.sealed_key as Buffer,
      }));
      for (const v of versions) {
        await tx.query('UPDATE secret_versions SET key_id = $3, sealed_key = $4 WHERE name = $1 AND version = $2', [
          v.name,
          v.version,
          toKeyId,
          reseal(v),
        ]);
      }
      await tx.query('UPDATE meta SET value = $2 WHERE key = $1', [SECRETS_KEY_ID_META, toKeyId]);
      await this.db.appendAudit(tx, [audit(versions.length)]);
      return versions.length;
    });
  }
}
