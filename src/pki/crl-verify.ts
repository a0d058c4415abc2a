/**
 * Believing a CRL about one certificate, as its holder does: the CRL must be signed by the CA
 * that issued the certificate (verifyCrlSignature), that CA must chain to the pinned root, and
 * the CRL's dates must be sane. The gateway checks CRLs against a bundle of CAs instead
 * (gateway/revocation/crl-acceptance.ts); a holder has its own chain, leaf first, and one root.
 */
import { GatehouseError } from '../errors/errors.js';
import { formatDn, parseCertificate, type CertificateInfo } from './certificate.js';
import { signedBy } from './chain.js';
import { parseCrl, verifyCrlSignature, type CrlEntry, type ParsedCrl } from './crl-parse.js';

/** How far thisUpdate may lie in our future: clocks of small machines drift. */
export const CRL_CLOCK_SKEW_MS = 5 * 60_000;

export interface CrlForCertificate {
  crl: ParsedCrl;
  /** The CA that issued the certificate and signed the CRL. */
  issuer: CertificateInfo;
  /** The certificate's entry, or null when the CRL does not list it. */
  entry: CrlEntry | null;
  /** Past nextUpdate: the CA promised a newer CRL by now, so "not listed" is out of date. */
  stale: boolean;
}

/**
 * Verifies `crlInput` (DER or PEM) for the leaf of `chainDer` (leaf, then intermediates) under
 * `rootDer`. Throws GH_CRL_INVALID, GH_CRL_SIGNATURE or GH_CHAIN_INVALID saying what failed.
 * The leaf's own validity is not checked: a holder asks about revocation whatever its expiry.
 */
export function verifyCrlForCertificate(
  crlInput: Buffer | string,
  chainDer: readonly Buffer[],
  rootDer: Buffer,
  now: Date,
): CrlForCertificate {
  const [leafDer, ...caDers] = chainDer;
  if (!leafDer) throw new GatehouseError('GH_CHAIN_INVALID', 'no certificate to check the CRL for');
  const leaf = parseCertificate(leafDer);
  const issuer = verifiedIssuerOf(
    leaf,
    caDers.map((der) => parseCertificate(der)),
    parseCertificate(rootDer),
    now,
  );
  const crl = parseCrl(crlInput);
  verifyCrlSignature(crl, issuer);
  assertCrlDatesSane(crl, now);
  return { crl, issuer, entry: crl.revoked.get(leaf.serial) ?? null, stale: now > crl.nextUpdate! };
}

/** The CA that signed `leaf`, after checking every CA link up to the root (signature, CA flag, validity now). */
function verifiedIssuerOf(
  leaf: CertificateInfo,
  cas: CertificateInfo[],
  root: CertificateInfo,
  now: Date,
): CertificateInfo {
  const path = [...cas.filter((c) => c.fingerprint !== root.fingerprint), root];
  if (!signedBy(leaf, path[0]!))
    throw new GatehouseError(
      'GH_CHAIN_INVALID',
      `the certificate (serial ${leaf.serial}) is not signed by "${formatDn(path[0]!.subject)}", the next certificate of its chain`,
    );
  for (let i = 0; i < path.length; i++) {
    const ca = path[i]!;
    const label = `CA certificate "${formatDn(ca.subject)}"`;
    if (!ca.isCa) throw new GatehouseError('GH_CHAIN_INVALID', `${label} is not a CA`);
    if (now < ca.notBefore || now > ca.notAfter)
      throw new GatehouseError(
        'GH_CHAIN_INVALID',
        `${label} is not valid now (${ca.notBefore.toISOString()} – ${ca.notAfter.toISOString()})`,
      );
    if (!signedBy(ca, path[i + 1] ?? root))
      throw new GatehouseError(
        'GH_CHAIN_INVALID',
        `${label} is not signed by ${i + 2 < path.length ? 'the next certificate' : 'the pinned root'}`,
      );
  }
  return path[0]!;
}

/** RFC 5280 §5.1.2.4–5: nextUpdate present and after thisUpdate, thisUpdate not in the future. */
export function assertCrlDatesSane(crl: ParsedCrl, now: Date): void {
  if (!crl.nextUpdate)
    throw new GatehouseError(
      'GH_CRL_INVALID',
      'CRL has no nextUpdate, so its staleness cannot be judged (RFC 5280 §5.1.2.5)',
    );
  if (crl.nextUpdate <= crl.thisUpdate)
    throw new GatehouseError(
      'GH_CRL_INVALID',
      `CRL nextUpdate ${crl.nextUpdate.toISOString()} is not after its thisUpdate ${crl.thisUpdate.toISOString()}`,
    );
  if (crl.thisUpdate.getTime() > now.getTime() + CRL_CLOCK_SKEW_MS) {
    throw new GatehouseError(
      'GH_CRL_INVALID',
      `CRL thisUpdate ${crl.thisUpdate.toISOString()} is in the future (now ${now.toISOString()}): is this clock or the CA's wrong?`,
    );
  }
}

/**
 * Refuses a CRL older than one already believed from the same issuer: a replayed old CRL would
 * un-revoke everything revoked since (RFC 5280 §5.2.3: CRL numbers only increase). `believedAs`
 * names the older CRL in the message ("the CRL already seen", "the CRL in force").
 */
export function assertCrlNotOlder(next: ParsedCrl, believed: ParsedCrl, believedAs = 'the CRL already seen'): void {
  if (!next.issuerNameDer.equals(believed.issuerNameDer)) return;
  if (next.crlNumber !== null && believed.crlNumber !== null && next.crlNumber < believed.crlNumber) {
    throw new GatehouseError(
      'GH_CRL_INVALID',
      `CRL number ${next.crlNumber} is older than ${believedAs} (number ${believed.crlNumber}); a rolled-back CRL is refused`,
    );
  }
  if (next.thisUpdate < believed.thisUpdate) {
    throw new GatehouseError(
      'GH_CRL_INVALID',
      `CRL thisUpdate ${next.thisUpdate.toISOString()} is older than ${believedAs} (${believed.thisUpdate.toISOString()}); a rolled-back CRL is refused`,
    );
  }
}
