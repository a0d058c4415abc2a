/**
 * Chain verification for certificates the agent receives: each certificate must be signed by
 * the next, the last by the pinned root, all valid now, and only the leaf may be an end entity.
 * Signatures are checked with node:crypto; fields come from our DER reader.
 */
import { createPublicKey, verify } from 'node:crypto';
import { GatehouseError } from '../errors/errors.js';
import { parseCertificate, type CertificateInfo } from './certificate.js';
import { signatureAlgorithmByOid } from './keys.js';

export function signedBy(child: CertificateInfo, issuer: CertificateInfo): boolean {
  const alg = signatureAlgorithmByOid(child.signatureAlgorithmOid);
  if (!alg) return false;
  const sameName =
    child.issuer.length === issuer.subject.length &&
    child.issuer.every((a, i) => issuer.subject[i]!.oid === a.oid && issuer.subject[i]!.value === a.value);
  if (!sameName) return false;
  try {
    const key = createPublicKey({ key: issuer.spkiDer, format: 'der', type: 'spki' });
    return verify(alg.hash, child.tbsDer, key, child.signature);
  } catch {
    return false;
  }
}

/** Verifies leaf → intermediates → root. Throws GH_CHAIN_INVALID naming the broken link. */
/** verifyChain against each root in turn (a trust bundle during a root rotation); the last refusal when none fits. */
export function verifyChainToOneOf(chainDer: Buffer[], rootDers: Buffer[], now = new Date()): CertificateInfo[] {
  if (rootDers.length === 0) throw new GatehouseError('GH_CHAIN_INVALID', 'no trusted root to verify the chain with');
  let last: unknown;
  for (const rootDer of rootDers) {
    try {
      return verifyChain(chainDer, rootDer, now);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

export function verifyChain(chainDer: Buffer[], rootDer: Buffer, now = new Date()): CertificateInfo[] {
  if (chainDer.length === 0) throw new GatehouseError('GH_CHAIN_INVALID', 'the CA returned no certificate');
  const chain = chainDer.map(parseCertificate);
  const root = parseCertificate(rootDer);
  const path = [...chain.filter((c) => c.fingerprint !== root.fingerprint), root];
  for (let i = 0; i < path.length; i++) {
    const cert = path[i]!;
    const label = i === 0 ? 'leaf' : i === path.length - 1 ? 'root' : `intermediate ${i}`;
    if (now < cert.notBefore || now > cert.notAfter) {
      throw new GatehouseError(
        'GH_CHAIN_INVALID',
        `${label} certificate (serial ${cert.serial}) is not valid now (${cert.notBefore.toISOString()} – ${cert.notAfter.toISOString()})`,
      );
    }
    if (i > 0 && !cert.isCa) throw new GatehouseError('GH_CHAIN_INVALID', `${label} certificate is not a CA`);
    if (i === 0 && cert.isCa) throw new GatehouseError('GH_CHAIN_INVALID', 'leaf certificate is a CA certificate');
    const issuer = path[i + 1] ?? root;
    if (!signedBy(cert, issuer)) {
      throw new GatehouseError(
        'GH_CHAIN_INVALID',
        `${label} certificate (serial ${cert.serial}) is not signed by ${i + 1 < path.length ? 'the next certificate' : 'the pinned root'}`,
      );
    }
  }
  return path;
}
