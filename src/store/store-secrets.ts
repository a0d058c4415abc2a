/**
 * Secrets in the store (store.ts, issue 13): names, sealed versions and grants. The store only
 * ever holds values sealed (src/secrets/seal.ts).
 */
import type { AuditInput } from './store-audit.js';

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

/** Each mutation and its audit events commit in one transaction. */
export interface SecretStore {
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
}
