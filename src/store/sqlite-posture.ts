/**
 * Device posture on the SQLite store (issue 15): the reports identities send, bounded per
 * identity, and the security advisories imported to score them, each write in one transaction
 * with its audit event.
 */
import type Database from 'better-sqlite3';
import { ADVISORIES_VERSION_META, postureFromRow, type Row } from './rows.js';
import type { SqliteDb } from './sqlite-db.js';
import type { AuditInput } from './store-audit.js';
import type { AdvisoryImport, AdvisoryRecord, PostureRecord } from './store-posture.js';

export class SqlitePosture {
  private readonly db: Database.Database;

  constructor(private readonly sqlite: SqliteDb) {
    this.db = sqlite.db;
  }

  async recordPosture(record: Omit<PostureRecord, 'id'>, keep: number, audit: AuditInput): Promise<PostureRecord> {
    return this.sqlite.write(() => {
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
      this.sqlite.appendAuditInTx([audit]);
      return { ...record, id: Number(lastInsertRowid) };
    });
  }

  async latestPosture(): Promise<PostureRecord[]> {
    return this.sqlite.read(() =>
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
    return this.sqlite.read(() =>
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
    return this.sqlite.read(() =>
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
    return this.sqlite.write(() => {
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
        this.sqlite.setMetaValue(ADVISORIES_VERSION_META, String(version + 1));
      }
      this.sqlite.appendAuditInTx([audit(counts)]);
      return counts;
    });
  }

  async listAdvisories(): Promise<AdvisoryRecord[]> {
    return this.sqlite.read(() =>
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
}
