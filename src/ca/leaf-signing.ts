/**
 * The signing step of an issuance: the certificate the CA decided on (name, role, SANs, profile,
 * lifetime) signed with the issuing key this process holds, or, in registration-authority mode,
 * by the external CA, whose answer is checked to be exactly that before anything trusts it.
 */
import type { KeyObject } from 'node:crypto';
import { publicUrlOf } from '../config/ca-config.js';
import { GatehouseError, isGatehouseError } from '../errors/errors.js';
import { serialHex } from '../pki/certificate.js';
import { buildCsrPem } from '../pki/csr-build.js';
import type { ParsedCsr } from '../pki/csr.js';
import { encodedInstant } from '../pki/der.js';
import { spkiDer as spkiOf } from '../pki/keys.js';
import {
  buildLeafCertificate,
  randomSerial,
  type IssuingCa,
  type LeafProfile,
  type SigningAuthority,
} from '../pki/leaf-certificate.js';
import { toPem } from '../pki/pem.js';
import type { AuthorityContext, IssuanceKind, RequestContext } from './authority-context.js';
import { checkExternalCertificate } from './external-check.js';
import type { ApprovedRequest } from './issuance-rules.js';
import { MAX_REFUSAL_FIELD_CHARS } from './refusal-audit.js';
import { writeRefusalAudit } from './refusal-events.js';

/** The key a certificate is for, and its CSR when an external CA needs one. */
export interface SubjectKey {
  spkiDer: Buffer;
  csrPem(): Promise<string>;
}

export function keyOfCsr(csr: ParsedCsr): SubjectKey {
  return { spkiDer: csr.spkiDer, csrPem: async () => toPem('CERTIFICATE REQUEST', csr.der) };
}

/** A key of the CA's own (issueInternal): its CSR is made only if an external CA asks for one. */
export function keyOfOwn(key: KeyObject, commonName: string): SubjectKey {
  return { spkiDer: spkiOf(key), csrPem: () => buildCsrPem(key, { commonName }) };
}

export interface SignedLeaf {
  der: Buffer;
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

/** The profile and lifetime a certificate is signed with: its role's, or those of an internal issuance. */
export interface LeafRules {
  profile: LeafProfile;
  lifetimeMs: number;
}

/** Failures of the external CA are audited where they happen (signExternally), not again by callers. */
export function isExternalCaFailure(err: unknown): boolean {
  return isGatehouseError(err) && err.code.startsWith('GH_EXTERNAL_CA_');
}

/** Builds and signs the certificate with the issuing key this process holds. */
export function signHere(
  ca: AuthorityContext,
  issuer: SigningAuthority,
  approved: ApprovedRequest,
  spkiDer: Buffer,
  rules: LeafRules,
  now: Date,
): SignedLeaf {
  const { config } = ca.authority;
  // The backdate absorbs clock skew; capped at a tenth of the lifetime so that very short
  // lifetimes keep their renewal point (2/3 of notBefore→notAfter) in the future.
  const backdateMs = Math.min(config.limits.backdate, rules.lifetimeMs / 10);
  const notBefore = new Date(Math.max(now.getTime() - backdateMs, issuer.notBefore.getTime()));
  const notAfter = new Date(Math.min(now.getTime() + rules.lifetimeMs, issuer.notAfter.getTime()));
  const serial = randomSerial();
  const der = buildLeafCertificate(issuer, {
    serial,
    commonName: approved.name,
    organizationalUnit: approved.role,
    organization: config.org,
    spkiDer,
    notBefore,
    notAfter,
    profile: rules.profile,
    dns: approved.dns,
    ip: approved.ip,
    uri: [approved.spiffeId],
    email: [],
    // Each issuing CA's own CRL, so the URL stays right after a rotation (/crl is the current one's).
    crlUrl: `${publicUrlOf(config)}/crl/${issuer.keyIdentifier.toString('hex').slice(0, 16)}`,
  });
  return { der, serial: serialHex(serial), notBefore: encodedInstant(notBefore), notAfter: encodedInstant(notAfter) };
}

/**
 * Registration-authority mode: the external CA signs what this CA decided (subject, SANs,
 * profile), and what it returns is checked to be exactly that before anything is recorded or
 * returned (external-check.ts). A failure is audited here, once, with the signer's answer.
 */
export async function signExternally(
  ca: AuthorityContext,
  issuer: IssuingCa,
  approved: ApprovedRequest,
  subjectKey: SubjectKey,
  rules: LeafRules,
  now: Date,
  ctx: RequestContext,
  link: { tokenId: string | null; renewedFrom: string | null; via: IssuanceKind },
): Promise<SignedLeaf> {
  const { authority } = ca;
  const externalCa = authority.externalCa!;
  const subject = { commonName: approved.name, organization: authority.config.org, organizationalUnit: approved.role };
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
      rootDer: authority.rootDer,
      issuerDers: issuer.certDer.equals(authority.rootDer) ? [] : [issuer.certDer],
      now,
    });
    // A serial is the inventory's key and the CRL's entry: a signer repeating one would make two certificates one.
    if (await authority.store.getCert(cert.serial))
      throw new GatehouseError(
        'GH_EXTERNAL_CA_MISMATCH',
        `the external CA returned a certificate with serial ${cert.serial}, which another certificate in the inventory already has`,
      );
    return { der, serial: cert.serial, notBefore: cert.notBefore, notAfter: cert.notAfter };
  } catch (err) {
    const code = isGatehouseError(err) ? err.code : 'GH_INTERNAL';
    const reason = err instanceof Error ? err.message : String(err);
    ca.logger.error('ca.external_ca_failed', {
      code,
      reason: reason.slice(0, MAX_REFUSAL_FIELD_CHARS),
      signer: externalCa.displayUrl,
      profile,
      spiffeId: approved.spiffeId,
      requestId: ctx.requestId,
    });
    await writeRefusalAudit(
      ca,
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
