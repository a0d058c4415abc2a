/**
 * Reading an X.509 certificate's fields from its DER. Identity (name, role, SPIFFE ID) comes
 * from here and never from Node's subject or subjectAltName strings, whose flattening let a
 * crafted SAN masquerade as several names (CVE-2021-44532).
 */
import { createHash } from 'node:crypto';
import { DerError, TAG, children, decodeOid, expectTag, readNode, readTime, type DerNode } from './der.js';
import { readGeneralNames, readName, type NameAttribute, type SubjectAltNames } from './csr.js';
import { OID } from './oids.js';
import { decodePem } from './pem.js';
import { GatehouseError } from '../errors/errors.js';

export interface CertificateInfo {
  der: Buffer;
  /** Lowercase hex of the serial's unsigned value, no leading zeros beyond one byte. */
  serial: string;
  /** Lowercase hex SHA-256 of the DER. */
  fingerprint: string;
  subject: NameAttribute[];
  subjectNameDer: Buffer;
  issuer: NameAttribute[];
  /** The issuer Name exactly as signed: CRLs and issuers are matched on these bytes (RFC 5280 §5.1.2.3). */
  issuerNameDer: Buffer;
  notBefore: Date;
  notAfter: Date;
  spkiDer: Buffer;
  sans: SubjectAltNames;
  isCa: boolean;
  /** basicConstraints pathLenConstraint (RFC 5280 §4.2.1.9), or null when absent (no limit). */
  pathLen: number | null;
  /** RFC 5280 §4.2.1.3 bit names asserted, or null when the extension is absent (no restriction). */
  keyUsage: KeyUsage[] | null;
  extKeyUsage: string[];
  subjectKeyId: Buffer | null;
  authorityKeyId: Buffer | null;
  crlUrls: string[];
  /** Every extension's OID and criticality, in order (what checks of unknown extensions need). */
  extensions: Array<{ oid: string; critical: boolean }>;
  tbsDer: Buffer;
  signatureAlgorithmOid: string;
  signature: Buffer;
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function parseCertificatePem(pem: string): CertificateInfo[] {
  return decodePem(pem, 'CERTIFICATE').map(parseCertificate);
}

export function parseCertificate(der: Buffer): CertificateInfo {
  try {
    return readCertificate(der);
  } catch (cause) {
    if (cause instanceof GatehouseError) throw cause;
    throw new GatehouseError('GH_CHAIN_INVALID', `certificate is malformed: ${(cause as Error).message}`, { cause });
  }
}

function readCertificate(der: Buffer): CertificateInfo {
  const top = expectTag(readNode(der), TAG.SEQUENCE, 'Certificate');
  if (top.end !== der.length) throw new DerError('trailing bytes after the certificate');
  const [tbs, sigAlg, sig] = children(top);
  const fields = children(expectTag(tbs, TAG.SEQUENCE, 'tbsCertificate'));
  const offset = fields[0]?.tag === 0xa0 ? 1 : 0;
  const serialNode = expectTag(fields[offset], TAG.INTEGER, 'serialNumber');
  const issuer = expectTag(fields[offset + 2], TAG.SEQUENCE, 'issuer');
  const validity = children(expectTag(fields[offset + 3], TAG.SEQUENCE, 'validity'));
  const subject = expectTag(fields[offset + 4], TAG.SEQUENCE, 'subject');
  const spki = expectTag(fields[offset + 5], TAG.SEQUENCE, 'subjectPublicKeyInfo');
  const extensionsNode = fields.slice(offset + 6).find((n) => n.tag === 0xa3);
  const info: CertificateInfo = {
    der,
    serial: serialHex(serialNode.content),
    fingerprint: sha256Hex(der),
    subject: readName(subject),
    subjectNameDer: Buffer.from(subject.raw),
    issuer: readName(issuer),
    issuerNameDer: Buffer.from(issuer.raw),
    notBefore: readTime(validity[0], 'validity'),
    notAfter: readTime(validity[1], 'validity'),
    spkiDer: Buffer.from(spki.raw),
    sans: { dns: [], ip: [], uri: [], email: [], other: [] },
    isCa: false,
    pathLen: null,
    keyUsage: null,
    extKeyUsage: [],
    subjectKeyId: null,
    authorityKeyId: null,
    crlUrls: [],
    extensions: [],
    tbsDer: tbs!.raw,
    signatureAlgorithmOid: decodeOid(
      expectTag(children(expectTag(sigAlg, TAG.SEQUENCE, 'signatureAlgorithm'))[0], TAG.OID, 'algorithm').content,
    ),
    signature: expectTag(sig, TAG.BIT_STRING, 'signature').content.subarray(1),
  };
  if (extensionsNode) readExtensions(children(extensionsNode)[0], info);
  return info;
}

function readExtensions(list: DerNode | undefined, info: CertificateInfo): void {
  for (const extension of children(expectTag(list, TAG.SEQUENCE, 'extensions'))) {
    const parts = children(expectTag(extension, TAG.SEQUENCE, 'extension'));
    const oid = decodeOid(expectTag(parts[0], TAG.OID, 'extnID').content);
    // RFC 5280 §4.2: at most one instance of an extension. Parsers disagree on which of two wins
    // (Go refuses, Node shows the first, a last-wins reader the last), so two is malformed.
    if (info.extensions.some((e) => e.oid === oid))
      throw new DerError(`extension ${oid} appears twice (RFC 5280 §4.2 allows one instance)`);
    const critical = parts.length === 3 && parts[1]?.tag === TAG.BOOLEAN && parts[1].content[0] !== 0;
    info.extensions.push({ oid, critical });
    const value = readNode(expectTag(parts[parts.length - 1], TAG.OCTET_STRING, 'extnValue').content);
    switch (oid) {
      case OID.subjectAltName:
        info.sans = readGeneralNames(value);
        break;
      case OID.basicConstraints: {
        const fields = children(value);
        const first = fields[0];
        info.isCa = first?.tag === TAG.BOOLEAN && first.content[0] !== 0;
        const pathLen = fields.find((n) => n.tag === TAG.INTEGER);
        info.pathLen = pathLen && pathLen.content.length <= 4 ? pathLen.content.reduce((n, b) => n * 256 + b, 0) : null;
        break;
      }
      case OID.keyUsage:
        info.keyUsage = readKeyUsage(value);
        break;
      case OID.extKeyUsage:
        info.extKeyUsage = children(value).map((n) => decodeOid(n.content));
        break;
      case OID.subjectKeyIdentifier:
        info.subjectKeyId = Buffer.from(value.content);
        break;
      case OID.authorityKeyIdentifier: {
        const keyId = children(value).find((n) => n.tag === 0x80);
        info.authorityKeyId = keyId ? Buffer.from(keyId.content) : null;
        break;
      }
      case OID.crlDistributionPoints:
        for (const dp of children(value)) {
          const dpName = children(dp).find((n) => n.tag === 0xa0);
          const fullName = dpName ? children(dpName).find((n) => n.tag === 0xa0) : undefined;
          if (fullName)
            for (const gn of children(fullName)) if (gn.tag === 0x86) info.crlUrls.push(gn.content.toString('latin1'));
        }
        break;
    }
  }
}

// RFC 5280 §4.2.1.3, in bit order.
const KEY_USAGES = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;
export type KeyUsage = (typeof KEY_USAGES)[number];

function readKeyUsage(bits: DerNode): KeyUsage[] {
  const bytes = expectTag(bits, TAG.BIT_STRING, 'keyUsage').content.subarray(1);
  return KEY_USAGES.filter((_, i) => i < bytes.length * 8 && (bytes[i >> 3]! & (0x80 >> (i & 7))) !== 0);
}

/**
 * A serial as people type it (any case, with colons, with or without leading zeros) in the form
 * serialHex gives: whole octets, no leading zero octet. External CAs' serials may start 0x0….
 */
export function normalizeSerial(text: string): string {
  const digits = text.toLowerCase().replace(/:/g, '').replace(/^0+/, '');
  return digits.length % 2 === 1 ? `0${digits}` : digits || '00';
}

export function serialHex(integerContent: Buffer): string {
  let start = 0;
  while (start < integerContent.length - 1 && integerContent[start] === 0) start++;
  return integerContent.subarray(start).toString('hex');
}

/** RFC 4514 string, most specific first (`CN=…, OU=…, O=…`), escaping special characters. */
export function formatDn(attrs: NameAttribute[]): string {
  return [...attrs]
    .reverse()
    .map((a) => `${a.type}=${escapeDnValue(a.value)}`)
    .join(', ');
}

function escapeDnValue(value: string): string {
  // RFC 4514 §2.4
  return value
    .replace(/[\\,+"<>;=]/g, (c) => `\\${c}`)
    .replace(/^[ #]/, (c) => `\\${c}`)
    .replace(/ $/, '\\ ')
    .replace(/[\x00-\x1f\x7f]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export interface Identity {
  name: string | null;
  role: string | null;
  org: string | null;
  spiffeId: string | null;
  serial: string;
  fingerprint: string;
  notBefore: Date;
  notAfter: Date;
}

/** Identity as Gatehouse defines it: CN is the name, OU the role, the one spiffe:// URI SAN the ID. */
export function identityOf(cert: CertificateInfo): Identity {
  const single = (type: string) => {
    const values = cert.subject.filter((a) => a.type === type).map((a) => a.value);
    return values.length === 1 ? values[0]! : null;
  };
  const spiffe = cert.sans.uri.filter((u) => u.startsWith('spiffe://'));
  return {
    name: single('CN'),
    role: single('OU'),
    org: single('O'),
    spiffeId: spiffe.length === 1 ? spiffe[0]! : null,
    serial: cert.serial,
    fingerprint: cert.fingerprint,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}
