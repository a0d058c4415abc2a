/**
 * Whether a CRL may be used by the gateway: well formed, signed by a CA of the trust bundle
 * (the same bundle that verifies client certificates) or by a signer certificate that came with
 * it (crl-signers.ts), with a nextUpdate, and not older than the CRL already in force for the
 * same issuer. Anything else is refused and the previous CRLs stay.
 */
import { assertCrlNotOlder } from '../../pki/crl-verify.js';
import { GatehouseError } from '../../errors/errors.js';
import { formatDn, parseCertificate, parseCertificatePem, type CertificateInfo } from '../../pki/certificate.js';
import { parseCrl, verifyCrlSignature, type ParsedCrl } from '../../pki/crl-parse.js';

/** A CRL in force, with what lookups need precomputed. */
export interface LoadedCrl {
  crl: ParsedCrl;
  /** The bundle certificate whose key verified the signature. */
  issuer: CertificateInfo;
  issuerDn: string;
  /** Hex of the issuer Name DER: the index key, compared with certificates' issuer Name. */
  issuerKey: string;
  /** The issuer's key identifier (its SKI, else the CRL's AKI): tie-break between CAs sharing a Name. */
  issuerKeyId: Buffer | null;
  /** nextUpdate + grace, in ms: after this the CRL is stale. */
  staleAtMs: number;
}

export type TrustBundleInput = string | Buffer | readonly Buffer[];

/**
 * The bundle indexed by subject Name DER, optionally with the signer certificates of one fetch
 * (`withSigners`): those may sign CRLs of that fetch only, never verify client certificates.
 */
export class CrlIssuers {
  private readonly byName = new Map<string, CertificateInfo[]>();
  /** The trust bundle proper, without signer certificates. */
  readonly bundle: readonly CertificateInfo[];
  private readonly signerCount: number;

  constructor(bundle: TrustBundleInput | readonly CertificateInfo[], signers: readonly CertificateInfo[] = []) {
    const certs =
      typeof bundle === 'string'
        ? parseCertificatePem(bundle)
        : Buffer.isBuffer(bundle)
          ? parseCertificatePem(bundle.toString('latin1'))
          : bundle.map((item) => (Buffer.isBuffer(item) ? parseCertificate(item) : item));
    if (certs.length === 0)
      throw new GatehouseError('GH_CONFIG_INVALID', 'the trust bundle for CRL signatures holds no certificate');
    this.bundle = certs;
    this.signerCount = signers.length;
    // Bundle certificates first: a signer certificate never shadows a trust anchor.
    for (const cert of [...certs, ...signers]) {
      const key = cert.subjectNameDer.toString('hex');
      this.byName.set(key, [...(this.byName.get(key) ?? []), cert]);
    }
  }

  /** The bundle plus `signers` (already checked by crl-signers.ts), for one fetch of one source. */
  withSigners(signers: readonly CertificateInfo[]): CrlIssuers {
    return signers.length === 0 ? this : new CrlIssuers(this.bundle, signers);
  }

  /** The bundle certificate or signer certificate that signed `crl`; throws GH_CRL_SIGNATURE when none did. */
  signerOf(crl: ParsedCrl): CertificateInfo {
    const candidates = this.byName.get(crl.issuerNameDer.toString('hex')) ?? [];
    if (candidates.length === 0) {
      const nor = this.signerCount > 0 ? ' nor a signer certificate of the source' : '';
      throw new GatehouseError(
        'GH_CRL_SIGNATURE',
        `CRL issuer "${formatDn(crl.issuer)}" is not a CA of the trust bundle${nor}`,
      );
    }
    let lastError: unknown;
    for (const cert of candidates) {
      try {
        verifyCrlSignature(crl, cert);
        return cert;
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  }
}

export function acceptCrl(raw: Buffer | ParsedCrl, issuers: CrlIssuers, graceMs: number): LoadedCrl {
  const crl = Buffer.isBuffer(raw) ? parseCrl(raw) : raw;
  const issuer = issuers.signerOf(crl);
  // RFC 5280 §5.1.2.5 requires nextUpdate; without it there is no way to tell a stale CRL.
  if (!crl.nextUpdate)
    throw new GatehouseError(
      'GH_CRL_INVALID',
      'CRL has no nextUpdate, so its staleness cannot be judged (RFC 5280 §5.1.2.5)',
    );
  return {
    crl,
    issuer,
    issuerDn: formatDn(issuer.subject),
    issuerKey: crl.issuerNameDer.toString('hex'),
    issuerKeyId: issuer.subjectKeyId ?? crl.issuerKeyId,
    staleAtMs: crl.nextUpdate.getTime() + graceMs,
  };
}

/**
 * One issuer: Name and key identifier. CRL numbers are per issuer (RFC 5280 §5.2.3), and a
 * rotated CA may keep its Name with a new key, so the Name alone would compare unrelated CRLs.
 */
export function issuerIdOf(loaded: Pick<LoadedCrl, 'issuerKey' | 'issuerKeyId'>): string {
  return `${loaded.issuerKey}/${loaded.issuerKeyId?.toString('hex') ?? ''}`;
}

/**
 * Refuses a CRL older than the one in force (or last seen) for the same issuer: a replayed old
 * CRL would un-revoke everything revoked since (RFC 5280 §5.2.3: CRL numbers only increase).
 */
export function assertNotOlder(
  next: LoadedCrl,
  current: Pick<LoadedCrl, 'crl' | 'issuerKey' | 'issuerKeyId'> | null,
  believedAs = 'the CRL in force',
): void {
  if (!current || issuerIdOf(current) !== issuerIdOf(next)) return;
  assertCrlNotOlder(next.crl, current.crl, believedAs);
}
