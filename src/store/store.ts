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

/** A secret (issue 13): its name and which version is current. Values live only sealed, in its versions. */
export interface SecretRecord {
  name: string;
  createdAt: Date;
  updatedAt: Date;
  currentVersion: number;
}

/** One version of a secret, sealed (src/secrets/seal.ts): the store never sees a value or a data key in the clear. */
export interface SecretVersionRecord {
  name: string;
  version: number;
  createdAt: Date;
  /** Null for the current version; an older one is readable until then (the rotation overlap), then deleted. */
  expiresAt: Date | null;
  /** The master key that sealed `sealedKey`. */
  keyId: string;
  sealedKey: Buffer;
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
  /** `hmac-sha256:` keyed by the version's data key: not a plain digest of the value. */
  checksum: string;
  size: number;
  lastReadAt: Date | null;
  /** The SPIFFE ID that read it last. */
  lastReadBy: string | null;
}

export type NewSecretVersion = Omit<SecretVersionRecord, 'expiresAt' | 'lastReadAt' | 'lastReadBy'>;

export interface SecretGrantRecord {
  name: string;
  /** `role:ROLE`, `name:NAME` or `id:SPIFFE_ID` (src/secrets/names.ts). */
  subject: string;
  grantedAt: Date;
}

/** What an identity sees of a secret granted to it: the current version's metadata. */
export interface SecretListing {
  name: string;
  version: number;
  checksum: string;
  size: number;
  updatedAt: Date;
}

/** The meta key holding the ID of the master key every sealed data key in the store is under. */
export const SECRETS_KEY_ID_META = 'secrets:key_id';

export type SecretWriteOutcome =
  | { ok: true }
  /** A secret of this name exists, or one whose name differs only in letter case (`existing`). */
  | { ok: false; reason: 'EXISTS'; existing: string }
  | { ok: false; reason: 'NOT_FOUND' }
  /** A rotation raced another: the current version is no longer the one the new version follows. */
  | { ok: false; reason: 'VERSION_CHANGED'; currentVersion: number }
  /** The store's secrets are under another master key now (a rekey committed meanwhile): seal again with it. */
  | { ok: false; reason: 'KEY_CHANGED'; keyId: string };

export type SecretGrantOutcome =
  | { ok: true; changed: string[] }
  | { ok: false; reason: 'NOT_FOUND' }
  /** An ungrant named subjects the secret is not granted to: nothing was changed. */
  | { ok: false; reason: 'NOT_GRANTED'; subjects: string[]; granted: string[] }
  | { ok: false; reason: 'TOO_MANY_GRANTS'; limit: number };

export interface SecretReadCommit {
  name: string;
  version: number;
  /** The checksum of the value about to be delivered: the version must still be that value. */
  checksum: string;
  /** The reader's subjects (secrets/names.ts subjectsOf): one must be granted at commit. */
  subjects: string[];
  at: Date;
  by: string;
}

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

  /** Appends chained to the recorded head (not to the last row), and records the new head in the same transaction. */
  appendAudit(events: AuditInput[]): Promise<void>;
  listAudit(filter?: AuditFilter): Promise<AuditRecord[]>;
  /**
   * Every event in sequence order, streamed to `visit`, and the recorded head, all from one
   * consistent snapshot (appends made meanwhile are not seen), so a live CA can be verified.
   */
  readAuditTrail(visit: (record: AuditRecord) => void): Promise<{ head: AuditHead | null }>;

  // Secrets (issue 13). Each mutation and its audit events commit in one transaction.
  /** A new secret with its first version and grants; EXISTS (also for a name differing in case) or KEY_CHANGED records nothing. */
  createSecret(
    input: { version: NewSecretVersion; grants: string[]; at: Date },
    audit: AuditInput,
  ): Promise<SecretWriteOutcome>;
  /**
   * `version.version` becomes current if the current one is still `version.version - 1`; the
   * previous current version expires at `previousExpiresAt`, or is deleted now when null.
   */
  rotateSecret(
    input: { version: NewSecretVersion; at: Date; previousExpiresAt: Date | null },
    audit: AuditInput,
  ): Promise<SecretWriteOutcome>;
  /** Adds the subjects not yet granted (`changed`), with `auditFor(changed)`; at most `limit` grants in all. */
  grantSecret(
    name: string,
    subjects: string[],
    at: Date,
    limit: number,
    auditFor: (changed: string[]) => AuditInput[],
  ): Promise<SecretGrantOutcome>;
  /** Removes every subject, or none when one of them is not granted (NOT_GRANTED). */
  ungrantSecret(
    name: string,
    subjects: string[],
    at: Date,
    auditFor: (changed: string[]) => AuditInput[],
  ): Promise<SecretGrantOutcome>;
  /** Deletes the secret, its versions and grants; null when unknown. */
  deleteSecret(
    name: string,
    audit: (versions: SecretVersionRecord[]) => AuditInput,
  ): Promise<{ secret: SecretRecord; versions: number } | null>;
  getSecret(name: string): Promise<SecretRecord | null>;
  listSecrets(): Promise<SecretRecord[]>;
  /** The versions not expired at `now`, newest first. */
  listSecretVersions(name: string, now: Date): Promise<SecretVersionRecord[]>;
  /** One version, unless it expired at `now`. */
  getSecretVersion(name: string, version: number, now: Date): Promise<SecretVersionRecord | null>;
  listSecretGrants(name: string): Promise<SecretGrantRecord[]>;
  /** The current version of every secret granted to any of `subjects`, by name. */
  listSecretsGranted(subjects: string[]): Promise<SecretListing[]>;
  isSecretGranted(name: string, subjects: string[]): Promise<boolean>;
  /**
   * The decision to deliver a value, in one transaction with its audit event: the grant still
   * holds, the version still exists unexpired with that checksum; then its last read is recorded.
   */
  commitSecretRead(read: SecretReadCommit, audit: AuditInput): Promise<'OK' | 'NOT_GRANTED' | 'GONE'>;
  /** Deletes the versions expired at `now`, each with `auditFor(version)`; writes nothing when none has. */
  purgeExpiredSecretVersions(
    now: Date,
    auditFor: (v: { name: string; version: number; expiresAt: Date }) => AuditInput,
  ): Promise<Array<{ name: string; version: number }>>;
  /**
   * Re-seals every version's data key under master key `toKeyId` with `reseal` (called inside
   * the transaction; a throw changes nothing), records `toKeyId` as the store's key, and audits.
   */
  rekeySecrets(
    toKeyId: string,
    reseal: (v: Pick<SecretVersionRecord, 'name' | 'version' | 'keyId' | 'sealedKey'>) => Buffer,
    audit: (resealed: number) => AuditInput,
  ): Promise<number>;

  // Device posture (issue 15).
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

  getMeta(key: string): Promise<string | null>;
  setMeta(key: string, value: string): Promise<void>;

  close(): Promise<void>;
}
