/**
 * The roots an agent trusts (its ca.pem), updated from what the CA sends with an issuance while
 * it rotates its root. A root the agent does not trust yet is taken only with a cross-certificate
 * for it (the same name and key) signed by a root the agent already trusts: the CA's TLS
 * connection authenticates the answer, and the cross-certificate authenticates the root itself,
 * so a new root is never accepted on the strength of the channel alone. A root is dropped only
 * when the CA names it retired (the old root after a finished rotation, the new one after an
 * aborted one), it is one the CA gave this agent (`managed`: the pin and roots taken from the CA,
 * kept in agent.json), and the agent's own new chain still verifies to what remains; a root
 * someone else put in ca.pem is left alone, and the bundle is never left empty. An offer is
 * bounded (MAX_OFFERED): a CA answer must not cost the agent unbounded signature checks.
 */
import { GatehouseError } from '../errors/errors.js';
import { parseCertificate, type CertificateInfo } from '../pki/certificate.js';
import { signedBy, verifyChainToOneOf } from '../pki/chain.js';
import { decodePem, toPem } from '../pki/pem.js';

export interface OfferedBundle {
  /** The roots the CA serves now (its trust bundle). */
  roots: Buffer[];
  /** Cross-certificates: each a new root's name and key, issued by a root trusted before. */
  cross: Buffer[];
  /** SHA-256 fingerprints of roots the CA has retired: to be dropped from ca.pem. */
  retired: string[];
}

export interface BundleUpdate {
  /** The new ca.pem; equal to the current one when nothing changed. */
  pem: string;
  changed: boolean;
  added: string[];
  removed: string[];
  /** Offered roots not taken, each with why (fingerprint: reason). */
  refused: string[];
}

/** A rotation offers two roots and one cross-certificate; anything far beyond is not a rotation. */
export const MAX_OFFERED = 8;

export function nextTrustBundle(
  currentPem: string,
  offer: OfferedBundle,
  chainDer: Buffer[],
  now: Date,
  managed: ReadonlySet<string> = new Set(),
): BundleUpdate {
  const trusted = decodePem(currentPem, 'CERTIFICATE').map(parseCertificate);
  if (trusted.length === 0) throw new GatehouseError('GH_FILE_IO', 'ca.pem holds no root certificate');
  if (offer.roots.length > MAX_OFFERED || offer.cross.length > MAX_OFFERED || offer.retired.length > MAX_OFFERED) {
    const why = `the CA offered ${offer.roots.length} roots, ${offer.cross.length} cross-certificates and ${offer.retired.length} retired roots; at most ${MAX_OFFERED} of each are considered, so ca.pem stays as it is`;
    return { pem: currentPem, changed: false, added: [], removed: [], refused: [why] };
  }
  const offered = uniqueByFingerprint(offer.roots.map(parseCertificate));
  const cross = uniqueByFingerprint(offer.cross.map(parseCertificate));
  const retiredSet = new Set(offer.retired.map((f) => f.toLowerCase()));
  const isTrusted = (c: CertificateInfo) => trusted.some((t) => t.fingerprint === c.fingerprint);

  const added: CertificateInfo[] = [];
  const refused: string[] = [];
  for (const root of offered.filter((r) => !isTrusted(r) && !retiredSet.has(r.fingerprint))) {
    const why = whyNotAcceptable(root, cross, trusted, now);
    if (why) refused.push(`${root.fingerprint}: ${why}`);
    else added.push(root);
  }
  // Dropping a retired root is safe only if this identity still verifies without it.
  const kept = trusted.filter((t) => !(retiredSet.has(t.fingerprint) && managed.has(t.fingerprint)));
  const candidate = [...kept, ...added];
  const dropOk = kept.length > 0 && verifiesToOneOf(chainDer, candidate, now);
  const next = dropOk ? candidate : [...trusted, ...added];
  const removed = trusted.filter((t) => !next.includes(t));
  const changed = added.length > 0 || removed.length > 0;
  return {
    pem: changed ? next.map((c) => toPem('CERTIFICATE', c.der)).join('') : currentPem,
    changed,
    added: added.map((c) => c.fingerprint),
    removed: removed.map((c) => c.fingerprint),
    refused,
  };
}

function uniqueByFingerprint(certs: CertificateInfo[]): CertificateInfo[] {
  return certs.filter((c, i) => certs.findIndex((d) => d.fingerprint === c.fingerprint) === i);
}

function whyNotAcceptable(
  root: CertificateInfo,
  cross: CertificateInfo[],
  trusted: CertificateInfo[],
  now: Date,
): string | null {
  if (!root.isCa || !root.issuerNameDer.equals(root.subjectNameDer) || !signedBy(root, root))
    return 'not a self-signed CA certificate';
  if (now < root.notBefore || now > root.notAfter) return 'not valid now';
  const vouching = cross.find(
    (x) =>
      x.subjectNameDer.equals(root.subjectNameDer) &&
      x.spkiDer.equals(root.spkiDer) &&
      x.isCa &&
      now >= x.notBefore &&
      now <= x.notAfter &&
      trusted.some((t) => signedBy(x, t)),
  );
  return vouching ? null : 'no valid cross-certificate for it signed by a root this agent trusts';
}

function verifiesToOneOf(chainDer: Buffer[], roots: CertificateInfo[], now: Date): boolean {
  try {
    verifyChainToOneOf(
      chainDer,
      roots.map((r) => r.der),
      now,
    );
    return true;
  } catch {
    return false;
  }
}
