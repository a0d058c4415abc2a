/**
 * What the Authority (authority.ts) and its steps share: the request context, what an issuance
 * returns, and the Authority as a step sees it. The steps (enrollment.ts, renewal.ts,
 * issuance.ts…) are functions of an AuthorityContext rather than methods, so that each lives in
 * its own module; this one holds the types they all need, so they import it and not authority.ts
 * (which imports them): no import cycle.
 */
import type { CaConfig } from '../config/ca-config.js';
import type { AuditEventType } from '../log/audit-events.js';
import type { Logger } from '../log/logger.js';
import { parseCertificate, type CertificateInfo } from '../pki/certificate.js';
import type { IssuingCa } from '../pki/leaf-certificate.js';
import { decodePem, toPem } from '../pki/pem.js';
import type { Store } from '../store/store.js';
import type { CertRecord } from '../store/store-certificates.js';
import type { ExternalCa } from './external-ca.js';
import type { RefusalAuditLimiter } from './refusal-audit.js';
import type { RootRotation } from './root-rotation.js';

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

export interface IssuedCertificate {
  record: CertRecord;
  /** Leaf then intermediate, PEM. */
  chainPem: string;
  rootPem: string;
  /** A lost renewal answer sent again: nothing new was issued. */
  replayed?: boolean;
}

export interface RequestContext {
  actor: string;
  requestId?: string | null;
  /** The peer address of an unauthenticated request: its refusals are audited rate limited. */
  source?: string;
}

/** The Authority's public state that its steps read; the Authority class itself satisfies it. */
export interface AuthorityView {
  readonly config: Readonly<CaConfig>;
  readonly store: Store;
  readonly issuer: IssuingCa;
  readonly externalCa: ExternalCa | null;
  readonly rootDer: Buffer;
  readonly rootPem: string;
  readonly rootFingerprint: string;
  readonly rotation: RootRotation | null;
  readonly intermediatePem: string;
  readonly now: () => Date;
  readonly observer: IssuanceObserver | null;
  issuerOf(cert: CertificateInfo): IssuingCa | null;
}

export interface AuthorityContext {
  /**
   * The Authority itself, not a copy: a rotation put in force meanwhile (useRoot, useIssuers)
   * is seen by a step at its next read, exactly as when the steps were methods.
   */
  readonly authority: AuthorityView;
  /** What the Authority keeps private: its logger, the rate limit of anonymous refusals' events. */
  readonly logger: Logger;
  readonly refusalLimiter: RefusalAuditLimiter;
  /** See AuthorityDeps.unsafeRenewWithoutLineage (authority.ts): benchmarks only. */
  readonly unsafeRenewWithoutLineage: boolean;
}

/** A stored certificate with the issuing CA that signed it, PEM: what clients are sent. */
export function chainOf(authority: AuthorityView, certPem: string): string {
  const issuer = authority.issuerOf(parseCertificate(decodePem(certPem, 'CERTIFICATE')[0]!));
  return (
    certPem +
    (issuer && issuer !== authority.issuer ? chainPartOf(issuer.certDer, authority.rootDer) : authority.intermediatePem)
  );
}

/** The issuing CA's certificate as a chain sends it: nothing when the root itself signs (external CAs may). */
export function chainPartOf(issuerDer: Buffer, rootDer: Buffer): string {
  return issuerDer.equals(rootDer) ? '' : toPem('CERTIFICATE', issuerDer);
}
