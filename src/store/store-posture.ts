/**
 * Device posture in the store (store.ts, issue 15): the reports identities send and the
 * security advisories imported to score them.
 */
import type { AuditInput } from './store-audit.js';

/** A device's posture report as received (issue 15); `report` is the JSON the agent sent, validated. */
export interface PostureRecord {
  id: number;
  spiffeId: string;
  /** The certificate that sent it. */
  serial: string;
  receivedAt: Date;
  score: number | null;
  report: string;
}

/**
 * A security advisory as imported (issue 15): `record` is the normalized advisory as JSON
 * (src/posture/vulns/osv.ts), opaque to the store; `modified` decides whether a re-import replaces it.
 */
export interface AdvisoryRecord {
  id: string;
  modified: string;
  severity: string;
  record: string;
}

export interface AdvisoryImport {
  added: number;
  updated: number;
  /** Already held, as modified or newer. */
  unchanged: number;
}

export interface PostureStore {
  /** Records a report and its audit event in one transaction, keeping the newest `keep` of that identity. */
  recordPosture(record: Omit<PostureRecord, 'id'>, keep: number, audit: AuditInput): Promise<PostureRecord>;
  /** The newest report of every identity that sent one, by SPIFFE ID. */
  latestPosture(): Promise<PostureRecord[]>;
  /** The same without the reports themselves (which carry package lists): what a metrics scrape needs. */
  latestPostureScores(): Promise<Array<Pick<PostureRecord, 'spiffeId' | 'score' | 'receivedAt'>>>;
  /** One identity's reports, newest first. */
  postureHistory(spiffeId: string, limit: number): Promise<PostureRecord[]>;
  /**
   * Adds advisories and replaces those held with an older `modified`, all in one transaction
   * with the audit event `audit(counts)` (a throw changes nothing).
   */
  importAdvisories(
    records: readonly AdvisoryRecord[],
    audit: (counts: AdvisoryImport) => AuditInput,
  ): Promise<AdvisoryImport>;
  /** Every advisory held, by ID. */
  listAdvisories(): Promise<AdvisoryRecord[]>;
  /** Changes whenever an import adds or replaces an advisory: what a cache of them is keyed on. */
  advisoriesVersion(): Promise<string>;
}
