/**
 * The CA's persistent state behind one interface: the certificate inventory, join tokens
 * (hashed), revocations and the audit trail. SQLite implements it today; a PostgreSQL store
 * must pass the same contract tests (test/store-contract.ts).
 */
import type { AuditEventType } from '../log/audit-events.js';
import type { CrlReason } from '../pki/crl.js';

export interface CertRecord {
  serial: string;
  fingerprint: string;
  name: string;
  role: string;
  spiffeId: string;
  notBefore: Date;
  notAfter: Date;
  issuedAt: Date;
  certPem: string;
  /** The join token that enrolled it, for first certificates. */
  tokenId: string | null;
  /** The serial of the certificate this one renewed. */
  renewedFrom: string | null;
  revokedAt: Date | null;
  revocationReason: CrlReason | null;
}

export interface TokenRecord {
  id: string;
  /** Lowercase hex SHA-256 of the secret part. The secret itself is never stored. */
  secretHash: string;
  role: string;
  /** Exact name the token enrolls, or null. */
  name: string | null;
  /** Glob (`*` only) the enrolled name must match, or null. */
  namePattern: string | null;
  maxUses: number;
  uses: number;
  expiresAt: Date;
  createdAt: Date;
  createdBy: string;
  revokedAt: Date | null;
}

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

export type IssuanceOutcome =
  | { ok: true }
  | { ok: false; reason: 'TOKEN_UNKNOWN' | 'TOKEN_USED' | 'TOKEN_REVOKED' | 'TOKEN_EXPIRED' }
  /** `exclusiveName` was set and another active certificate (serial `heldBy`) holds the name. */
  | { ok: false; reason: 'NAME_TAKEN'; heldBy: string };

export interface IssuanceCommit {
  cert: CertRecord;
  /** Consume one use of this token in the same transaction; the issuance fails if none is left. */
  consumeTokenId?: string;
  now: Date;
  audit: AuditInput[];
  /**
   * Refuse with NAME_TAKEN, in the same transaction that would record the certificate, when
   * another certificate for the same name and role (the same SPIFFE ID) is active at `now`: not
   * revoked, notAfter after `now`. Includes certificates committed earlier in the same batch or
   * transaction. A refusal records nothing and consumes no token use. Unset for renewals and for
   * enrollments whose token was made for the exact name (an operator's explicit replacement).
   */
  exclusiveName?: boolean;
}

export type CertState = 'active' | 'expired' | 'revoked';

export interface CertFilter {
  role?: string;
  name?: string;
  state?: CertState;
  /** Active certificates whose notAfter is before this instant. */
  expiringBefore?: Date;
  /** Leave out a certificate when an unrevoked one for the same role and name was issued after it (it was renewed or replaced). */
  excludeSuperseded?: boolean;
  now?: Date;
  limit?: number;
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

export interface RevokedSerial {
  serial: string;
  revokedAt: Date;
  reason: CrlReason;
}

export interface Store {
  readonly kind: string;

  insertToken(token: TokenRecord, audit: AuditInput): Promise<void>;
  getToken(id: string): Promise<TokenRecord | null>;
  listTokens(): Promise<TokenRecord[]>;
  /** Marks the token revoked. Returns null when no token has this ID. */
  revokeToken(id: string, at: Date, audit: AuditInput): Promise<TokenRecord | null>;

  /** Records an issued certificate durably (and consumes a token use) before it is returned. */
  commitIssuance(commit: IssuanceCommit): Promise<IssuanceOutcome>;
  getCert(serial: string): Promise<CertRecord | null>;
  listCerts(filter?: CertFilter): Promise<CertRecord[]>;
  /** Certificates per state at `now`, counted without reading them (metrics scrape this). */
  countCertsByState(now: Date): Promise<Record<CertState, number>>;
  /** Revokes once; a second call keeps the first reason and time. Null when unknown. */
  revokeCert(serial: string, reason: CrlReason, at: Date, audit: AuditInput): Promise<CertRecord | null>;
  /** Revoked certificates that have not yet expired: what a CRL must list (RFC 5280 §3.3). */
  listRevokedUnexpired(now: Date): Promise<RevokedSerial[]>;
  /** Changes whenever a certificate is revoked, so CRL publishers can poll cheaply. */
  revocationVersion(): Promise<number>;
  /** Atomically increments and returns the CRL number for a scope (RFC 5280 §5.2.3: monotonic). */
  nextCrlNumber(scope: string): Promise<bigint>;

  /** Appends chained to the recorded head (not to the last row), and records the new head in the same transaction. */
  appendAudit(events: AuditInput[]): Promise<void>;
  listAudit(filter?: AuditFilter): Promise<AuditRecord[]>;
  /**
   * Every event in sequence order, streamed to `visit`, and the recorded head, all from one
   * consistent snapshot (appends made meanwhile are not seen), so a live CA can be verified.
   */
  readAuditTrail(visit: (record: AuditRecord) => void): Promise<{ head: AuditHead | null }>;

  getMeta(key: string): Promise<string | null>;
  setMeta(key: string, value: string): Promise<void>;

  close(): Promise<void>;
}
