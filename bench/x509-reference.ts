/**
 * Reference implementations through @peculiar/x509, for the micro benchmark only: the same
 * leaf certificate buildLeafCertificate writes by hand, and the library's CSR parse + verify.
 * Everything that can be prepared once (issuer key import, issuer name) is, so the numbers
 * are the library's per-certificate cost and nothing else.
 */
import { x509, toCryptoKeys, webAlgorithmFor } from '../src/pki/x509-library.js';
import { keyIdentifier, type LeafSpec, type SigningAuthority } from '../src/pki/leaf-certificate.js';
import { OID } from '../src/pki/oids.js';

export interface LibraryIssuer {
  name: x509.Name;
  keyIdentifierHex: string;
  signingKey: CryptoKey;
  signingAlgorithm: Algorithm | EcdsaParams;
}

export async function prepareLibraryIssuer(ca: SigningAuthority): Promise<LibraryIssuer> {
  const keys = await toCryptoKeys(ca.privateKey);
  return {
    name: new x509.Name(new Uint8Array(ca.subjectNameDer)),
    keyIdentifierHex: ca.keyIdentifier.toString('hex'),
    signingKey: keys.privateKey,
    signingAlgorithm: webAlgorithmFor(ca.privateKey).signing,
  };
}

function extendedKeyUsages(profile: LeafSpec['profile']): string[] {
  return [
    ...(profile !== 'client' ? [x509.ExtendedKeyUsage.serverAuth] : []),
    ...(profile !== 'server' ? [x509.ExtendedKeyUsage.clientAuth] : []),
  ];
}

function generalNames(spec: LeafSpec): x509.JsonGeneralName[] {
  return [
    ...spec.email.map((value) => ({ type: 'email' as const, value })),
    ...spec.dns.map((value) => ({ type: 'dns' as const, value })),
    ...spec.uri.map((value) => ({ type: 'url' as const, value })),
    ...spec.ip.map((value) => ({ type: 'ip' as const, value })),
  ];
}

/** The profile of buildLeafCertificate (EC keys), built and signed by the library. */
export async function buildLeafWithLibrary(issuer: LibraryIssuer, spec: LeafSpec): Promise<Buffer> {
  const names = generalNames(spec);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: spec.serial.toString('hex'),
    subject: [
      { [OID.organization]: [spec.organization] },
      { [OID.organizationalUnit]: [spec.organizationalUnit] },
      { [OID.commonName]: [spec.commonName] },
    ],
    issuer: issuer.name,
    notBefore: spec.notBefore,
    notAfter: spec.notAfter,
    publicKey: new Uint8Array(spec.spkiDer),
    signingKey: issuer.signingKey,
    signingAlgorithm: issuer.signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(extendedKeyUsages(spec.profile), false),
      new x509.SubjectKeyIdentifierExtension(keyIdentifier(spec.spkiDer).toString('hex')),
      new x509.AuthorityKeyIdentifierExtension(issuer.keyIdentifierHex),
      ...(names.length ? [new x509.SubjectAlternativeNameExtension(names)] : []),
      ...(spec.crlUrl ? [new x509.CRLDistributionPointsExtension([spec.crlUrl])] : []),
    ],
  });
  return Buffer.from(cert.rawData);
}

/** What parseCsr replaces: decode the CSR and check its self-signature with the library. */
export async function parseCsrWithLibrary(der: Buffer): Promise<x509.Pkcs10CertificateRequest> {
  const csr = new x509.Pkcs10CertificateRequest(new Uint8Array(der));
  if (!(await csr.verify())) throw new Error('library: CSR signature does not verify');
  return csr;
}
