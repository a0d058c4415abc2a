/**
 * Tamper evidence for the audit trail: every event carries the hash of the one before it, so a
 * modified, deleted or reordered event breaks the chain at that point.
 */
import { createHash } from 'node:crypto';
import type { AuditInput, AuditRecord } from './store.js';

export const GENESIS_HASH = '0'.repeat(64);

/** Stable JSON: object keys sorted, so the hash does not depend on insertion order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
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

export type ChainCheck = { ok: true; count: number } | { ok: false; count: number; brokenAt: number; reason: string };

/** Walks records in sequence order and names the first one whose link or content does not match. */
export function verifyAuditChain(records: AuditRecord[]): ChainCheck {
  let prev = GENESIS_HASH;
  for (const record of records) {
    if (record.prevHash !== prev) {
      return { ok: false, count: records.length, brokenAt: record.seq, reason: 'link to the previous event does not match (an event before it was deleted, inserted or reordered)' };
    }
    if (auditHash(prev, record) !== record.hash) {
      return { ok: false, count: records.length, brokenAt: record.seq, reason: 'content does not match its hash (the event was modified)' };
    }
    prev = record.hash;
  }
  return { ok: true, count: records.length };
}
