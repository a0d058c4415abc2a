/** Root and intermediate CA certificates, built through @peculiar/x509 (rare, not a hot path). */
import type { KeyObject } from 'node:crypto';
import { x509, toCryptoKeys, webAlgorithmFor } from './x509-library.js';
import { randomSerial, keyIdentifier } from './leaf-certificate.js';
import { spkiDer } from './keys.js';
import { parseCertificate } from './certificate.js';

export interface CaCertificateSpec {
  commonName: string;
  organization: string;
  notBefore: Date;
  notAfter: Date;
}

function dn(spec: CaCertificateSpec): string {
  // The library quotes values itself; names are validated upstream to a safe set.
  return `CN=${spec.commonName}, O=${spec.organization}`;
}

/** Self-signed root: CA:TRUE (critical), keyCertSign + cRLSign (critical), SKI. */
export async function buildRootCertificate(key: KeyObject, spec: CaCertificateSpec): Promise<Buffer> {
  const keys = await toCryptoKeys(key);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial().toString('hex'),
    name: dn(spec),
    notBefore: spec.notBefore,
    notAfter: spec.notAfter,
    keys,
    signingAlgorithm: webAlgorithmFor(key).signing,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectKeyIdentifierExtension(keyIdentifier(spkiDer(key)).toString('hex')),
    ],
  });
  return Buffer.from(cert.rawData);
}

/** Issuing intermediate: pathLen 0 so it can sign only end entities (RFC 5280 §4.2.1.9). */
export async function buildIntermediateCertificate(
  intermediateKey: KeyObject,
  root: { certDer: Buffer; key: KeyObject },
  spec: CaCertificateSpec,
): Promise<Buffer> {
  const rootInfo = parseCertificate(root.certDer);
  const rootKeys = await toCryptoKeys(root.key);
  const intermediateKeys = await toCryptoKeys(intermediateKey);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial().toString('hex'),
    subject: dn(spec),
    issuer: new x509.Name(new Uint8Array(rootInfo.subjectNameDer)),
    notBefore: spec.notBefore,
    notAfter: spec.notAfter,
    publicKey: intermediateKeys.publicKey,
    signingKey: rootKeys.privateKey,
    signingAlgorithm: webAlgorithmFor(root.key).signing,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectKeyIdentifierExtension(keyIdentifier(spkiDer(intermediateKey)).toString('hex')),
      new x509.AuthorityKeyIdentifierExtension((rootInfo.subjectKeyId ?? keyIdentifier(rootInfo.spkiDer)).toString('hex')),
    ],
  });
  return Buffer.from(cert.rawData);
}
