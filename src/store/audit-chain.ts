/**
 * Tamper evidence for the audit trail: every event carries the hash of the one before it, so a
 * modified, deleted, inserted or reordered event breaks the chain at that point.
 *
 * The hash is plain SHA-256, not keyed: it detects edits made without recomputing hashes, and
 * anyone able to write the database can rewrite the chain from the edited event on. Only a head
 * kept elsewhere (`audit verify --anchor`) detects that. See docs/operations.md.
 */
import { createHash } from 'node:crypto';
import type { AuditHead, AuditInput, AuditRecord } from './store-audit.js';

export const GENESIS_HASH = '0'.repeat(64);

/** Stable JSON: object keys sorted, so the hash does not depend on insertion order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function auditHash(prevHash: string, event: AuditInput): string {
  const body = canonicalJson({
    time: event.time.toISOString(),
    type: event.type,
    actor: event.actor,
    serial: event.serial ?? null,
    fingerprint: event.fingerprint ?? null,
    tokenId: event.tokenId ?? null,
    requestId: event.requestId ?? null,
    details: event.details ?? {},
  });
  return createHash('sha256').update(prevHash).update('\n').update(body).digest('hex');
}

/** A hash over edited fields that cannot be computed (a time that is not a number) is a mismatch too. */
function contentMatches(record: AuditRecord): boolean {
  try {
    return auditHash(record.prevHash, record) === record.hash;
  } catch {
    return false;
  }
}

export type ChainBreak =
  | { kind: 'content'; record: AuditRecord }
  | { kind: 'link'; record: AuditRecord; previous: AuditRecord | null }
  | { kind: 'anchor'; record: AuditRecord; anchor: AuditHead };

/**
 * Walks events in sequence order, one at a time (a trail can be larger than memory), and keeps
 * the first break. Each event is checked for its own content first (its hash over its fields and
 * its stated previous hash), then for its link to the event before it in the walk, so an edited
 * event is named as edited and not as the victim of an edit before it.
 */
export class AuditChainWalker {
  count = 0;
  last: AuditRecord | null = null;
  firstBreak: ChainBreak | null = null;
  anchorSeen = false;

  constructor(private readonly options: { anchor?: AuditHead | null } = {}) {}

  push(record: AuditRecord): void {
    this.count++;
    if (!this.firstBreak) this.check(record);
    this.last = record;
  }

  private check(record: AuditRecord): void {
    const previous = this.last;
    const anchor = this.options.anchor;
    if (!contentMatches(record)) this.firstBreak = { kind: 'content', record };
    else if (record.prevHash !== (previous?.hash ?? GENESIS_HASH)) this.firstBreak = { kind: 'link', record, previous };
    else if (anchor && record.seq === anchor.seq) {
      this.anchorSeen = true;
      if (record.hash !== anchor.hash) this.firstBreak = { kind: 'anchor', record, anchor };
    }
  }
}

export type ChainCheck = { ok: true; count: number } | { ok: false; count: number; brokenAt: number; reason: string };

/** Checks records already in memory, in sequence order (tests and small trails); `gatehouse audit verify` uses verifyAuditTrail. */
export function verifyAuditChain(records: AuditRecord[]): ChainCheck {
  const walker = new AuditChainWalker();
  for (const record of records) walker.push(record);
  const broken = walker.firstBreak;
  if (!broken) return { ok: true, count: walker.count };
  return {
    ok: false,
    count: walker.count,
    brokenAt: broken.record.seq,
    reason:
      broken.kind === 'content'
        ? 'hash mismatch: event content changed'
        : 'previous-hash does not match the event before it: an event was deleted, inserted or reordered',
  };
}
