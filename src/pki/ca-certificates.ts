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
      new x509.AuthorityKeyIdentifierExtension(
        (rootInfo.subjectKeyId ?? keyIdentifier(rootInfo.spkiDer)).toString('hex'),
      ),
    ],
  });
  return Buffer.from(cert.rawData);
}

/**
 * A cross-certificate for a root rotation: the new root's name, key and key identifier, issued
 * and signed by the old root, so a verifier that trusts only the old root accepts the new chain
 * (leaf → new intermediate → this → old root), and an agent that trusts the old root can tell the
 * new one is genuine. CA:TRUE with pathLen 1, as a root made here: it sits where the root did.
 */
export async function buildCrossCertificate(
  newRootDer: Buffer,
  oldRoot: { certDer: Buffer; key: KeyObject },
  validity: { notBefore: Date; notAfter: Date },
): Promise<Buffer> {
  const next = parseCertificate(newRootDer);
  const old = parseCertificate(oldRoot.certDer);
  const oldKeys = await toCryptoKeys(oldRoot.key);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial().toString('hex'),
    subject: new x509.Name(new Uint8Array(next.subjectNameDer)),
    issuer: new x509.Name(new Uint8Array(old.subjectNameDer)),
    notBefore: validity.notBefore,
    notAfter: validity.notAfter,
    publicKey: new x509.PublicKey(new Uint8Array(next.spkiDer)),
    signingKey: oldKeys.privateKey,
    signingAlgorithm: webAlgorithmFor(oldRoot.key).signing,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectKeyIdentifierExtension((next.subjectKeyId ?? keyIdentifier(next.spkiDer)).toString('hex')),
      new x509.AuthorityKeyIdentifierExtension((old.subjectKeyId ?? keyIdentifier(old.spkiDer)).toString('hex')),
    ],
  });
  return Buffer.from(cert.rawData);
}
