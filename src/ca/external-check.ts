/**
 * The check of what an external signer returned, before Gatehouse records or hands out
 * anything: the certificate must be exactly the one requested. A signer's profile can add a
 * name, drop one, widen the EKU, make a CA or outlive the lifetime policy, and the client would
 * then hold an identity the Authority never granted. Fails closed on the first difference.
 */
import { GatehouseError } from '../errors/errors.js';
import { parseCertificate, type CertificateInfo } from '../pki/certificate.js';
import { signedBy, verifyChain } from '../pki/chain.js';
import type { LeafProfile } from '../pki/leaf-certificate.js';
import { OID } from '../pki/oids.js';

export interface ExternalCertificateExpectation {
  /** The CSR's SubjectPublicKeyInfo DER. */
  spkiDer: Buffer;
  subject: { commonName: string; organization: string; organizationalUnit: string };
  sans: { dns: string[]; ip: string[]; uri: string[] };
  profile: LeafProfile;
  maxLifetimeMs: number;
  /** Signers backdate notBefore (cfssl by 5 minutes); allowed on top of maxLifetimeMs. Default 5 min. */
  backdateAllowanceMs?: number;
  /** How far notBefore may lie in the signer's future (clock skew). Default 1 min. */
  clockSkewMs?: number;
  rootDer: Buffer;
  /** Issuing CA certificates signed by the root; the leaf may also be signed by the root directly. */
  issuerDers: Buffer[];
  now?: Date;
}

const DEFAULT_BACKDATE_MS = 5 * 60_000;
const DEFAULT_SKEW_MS = 60_000;

const EKU_NAMES: Record<string, string> = {
  [OID.serverAuth]: 'serverAuth',
  [OID.clientAuth]: 'clientAuth',
  [OID.anyExtendedKeyUsage]: 'anyExtendedKeyUsage',
};

/** Returns the parsed certificate when it is exactly what was requested; else GH_EXTERNAL_CA_MISMATCH. */
export function checkExternalCertificate(der: Buffer, expected: ExternalCertificateExpectation): CertificateInfo {
  const cert = parse(der);
  const now = expected.now ?? new Date();
  checkKey(cert, expected);
  checkSubject(cert, expected.subject);
  checkSans(cert, expected.sans);
  checkEku(cert, expected.profile);
  checkConstraints(cert);
  checkExtensions(cert);
  checkValidity(cert, expected, now);
  checkChain(cert, expected, now);
  return cert;
}

function mismatch(what: string): GatehouseError {
  return new GatehouseError('GH_EXTERNAL_CA_MISMATCH', `the external CA returned a certificate ${what}`);
}

function parse(der: Buffer): CertificateInfo {
  try {
    return parseCertificate(der);
  } catch (cause) {
    throw new GatehouseError(
      'GH_EXTERNAL_CA_MISMATCH',
      `the external CA returned a malformed certificate: ${(cause as Error).message}`,
      { cause },
    );
  }
}

function checkKey(cert: CertificateInfo, expected: ExternalCertificateExpectation): void {
  if (!cert.spkiDer.equals(expected.spkiDer)) throw mismatch("for another public key than the CSR's");
}

/** Exactly CN, O and OU once each, equal to the request, and no other attribute (a C, an extra OU, …). */
function checkSubject(cert: CertificateInfo, subject: ExternalCertificateExpectation['subject']): void {
  const wanted: Array<[oid: string, label: string, value: string]> = [
    [OID.commonName, 'CN', subject.commonName],
    [OID.organization, 'O', subject.organization],
    [OID.organizationalUnit, 'OU', subject.organizationalUnit],
  ];
  const extra = cert.subject.find((a) => !wanted.some(([oid]) => oid === a.oid));
  if (extra) throw mismatch(`whose subject has ${extra.type}=${JSON.stringify(extra.value)}, which was not requested`);
  for (const [oid, label, value] of wanted) {
    const found = cert.subject.filter((a) => a.oid === oid).map((a) => a.value);
    if (found.length !== 1 || found[0] !== value) {
      const got = found.length === 0 ? 'no ' + label : found.map((v) => `${label}=${JSON.stringify(v)}`).join(' and ');
      throw mismatch(`with subject ${got}; requested ${label}=${JSON.stringify(value)}`);
    }
  }
}

/** RFC 5280 §4.2.1.6: the SAN set must equal the request: DNS (case-insensitive, §7.2), IP, URI; nothing else. */
function checkSans(cert: CertificateInfo, sans: ExternalCertificateExpectation['sans']): void {
  const requested = sanList(sans.dns, sans.ip, sans.uri);
  const actual = sanList(cert.sans.dns, cert.sans.ip, cert.sans.uri);
  const describe = (list: string[]) => (list.length ? list.join(', ') : 'none');
  const unexpected = [...cert.sans.email.map((e) => `email:${e}`), ...cert.sans.other.map((t) => `GeneralName [${t}]`)];
  const extra = [...unexpected, ...actual.filter((s) => !requested.includes(s))];
  if (extra.length) throw mismatch(`with SAN ${extra[0]} that was not requested; requested ${describe(requested)}`);
  const missing = requested.filter((s) => !actual.includes(s));
  if (missing.length) throw mismatch(`without the requested SAN ${missing[0]}; it has ${describe(actual)}`);
}

function sanList(dns: string[], ip: string[], uri: string[]): string[] {
  return [...dns.map((d) => `DNS:${d.toLowerCase()}`), ...ip.map((i) => `IP:${i}`), ...uri.map((u) => `URI:${u}`)];
}

/** RFC 5280 §4.2.1.12: the EKU set must be the profile's, and never anyExtendedKeyUsage. */
function checkEku(cert: CertificateInfo, profile: LeafProfile): void {
  const wanted: string[] = [
    ...(profile !== 'client' ? [OID.serverAuth] : []),
    ...(profile !== 'server' ? [OID.clientAuth] : []),
  ];
  const name = (oid: string) => EKU_NAMES[oid] ?? oid;
  const extra = cert.extKeyUsage.find((oid) => !wanted.includes(oid));
  if (extra)
    throw mismatch(
      `with extended key usage ${name(extra)}, which profile ${profile} does not allow (${wanted.map(name).join(' + ')})`,
    );
  const missing = wanted.find((oid) => !cert.extKeyUsage.includes(oid));
  if (missing) throw mismatch(`without extended key usage ${name(missing)}, which profile ${profile} needs`);
}

/** RFC 5280 §4.2.1.9 and §4.2.1.3: an end entity; may sign TLS handshakes, never certificates or CRLs. */
function checkConstraints(cert: CertificateInfo): void {
  if (cert.isCa) throw mismatch('with basicConstraints CA:TRUE; only an end-entity certificate was requested');
  if (!cert.keyUsage) throw mismatch('without a keyUsage extension; digitalSignature is required');
  if (!cert.keyUsage.includes('digitalSignature'))
    throw mismatch(`whose keyUsage lacks digitalSignature (it has ${cert.keyUsage.join(', ') || 'none'})`);
  const forbidden = cert.keyUsage.find((u) => u === 'keyCertSign' || u === 'cRLSign');
  if (forbidden) throw mismatch(`with keyUsage ${forbidden}, which only a CA may have`);
}

/** Extensions a TLS peer must understand when critical (RFC 5280 §4.2: it refuses a critical one it does not). */
const KNOWN_CRITICAL: ReadonlySet<string> = new Set([
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.subjectAltName,
]);

/**
 * A critical extension the requested profile does not have makes the certificate unusable for
 * peers that do not know it (openssl refuses it), or restricts it in ways nobody asked for; name
 * constraints belong in CA certificates only (RFC 5280 §4.2.1.10).
 */
function checkExtensions(cert: CertificateInfo): void {
  if (cert.extensions.some((e) => e.oid === OID.nameConstraints))
    throw mismatch('with a nameConstraints extension, which only a CA certificate may have');
  const unknown = cert.extensions.find((e) => e.critical && !KNOWN_CRITICAL.has(e.oid));
  if (unknown)
    throw mismatch(
      `with the critical extension ${unknown.oid}, which was not requested and which TLS peers that do not know it refuse`,
    );
}

function checkValidity(cert: CertificateInfo, expected: ExternalCertificateExpectation, now: Date): void {
  const skew = expected.clockSkewMs ?? DEFAULT_SKEW_MS;
  const backdate = expected.backdateAllowanceMs ?? DEFAULT_BACKDATE_MS;
  if (cert.notBefore.getTime() > now.getTime() + skew)
    throw mismatch(`that is not valid before ${cert.notBefore.toISOString()} (now ${now.toISOString()})`);
  if (cert.notAfter.getTime() <= now.getTime())
    throw mismatch(`that expired at ${cert.notAfter.toISOString()} (now ${now.toISOString()})`);
  const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
  if (lifetime > expected.maxLifetimeMs + backdate) {
    throw mismatch(
      `valid for ${formatMs(lifetime)}, longer than the allowed ${formatMs(expected.maxLifetimeMs)} plus ${formatMs(backdate)} backdating`,
    );
  }
}

/** Signed by the root directly or by one of the issuing CAs, whose own link to the root is verified too. */
function checkChain(cert: CertificateInfo, expected: ExternalCertificateExpectation, now: Date): void {
  const root = parseCertificate(expected.rootDer);
  const issuers = expected.issuerDers.map((d) => parseCertificate(d));
  const issuer = signedBy(cert, root) ? null : issuers.find((i) => signedBy(cert, i));
  if (issuer === undefined)
    throw mismatch(`(serial ${cert.serial}) not signed by the configured root or any configured issuing CA`);
  try {
    verifyChain(issuer ? [cert.der, issuer.der] : [cert.der], root.der, now);
  } catch (cause) {
    const why = (cause as Error).message;
    throw new GatehouseError(
      'GH_EXTERNAL_CA_MISMATCH',
      `the external CA returned a certificate that does not chain to the configured root: ${why}`,
      { cause },
    );
  }
}

function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${Math.round(ms / 1000)} s`;
}
