/**
 * The certificate authority: turns approved requests into recorded certificates, manages join
 * tokens and revocation. Issuance is a list of small steps (after step-ca): parse the CSR →
 * authorize (token or current certificate) → apply the role → build and sign → record durably
 * → return. Refusals are audited with the reason and never with the token or key.
 */
import { MAX_REFUSAL_FIELD_CHARS, RefusalAuditLimiter, boundedDetails } from './refusal-audit.js';
import type { KeyObject } from 'node:crypto';
import { GatehouseError, isGatehouseError, type ErrorCode } from '../errors/errors.js';
import type { CaConfig } from '../config/ca-config.js';
import { publicUrlOf } from '../config/ca-config.js';
import { compileNamePattern, isSafeName, NAME_PATTERN_RE } from '../config/patterns.js';
import type { Logger } from '../log/logger.js';
import { parseCsr, type ParsedCsr } from '../pki/csr.js';
import { normalizeSerial, parseCertificate, serialHex, sha256Hex, type CertificateInfo } from '../pki/certificate.js';
import { encodedInstant } from '../pki/der.js';
import {
  buildLeafCertificate,
  describeIssuingCa,
  holdsKey,
  prepareSigningAuthority,
  randomSerial,
  type IssuingCa,
  type LeafProfile,
  type SigningAuthority,
} from '../pki/leaf-certificate.js';
import { buildCsrPem } from '../pki/csr-build.js';
import { spkiDer as spkiOf } from '../pki/keys.js';
import { decodePem, toPem } from '../pki/pem.js';
import type { CrlReason } from '../pki/crl.js';
import type { Store } from '../store/store.js';
import type { AuditInput } from '../store/store-audit.js';
import { certStateAt, type CertRecord, type NameClaim, type NameReservation } from '../store/store-certificates.js';
import type { TokenRecord } from '../store/store-tokens.js';
import type { AuditEventType } from '../log/audit-events.js';
import { approveCsr, decideName, roleConfig, spiffeIdFor, type ApprovedRequest } from './issuance-rules.js';
import { newJoinToken, parseJoinToken, secretMatches } from './join-token.js';
import { checkExternalCertificate } from './external-check.js';
import type { ExternalCa } from './external-ca.js';
import { rotationBundle, type RootRotation } from './root-rotation.js';
import { requirePosture } from './posture-standing.js';

export type IssuanceKind = 'enroll' | 'renew' | 'sign' | 'internal';

/** Told about every issuance and every refusal, with its error code (metrics). */
export interface IssuanceObserver {
  issued(kind: IssuanceKind, role: string, seconds: number): void;
  refused(kind: IssuanceKind, code: string): void;
  /** A refusal's audit event was not written: its source (or all sources) passed the rate limit. */
  auditSuppressed?(type: AuditEventType): void;
  /** A renewal presented an already-renewed certificate with another key; its lineage was revoked. */
  reuseDetected?(role: string): void;
}

export interface AuthorityDeps {
  config: Readonly<CaConfig>;
  store: Store;
  rootDer: Buffer;
  intermediateDer: Buffer;
  /** Null in registration-authority mode: `externalCa` signs, with the key of intermediateDer. */
  intermediateKey: KeyObject | null;
  externalCa?: ExternalCa | null;
  /** Retired issuing CAs (issuers.ts): they sign no new certificate. */
  retired?: ReadonlyArray<{ der: Buffer; key: KeyObject }>;
  /** A root rotation recorded in the CA directory (root-rotation.ts). */
  rotation?: RootRotation | null;
  logger: Logger;
  now?: () => Date;
  observer?: IssuanceObserver;
  /**
   * UNSAFE, for benchmarks only (one load generator renews one certificate over and over): a
   * renewal neither needs nor takes its lineage's head, so copied identities go undetected.
   * Reachable from no config key and no command.
   */
  unsafeRenewWithoutLineage?: boolean;
}

export interface IssuedCertificate {
  record: CertRecord;
  /** Leaf then intermediate, PEM. */
  chainPem: string;
  rootPem: string;
  /** A lost renewal answer sent again: nothing new was issued. */
  replayed?: boolean;
}

/** What agents may take into their ca.pem with an issuance (src/agent/trust-bundle.ts). */
export interface TrustBundle {
  /** The roots this CA serves, PEM. */
  rootsPem: string;
  /** Cross-certificates vouching for a new root with a root agents already trust, PEM. */
  crossPem: string;
  /** SHA-256 fingerprints of roots agents should drop. */
  retired: string[];
}

export interface RequestContext {
  actor: string;
  requestId?: string | null;
  /** The peer address of an unauthenticated request: its refusals are audited rate limited. */
  source?: string;
}

export interface TokenRequest {
  role: string;
  name?: string | null;
  namePattern?: string | null;
  ttlMs?: number;
  uses?: number;
}

export class Authority {
  readonly config: Readonly<CaConfig>;
  readonly store: Store;
  /**
   * The current issuing CA: signs every new certificate. Replaced by useIssuers on a rotation.
   * Without its key (holdsKey false) in registration-authority mode, where `externalCa` signs.
   */
  issuer: IssuingCa;
  readonly externalCa: ExternalCa | null;
  /** Retired issuing CAs whose certificates may still be in use (issuers.ts). */
  retiredIssuers: SigningAuthority[] = [];
  /** The root in force (root.pem); replaced by useRoot when a root rotation finishes. */
  rootDer: Buffer;
  rootPem: string;
  rootFingerprint: string;
  rotation: RootRotation | null;
  intermediatePem: string;
  private readonly logger: Logger;
  readonly now: () => Date;
  readonly observer: IssuanceObserver | null;
  private readonly refusalAudit = new RefusalAuditLimiter();
  private readonly unsafeRenewWithoutLineage: boolean;

  constructor(deps: AuthorityDeps) {
    this.config = deps.config;
    this.store = deps.store;
    this.externalCa = deps.externalCa ?? null;
    if (!deps.intermediateKey && !this.externalCa)
      throw new GatehouseError('GH_CONFIG_INVALID', 'no issuing key and no external CA: nothing can sign certificates');
    this.issuer = deps.intermediateKey
      ? prepareSigningAuthority(deps.intermediateDer, deps.intermediateKey)
      : describeIssuingCa(deps.intermediateDer);
    this.rootDer = deps.rootDer;
    this.rootPem = toPem('CERTIFICATE', deps.rootDer);
    this.rootFingerprint = sha256Hex(deps.rootDer);
    this.intermediatePem = chainPartOf(deps.intermediateDer, deps.rootDer);
    this.logger = deps.logger;
    this.now = deps.now ?? (() => new Date());
    this.observer = deps.observer ?? null;
    this.unsafeRenewWithoutLineage = deps.unsafeRenewWithoutLineage ?? false;
    if (deps.retired) this.retiredIssuers = deps.retired.map((r) => prepareSigningAuthority(r.der, r.key));
    this.rotation = deps.rotation ?? null;
  }

  /** Puts a root (and the state of a root rotation) in force: what `ca rotate root|finish|abort` changed on disk. */
  useRoot(rootDer: Buffer, rotation: RootRotation | null): void {
    this.rootDer = rootDer;
    this.rootPem = toPem('CERTIFICATE', rootDer);
    this.rootFingerprint = sha256Hex(rootDer);
    this.rotation = rotation;
    this.intermediatePem = chainPartOf(this.issuer.certDer, rootDer);
  }

  /** The roots /roots serves: during a rotation the previous and the next; afterwards the one in force. */
  servedRoots(): Buffer[] {
    return this.rotation?.state.phase === 'rotating'
      ? [this.rotation.previousRootDer, this.rotation.nextRootDer]
      : [this.rootDer];
  }

  /** Every root a presented certificate may chain to now: the one in force and those still in agents' bundles. */
  trustedRoots(now = this.now()): Buffer[] {
    const roots = [this.rootDer, ...(this.rotation ? rotationBundle(this.rotation, now).roots : [])];
    return roots.filter((der, i) => roots.findIndex((d) => d.equals(der)) === i);
  }

  /** Puts a rotated set of issuing CAs in force (a rotation made by `ca rotate intermediate`). */
  useIssuers(
    intermediateDer: Buffer,
    intermediateKey: KeyObject,
    retired: ReadonlyArray<{ der: Buffer; key: KeyObject }>,
  ): void {
    const issuer = prepareSigningAuthority(intermediateDer, intermediateKey);
    this.retiredIssuers = retired.map((r) => prepareSigningAuthority(r.der, r.key));
    this.issuer = issuer;
    this.intermediatePem = chainPartOf(intermediateDer, this.rootDer);
  }

  /** One root, until a root rotation (root-rotation.ts, rotationBundle). */
  trustBundle(now = this.now()): TrustBundle {
    if (!this.rotation) return { rootsPem: this.rootPem, crossPem: '', retired: [] };
    const bundle = rotationBundle(this.rotation, now);
    const pem = (ders: Buffer[]) => ders.map((d) => toPem('CERTIFICATE', d)).join('');
    return { rootsPem: pem(bundle.roots), crossPem: pem(bundle.cross), retired: bundle.retired };
  }

  /** The issuing CA, current or retired, that signed `cert`: matched by issuer name and key identifier. */
  issuerOf(cert: CertificateInfo): IssuingCa | null {
    return (
      [this.issuer, ...this.retiredIssuers].find(
        (ca) =>
          ca.subjectNameDer.equals(cert.issuerNameDer) &&
          (cert.authorityKeyId === null || cert.authorityKeyId.equals(ca.keyIdentifier)),
      ) ?? null
    );
  }

  /** A stored certificate with the issuing CA that signed it, PEM: what clients are sent. */
  private chainOf(certPem: string): string {
    const issuer = this.issuerOf(parseCertificate(decodePem(certPem, 'CERTIFICATE')[0]!));
    return (
      certPem + (issuer && issuer !== this.issuer ? chainPartOf(issuer.certDer, this.rootDer) : this.intermediatePem)
    );
  }

  /**
   * The audit event of a request refused before or at authentication, from `source` (the peer
   * address): fields bounded and rate limited per source (refusal-audit.ts), so anonymous
   * traffic cannot fill the disk; a suppressed event is counted instead. Never throws.
   */
  async auditAnonymousRefusal(
    source: string,
    event: Omit<AuditInput, 'time' | 'details'> & { details: Record<string, string | number | boolean | null> },
  ): Promise<void> {
    await this.writeRefusalAudit({ ...event, time: this.now() }, event.details, source);
  }

  /** Writes a refusal's audit event with bounded fields; with `limitSource`, only within that source's rate limit. Never throws. */
  private async writeRefusalAudit(
    event: Omit<AuditInput, 'details'>,
    details: Record<string, string | number | boolean | null | undefined>,
    limitSource: string | null,
  ): Promise<void> {
    if (limitSource !== null && !this.refusalAudit.allow(limitSource)) {
      this.observer?.auditSuppressed?.(event.type);
      return;
    }
    try {
      await this.store.appendAudit([{ ...event, details: boundedDetails(details) }]);
    } catch (auditErr) {
      this.logger.error('ca.audit_write_failed', { err: auditErr, requestId: event.requestId });
    }
  }

  /** Times an issuance from entry to the certificate on disk, and counts its outcome. */
  private async observed(kind: IssuanceKind, issue: () => Promise<IssuedCertificate>): Promise<IssuedCertificate> {
    const observer = this.observer;
    if (!observer) return issue();
    const started = process.hrtime.bigint();
    try {
      const issued = await issue();
      if (!issued.replayed) observer.issued(kind, issued.record.role, Number(process.hrtime.bigint() - started) / 1e9);
      return issued;
    } catch (err) {
      observer.refused(kind, isGatehouseError(err) ? err.code : 'GH_INTERNAL');
      throw err;
    }
  }

  // ------------------------------------------------------------------ enrollment

  enroll(
    tokenText: string,
    csrInput: string | Buffer,
    ctx: RequestContext,
    nameHint?: string | null,
  ): Promise<IssuedCertificate> {
    return this.observed('enroll', () => this.enrollUnobserved(tokenText, csrInput, ctx, nameHint));
  }

  private async enrollUnobserved(
    tokenText: string,
    csrInput: string | Buffer,
    ctx: RequestContext,
    nameHint?: string | null,
  ): Promise<IssuedCertificate> {
    const now = this.now();
    const token = await this.checkToken(tokenText, now, ctx);
    let approved: ApprovedRequest;
    let csr: ParsedCsr;
    try {
      csr = parseCsr(csrInput);
      const name = decideName(csr, token.role, roleConfig(this.config, token.role), {
        exact: token.name,
        pattern: token.namePattern,
        hint: nameHint ?? null,
      });
      approved = approveCsr(this.config, csr, token.role, name);
      if (!mayReplaceHolder(token)) await this.refuseNameOfAnotherLineage(approved, now);
    } catch (err) {
      await this.auditRefusal('ca.cert_refused', err, ctx, now, { tokenId: token.id, role: token.role, via: 'enroll' });
      throw err;
    }
    return this.issue(approved, keyOfCsr(csr), now, ctx, {
      tokenId: token.id,
      renewedFrom: null,
      nameClaim: mayReplaceHolder(token) ? 'replace' : 'first',
      via: 'enroll',
    });
  }

  /**
   * A token that does not fix the name must not let a machine take over a name another
   * enrollment has: not while its certificate is active, and not after it was revoked or expired
   * (a laptop offline over a weekend), or any holder of a role token could become that SPIFFE ID,
   * which gateway policies name. A token made for that exact name is the operator's explicit
   * choice to replace it (a rebuilt machine). This early check gives a clear refusal before
   * signing; the guard is the same check made by the store in the transaction that records the
   * certificate (`nameClaim: 'first'`), so two simultaneous first enrollments cannot both win.
   */
  private async refuseNameOfAnotherLineage(approved: ApprovedRequest, now: Date): Promise<void> {
    const reservation = await this.store.getNameReservation(approved.role, approved.name);
    if (reservation) {
      const head = await this.lineageHead(reservation.lineage);
      throw nameTaken(
        approved,
        head?.serial ?? reservation.lineage,
        head !== undefined && certStateAt(head, now) === 'active',
      );
    }
    const [holder] = await this.store.listCerts({
      name: approved.name,
      role: approved.role,
      state: 'active',
      now,
      limit: 1,
    });
    if (holder) throw nameTaken(approved, holder.serial, true);
  }

  private async checkToken(tokenText: string, now: Date, ctx: RequestContext): Promise<TokenRecord> {
    let tokenId: string | null = null;
    try {
      const parsed = parseJoinToken(tokenText);
      tokenId = parsed.id;
      if (parsed.rootFingerprint !== this.rootFingerprint) {
        const rotation = this.rotation?.state;
        if (rotation?.phase === 'finished' && parsed.rootFingerprint === rotation.previousRoot) {
          throw new GatehouseError(
            'GH_TOKEN_INVALID',
            `join token pins the root ${rotation.previousRoot}, which the root rotation finished at ${rotation.finishedAt} replaced with ${rotation.nextRoot}; make a new token (gatehouse token create), which pins the new root`,
          );
        }
        throw new GatehouseError(
          'GH_TOKEN_INVALID',
          'join token was made for a different CA (its root fingerprint does not match this CA)',
        );
      }
      const record = await this.store.getToken(parsed.id);
      if (!secretMatches(parsed.secret, record?.secretHash ?? null) || !record) {
        throw new GatehouseError('GH_TOKEN_INVALID', 'join token is not known to this CA');
      }
      if (record.revokedAt) throw new GatehouseError('GH_TOKEN_REVOKED', `join token ${record.id} was revoked`);
      if (record.expiresAt <= now)
        throw new GatehouseError(
          'GH_TOKEN_EXPIRED',
          `join token ${record.id} expired at ${record.expiresAt.toISOString()}`,
        );
      if (record.uses >= record.maxUses)
        throw new GatehouseError(
          'GH_TOKEN_USED',
          `join token ${record.id} has no uses left (${record.uses}/${record.maxUses} used)`,
        );
      return record;
    } catch (err) {
      await this.auditRefusal('ca.token_refused', err, ctx, now, { tokenId });
      throw err;
    }
  }

  // ------------------------------------------------------------------ renewal

  /** `peerDer` is a certificate the TLS layer verified against this CA's root. */
  renew(peerDer: Buffer, csrInput: string | Buffer, ctx: RequestContext): Promise<IssuedCertificate> {
    return this.observed('renew', () => this.renewUnobserved(peerDer, csrInput, ctx));
  }

  /**
   * Only the newest certificate of a lineage renews, and renewing supersedes it. An older one
   * presented again is either a lost answer retried (same new key: the same certificate is
   * returned) or a copy of the identity renewing on its own line (another key): the refresh
   * token reuse detection of RFC 9700 §4.14, applied to certificates.
   */
  private async renewUnobserved(
    peerDer: Buffer,
    csrInput: string | Buffer,
    ctx: RequestContext,
  ): Promise<IssuedCertificate> {
    const now = this.now();
    const peer = parseCertificate(peerDer);
    try {
      let current = await this.requireCurrentCertificate(peer, now);
      const csr = parseCsr(csrInput);
      if (current.supersededBy === null || this.unsafeRenewWithoutLineage) {
        const rules = roleConfig(this.config, current.role);
        const name = decideName(csr, current.role, rules, { exact: current.name });
        const approved = approveCsr(this.config, csr, current.role, name);
        if (rules.posture) await requirePosture(this.store, current, rules.posture, now);
        try {
          return await this.issue(approved, keyOfCsr(csr), now, ctx, {
            tokenId: null,
            renewedFrom: current.serial,
            lineage: current.lineage,
            nameClaim: 'lineage',
            via: 'renew',
          });
        } catch (err) {
          if (!(err instanceof LostRenewalRace)) throw err;
          // A simultaneous renewal of the same certificate committed first: judge this one against it.
          current = await this.requireCurrentCertificate(peer, now);
        }
      }
      return await this.renewalOfSuperseded(current, csr.spkiDer, now, ctx);
    } catch (err) {
      if (
        !isGatehouseError(err, 'GH_STORE_IO') &&
        !isGatehouseError(err, 'GH_STORE_UNAVAILABLE') &&
        !isExternalCaFailure(err)
      ) {
        await this.auditRefusal('ca.cert_refused', err, ctx, now, {
          serial: peer.serial,
          fingerprint: peer.fingerprint,
          via: 'renew',
        });
      }
      throw err;
    }
  }

  private async renewalOfSuperseded(
    current: CertRecord,
    spkiDer: Buffer,
    now: Date,
    ctx: RequestContext,
  ): Promise<IssuedCertificate> {
    const successor = current.supersededBy === null ? null : await this.store.getCert(current.supersededBy);
    if (successor === null)
      throw new GatehouseError(
        'GH_INTERNAL',
        `certificate ${current.serial} is marked renewed by ${current.supersededBy}, which is not in the inventory`,
      );
    // The CSR's signature proved possession of its key: the key of the renewal already issued
    // means the same machine asking again, not a copy (a copy would have made its own key).
    const successorKey = parseCertificate(decodePem(successor.certPem, 'CERTIFICATE')[0]!).spkiDer;
    if (successorKey.equals(spkiDer)) {
      const graceMs = this.config.renewal.retryGrace;
      const withinGrace = current.supersededAt !== null && now.getTime() - current.supersededAt.getTime() <= graceMs;
      if (withinGrace && successor.revokedAt === null && successor.supersededBy === null && successor.notAfter > now) {
        await this.store.appendAudit([
          {
            time: now,
            type: 'ca.cert_renewal_replayed',
            actor: ctx.actor,
            requestId: ctx.requestId ?? null,
            serial: successor.serial,
            fingerprint: successor.fingerprint,
            details: { renewedFrom: current.serial, spiffeId: successor.spiffeId },
          },
        ]);
        this.logger.info('ca.cert_renewal_replayed', {
          serial: successor.serial,
          renewedFrom: current.serial,
          spiffeId: successor.spiffeId,
          requestId: ctx.requestId,
        });
        return { record: successor, chainPem: this.chainOf(successor.certPem), rootPem: this.rootPem, replayed: true };
      }
      throw new GatehouseError(
        'GH_CERT_SUPERSEDED',
        `certificate ${current.serial} was renewed at ${current.supersededAt?.toISOString()} (serial ${successor.serial}); a retry with the same key is answered only within ${graceMs / 1000} s (renewal.retryGrace) while that renewal is the newest; enroll again with a new join token`,
      );
    }
    const revoked = await this.revokeLineageForReuse(current, successor, now, ctx);
    throw new GatehouseError(
      'GH_CERT_REUSED',
      `certificate ${current.serial} was already renewed (serial ${successor.serial}, at ${current.supersededAt?.toISOString()}) and was presented again with another key: a copy of ${current.spiffeId} exists. All ${revoked.length} certificates of this identity are revoked (keyCompromise); check the machine, then enroll it again with a token made for this name`,
    );
  }

  /** Revokes the whole lineage (keyCompromise), audited and logged as a detected reuse. */
  private async revokeLineageForReuse(
    presented: CertRecord,
    successor: CertRecord,
    now: Date,
    ctx: RequestContext,
  ): Promise<CertRecord[]> {
    const detection: AuditInput = {
      time: now,
      type: 'ca.cert_reuse_detected',
      actor: ctx.actor,
      requestId: ctx.requestId ?? null,
      serial: presented.serial,
      fingerprint: presented.fingerprint,
      details: {
        spiffeId: presented.spiffeId,
        lineage: presented.lineage,
        presentedSerial: presented.serial,
        renewedBy: successor.serial,
      },
    };
    const revoked = await this.store.revokeLineage(
      presented.lineage,
      'keyCompromise',
      now,
      (cert) => ({
        time: now,
        type: 'ca.cert_revoked',
        actor: 'ca:reuse-detection',
        requestId: ctx.requestId ?? null,
        serial: cert.serial,
        fingerprint: cert.fingerprint,
        details: {
          reason: 'keyCompromise',
          name: cert.name,
          role: cert.role,
          spiffeId: cert.spiffeId,
          lineage: cert.lineage,
        },
      }),
      [detection],
    );
    this.observer?.reuseDetected?.(presented.role);
    this.logger.error('ca.cert_reuse_detected', {
      spiffeId: presented.spiffeId,
      presentedSerial: presented.serial,
      renewedBy: successor.serial,
      lineage: presented.lineage,
      revokedSerials: revoked.map((c) => c.serial),
      requestId: ctx.requestId,
    });
    return revoked;
  }

  /** The inventory record for a presented certificate: known, same fingerprint, unrevoked, unexpired. */
  async requireCurrentCertificate(peer: CertificateInfo, now = this.now()): Promise<CertRecord> {
    const record = await this.store.getCert(peer.serial);
    if (!record || record.fingerprint !== peer.fingerprint) {
      throw new GatehouseError('GH_CERT_UNTRUSTED', `certificate ${peer.serial} is not in this CA's inventory`);
    }
    if (record.revokedAt)
      throw new GatehouseError(
        'GH_CERT_REVOKED',
        `certificate ${record.serial} was revoked at ${record.revokedAt.toISOString()} (${record.revocationReason}); enroll again with a new join token`,
      );
    if (record.notAfter <= now)
      throw new GatehouseError(
        'GH_CERT_EXPIRED',
        `certificate ${record.serial} expired at ${record.notAfter.toISOString()}; enroll again with a new join token`,
      );
    return record;
  }

  // ------------------------------------------------------------------ offline and internal issuance

  /** `gatehouse cert sign`: an operator on the CA machine signs a CSR for a role. */
  signCsr(
    csrInput: string | Buffer,
    role: string,
    name: string | null,
    ctx: RequestContext,
  ): Promise<IssuedCertificate> {
    return this.observed('sign', async () => {
      const now = this.now();
      try {
        const csr = parseCsr(csrInput);
        const decided = decideName(csr, role, roleConfig(this.config, role), { exact: name });
        return await this.issue(approveCsr(this.config, csr, role, decided), keyOfCsr(csr), now, ctx, {
          tokenId: null,
          renewedFrom: null,
          nameClaim: 'replace',
          via: 'sign',
        });
      } catch (err) {
        if (!isExternalCaFailure(err)) await this.auditRefusal('ca.cert_refused', err, ctx, now, { role, via: 'sign' });
        throw err;
      }
    });
  }

  /**
   * Certificates the CA issues to itself or at init (its HTTPS server, the first admin). These
   * skip the role's SAN rules, so they are not reachable from any request.
   */
  issueInternal(
    request: { role: string; name: string; profile: LeafProfile; lifetimeMs: number; dns?: string[]; ip?: string[] },
    key: KeyObject,
    ctx: RequestContext,
  ): Promise<IssuedCertificate> {
    const approved: ApprovedRequest = {
      name: request.name,
      role: request.role,
      spiffeId: spiffeIdFor(this.config, request.role, request.name),
      dns: request.dns ?? [],
      ip: request.ip ?? [],
    };
    const subjectKey: SubjectKey = {
      spkiDer: spkiOf(key),
      csrPem: () => buildCsrPem(key, { commonName: request.name }),
    };
    return this.observed('internal', () =>
      this.issue(
        approved,
        subjectKey,
        this.now(),
        ctx,
        { tokenId: null, renewedFrom: null, nameClaim: 'replace', internal: true, via: 'internal' },
        { profile: request.profile, lifetimeMs: request.lifetimeMs },
      ),
    );
  }

  private async issue(
    approved: ApprovedRequest,
    subjectKey: SubjectKey,
    now: Date,
    ctx: RequestContext,
    link: {
      tokenId: string | null;
      renewedFrom: string | null;
      lineage?: string;
      nameClaim: NameClaim;
      internal?: boolean;
      via: IssuanceKind;
    },
    override?: { profile: LeafProfile; lifetimeMs: number },
  ): Promise<IssuedCertificate> {
    const rules = override ?? {
      ...roleConfig(this.config, approved.role),
      lifetimeMs: roleConfig(this.config, approved.role).lifetime,
    };
    // One issuer for the whole issuance, even if a rotation is put in force meanwhile.
    const issuer = this.issuer;
    const intermediatePem = this.intermediatePem;
    if (issuer.notAfter.getTime() - now.getTime() < 60_000) {
      throw new GatehouseError('GH_INTERNAL', 'the issuing intermediate expires within a minute; rotate it', {
        details: { intermediateNotAfter: issuer.notAfter },
      });
    }
    const signed = holdsKey(issuer)
      ? this.signHere(issuer, approved, subjectKey.spkiDer, rules, now)
      : await this.signExternally(issuer, approved, subjectKey, rules, now, ctx, link);
    // Serial and dates as signed: from the spec when signed here (parsing back would cost more
    // than building), from the checked certificate when an external CA signed.
    const record: CertRecord = {
      serial: signed.serial,
      fingerprint: sha256Hex(signed.der),
      name: approved.name,
      role: approved.role,
      spiffeId: approved.spiffeId,
      notBefore: signed.notBefore,
      notAfter: signed.notAfter,
      issuedAt: now,
      certPem: toPem('CERTIFICATE', signed.der),
      tokenId: link.tokenId,
      renewedFrom: link.renewedFrom,
      lineage: link.lineage ?? signed.serial,
      supersededBy: null,
      supersededAt: null,
      revokedAt: null,
      revocationReason: null,
    };
    const audit: AuditInput[] = [];
    const base = {
      time: now,
      actor: ctx.actor,
      requestId: ctx.requestId ?? null,
      serial: record.serial,
      fingerprint: record.fingerprint,
    };
    if (link.tokenId)
      audit.push({
        ...base,
        type: 'ca.token_used',
        tokenId: link.tokenId,
        details: { role: record.role, name: record.name },
      });
    audit.push({
      ...base,
      type: link.renewedFrom ? 'ca.cert_renewed' : 'ca.cert_issued',
      tokenId: link.tokenId,
      details: {
        name: record.name,
        role: record.role,
        spiffeId: record.spiffeId,
        notAfter: record.notAfter.toISOString(),
        renewedFrom: link.renewedFrom,
        dns: approved.dns,
        ip: approved.ip,
      },
    });
    if (link.nameClaim === 'replace' && !link.internal) audit.push(...(await this.replacementAudit(record, base)));
    const outcome = await this.store.commitIssuance({
      cert: record,
      now,
      audit,
      nameClaim: link.nameClaim,
      ...(link.tokenId ? { consumeTokenId: link.tokenId } : {}),
      ...(link.renewedFrom && !this.unsafeRenewWithoutLineage ? { renews: link.renewedFrom } : {}),
    });
    if (!outcome.ok && outcome.reason === 'NOT_LINEAGE_HEAD') {
      if (outcome.supersededBy !== null) throw new LostRenewalRace();
      throw new GatehouseError(
        'GH_CERT_REVOKED',
        `certificate ${link.renewedFrom} was revoked while it was being renewed; enroll again with a new join token`,
      );
    }
    if (!outcome.ok && outcome.reason === 'NAME_TAKEN') {
      // Another lineage holds the name: an enrollment committed first (after our early check), or
      // a renewal whose name an operator gave to another machine. Nothing was recorded and the
      // token keeps its use. This certificate is discarded unseen.
      const err = link.renewedFrom
        ? new GatehouseError(
            'GH_NAME_TAKEN',
            `${approved.spiffeId} was given to another enrollment (its newest certificate is ${outcome.heldBy}); this identity can no longer renew: enroll again with a token made for the name you need`,
          )
        : nameTaken(approved, outcome.heldBy, outcome.active);
      if (!link.renewedFrom)
        await this.auditRefusal('ca.cert_refused', err, ctx, now, {
          tokenId: link.tokenId,
          role: approved.role,
          via: 'enroll',
        });
      throw err;
    }
    if (!outcome.ok) {
      // Another enrollment won the race for the token's last use; this certificate is discarded unseen.
      const code: ErrorCode =
        outcome.reason === 'TOKEN_REVOKED'
          ? 'GH_TOKEN_REVOKED'
          : outcome.reason === 'TOKEN_EXPIRED'
            ? 'GH_TOKEN_EXPIRED'
            : outcome.reason === 'TOKEN_UNKNOWN'
              ? 'GH_TOKEN_INVALID'
              : 'GH_TOKEN_USED';
      const err = new GatehouseError(
        code,
        `join token ${link.tokenId} ${code === 'GH_TOKEN_USED' ? 'has no uses left' : 'is no longer valid'}`,
      );
      await this.auditRefusal('ca.token_refused', err, ctx, now, { tokenId: link.tokenId });
      throw err;
    }
    this.logger.info(link.renewedFrom ? 'ca.cert_renewed' : 'ca.cert_issued', {
      serial: record.serial,
      fingerprint: record.fingerprint,
      name: record.name,
      role: record.role,
      notAfter: record.notAfter.toISOString(),
      requestId: ctx.requestId,
    });
    return { record, chainPem: record.certPem + intermediatePem, rootPem: this.rootPem };
  }

  /** Builds and signs the certificate with the issuing key this process holds. */
  private signHere(
    issuer: SigningAuthority,
    approved: ApprovedRequest,
    spkiDer: Buffer,
    rules: { profile: LeafProfile; lifetimeMs: number },
    now: Date,
  ): SignedLeaf {
    // The backdate absorbs clock skew; capped at a tenth of the lifetime so that very short
    // lifetimes keep their renewal point (2/3 of notBefore→notAfter) in the future.
    const backdateMs = Math.min(this.config.limits.backdate, rules.lifetimeMs / 10);
    const notBefore = new Date(Math.max(now.getTime() - backdateMs, issuer.notBefore.getTime()));
    const notAfter = new Date(Math.min(now.getTime() + rules.lifetimeMs, issuer.notAfter.getTime()));
    const serial = randomSerial();
    const der = buildLeafCertificate(issuer, {
      serial,
      commonName: approved.name,
      organizationalUnit: approved.role,
      organization: this.config.org,
      spkiDer,
      notBefore,
      notAfter,
      profile: rules.profile,
      dns: approved.dns,
      ip: approved.ip,
      uri: [approved.spiffeId],
      email: [],
      // Each issuing CA's own CRL, so the URL stays right after a rotation (/crl is the current one's).
      crlUrl: `${publicUrlOf(this.config)}/crl/${issuer.keyIdentifier.toString('hex').slice(0, 16)}`,
    });
    return { der, serial: serialHex(serial), notBefore: encodedInstant(notBefore), notAfter: encodedInstant(notAfter) };
  }

  /**
   * Registration-authority mode: the external CA signs what this CA decided (subject, SANs,
   * profile), and what it returns is checked to be exactly that before anything is recorded or
   * returned (external-check.ts). A failure is audited here, once, with the signer's answer.
   */
  private async signExternally(
    issuer: IssuingCa,
    approved: ApprovedRequest,
    subjectKey: SubjectKey,
    rules: { profile: LeafProfile; lifetimeMs: number },
    now: Date,
    ctx: RequestContext,
    link: { tokenId: string | null; renewedFrom: string | null; via: IssuanceKind },
  ): Promise<SignedLeaf> {
    const externalCa = this.externalCa!;
    const subject = { commonName: approved.name, organization: this.config.org, organizationalUnit: approved.role };
    const profile = externalCa.profileFor(approved.role, rules.profile);
    try {
      const der = await externalCa.sign({
        csrPem: await subjectKey.csrPem(),
        profile,
        subject,
        hosts: [...approved.dns, ...approved.ip, approved.spiffeId],
      });
      const cert = checkExternalCertificate(der, {
        spkiDer: subjectKey.spkiDer,
        subject,
        sans: { dns: approved.dns, ip: approved.ip, uri: [approved.spiffeId] },
        profile: rules.profile,
        maxLifetimeMs: rules.lifetimeMs,
        rootDer: this.rootDer,
        issuerDers: issuer.certDer.equals(this.rootDer) ? [] : [issuer.certDer],
        now,
      });
      // A serial is the inventory's key and the CRL's entry: a signer repeating one would make two certificates one.
      if (await this.store.getCert(cert.serial))
        throw new GatehouseError(
          'GH_EXTERNAL_CA_MISMATCH',
          `the external CA returned a certificate with serial ${cert.serial}, which another certificate in the inventory already has`,
        );
      return { der, serial: cert.serial, notBefore: cert.notBefore, notAfter: cert.notAfter };
    } catch (err) {
      const code = isGatehouseError(err) ? err.code : 'GH_INTERNAL';
      const reason = err instanceof Error ? err.message : String(err);
      this.logger.error('ca.external_ca_failed', {
        code,
        reason: reason.slice(0, MAX_REFUSAL_FIELD_CHARS),
        signer: externalCa.displayUrl,
        profile,
        spiffeId: approved.spiffeId,
        requestId: ctx.requestId,
      });
      await this.writeRefusalAudit(
        {
          time: now,
          type: 'ca.external_ca_failed',
          actor: ctx.actor,
          tokenId: link.tokenId,
          serial: link.renewedFrom,
          fingerprint: null,
          requestId: ctx.requestId ?? null,
        },
        {
          code,
          reason,
          signer: externalCa.displayUrl,
          profile,
          role: approved.role,
          name: approved.name,
          spiffeId: approved.spiffeId,
          via: link.via,
        },
        null,
      );
      throw isGatehouseError(err)
        ? err
        : new GatehouseError('GH_EXTERNAL_CA_MISMATCH', `the external CA's answer could not be used: ${reason}`, {
            cause: err,
          });
    }
  }

  // ------------------------------------------------------------------ tokens

  async createToken(request: TokenRequest, ctx: RequestContext): Promise<{ token: string; record: TokenRecord }> {
    const now = this.now();
    roleConfig(this.config, request.role);
    if (request.name && request.namePattern)
      throw new GatehouseError('GH_USAGE', 'give either a name or a name pattern, not both');
    if (request.name && !isSafeName(request.name))
      throw new GatehouseError(
        'GH_NAME_INVALID',
        `name ${JSON.stringify(request.name)} is not allowed: use 1–63 characters from A–Z a–z 0–9 . _ -`,
      );
    if (request.namePattern && !NAME_PATTERN_RE.test(request.namePattern))
      throw new GatehouseError(
        'GH_NAME_INVALID',
        `name pattern ${JSON.stringify(request.namePattern)} may use only A–Z a–z 0–9 . _ - and *`,
      );
    if (request.name) {
      const rolePattern = roleConfig(this.config, request.role).names;
      if (!compileNamePattern(rolePattern).test(request.name))
        throw new GatehouseError(
          'GH_NAME_INVALID',
          `name "${request.name}" does not match role ${request.role}'s pattern "${rolePattern}"`,
        );
    }
    const ttlMs = request.ttlMs ?? this.config.tokens.defaultTtl;
    if (ttlMs <= 0 || ttlMs > this.config.tokens.maxTtl)
      throw new GatehouseError(
        'GH_USAGE',
        `token TTL must be between 1s and ${this.config.tokens.maxTtl / 1000}s (tokens.maxTtl)`,
      );
    const uses = request.uses ?? 1;
    if (!Number.isInteger(uses) || uses < 1 || uses > 10_000)
      throw new GatehouseError('GH_USAGE', 'token uses must be an integer from 1 to 10000');
    const { token, id, secretHash } = newJoinToken(this.rootFingerprint);
    const record: TokenRecord = {
      id,
      secretHash,
      role: request.role,
      name: request.name ?? null,
      namePattern: request.namePattern ?? null,
      maxUses: uses,
      uses: 0,
      expiresAt: new Date(now.getTime() + ttlMs),
      createdAt: now,
      createdBy: ctx.actor,
      revokedAt: null,
    };
    await this.store.insertToken(record, {
      time: now,
      type: 'ca.token_created',
      actor: ctx.actor,
      tokenId: id,
      requestId: ctx.requestId ?? null,
      details: {
        role: record.role,
        name: record.name,
        namePattern: record.namePattern,
        maxUses: uses,
        expiresAt: record.expiresAt.toISOString(),
      },
    });
    this.logger.info('ca.token_created', {
      tokenId: id,
      role: record.role,
      actor: ctx.actor,
      requestId: ctx.requestId,
    });
    return { token, record };
  }

  async revokeToken(id: string, ctx: RequestContext): Promise<TokenRecord> {
    const now = this.now();
    const record = await this.store.revokeToken(id, now, {
      time: now,
      type: 'ca.token_revoked',
      actor: ctx.actor,
      tokenId: id,
      requestId: ctx.requestId ?? null,
    });
    if (!record) throw new GatehouseError('GH_TOKEN_NOT_FOUND', `no join token with ID ${id}`);
    return record;
  }

  // ------------------------------------------------------------------ revocation

  /**
   * Revokes the certificate and every other unrevoked certificate of its lineage: the renewals it
   * superseded are still valid until they expire, and revoking an identity must not leave them
   * (or a copy's renewals) usable. The name stays reserved for the lineage.
   */
  async revokeCertificate(serial: string, reason: CrlReason, ctx: RequestContext): Promise<CertRecord> {
    const now = this.now();
    const normalized = normalizeSerial(serial);
    const existing = await this.store.getCert(normalized);
    if (!existing)
      throw new GatehouseError('GH_CERT_NOT_FOUND', `no certificate with serial ${serial} in the inventory`);
    const revoked = await this.store.revokeLineage(existing.lineage, reason, now, (cert) => ({
      time: now,
      type: 'ca.cert_revoked',
      actor: ctx.actor,
      serial: cert.serial,
      fingerprint: cert.fingerprint,
      requestId: ctx.requestId ?? null,
      details: {
        reason,
        name: cert.name,
        role: cert.role,
        spiffeId: cert.spiffeId,
        lineage: cert.lineage,
        ...(cert.serial !== normalized ? { withSerial: normalized } : {}),
      },
    }));
    const record = revoked.find((c) => c.serial === normalized) ?? (await this.store.getCert(normalized))!;
    this.logger.info('ca.cert_revoked', {
      serial: record.serial,
      fingerprint: record.fingerprint,
      name: record.name,
      reason,
      actor: ctx.actor,
      lineage: record.lineage,
      revokedSerials: revoked.map((c) => c.serial),
    });
    return record;
  }

  // ------------------------------------------------------------------ names

  /** Every reserved name with the state of its lineage's newest certificate. */
  async listNames(now = this.now()): Promise<ReservedName[]> {
    const reservations = await this.store.listNameReservations();
    return Promise.all(
      reservations.map(async (r) => {
        const head = await this.lineageHead(r.lineage);
        return {
          ...r,
          newestSerial: head?.serial ?? null,
          state: head === undefined ? 'expired' : certStateAt(head, now),
        };
      }),
    );
  }

  /**
   * Frees a reserved name, so any token for its role may enroll it again. Refused while a
   * certificate for it is active: revoke that first, so a release never hands over a live name.
   */
  async releaseName(role: string, name: string, ctx: RequestContext): Promise<NameReservation> {
    const now = this.now();
    const spiffeId = spiffeIdFor(this.config, role, name);
    const reservation = await this.store.getNameReservation(role, name);
    if (!reservation)
      throw new GatehouseError('GH_NAME_NOT_FOUND', `${spiffeId} is not reserved (see \`gatehouse name list\`)`);
    const [holder] = await this.store.listCerts({ role, name, state: 'active', now, limit: 1 });
    if (holder)
      throw new GatehouseError(
        'GH_NAME_TAKEN',
        `${spiffeId} is held by an active certificate (serial ${holder.serial}); revoke it first (gatehouse cert revoke ${holder.serial})`,
      );
    const released = await this.store.releaseName(role, name, {
      time: now,
      type: 'ca.name_released',
      actor: ctx.actor,
      requestId: ctx.requestId ?? null,
      details: { spiffeId, lineage: reservation.lineage },
    });
    if (!released) throw new GatehouseError('GH_NAME_NOT_FOUND', `${spiffeId} is not reserved`);
    this.logger.info('ca.name_released', { spiffeId, lineage: released.lineage, actor: ctx.actor });
    return released;
  }

  /** The newest certificate of a lineage (listCerts orders by issue time, newest first). */
  private async lineageHead(lineage: string): Promise<CertRecord | undefined> {
    return (await this.store.listCerts({ lineage, limit: 1 }))[0];
  }

  /** An issuance that takes a name from another lineage says so in the audit trail. */
  private async replacementAudit(record: CertRecord, base: Omit<AuditInput, 'type'>): Promise<AuditInput[]> {
    const reservation = await this.store.getNameReservation(record.role, record.name);
    if (!reservation || reservation.lineage === record.lineage) return [];
    const head = await this.lineageHead(reservation.lineage);
    return [
      {
        ...base,
        type: 'ca.name_replaced',
        details: {
          spiffeId: record.spiffeId,
          previousLineage: reservation.lineage,
          previousSerial: head?.serial ?? null,
          lineage: record.lineage,
        },
      },
    ];
  }

  private async auditRefusal(
    type: 'ca.cert_refused' | 'ca.token_refused',
    err: unknown,
    ctx: RequestContext,
    now: Date,
    fields: { tokenId?: string | null; serial?: string; fingerprint?: string; role?: string; via?: string },
  ): Promise<void> {
    const code = isGatehouseError(err) ? err.code : 'GH_INTERNAL';
    const reason = isGatehouseError(err) ? err.message : 'internal error';
    this.logger.warn(type, {
      code,
      reason: reason.slice(0, MAX_REFUSAL_FIELD_CHARS),
      tokenId: fields.tokenId,
      serial: fields.serial,
      actor: ctx.actor,
      requestId: ctx.requestId,
    });
    // Only refusals that prove nothing are rate limited (a token that is malformed, unknown, of
    // another CA or with a wrong secret: anyone can make those up). A refusal that names a real
    // token (revoked, expired, used up) needed its secret, so it is always written: it says a
    // token leaked.
    const limitSource = ctx.source !== undefined && code === 'GH_TOKEN_INVALID' ? ctx.source : null;
    await this.writeRefusalAudit(
      {
        time: now,
        type,
        actor: ctx.actor,
        tokenId: fields.tokenId ?? null,
        serial: fields.serial ?? null,
        fingerprint: fields.fingerprint ?? null,
        requestId: ctx.requestId ?? null,
      },
      { code, reason, role: fields.role, via: fields.via },
      limitSource,
    );
  }
}

/** Only a token made for the exact name may replace an active holder of that name. */
function mayReplaceHolder(token: TokenRecord): boolean {
  return token.name !== null;
}

function nameTaken(approved: ApprovedRequest, heldBy: string, active: boolean): GatehouseError {
  const replace = `enroll with a token made for this name (gatehouse token create --role ${approved.role} --name ${approved.name})`;
  if (active)
    return new GatehouseError(
      'GH_NAME_TAKEN',
      `${approved.spiffeId} is held by an active certificate (serial ${heldBy}); choose another name, or revoke it and ${replace}`,
    );
  return new GatehouseError(
    'GH_NAME_TAKEN',
    `${approved.spiffeId} stays reserved for the machine that enrolled it (its last certificate, ${heldBy}, was revoked or expired); choose another name, ${replace}, or free it with gatehouse name release ${approved.role}/${approved.name}`,
  );
}

/** A reserved name as listings show it. */
export interface ReservedName extends NameReservation {
  newestSerial: string | null;
  state: 'active' | 'expired' | 'revoked';
}

/** The certificate being renewed was renewed by a simultaneous request that committed first. */
class LostRenewalRace extends Error {}

/** The key a certificate is for, and its CSR when an external CA needs one. */
interface SubjectKey {
  spkiDer: Buffer;
  csrPem(): Promise<string>;
}

function keyOfCsr(csr: ParsedCsr): SubjectKey {
  return { spkiDer: csr.spkiDer, csrPem: async () => toPem('CERTIFICATE REQUEST', csr.der) };
}

interface SignedLeaf {
  der: Buffer;
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

/** Failures of the external CA are audited where they happen (signExternally), not again by callers. */
function isExternalCaFailure(err: unknown): boolean {
  return isGatehouseError(err) && err.code.startsWith('GH_EXTERNAL_CA_');
}

/** The issuing CA's certificate as a chain sends it: nothing when the root itself signs (external CAs may). */
function chainPartOf(issuerDer: Buffer, rootDer: Buffer): string {
  return issuerDer.equals(rootDer) ? '' : toPem('CERTIFICATE', issuerDer);
}
