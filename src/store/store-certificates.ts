/**
 * Certificates in the store (store.ts): the issuance that records one, the inventory, the names
 * each lineage reserves, and revocation with what a CRL is made of (the revoked serials, its
 * version and CRL numbers).
 */
import type { CrlReason } from '../pki/crl.js';
import type { AuditInput } from './store-audit.js';

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
  /**
   * The serial of the first certificate of its line: the enrollment (or signing) that created
   * it, inherited by every renewal. Only the newest certificate of a lineage may renew.
   */
  lineage: string;
  /** The renewal that replaced this certificate as its lineage's newest, and when. */
  supersededBy: string | null;
  supersededAt: Date | null;
  revokedAt: Date | null;
  revocationReason: CrlReason | null;
}

/**
 * A name (one SPIFFE ID: a role and a name) belongs to the lineage that first enrolled it, after
 * its certificates are revoked or expire too, until an operator replaces or releases it.
 */
export interface NameReservation {
  role: string;
  name: string;
  spiffeId: string;
  lineage: string;
  reservedAt: Date;
}

export type IssuanceOutcome =
  | { ok: true }
  | { ok: false; reason: 'TOKEN_UNKNOWN' | 'TOKEN_USED' | 'TOKEN_REVOKED' | 'TOKEN_EXPIRED' }
  /** The name belongs to another lineage (`heldBy`: its newest certificate's serial; `active`: that one is unrevoked and unexpired). */
  | { ok: false; reason: 'NAME_TAKEN'; heldBy: string; active: boolean }
  /** `renews` is no longer its lineage's newest certificate: renewed already (`supersededBy`) or revoked (null). */
  | { ok: false; reason: 'NOT_LINEAGE_HEAD'; supersededBy: string | null };

/**
 * How an issuance takes its name. `first`: only if no other lineage has the name reserved (and
 * no other active certificate holds it) — an enrollment whose token does not fix the name.
 * `replace`: the reservation moves to this certificate's lineage — an operator's explicit choice
 * (a token made for the exact name, `cert sign`, the CA's own certificates). `lineage`: a
 * renewal keeps its lineage's reservation, or takes it back if it was released, and is refused
 * if another lineage now holds it.
 */
export type NameClaim = 'first' | 'replace' | 'lineage';

export interface IssuanceCommit {
  cert: CertRecord;
  /** Consume one use of this token in the same transaction; the issuance fails if none is left. */
  consumeTokenId?: string;
  now: Date;
  audit: AuditInput[];
  /**
   * Decided in the same transaction that records the certificate, so two simultaneous first
   * enrollments of one new name cannot both succeed; sees certificates committed earlier in the
   * same batch. A refusal records nothing and consumes no token use. Default `replace`.
   */
  nameClaim?: NameClaim;
  /**
   * The serial this certificate renews: in the same transaction it must still be its lineage's
   * newest, unrevoked certificate, and is marked superseded by this one; else NOT_LINEAGE_HEAD.
   */
  renews?: string;
}

export type CertState = 'active' | 'expired' | 'revoked';

/** A certificate's state at `now`: revoked wins over expired. */
export function certStateAt(c: Pick<CertRecord, 'revokedAt' | 'notAfter'>, now: Date): CertState {
  return c.revokedAt ? 'revoked' : c.notAfter <= now ? 'expired' : 'active';
}

export interface CertFilter {
  role?: string;
  name?: string;
  lineage?: string;
  state?: CertState;
  /** Active certificates whose notAfter is before this instant. */
  expiringBefore?: Date;
  /** Leave out a certificate when an unrevoked one for the same role and name was issued after it (it was renewed or replaced). */
  excludeSuperseded?: boolean;
  now?: Date;
  limit?: number;
}

export interface RevokedSerial {
  serial: string;
  revokedAt: Date;
  reason: CrlReason;
}

export interface CertificateStore {
  /** Records an issued certificate durably (and consumes a token use) before it is returned. */
  commitIssuance(commit: IssuanceCommit): Promise<IssuanceOutcome>;
  getCert(serial: string): Promise<CertRecord | null>;
  listCerts(filter?: CertFilter): Promise<CertRecord[]>;
  /** Certificates per state at `now`, counted without reading them (metrics scrape this). */
  countCertsByState(now: Date): Promise<Record<CertState, number>>;
  /** Revokes once; a second call keeps the first reason and time. Null when unknown. */
  revokeCert(serial: string, reason: CrlReason, at: Date, audit: AuditInput): Promise<CertRecord | null>;
  /**
   * Revokes every unrevoked certificate of a lineage in one transaction (so a renewal racing it
   * cannot leave a new certificate unrevoked), with the `leading` audit events and then one per
   * certificate from `auditFor`. Returns the certificates it revoked.
   */
  revokeLineage(
    lineage: string,
    reason: CrlReason,
    at: Date,
    auditFor: (cert: CertRecord) => AuditInput,
    leading?: AuditInput[],
  ): Promise<CertRecord[]>;
  getNameReservation(role: string, name: string): Promise<NameReservation | null>;
  listNameReservations(): Promise<NameReservation[]>;
  /** Deletes a reservation, with its audit event; null when the name was not reserved. */
  releaseName(role: string, name: string, audit: AuditInput): Promise<NameReservation | null>;
  /** Revoked certificates that have not yet expired: what a CRL must list (RFC 5280 §3.3). */
  listRevokedUnexpired(now: Date): Promise<RevokedSerial[]>;
  /** Changes whenever a certificate is revoked, so CRL publishers can poll cheaply. */
  revocationVersion(): Promise<number>;
  /** Atomically increments and returns the CRL number for a scope (RFC 5280 §5.2.3: monotonic). */
  nextCrlNumber(scope: string): Promise<bigint>;
}
