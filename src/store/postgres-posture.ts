/**
 * Device posture on the PostgreSQL store (issue 15): the reports identities send, bounded per
 * identity, and the security advisories imported to score them, each write in one transaction
 * with its audit event. Imports from several replicas take turns on the advisories' version row.
 */
import type { PgDb, Row } from './postgres-db.js';
import { ADVISORIES_VERSION_META, postureFromRow } from './rows.js';
import type { AuditInput } from './store-audit.js';
import type { AdvisoryImport, AdvisoryRecord, PostureRecord } from './store-posture.js';

export class PostgresPosture {
  constructor(private readonly db: PgDb) {}

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
}
