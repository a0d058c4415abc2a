/**
 * Secrets on the CA (issue 13): operators create, grant, rotate and delete them (locally on the
 * CA directory or through the admin API); identities read the ones granted to them over mutual
 * TLS. Values are sealed before they reach the store (seal.ts) and opened only to be delivered.
 *
 * No value, data key or master key ever goes into a log line, an audit event, an error message
 * or a database column in the clear. Every mutation commits with its audit event in one
 * transaction; every delivery is decided, recorded and audited in one transaction too.
 */
import { GatehouseError, isGatehouseError } from '../errors/errors.js';
import type { CaConfig } from '../config/ca-config.js';
import type { Logger } from '../log/logger.js';
import type { Store } from '../store/store.js';
import type { AuditInput } from '../store/store-audit.js';
import type { CertRecord } from '../store/store-certificates.js';
import { type SecretListing, type SecretVersionRecord, SECRETS_KEY_ID_META } from '../store/store-secrets.js';
import { newMasterKey, withRekeyLock, type MasterKeyRing } from './master-key.js';
import { openValue, resealDataKey, sealValue, type MasterKey } from './seal.js';
import {
  MAX_GRANTS_PER_SECRET,
  assertSecretName,
  assertSecretValue,
  parseSubject,
  secretNameProblem,
  subjectsOf,
  type GrantSubject,
} from './names.js';

/** Longest rotation overlap: an old version should not outlive its replacement by much. */
export const MAX_ROTATION_OVERLAP_MS = 30 * 86_400_000;
/** Attempts at a write that lost a race (a rotation or a rekey committed meanwhile) before giving up. */
const WRITE_ATTEMPTS = 5;

/** The closed set of outcomes of `/v1/secrets` requests, for `gatehouse_ca_secret_reads_total{result}`. */
export const SECRET_READ_RESULTS = [
  'delivered',
  'listed',
  'not_granted',
  'unknown',
  'version_gone',
  'invalid',
  'revoked',
  'expired',
  'untrusted',
  'sealed_invalid',
  'error',
] as const;
export type SecretReadResult = (typeof SECRET_READ_RESULTS)[number];

export interface SecretObserver {
  read(result: SecretReadResult): void;
}

/** Why a read was refused, as the audit trail says (the caller sees less: unknown and not-granted look the same). */
export type RefusalReason =
  | 'not-granted'
  | 'unknown'
  | 'version-gone'
  | 'invalid'
  | 'revoked'
  | 'expired'
  | 'untrusted'
  | 'no-certificate'
  | 'sealed-invalid'
  | 'master-key'
  | 'error';

const RESULT_OF: Record<RefusalReason, SecretReadResult> = {
  'not-granted': 'not_granted',
  unknown: 'unknown',
  'version-gone': 'version_gone',
  invalid: 'invalid',
  revoked: 'revoked',
  expired: 'expired',
  untrusted: 'untrusted',
  'no-certificate': 'untrusted',
  'sealed-invalid': 'sealed_invalid',
  'master-key': 'error',
  error: 'error',
};

export type RefusalAuditWriter = (
  source: string,
  event: Omit<AuditInput, 'time' | 'details'> & { details: Record<string, string | number | boolean | null> },
) => Promise<void>;

export interface SecretServiceDeps {
  store: Store;
  config: Readonly<Pick<CaConfig, 'trustDomain' | 'roles' | 'secrets'>>;
  keys: MasterKeyRing;
  logger: Logger;
  now?: () => Date;
  observer?: SecretObserver | null;
  /**
   * Writes the audit event of a refused read within the refusal-audit rate limit of its source
   * (Authority.auditAnonymousRefusal), so a flood of refused reads cannot fill the trail.
   * Without it, refusals are written unlimited (local use).
   */
  auditRefusal?: RefusalAuditWriter;
}

export interface ActorContext {
  actor: string;
  requestId?: string | null;
}

export interface ReaderContext {
  requestId?: string | null;
  /** The peer address: the key of the refusal-audit rate limit. */
  source: string;
}

export interface SecretVersionView {
  version: number;
  current: boolean;
  createdAt: string;
  /** When an old version stops being readable; null for the current one. */
  expiresAt: string | null;
  size: number;
  checksum: string;
  keyId: string;
  lastReadAt: string | null;
  lastReadBy: string | null;
}

export interface SecretView {
  name: string;
  currentVersion: number;
  createdAt: string;
  updatedAt: string;
  versions: SecretVersionView[];
  grants: Array<{ subject: string; grantedAt: string }>;
}

export interface SecretSummaryView {
  name: string;
  version: number;
  size: number;
  checksum: string;
  versions: number;
  grants: string[];
  createdAt: string;
  updatedAt: string;
}

export interface SecretListingView {
  name: string;
  version: number;
  checksum: string;
  size: number;
  updatedAt: string;
}

export interface DeliveredSecret {
  name: string;
  version: number;
  checksum: string;
  value: Buffer;
}

export interface RekeyResult {
  keyId: string;
  previousKeyIds: string[];
  resealed: number;
  encrypted: boolean;
}

/** Thrown to refuse a read; carries what the audit and the metric need. */
class ReadRefusal extends Error {
  constructor(
    readonly reason: RefusalReason,
    readonly error: GatehouseError,
  ) {
    super(error.message);
  }
}

export class SecretService {
  private readonly store: Store;
  private readonly config: SecretServiceDeps['config'];
  readonly keys: MasterKeyRing;
  private readonly logger: Logger;
  readonly now: () => Date;
  private readonly observer: SecretObserver | null;
  private readonly auditRefusal: RefusalAuditWriter | null;
  /** Rotations of one name in this process run one after the other; other processes are met by the store's version check. */
  private readonly rotations = new Map<string, Promise<unknown>>();

  constructor(deps: SecretServiceDeps) {
    this.store = deps.store;
    this.config = deps.config;
    this.keys = deps.keys;
    this.logger = deps.logger;
    this.now = deps.now ?? (() => new Date());
    this.observer = deps.observer ?? null;
    this.auditRefusal = deps.auditRefusal ?? null;
  }

  // ------------------------------------------------------------------ operators

  async create(
    input: { name: string; value: Buffer; grants: readonly string[] },
    ctx: ActorContext,
  ): Promise<SecretView> {
    assertSecretName(input.name);
    assertSecretValue(input.value);
    const grants = this.parseSubjects(input.grants, true);
    if (grants.length > MAX_GRANTS_PER_SECRET)
      throw new GatehouseError(
        'GH_SECRET_INVALID',
        `a secret may be granted to at most ${MAX_GRANTS_PER_SECRET} subjects; got ${grants.length}`,
      );
    await this.purgeExpired();
    for (let attempt = 1; ; attempt++) {
      const now = this.now();
      const key = await this.sealingKey(true);
      const sealed = sealValue(key, input.name, 1, input.value);
      const outcome = await this.store.createSecret(
        {
          version: { name: input.name, version: 1, createdAt: now, ...sealed },
          grants: grants.map((g) => g.text),
          at: now,
        },
        {
          time: now,
          type: 'ca.secret_created',
          actor: ctx.actor,
          requestId: ctx.requestId ?? null,
          details: {
            secret: input.name,
            version: 1,
            size: sealed.size,
            keyId: sealed.keyId,
            grants: grants.map((g) => g.text),
          },
        },
      );
      if (outcome.ok) break;
      if (outcome.reason === 'EXISTS') {
        throw new GatehouseError(
          'GH_SECRET_EXISTS',
          outcome.existing === input.name
            ? `secret ${input.name} already exists; give it a new value with \`gatehouse secret rotate ${input.name}\``
            : `secret ${outcome.existing} exists, and ${input.name} differs from it only in letter case (on many file systems they are the same file); choose another name`,
        );
      }
      if (outcome.reason !== 'KEY_CHANGED' || attempt >= WRITE_ATTEMPTS)
        throw this.lostRace(input.name, outcome.reason);
    }
    this.logger.info('ca.secret_created', {
      secretName: input.name,
      version: 1,
      size: input.value.length,
      grants: grants.map((g) => g.text),
      actor: ctx.actor,
      requestId: ctx.requestId,
    });
    return this.show(input.name);
  }

  rotate(name: string, value: Buffer, overlapMs: number | undefined, ctx: ActorContext): Promise<SecretView> {
    const previous = this.rotations.get(name) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.rotateNow(name, value, overlapMs, ctx));
    this.rotations.set(name, next);
    const forget = () => {
      if (this.rotations.get(name) === next) this.rotations.delete(name);
    };
    next.then(forget, forget);
    return next;
  }

  private async rotateNow(
    name: string,
    value: Buffer,
    overlapMs: number | undefined,
    ctx: ActorContext,
  ): Promise<SecretView> {
    assertSecretName(name);
    assertSecretValue(value);
    const overlap = overlapMs ?? this.config.secrets.rotationOverlap;
    if (!Number.isSafeInteger(overlap) || overlap < 0 || overlap > MAX_ROTATION_OVERLAP_MS) {
      throw new GatehouseError(
        'GH_SECRET_INVALID',
        'the rotation overlap must be from 0 (the old version is deleted at once) to 30d',
      );
    }
    await this.purgeExpired();
    let version: number;
    for (let attempt = 1; ; attempt++) {
      const now = this.now();
      const secret = await this.store.getSecret(name);
      if (!secret) throw notFound(name);
      version = secret.currentVersion + 1;
      const key = await this.sealingKey(true);
      const sealed = sealValue(key, name, version, value);
      const previousExpiresAt = overlap === 0 ? null : new Date(now.getTime() + overlap);
      const outcome = await this.store.rotateSecret(
        { version: { name, version, createdAt: now, ...sealed }, at: now, previousExpiresAt },
        {
          time: now,
          type: 'ca.secret_rotated',
          actor: ctx.actor,
          requestId: ctx.requestId ?? null,
          details: {
            secret: name,
            version,
            previousVersion: secret.currentVersion,
            previousExpiresAt: previousExpiresAt?.toISOString() ?? null,
            previousDeleted: previousExpiresAt === null,
            size: sealed.size,
            keyId: sealed.keyId,
          },
        },
      );
      if (outcome.ok) break;
      if (outcome.reason === 'NOT_FOUND') throw notFound(name);
      if (attempt >= WRITE_ATTEMPTS) throw this.lostRace(name, outcome.reason);
    }
    this.logger.info('ca.secret_rotated', {
      secretName: name,
      version,
      size: value.length,
      overlapMs: overlap,
      actor: ctx.actor,
      requestId: ctx.requestId,
    });
    return this.show(name);
  }

  async grant(name: string, subjects: readonly string[], ctx: ActorContext): Promise<SecretView> {
    assertSecretName(name);
    const parsed = this.parseSubjects(subjects, true);
    if (parsed.length === 0) throw new GatehouseError('GH_SECRET_INVALID', 'name at least one subject to grant');
    const now = this.now();
    const outcome = await this.store.grantSecret(
      name,
      parsed.map((s) => s.text),
      now,
      MAX_GRANTS_PER_SECRET,
      (changed) => [
        {
          time: now,
          type: 'ca.secret_granted',
          actor: ctx.actor,
          requestId: ctx.requestId ?? null,
          details: { secret: name, subjects: changed },
        },
      ],
    );
    if (!outcome.ok) {
      if (outcome.reason === 'NOT_FOUND') throw notFound(name);
      if (outcome.reason === 'TOO_MANY_GRANTS')
        throw new GatehouseError(
          'GH_SECRET_INVALID',
          `secret ${name} may be granted to at most ${outcome.limit} subjects; nothing was changed`,
        );
      throw new GatehouseError('GH_INTERNAL', `unexpected grant outcome ${outcome.reason}`);
    }
    if (outcome.changed.length)
      this.logger.info('ca.secret_granted', {
        secretName: name,
        subjects: outcome.changed,
        actor: ctx.actor,
        requestId: ctx.requestId,
      });
    return this.show(name);
  }

  /** All or nothing: a subject that is not granted (a typo) refuses the whole call, so no access is silently kept. */
  async ungrant(name: string, subjects: readonly string[], ctx: ActorContext): Promise<SecretView> {
    assertSecretName(name);
    // Syntax only: a role removed from the config, or a foreign SPIFFE ID, must still be removable.
    const parsed = this.parseSubjects(subjects, false);
    if (parsed.length === 0) throw new GatehouseError('GH_SECRET_INVALID', 'name at least one subject to ungrant');
    const now = this.now();
    const outcome = await this.store.ungrantSecret(
      name,
      parsed.map((s) => s.text),
      now,
      (changed) => [
        {
          time: now,
          type: 'ca.secret_ungranted',
          actor: ctx.actor,
          requestId: ctx.requestId ?? null,
          details: { secret: name, subjects: changed },
        },
      ],
    );
    if (!outcome.ok) {
      if (outcome.reason === 'NOT_FOUND') throw notFound(name);
      if (outcome.reason === 'NOT_GRANTED') {
        throw new GatehouseError(
          'GH_SECRET_INVALID',
          `secret ${name} is not granted to ${outcome.subjects.join(', ')} (granted: ${outcome.granted.join(', ') || 'nobody'}); nothing was changed`,
        );
      }
      throw new GatehouseError('GH_INTERNAL', `unexpected ungrant outcome ${outcome.reason}`);
    }
    this.logger.info('ca.secret_ungranted', {
      secretName: name,
      subjects: outcome.changed,
      actor: ctx.actor,
      requestId: ctx.requestId,
    });
    return this.show(name);
  }

  async delete(name: string, ctx: ActorContext): Promise<{ name: string; deleted: true; versions: number }> {
    assertSecretName(name);
    const now = this.now();
    const deleted = await this.store.deleteSecret(name, (versions) => ({
      time: now,
      type: 'ca.secret_deleted',
      actor: ctx.actor,
      requestId: ctx.requestId ?? null,
      details: { secret: name, versions: versions.map((v) => v.version) },
    }));
    if (!deleted) throw notFound(name);
    this.logger.info('ca.secret_deleted', {
      secretName: name,
      versions: deleted.versions,
      actor: ctx.actor,
      requestId: ctx.requestId,
    });
    return { name, deleted: true, versions: deleted.versions };
  }

  async show(name: string): Promise<SecretView> {
    assertSecretName(name);
    const now = this.now();
    const secret = await this.store.getSecret(name);
    if (!secret) throw notFound(name);
    const [versions, grants] = await Promise.all([
      this.store.listSecretVersions(name, now),
      this.store.listSecretGrants(name),
    ]);
    return {
      name: secret.name,
      currentVersion: secret.currentVersion,
      createdAt: secret.createdAt.toISOString(),
      updatedAt: secret.updatedAt.toISOString(),
      versions: versions.map((v) => versionView(v, secret.currentVersion)),
      grants: grants.map((g) => ({ subject: g.subject, grantedAt: g.grantedAt.toISOString() })),
    };
  }

  async list(): Promise<SecretSummaryView[]> {
    const now = this.now();
    const secrets = await this.store.listSecrets();
    return Promise.all(
      secrets.map(async (s) => {
        const [versions, grants] = await Promise.all([
          this.store.listSecretVersions(s.name, now),
          this.store.listSecretGrants(s.name),
        ]);
        const current = versions.find((v) => v.version === s.currentVersion);
        return {
          name: s.name,
          version: s.currentVersion,
          size: current?.size ?? 0,
          checksum: current?.checksum ?? '',
          versions: versions.length,
          grants: grants.map((g) => g.subject),
          createdAt: s.createdAt.toISOString(),
          updatedAt: s.updatedAt.toISOString(),
        };
      }),
    );
  }

  /**
   * A new master key: every data key is sealed again under it, in one transaction, and the
   * old key is removed from the key file. Values, IVs, ciphertexts and checksums are untouched.
   * Local only: the key file is on the CA machine.
   */
  rekey(ctx: ActorContext): Promise<RekeyResult> {
    return withRekeyLock(this.keys.caDir, () => this.rekeyLocked(ctx));
  }

  private async rekeyLocked(ctx: ActorContext): Promise<RekeyResult> {
    const old = this.keys.fileOrCreate();
    const next = newMasterKey();
    // 1. The new key goes into the file beside the old ones, so a crash at any point leaves every
    //    sealed data key openable (and `ca serve`, reading the file again, finds both).
    this.keys.write([next, ...old.keys]);
    const now = this.now();
    let resealed: number;
    try {
      resealed = await this.store.rekeySecrets(
        next.id,
        (v) => resealDataKey(this.keys.byId(v.keyId), next, v.name, v.version, v.sealedKey),
        (count) => ({
          time: now,
          type: 'ca.secret_rekeyed',
          actor: ctx.actor,
          requestId: ctx.requestId ?? null,
          details: {
            keyId: next.id,
            previousKeyIds: old.keys.map((k) => k.id),
            resealed: count,
            encrypted: this.keys.hasPassphrase,
          },
        }),
      );
    } catch (err) {
      // Nothing was re-sealed: the file goes back to what it was.
      this.keys.write(old.keys);
      throw err;
    }
    // 2. The database is under the new key alone: the old keys leave the file.
    this.keys.write([next]);
    for (const k of old.keys) k.key.fill(0);
    this.logger.info('ca.secret_rekeyed', {
      keyId: next.id,
      previousKeyIds: old.keys.map((k) => k.id),
      resealed,
      actor: ctx.actor,
    });
    return { keyId: next.id, previousKeyIds: old.keys.map((k) => k.id), resealed, encrypted: this.keys.hasPassphrase };
  }

  /** Deletes the old versions whose overlap ended; each is audited `ca.secret_version_expired`. */
  async purgeExpired(): Promise<number> {
    const now = this.now();
    const removed = await this.store.purgeExpiredSecretVersions(now, (v) => ({
      time: now,
      type: 'ca.secret_version_expired',
      actor: 'ca:secrets',
      details: { secret: v.name, version: v.version, expiredAt: v.expiresAt.toISOString() },
    }));
    for (const r of removed) this.logger.info('ca.secret_version_expired', { secretName: r.name, version: r.version });
    return removed.length;
  }

  // ------------------------------------------------------------------ identities

  /** The secrets granted to `caller` (a certificate the caller checked is current): names and current versions, no values. */
  async listForIdentity(caller: CertRecord): Promise<SecretListingView[]> {
    await this.purgeExpired();
    const listed = await this.store.listSecretsGranted(subjectsOf(caller));
    this.observer?.read('listed');
    return listed.map(listingView);
  }

  /**
   * One secret's value for `caller`, if a grant names one of its subjects. An unknown secret and
   * an ungranted one get the same answer, so names cannot be probed; the audit says which.
   */
  async readForIdentity(
    caller: CertRecord,
    name: string,
    version: number | null,
    ctx: ReaderContext,
  ): Promise<DeliveredSecret> {
    try {
      return await this.readUnobserved(caller, name, version, ctx);
    } catch (err) {
      if (!(err instanceof ReadRefusal)) {
        await this.refused(caller, name, version, 'error', err, ctx);
        throw err;
      }
      await this.refused(caller, name, version, err.reason, err.error, ctx);
      throw err.error;
    }
  }

  private async readUnobserved(
    caller: CertRecord,
    name: string,
    version: number | null,
    ctx: ReaderContext,
  ): Promise<DeliveredSecret> {
    if (secretNameProblem(name) !== null)
      throw new ReadRefusal('invalid', new GatehouseError('GH_SECRET_INVALID', 'that is not a valid secret name'));
    if (version !== null && (!Number.isSafeInteger(version) || version < 1 || version > 0xffff_ffff)) {
      throw new ReadRefusal(
        'invalid',
        new GatehouseError('GH_SECRET_INVALID', 'version must be a whole number from 1'),
      );
    }
    await this.purgeExpired();
    const subjects = subjectsOf(caller);
    // Both looked up whatever the answer, so an unknown name does not answer faster than an ungranted one.
    const [secret, granted] = await Promise.all([
      this.store.getSecret(name),
      this.store.isSecretGranted(name, subjects),
    ]);
    if (!secret) throw new ReadRefusal('unknown', notGranted(caller, name));
    if (!granted) throw new ReadRefusal('not-granted', notGranted(caller, name));
    const wanted = version ?? secret.currentVersion;
    const row = await this.store.getSecretVersion(name, wanted, this.now());
    if (!row) throw new ReadRefusal('version-gone', versionGone(name, wanted, secret.currentVersion));
    let value: Buffer;
    try {
      value = openValue(this.keys.byId(row.keyId), name, row.version, row);
    } catch (err) {
      if (isGatehouseError(err, 'GH_SECRET_SEALED_INVALID')) {
        this.logger.error('ca.secret_sealed_invalid', {
          secretName: name,
          version: row.version,
          keyId: row.keyId,
          reason: err.message,
          requestId: ctx.requestId,
        });
        throw new ReadRefusal('sealed-invalid', err);
      }
      if (isGatehouseError(err, 'GH_SECRET_MASTER_KEY')) throw new ReadRefusal('master-key', err);
      throw err;
    }
    const now = this.now();
    const outcome = await this.store.commitSecretRead(
      { name, version: row.version, checksum: row.checksum, subjects, at: now, by: caller.spiffeId },
      {
        time: now,
        type: 'ca.secret_read',
        actor: caller.spiffeId,
        serial: caller.serial,
        fingerprint: caller.fingerprint,
        requestId: ctx.requestId ?? null,
        details: { secret: name, version: row.version, spiffeId: caller.spiffeId },
      },
    );
    if (outcome !== 'OK') {
      // Ungranted, rotated away or deleted between the checks above and this commit.
      value.fill(0);
      throw outcome === 'NOT_GRANTED'
        ? new ReadRefusal('not-granted', notGranted(caller, name))
        : new ReadRefusal('version-gone', versionGone(name, wanted, null));
    }
    this.observer?.read('delivered');
    this.logger.info('ca.secret_read', {
      secretName: name,
      version: row.version,
      spiffeId: caller.spiffeId,
      serial: caller.serial,
      requestId: ctx.requestId,
    });
    return { name, version: row.version, checksum: row.checksum, value };
  }

  /**
   * A request to /v1/secrets refused before its identity was established (no certificate,
   * untrusted, revoked, expired): counted and audited (rate limited per source) like the others.
   */
  async refusedUnauthenticated(
    reason: Extract<RefusalReason, 'revoked' | 'expired' | 'untrusted' | 'no-certificate' | 'error'>,
    err: unknown,
    who: { actor: string; serial: string | null; fingerprint: string | null },
    name: string | null,
    ctx: ReaderContext,
  ): Promise<void> {
    this.observer?.read(RESULT_OF[reason]);
    await this.writeRefusal(
      { actor: who.actor, serial: who.serial, fingerprint: who.fingerprint },
      name,
      null,
      reason,
      err,
      ctx,
      true,
    );
  }

  /** A listing or read refused for a reason found outside the service (a bad query string). */
  countInvalid(): void {
    this.observer?.read('invalid');
  }

  private async refused(
    caller: CertRecord,
    name: string,
    version: number | null,
    reason: RefusalReason,
    err: unknown,
    ctx: ReaderContext,
  ): Promise<void> {
    this.observer?.read(RESULT_OF[reason]);
    // Evidence of tampering or a broken key file is always written; refusals anyone granted
    // nothing can cause are rate limited per source.
    const limited = !['sealed-invalid', 'master-key', 'error'].includes(reason);
    await this.writeRefusal(
      { actor: caller.spiffeId, serial: caller.serial, fingerprint: caller.fingerprint },
      name,
      version,
      reason,
      err,
      ctx,
      limited,
    );
  }

  private async writeRefusal(
    who: { actor: string; serial: string | null; fingerprint: string | null },
    name: string | null,
    version: number | null,
    reason: RefusalReason,
    err: unknown,
    ctx: ReaderContext,
    limited: boolean,
  ): Promise<void> {
    const code = isGatehouseError(err) ? err.code : 'GH_INTERNAL';
    // A name outside the safe alphabet is not echoed into the trail.
    const secret = name !== null && secretNameProblem(name) === null ? name : null;
    const event = {
      type: 'ca.secret_read_refused' as const,
      actor: who.actor,
      serial: who.serial,
      fingerprint: who.fingerprint,
      requestId: ctx.requestId ?? null,
      details: { secret, version, reason, code },
    };
    // Info, like the CA's other refusals (ca.request_failed): a flood must not become a flood of warnings.
    this.logger.info('ca.secret_read_refused', {
      secretName: secret,
      version,
      reason,
      code,
      actor: who.actor,
      serial: who.serial,
      requestId: ctx.requestId,
    });
    try {
      if (limited && this.auditRefusal) await this.auditRefusal(ctx.source, event);
      else await this.store.appendAudit([{ ...event, time: this.now() }]);
    } catch (auditErr) {
      this.logger.error('ca.audit_write_failed', { err: auditErr, requestId: ctx.requestId });
    }
  }

  // ------------------------------------------------------------------ helpers

  /**
   * The master key new versions are sealed with: the store's (every sealed data key is under
   * it), else the key file's current key, made now for a CA created before secrets existed.
   */
  private async sealingKey(createIfMissing: boolean): Promise<MasterKey> {
    const stored = await this.store.getMeta(SECRETS_KEY_ID_META);
    if (stored !== null) return this.keys.byId(stored);
    const file = createIfMissing ? this.keys.fileOrCreate() : this.keys.file();
    if (!file) throw new GatehouseError('GH_SECRET_MASTER_KEY', `${this.keys.caDir} has no secrets master key`);
    if (this.keys.hasPassphrase && !file.encrypted) {
      this.logger.warn('ca.secrets_master_key_unencrypted', {
        dir: this.keys.caDir,
        fix: 'run `gatehouse secret rekey --dir DIR --passphrase-file FILE` to store it encrypted',
      });
    }
    return file.current;
  }

  private parseSubjects(texts: readonly string[], strict: boolean): GrantSubject[] {
    const roles = Object.keys(this.config.roles);
    const seen = new Map<string, GrantSubject>();
    for (const text of texts) {
      if (typeof text !== 'string') throw new GatehouseError('GH_SECRET_INVALID', 'grant subjects must be strings');
      const subject = parseSubject(text, { trustDomain: this.config.trustDomain, roles, strict });
      seen.set(subject.text, subject);
    }
    return [...seen.values()];
  }

  private lostRace(name: string, reason: string): GatehouseError {
    return new GatehouseError(
      'GH_STORE_IO',
      `secret ${name} kept changing while it was being written (${reason}); try again`,
    );
  }
}

function notFound(name: string): GatehouseError {
  return new GatehouseError('GH_SECRET_NOT_FOUND', `no secret named ${name} (see \`gatehouse secret list\`)`);
}

/** The one answer for an unknown and for an ungranted secret. */
function notGranted(caller: CertRecord, name: string): GatehouseError {
  return new GatehouseError(
    'GH_SECRET_NOT_GRANTED',
    `${caller.spiffeId} may not read secret ${name}: no such secret is granted to it`,
  );
}

function versionGone(name: string, version: number, current: number | null): GatehouseError {
  return new GatehouseError(
    'GH_SECRET_NOT_FOUND',
    `version ${version} of secret ${name} is not available (an old version is kept only for the rotation overlap)${current !== null ? `; the current version is ${current}` : ''}`,
  );
}

function versionView(v: SecretVersionRecord, currentVersion: number): SecretVersionView {
  return {
    version: v.version,
    current: v.version === currentVersion,
    createdAt: v.createdAt.toISOString(),
    expiresAt: v.expiresAt?.toISOString() ?? null,
    size: v.size,
    checksum: v.checksum,
    keyId: v.keyId,
    lastReadAt: v.lastReadAt?.toISOString() ?? null,
    lastReadBy: v.lastReadBy,
  };
}

function listingView(l: SecretListing): SecretListingView {
  return { name: l.name, version: l.version, checksum: l.checksum, size: l.size, updatedAt: l.updatedAt.toISOString() };
}
