/**
 * End-entity certificate builder: the issuance hot path. It writes the DER directly from a
 * fixed profile (see der.ts for why) and signs with node:crypto. Root and intermediate
 * certificates, which are rare, go through @peculiar/x509 in ca-certificates.ts.
 */
import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import * as der from './der.js';
import { parseCertificate } from './certificate.js';
import { signWith, signatureAlgorithmFor, spkiDer, type SignatureAlgorithm } from './keys.js';
import { GatehouseError } from '../errors/errors.js';
import { ipToBytes } from './ip.js';
import { OID } from './oids.js';

export type LeafProfile = 'client' | 'server' | 'both';

/** An issuing CA as certificates name it: enough to match a certificate to its issuer and build chains. */
export interface IssuingCa {
  certDer: Buffer;
  subjectNameDer: Buffer;
  keyIdentifier: Buffer;
  notBefore: Date;
  notAfter: Date;
}

/** The CA's issuing key and certificate, prepared once at start. */
export interface SigningAuthority extends IssuingCa {
  privateKey: KeyObject;
  algorithm: SignatureAlgorithm;
}

/** An issuing CA whose key this process does not hold (an external signer's). */
export function describeIssuingCa(certDer: Buffer): IssuingCa {
  const cert = parseCertificate(certDer);
  return {
    certDer,
    subjectNameDer: cert.subjectNameDer,
    keyIdentifier: cert.subjectKeyId ?? keyIdentifier(cert.spkiDer),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}

export function holdsKey(ca: IssuingCa): ca is SigningAuthority {
  return (ca as Partial<SigningAuthority>).privateKey !== undefined;
}

export function prepareSigningAuthority(certDer: Buffer, privateKey: KeyObject): SigningAuthority {
  const cert = parseCertificate(certDer);
  if (!spkiDer(privateKey).equals(cert.spkiDer)) {
    throw new GatehouseError(
      'GH_CONFIG_INVALID',
      `the CA key does not match the certificate "${cert.subject.map((a) => `${a.type}=${a.value}`).join(', ')}"`,
    );
  }
  return {
    ...describeIssuingCa(certDer),
    privateKey,
    algorithm: signatureAlgorithmFor(privateKey),
  };
}

export interface LeafSpec {
  serial: Buffer;
  commonName: string;
  organizationalUnit: string;
  organization: string;
  spkiDer: Buffer;
  notBefore: Date;
  notAfter: Date;
  profile: LeafProfile;
  dns: string[];
  ip: string[];
  uri: string[];
  email: string[];
  crlUrl?: string;
}

/**
 * RFC 5280 §4.1.2.2: positive, at most 20 octets. 16 random octets with the top bit cleared
 * and the next set: always 16 octets (no DER padding), 126 bits of entropy.
 */
export function randomSerial(): Buffer {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes;
}

/** RFC 7093 §2 method 1: the leftmost 160 bits of SHA-256 over the subjectPublicKey bits. */
export function keyIdentifier(spkiDer: Buffer): Buffer {
  const [, bits] = der.children(der.readNode(spkiDer));
  return createHash('sha256').update(bits!.content.subarray(1)).digest().subarray(0, 20);
}

export function encodeName(attrs: Array<[oid: string, value: string]>): Buffer {
  return der.seq(...attrs.map(([oid, value]) => der.set(der.seq(der.oid(oid), der.utf8(value)))));
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return critical
    ? der.seq(der.oid(oid), der.bool(true), der.octetString(value))
    : der.seq(der.oid(oid), der.octetString(value));
}

function isRsaSpki(spkiDer: Buffer): boolean {
  const [alg] = der.children(der.readNode(spkiDer));
  const algOid = der.children(alg!)[0]!;
  return der.decodeOid(algOid.content) === '1.2.840.113549.1.1.1';
}

export function buildLeafCertificate(ca: SigningAuthority, spec: LeafSpec): Buffer {
  // RFC 5280 §4.2.1.3: TLS with ECDSA/EdDSA needs digitalSignature; RSA key transport (TLS 1.2
  // RSA kex) also needs keyEncipherment. A named-bit BIT STRING drops trailing zero bits (X.690 §11.2.2).
  const keyUsage = isRsaSpki(spec.spkiDer)
    ? der.tlv(der.TAG.BIT_STRING, Buffer.from([5, 0xa0]))
    : der.tlv(der.TAG.BIT_STRING, Buffer.from([7, 0x80]));
  const ekus = [
    ...(spec.profile !== 'client' ? [der.oid(OID.serverAuth)] : []),
    ...(spec.profile !== 'server' ? [der.oid(OID.clientAuth)] : []),
  ];
  const generalNames = [
    ...spec.email.map((e) => der.tlv(0x81, Buffer.from(e, 'ascii'))),
    ...spec.dns.map((d) => der.tlv(0x82, Buffer.from(d, 'ascii'))),
    ...spec.uri.map((u) => der.tlv(0x86, Buffer.from(u, 'ascii'))),
    ...spec.ip.map((ip) => der.tlv(0x87, ipToBytes(ip))),
  ];
  const extensions = [
    extension(OID.basicConstraints, true, der.seq()),
    extension(OID.keyUsage, true, keyUsage),
    extension(OID.extKeyUsage, false, der.seq(...ekus)),
    extension(OID.subjectKeyIdentifier, false, der.octetString(keyIdentifier(spec.spkiDer))),
    extension(OID.authorityKeyIdentifier, false, der.seq(der.ctx(0, false, ca.keyIdentifier))),
    ...(generalNames.length ? [extension(OID.subjectAltName, false, der.seq(...generalNames))] : []),
    ...(spec.crlUrl ? [extension(OID.crlDistributionPoints, false, crlDistributionPoint(spec.crlUrl))] : []),
  ];
  const subject = encodeName([
    [OID.organization, spec.organization],
    [OID.organizationalUnit, spec.organizationalUnit],
    [OID.commonName, spec.commonName],
  ]);
  const tbs = der.seq(
    der.ctx(0, true, der.smallInt(2)), // v3
    der.uintBytes(spec.serial),
    ca.algorithm.identifierDer,
    ca.subjectNameDer, // RFC 5280 §4.1.2.4: byte-identical to the issuer's subject
    der.seq(der.time(spec.notBefore), der.time(spec.notAfter)),
    subject,
    spec.spkiDer,
    der.ctx(3, true, der.seq(...extensions)),
  );
  const signature = signWith(ca.algorithm, ca.privateKey, tbs);
  return der.seq(tbs, ca.algorithm.identifierDer, der.bitString(signature));
}

/** RFC 5280 §4.2.1.13: one DistributionPoint with a fullName URI. */
export function crlDistributionPoint(url: string): Buffer {
  return der.seq(der.seq(der.ctx(0, true, der.ctx(0, true, der.tlv(0x86, Buffer.from(url, 'ascii'))))));
}
