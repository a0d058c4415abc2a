/**
 * The certificates of the PostgreSQL store once issued (postgres-issuance.ts records them):
 * lookups, listings and counts, the names each lineage reserves, and revocation with what a CRL
 * is made of. A revocation locks the rows it changes (FOR UPDATE), so one racing a renewal on
 * another replica cannot leave the new certificate unrevoked.
 */
import type { CrlReason } from '../pki/crl.js';
import type { PgDb, Row } from './postgres-db.js';
import { certFromRow, reservationFromRow } from './rows.js';
import type { AuditInput } from './store-audit.js';
import type { CertFilter, CertRecord, CertState, NameReservation, RevokedSerial } from './store-certificates.js';

const REVOCATION_VERSION_BUMP = `INSERT INTO meta (key, value) VALUES ('revocation_version', '1')
  ON CONFLICT (key) DO UPDATE SET value = (meta.value::bigint + 1)::text`;

export class PostgresCertificates {
  constructor(private readonly db: PgDb) {}

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
}
