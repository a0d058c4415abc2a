/**
 * Signer certificates in a CRL source: the CA's `/crls` bundles each CA certificate with its
 * CRL, so an intermediate issued after the gateway's trust bundle was written (a rotation) can
 * still have its CRL verified. A signer certificate is used only for the CRLs of the same fetch
 * and never becomes a trust anchor: the TLS layer still verifies client chains against the
 * bundle alone. Fails closed: one unusable signer certificate refuses the whole fetch, because a
 * source that mixes good and bad content is not one to partly believe.
 */
import { GatehouseError } from '../../errors/errors.js';
import { formatDn, type CertificateInfo } from '../../pki/certificate.js';
import { signedBy } from '../../pki/chain.js';

/**
 * The signer certificates of one fetch that may verify its CRLs; throws GH_CRL_SIGNATURE naming
 * the first unusable one. A copy of a bundle certificate adds nothing and is skipped: the bundle
 * already decides about it, as it does today.
 */
export function usableSigners(
  candidates: readonly CertificateInfo[],
  bundle: readonly CertificateInfo[],
  now: Date,
): CertificateInfo[] {
  const inBundle = new Set(bundle.map((c) => c.fingerprint));
  const seen = new Set<string>();
  const usable: CertificateInfo[] = [];
  for (const cert of candidates) {
    if (inBundle.has(cert.fingerprint) || seen.has(cert.fingerprint)) continue;
    seen.add(cert.fingerprint);
    const why = unusableBecause(cert, bundle, now);
    if (why)
      throw new GatehouseError(
        'GH_CRL_SIGNATURE',
        `signer certificate "${formatDn(cert.subject)}" (serial ${cert.serial}) cannot sign CRLs: ${why}`,
      );
    usable.push(cert);
  }
  return usable;
}

function unusableBecause(cert: CertificateInfo, bundle: readonly CertificateInfo[], now: Date): string | null {
  // RFC 5280 §4.2.1.9: only a CA certificate (cA TRUE) may carry a key that signs CRLs.
  if (!cert.isCa) return 'it is not a CA certificate (basicConstraints cA is not TRUE)';
  // RFC 5280 §4.2.1.3: when keyUsage is present, cRLSign must be asserted to verify CRLs.
  if (cert.keyUsage && !cert.keyUsage.includes('cRLSign')) return 'its keyUsage lacks cRLSign (RFC 5280 §4.2.1.3)';
  if (now < cert.notBefore || now > cert.notAfter)
    return `it is not valid now (${cert.notBefore.toISOString()} – ${cert.notAfter.toISOString()})`;
  // One link, directly under the bundle: the CA's CRL signers sit right under its root, and a
  // longer path would be chain building over untrusted input, more to get wrong for nothing.
  if (!bundle.some((anchor) => anchor.isCa && signedBy(cert, anchor)))
    return 'it is not signed by a certificate of the trust bundle (tls.clientCa)';
  return null;
}
