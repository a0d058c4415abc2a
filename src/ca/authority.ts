/**
 * The certificate authority: turns approved requests into recorded certificates, manages join
 * tokens and revocation. Issuance is a list of small steps (after step-ca): parse the CSR →
 * authorize (token or current certificate) → apply the role → build and sign → record durably
 * → return. Refusals are audited with the reason and never with the token or key.
 *
 * This class holds what is in force (the issuing CAs, the root, a root rotation) and is the API
 * the server, the CLI and the tests call; the methods that issue, check or revoke hand the work
 * to the module that owns the step: enrollment.ts, renewal.ts, issuance.ts (signing in
 * leaf-signing.ts), join-token-records.ts, revocation.ts, name-reservations.ts and
 * refusal-events.ts (the audit of refusals).
 */
import type { KeyObject } from 'node:crypto';
import { GatehouseError, isGatehouseError } from '../errors/errors.js';
import type { CaConfig } from '../config/ca-config.js';
import type { Logger } from '../log/logger.js';
import { parseCsr } from '../pki/csr.js';
import { sha256Hex, type CertificateInfo } from '../pki/certificate.js';
import {
  describeIssuingCa,
  prepareSigningAuthority,
  type IssuingCa,
  type LeafProfile,
  type SigningAuthority,
} from '../pki/leaf-certificate.js';
import { toPem } from '../pki/pem.js';
import type { CrlReason } from '../pki/crl.js';
import type { Store } from '../store/store.js';
import type { AuditInput } from '../store/store-audit.js';
import type { CertRecord, NameReservation } from '../store/store-certificates.js';
import type { TokenRecord } from '../store/store-tokens.js';
import {
  chainPartOf,
  type AuthorityContext,
  type IssuanceKind,
  type IssuanceObserver,
  type IssuedCertificate,
  type RequestContext,
} from './authority-context.js';
import { enroll } from './enrollment.js';
import { issue } from './issuance.js';
import { approveCsr, decideName, roleConfig, spiffeIdFor, type ApprovedRequest } from './issuance-rules.js';
import { createJoinToken, revokeJoinToken, type TokenRequest } from './join-token-records.js';
import { isExternalCaFailure, keyOfCsr, keyOfOwn } from './leaf-signing.js';
import { listNames, releaseName, type ReservedName } from './name-reservations.js';
import { RefusalAuditLimiter } from './refusal-audit.js';
import { auditRefusal, writeRefusalAudit } from './refusal-events.js';
import { renew, requireCurrentCertificate } from './renewal.js';
import { revokeCertificate } from './revocation.js';
import type { ExternalCa } from './external-ca.js';
import { rotationBundle, type RootRotation } from './root-rotation.js';

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

/** What agents may take into their ca.pem with an issuance (src/agent/trust-bundle.ts). */
export interface TrustBundle {
  /** The roots this CA serves, PEM. */
  rootsPem: string;
  /** Cross-certificates vouching for a new root with a root agents already trust, PEM. */
  crossPem: string;
  /** SHA-256 fingerprints of roots agents should drop. */
  retired: string[];
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
  readonly now: () => Date;
  readonly observer: IssuanceObserver | null;
  /** What the steps of issuance (enrollment.ts, renewal.ts…) are given: this Authority and what it keeps private. */
  private readonly context: AuthorityContext;

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
    this.now = deps.now ?? (() => new Date());
    this.observer = deps.observer ?? null;
    this.context = {
      authority: this,
      logger: deps.logger,
      refusalLimiter: new RefusalAuditLimiter(),
      unsafeRenewWithoutLineage: deps.unsafeRenewWithoutLineage ?? false,
    };
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

  /**
   * The audit event of a request refused before or at authentication, from `source` (the peer
   * address): fields bounded and rate limited per source (refusal-audit.ts), so anonymous
   * traffic cannot fill the disk; a suppressed event is counted instead. Never throws.
   */
  async auditAnonymousRefusal(
    source: string,
    event: Omit<AuditInput, 'time' | 'details'> & { details: Record<string, string | number | boolean | null> },
  ): Promise<void> {
    await writeRefusalAudit(this.context, { ...event, time: this.now() }, event.details, source);
  }

  /** Times an issuance from entry to the certificate on disk, and counts its outcome. */
  private async observed(kind: IssuanceKind, run: () => Promise<IssuedCertificate>): Promise<IssuedCertificate> {
    const observer = this.observer;
    if (!observer) return run();
    const started = process.hrtime.bigint();
    try {
      const issued = await run();
      if (!issued.replayed) observer.issued(kind, issued.record.role, Number(process.hrtime.bigint() - started) / 1e9);
      return issued;
    } catch (err) {
      observer.refused(kind, isGatehouseError(err) ? err.code : 'GH_INTERNAL');
      throw err;
    }
  }

  // ------------------------------------------------------------------ enrollment and renewal

  enroll(
    tokenText: string,
    csrInput: string | Buffer,
    ctx: RequestContext,
    nameHint?: string | null,
  ): Promise<IssuedCertificate> {
    return this.observed('enroll', () => enroll(this.context, tokenText, csrInput, ctx, nameHint));
  }

  /** `peerDer` is a certificate the TLS layer verified against this CA's root. */
  /** `presented`: the caller's certificate as authenticatePeer found it (known, unrevoked, unexpired). */
  renew(presented: CertRecord, csrInput: string | Buffer, ctx: RequestContext): Promise<IssuedCertificate> {
    return this.observed('renew', () => renew(this.context, presented, csrInput, ctx));
  }

  /** The inventory record for a presented certificate: known, same fingerprint, unrevoked, unexpired. */
  requireCurrentCertificate(peer: CertificateInfo, now = this.now()): Promise<CertRecord> {
    return requireCurrentCertificate(this.store, peer, now);
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
        return await issue(this.context, approveCsr(this.config, csr, role, decided), keyOfCsr(csr), now, ctx, {
          tokenId: null,
          renewedFrom: null,
          nameClaim: 'replace',
          via: 'sign',
        });
      } catch (err) {
        if (!isExternalCaFailure(err))
          await auditRefusal(this.context, 'ca.cert_refused', err, ctx, now, { role, via: 'sign' });
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
    const subjectKey = keyOfOwn(key, request.name);
    return this.observed('internal', () =>
      issue(
        this.context,
        approved,
        subjectKey,
        this.now(),
        ctx,
        { tokenId: null, renewedFrom: null, nameClaim: 'replace', internal: true, via: 'internal' },
        { profile: request.profile, lifetimeMs: request.lifetimeMs },
      ),
    );
  }

  // ------------------------------------------------------------------ tokens

  createToken(request: TokenRequest, ctx: RequestContext): Promise<{ token: string; record: TokenRecord }> {
    return createJoinToken(this.context, request, ctx);
  }

  revokeToken(id: string, ctx: RequestContext): Promise<TokenRecord> {
    return revokeJoinToken(this.context, id, ctx);
  }

  // ------------------------------------------------------------------ revocation

  /**
   * Revokes the certificate and every other unrevoked certificate of its lineage (revocation.ts
   * says why). The name stays reserved for the lineage.
   */
  revokeCertificate(serial: string, reason: CrlReason, ctx: RequestContext): Promise<CertRecord> {
    return revokeCertificate(this.context, serial, reason, ctx);
  }

  // ------------------------------------------------------------------ names

  /** Every reserved name with the state of its lineage's newest certificate. */
  listNames(now = this.now()): Promise<ReservedName[]> {
    return listNames(this.store, now);
  }

  /**
   * Frees a reserved name, so any token for its role may enroll it again. Refused while a
   * certificate for it is active: revoke that first, so a release never hands over a live name.
   */
  releaseName(role: string, name: string, ctx: RequestContext): Promise<NameReservation> {
    return releaseName(this.context, role, name, ctx);
  }
}
