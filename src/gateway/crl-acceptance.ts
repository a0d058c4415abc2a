/**
 * Whether a CRL may be used by the gateway: well formed, signed by a CA of the trust bundle
 * (the same bundle that verifies client certificates), with a nextUpdate, and not older than
 * the CRL already in force. Anything else is refused and the previous CRL stays.
 */
import { assertCrlNotOlder } from '../pki/crl-verify.js';
import { GatehouseError } from '../errors/errors.js';
import { formatDn, parseCertificate, parseCertificatePem, type CertificateInfo } from '../pki/certificate.js';
import { parseCrl, verifyCrlSignature, type ParsedCrl } from '../pki/crl-parse.js';

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

/** The bundle indexed by subject Name DER. */
export class CrlIssuers {
  private readonly byName = new Map<string, CertificateInfo[]>();

  constructor(bundle: TrustBundleInput) {
    const certs = typeof bundle === 'string' ? parseCertificatePem(bundle)
      : Buffer.isBuffer(bundle) ? parseCertificatePem(bundle.toString('latin1'))
        : bundle.map((der) => parseCertificate(der));
    if (certs.length === 0) throw new GatehouseError('GH_CONFIG_INVALID', 'the trust bundle for CRL signatures holds no certificate');
    for (const cert of certs) {
      const key = cert.subjectNameDer.toString('hex');
      this.byName.set(key, [...(this.byName.get(key) ?? []), cert]);
    }
  }

  /** The bundle certificate that signed `crl`; throws GH_CRL_SIGNATURE when none did. */
  signerOf(crl: ParsedCrl): CertificateInfo {
    const candidates = this.byName.get(crl.issuerNameDer.toString('hex')) ?? [];
    if (candidates.length === 0) {
      throw new GatehouseError('GH_CRL_SIGNATURE', `CRL issuer "${formatDn(crl.issuer)}" is not a CA of the trust bundle`);
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

export function acceptCrl(raw: Buffer, issuers: CrlIssuers, graceMs: number): LoadedCrl {
  const crl = parseCrl(raw);
  const issuer = issuers.signerOf(crl);
  // RFC 5280 §5.1.2.5 requires nextUpdate; without it there is no way to tell a stale CRL.
  if (!crl.nextUpdate) throw new GatehouseError('GH_CRL_INVALID', 'CRL has no nextUpdate, so its staleness cannot be judged (RFC 5280 §5.1.2.5)');
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
 * Refuses a CRL older than the one in force for the same issuer: a replayed old CRL would
 * un-revoke everything revoked since (RFC 5280 §5.2.3: CRL numbers only increase).
 */
export function assertNotOlder(next: LoadedCrl, current: LoadedCrl | null): void {
  if (!current || current.issuerKey !== next.issuerKey) return;
  assertCrlNotOlder(next.crl, current.crl, 'the CRL in force');
}
