/**
 * The certificates of the SQLite store once issued (sqlite-issuance.ts records them): lookups,
 * listings and counts, the names each lineage reserves, and revocation with what a CRL is made
 * of (the revoked serials, the revocation version, CRL numbers).
 */
import type Database from 'better-sqlite3';
import type { CrlReason } from '../pki/crl.js';
import { certFromRow, date, reservationFromRow, type Row } from './rows.js';
import type { SqliteDb } from './sqlite-db.js';
import type { AuditInput } from './store-audit.js';
import type { CertFilter, CertRecord, CertState, NameReservation, RevokedSerial } from './store-certificates.js';

export class SqliteCertificates {
  private readonly db: Database.Database;
  private readonly stmt;

  constructor(private readonly sqlite: SqliteDb) {
    this.db = sqlite.db;
    this.stmt = {
      getCert: this.db.prepare('SELECT * FROM certificates WHERE serial = ?'),
      getName: this.db.prepare('SELECT * FROM names WHERE role = ? AND name = ?'),
    };
  }

  async getCert(serial: string): Promise<CertRecord | null> {
    const row = this.sqlite.read(() => this.stmt.getCert.get(serial) as Row | undefined);
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
    return this.sqlite.read(() => (this.db.prepare(sql).all(...params) as Row[]).map(certFromRow));
  }

  async countCertsByState(now: Date): Promise<Record<CertState, number>> {
    // Counts over indexes: no certificate row is read except revoked ones (the unary + keeps the
    // last count on the small revoked index instead of visiting every unexpired row).
    const t = now.getTime();
    const row = this.sqlite.read(
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

  async getNameReservation(role: string, name: string): Promise<NameReservation | null> {
    const row = this.sqlite.read(() => this.stmt.getName.get(role, name) as Row | undefined);
    return row ? reservationFromRow(row) : null;
  }

  async listNameReservations(): Promise<NameReservation[]> {
    return this.sqlite.read(() =>
      (this.db.prepare('SELECT * FROM names ORDER BY role, name').all() as Row[]).map(reservationFromRow),
    );
  }

  async releaseName(role: string, name: string, audit: AuditInput): Promise<NameReservation | null> {
    return this.sqlite.write(() => {
      const row = this.stmt.getName.get(role, name) as Row | undefined;
      if (!row) return null;
      this.db.prepare('DELETE FROM names WHERE role = ? AND name = ?').run(role, name);
      this.sqlite.appendAuditInTx([audit]);
      return reservationFromRow(row);
    });
  }

  async revokeCert(serial: string, reason: CrlReason, at: Date, audit: AuditInput): Promise<CertRecord | null> {
    return this.sqlite.write(() => {
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
        this.sqlite.appendAuditInTx([audit]);
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
    return this.sqlite.write(() => {
      const rows = this.db
        .prepare('SELECT * FROM certificates WHERE lineage = ? AND revoked_at IS NULL ORDER BY issued_at, rowid')
        .all(lineage) as Row[];
      if (rows.length === 0) {
        this.sqlite.appendAuditInTx(leading);
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
      this.sqlite.appendAuditInTx([...leading, ...revoked.map(auditFor)]);
      return revoked;
    });
  }

  async listRevokedUnexpired(now: Date): Promise<RevokedSerial[]> {
    return this.sqlite.read(() =>
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
    const row = this.sqlite.read(
      () =>
        this.db.prepare("SELECT value FROM meta WHERE key = 'revocation_version'").get() as
          { value: string } | undefined,
    );
    return row ? Number(row.value) : 0;
  }

  async nextCrlNumber(scope: string): Promise<bigint> {
    return this.sqlite.write(() => {
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
}
