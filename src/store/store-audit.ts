/**
 * The audit trail in the store (store.ts): events as appended, as recorded (chained by hash,
 * audit-chain.ts), the recorded head, and how they are listed and read back for verification.
 */
import type { AuditEventType } from '../log/audit-events.js';

export interface AuditInput {
  time: Date;
  type: AuditEventType;
  /** Who acted: an identity (`admin@spiffe://…`), `local:<user>` for CLI use on the CA dir, or `anonymous`. */
  actor: string;
  serial?: string | null;
  fingerprint?: string | null;
  tokenId?: string | null;
  requestId?: string | null;
  details?: Record<string, unknown>;
}

export interface AuditRecord extends Required<Omit<AuditInput, 'details'>> {
  seq: number;
  details: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

/** The newest event of the trail, as the store recorded it on its last append. */
export interface AuditHead {
  seq: number;
  hash: string;
}

export interface AuditFilter {
  type?: string;
  actor?: string;
  serial?: string;
  since?: Date;
  until?: Date;
  limit?: number;
  afterSeq?: number;
  /** The event with this hash (a diagnosis lookup: not indexed). */
  hash?: string;
}

export interface AuditStore {
  /** Appends chained to the recorded head (not to the last row), and records the new head in the same transaction. */
  appendAudit(events: AuditInput[]): Promise<void>;
  listAudit(filter?: AuditFilter): Promise<AuditRecord[]>;
  /**
   * Every event in sequence order, streamed to `visit`, and the recorded head, all from one
   * consistent snapshot (appends made meanwhile are not seen), so a live CA can be verified.
   */
  readAuditTrail(visit: (record: AuditRecord) => void): Promise<{ head: AuditHead | null }>;
}
