/**
 * Secrets on the CA (issue 13): operators create, grant, rotate and delete them (locally on the
 * CA directory or through the admin API); identities read the ones granted to them over mutual
 * TLS. Values are sealed before they reach the store (seal.ts) and opened only to be delivered.
 *
 * No value, data key or master key ever goes into a log line, an audit event, an error message
 * or a database column in the clear. Every mutation commits with its audit event in one
 * transaction; every delivery is decided, recorded and audited in one transaction too.
 *
 * SecretService is the one entry point the CA, the CLI and the dashboard hold; it keeps the
 * dependencies and runs one name's rotations in turn, and each operation group is a module of
 * its own: create-rotate.ts, grants.ts, removal.ts (delete, expiry), rekey.ts, views.ts (show,
 * list), identity-reads.ts and read-refusals.ts (what identities read, and their refusals).
 */
import type { Logger } from '../log/logger.js';
import type { Store } from '../store/store.js';
import type { CertRecord } from '../store/store-certificates.js';
import type { MasterKeyRing } from './master-key.js';
import type { ActorContext, ReaderContext, RefusalAuditWriter, SecretConfig, SecretContext } from './context.js';
import type { RefusalReason, SecretObserver } from './read-results.js';
import { createSecret, rotateSecret } from './create-rotate.js';
import { grantSecret, ungrantSecret } from './grants.js';
import { deleteSecret, purgeExpired } from './removal.js';
import { rekeySecrets, type RekeyResult } from './rekey.js';
import { listSecrets, showSecret, type SecretListingView, type SecretSummaryView, type SecretView } from './views.js';
import { listForIdentity, readForIdentity, type DeliveredSecret } from './identity-reads.js';
import { refusedUnauthenticated } from './read-refusals.js';

export interface SecretServiceDeps {
  store: Store;
  config: SecretConfig;
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

export class SecretService {
  readonly keys: MasterKeyRing;
  readonly now: () => Date;
  private readonly ctx: SecretContext;
  /** Rotations of one name in this process run one after the other; other processes are met by the store's version check. */
  private readonly rotations = new Map<string, Promise<unknown>>();

  constructor(deps: SecretServiceDeps) {
    this.keys = deps.keys;
    this.now = deps.now ?? (() => new Date());
    this.ctx = {
      store: deps.store,
      config: deps.config,
      keys: this.keys,
      logger: deps.logger,
      now: this.now,
      observer: deps.observer ?? null,
      auditRefusal: deps.auditRefusal ?? null,
    };
  }

  // ------------------------------------------------------------------ operators

  create(input: { name: string; value: Buffer; grants: readonly string[] }, ctx: ActorContext): Promise<SecretView> {
    return createSecret(this.ctx, input, ctx);
  }

  rotate(name: string, value: Buffer, overlapMs: number | undefined, ctx: ActorContext): Promise<SecretView> {
    const previous = this.rotations.get(name) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => rotateSecret(this.ctx, name, value, overlapMs, ctx));
    this.rotations.set(name, next);
    const forget = () => {
      if (this.rotations.get(name) === next) this.rotations.delete(name);
    };
    next.then(forget, forget);
    return next;
  }

  grant(name: string, subjects: readonly string[], ctx: ActorContext): Promise<SecretView> {
    return grantSecret(this.ctx, name, subjects, ctx);
  }

  /** All or nothing: a subject that is not granted (a typo) refuses the whole call, so no access is silently kept. */
  ungrant(name: string, subjects: readonly string[], ctx: ActorContext): Promise<SecretView> {
    return ungrantSecret(this.ctx, name, subjects, ctx);
  }

  delete(name: string, ctx: ActorContext): Promise<{ name: string; deleted: true; versions: number }> {
    return deleteSecret(this.ctx, name, ctx);
  }

  show(name: string): Promise<SecretView> {
    return showSecret(this.ctx, name);
  }

  list(): Promise<SecretSummaryView[]> {
    return listSecrets(this.ctx);
  }

  /**
   * A new master key: every data key is sealed again under it, in one transaction, and the
   * old key is removed from the key file. Values, IVs, ciphertexts and checksums are untouched.
   * Local only: the key file is on the CA machine.
   */
  rekey(ctx: ActorContext): Promise<RekeyResult> {
    return rekeySecrets(this.ctx, ctx);
  }

  /** Deletes the old versions whose overlap ended; each is audited `ca.secret_version_expired`. */
  purgeExpired(): Promise<number> {
    return purgeExpired(this.ctx);
  }

  // ------------------------------------------------------------------ identities

  /** The secrets granted to `caller` (a certificate the caller checked is current): names and current versions, no values. */
  listForIdentity(caller: CertRecord): Promise<SecretListingView[]> {
    return listForIdentity(this.ctx, caller);
  }

  /**
   * One secret's value for `caller`, if a grant names one of its subjects. An unknown secret and
   * an ungranted one get the same answer, so names cannot be probed; the audit says which.
   */
  readForIdentity(
    caller: CertRecord,
    name: string,
    version: number | null,
    ctx: ReaderContext,
  ): Promise<DeliveredSecret> {
    return readForIdentity(this.ctx, caller, name, version, ctx);
  }

  /**
   * A request to /v1/secrets refused before its identity was established (no certificate,
   * untrusted, revoked, expired): counted and audited (rate limited per source) like the others.
   */
  refusedUnauthenticated(
    reason: Extract<RefusalReason, 'revoked' | 'expired' | 'untrusted' | 'no-certificate' | 'error'>,
    err: unknown,
    who: { actor: string; serial: string | null; fingerprint: string | null },
    name: string | null,
    ctx: ReaderContext,
  ): Promise<void> {
    return refusedUnauthenticated(this.ctx, reason, err, who, name, ctx);
  }

  /** A listing or read refused for a reason found outside the service (a bad query string). */
  countInvalid(): void {
    this.ctx.observer?.read('invalid');
  }
}
