/** Rows as both stores read them back: times are ms since the epoch, integers may come as strings (PostgreSQL int8). */
import type { CrlReason } from '../pki/crl.js';
import type { AuditHead, AuditRecord } from './store-audit.js';
import type { CertRecord, NameReservation } from './store-certificates.js';
import type { PostureRecord } from './store-posture.js';
import type { SecretRecord, SecretVersionRecord } from './store-secrets.js';
import type { TokenRecord } from './store-tokens.js';

/** The meta key of the audit head: seq and hash of the newest event, recorded on every append. */
export const AUDIT_HEAD_KEY = 'audit:head';
/** The meta key of the counter that changes whenever an import adds or replaces an advisory. */
export const ADVISORIES_VERSION_META = 'advisories:version';

export type Row = Record<string, unknown>;

export const date = (v: unknown): Date => new Date(Number(v));
export const dateOrNull = (v: unknown): Date | null => (v === null || v === undefined ? null : new Date(Number(v)));

export function certFromRow(r: Row): CertRecord {
  return {
    serial: r.serial as string,
    fingerprint: r.fingerprint as string,
    name: r.name as string,
    role: r.role as string,
    spiffeId: r.spiffe_id as string,
    notBefore: date(r.not_before),
    notAfter: date(r.not_after),
    issuedAt: date(r.issued_at),
    certPem: r.cert_pem as string,
    tokenId: (r.token_id as string | null) ?? null,
    renewedFrom: (r.renewed_from as string | null) ?? null,
    lineage: (r.lineage as string | null) ?? (r.serial as string),
    supersededBy: (r.superseded_by as string | null) ?? null,
    supersededAt: dateOrNull(r.superseded_at),
    revokedAt: dateOrNull(r.revoked_at),
    revocationReason: (r.revocation_reason as CrlReason | null) ?? null,
  };
}

export function reservationFromRow(r: Row): NameReservation {
  return {
    role: r.role as string,
    name: r.name as string,
    spiffeId: r.spiffe_id as string,
    lineage: r.lineage as string,
    reservedAt: date(r.reserved_at),
  };
}

export function tokenFromRow(r: Row): TokenRecord {
  return {
    id: r.id as string,
    secretHash: r.secret_hash as string,
    role: r.role as string,
    name: (r.name as string | null) ?? null,
    namePattern: (r.name_pattern as string | null) ?? null,
    maxUses: Number(r.max_uses),
    uses: Number(r.uses),
    expiresAt: date(r.expires_at),
    createdAt: date(r.created_at),
    createdBy: r.created_by as string,
    revokedAt: dateOrNull(r.revoked_at),
  };
}

export function secretFromRow(r: Row): SecretRecord {
  return {
    name: r.name as string,
    createdAt: date(r.created_at),
    updatedAt: date(r.updated_at),
    currentVersion: Number(r.current_version),
  };
}

export function secretVersionFromRow(r: Row): SecretVersionRecord {
  return {
    name: r.name as string,
    version: Number(r.version),
    createdAt: date(r.created_at),
    expiresAt: dateOrNull(r.expires_at),
    keyId: r.key_id as string,
    sealedKey: r.sealed_key as Buffer,
    iv: r.iv as Buffer,
    ciphertext: r.ciphertext as Buffer,
    tag: r.tag as Buffer,
    checksum: r.checksum as string,
    size: Number(r.size),
    lastReadAt: dateOrNull(r.last_read_at),
    lastReadBy: (r.last_read_by as string | null) ?? null,
  };
}

export function auditFromRow(r: Row): AuditRecord {
  return {
    seq: Number(r.seq),
    time: date(r.time),
    type: r.type as AuditRecord['type'],
    actor: r.actor as string,
    serial: (r.serial as string | null) ?? null,
    fingerprint: (r.fingerprint as string | null) ?? null,
    tokenId: (r.token_id as string | null) ?? null,
    requestId: (r.request_id as string | null) ?? null,
    details: parseDetails(r.details),
    prevHash: r.prev_hash as string,
    hash: r.hash as string,
  };
}

/** Details edited into something that is not JSON still load (and then fail their hash), rather than failing every read. */
function parseDetails(text: unknown): Record<string, unknown> {
  try {
    return JSON.parse(String(text)) as Record<string, unknown>;
  } catch {
    return { '<unparseable>': String(text) };
  }
}

export function parseHead(value: string | undefined): AuditHead | null {
  if (value === undefined) return null;
  try {
    const head = JSON.parse(value) as AuditHead;
    return { seq: Number(head.seq), hash: String(head.hash) };
  } catch {
    return { seq: -1, hash: value };
  }
}

export function postureFromRow(row: Row): PostureRecord {
  return {
    id: Number(row.id),
    spiffeId: String(row.spiffe_id),
    serial: String(row.serial),
    receivedAt: new Date(Number(row.received_at)),
    score: row.score === null ? null : Number(row.score),
    report: String(row.report),
  };
}
