/**
 * The SELECT behind `listAudit`, for both stores: one list of filters, so SQLite and PostgreSQL
 * find the same events. They differ only in placeholders (`?` or `$n`) and in LIKE, which ignores
 * ASCII case in SQLite and not in PostgreSQL (hence ILIKE there).
 */
import type { AuditFilter } from './store-audit.js';

export function auditQuery(filter: AuditFilter, dialect: 'sqlite' | 'postgres'): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const p = (value: unknown) => (params.push(value), dialect === 'sqlite' ? '?' : `$${params.length}`);
  const where: string[] = [];
  if (filter.type) where.push(`type = ${p(filter.type)}`);
  if (filter.actor) where.push(`actor ${dialect === 'sqlite' ? 'LIKE' : 'ILIKE'} ${p(`%${filter.actor}%`)}`);
  if (filter.serial) where.push(`serial = ${p(filter.serial)}`);
  if (filter.since) where.push(`time >= ${p(filter.since.getTime())}`);
  if (filter.until) where.push(`time < ${p(filter.until.getTime())}`);
  if (filter.afterSeq !== undefined) where.push(`seq > ${p(filter.afterSeq)}`);
  if (filter.hash) where.push(`hash = ${p(filter.hash)}`);
  const sql = `SELECT * FROM audit_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq LIMIT ${p(filter.limit ?? 1_000_000)}`;
  return { sql, params };
}
