/**
 * The content of one fetch of a CRL source, accepted as a whole: DER is exactly one CRL; PEM
 * may hold several `X509 CRL` blocks and `CERTIFICATE` blocks (signer certificates for those
 * CRLs, crl-signers.ts), as the CA's `/crls` serves them. Each CRL is judged by the rules of
 * crl-acceptance.ts; if any is refused, or two speak for the same issuer, the whole fetch is
 * refused and the caller keeps its previous set: a half-applied bundle is a state no CA published.
 */
import { GatehouseError, isGatehouseError } from '../../errors/errors.js';
import { formatDn, parseCertificate } from '../../pki/certificate.js';
import { parseCrl, type ParsedCrl } from '../../pki/crl-parse.js';
import { decodePemBlocks, looksLikePem } from '../../pki/pem.js';
import { acceptCrl, assertNotOlder, issuerIdOf, type CrlIssuers, type LoadedCrl } from './crl-acceptance.js';
import { usableSigners } from './crl-signers.js';

/** What a previous fetch left: the CRL in force, or only the marks of one dropped since. */
export type CrlMark = Pick<LoadedCrl, 'crl' | 'issuerKey' | 'issuerKeyId'>;

export interface CrlSetContext {
  issuers: CrlIssuers;
  graceMs: number;
  now: Date;
  /** By issuerIdOf: the newest CRL seen from each issuer of this source, in force or dropped. */
  seen: ReadonlyMap<string, CrlMark>;
  /** issuerIdOf of the CRLs in force from this source. */
  inForce: ReadonlySet<string>;
}

/** A refused fetch, naming the CRL at fault when there is one. */
export class CrlSetRefusal extends GatehouseError {
  constructor(
    err: unknown,
    readonly crl: { block: number; issuer: string | null } | null,
  ) {
    const inner = isGatehouseError(err) ? err : null;
    const reason = err instanceof Error ? err.message : String(err);
    const where = crl ? `CRL ${crl.block}${crl.issuer ? ` (issuer "${crl.issuer}")` : ''}: ` : '';
    super(inner?.code ?? 'GH_CRL_INVALID', `${where}${reason}`, { cause: err });
  }
}

export function acceptCrlSet(raw: Buffer, context: CrlSetContext): LoadedCrl[] {
  const { crls, certificates } = splitSource(raw);
  // One CRL and no certificate is the shape every source had before: keep its messages as they were.
  const single = crls.length === 1 && certificates.length === 0;
  let issuers: CrlIssuers;
  try {
    issuers = context.issuers.withSigners(
      usableSigners(
        certificates.map((der) => parseCertificate(der)),
        context.issuers.bundle,
        context.now,
      ),
    );
  } catch (err) {
    throw new CrlSetRefusal(err, null);
  }
  const byIssuer = new Map<string, LoadedCrl>();
  return crls.map((der, i) => {
    let crl: ParsedCrl | null = null;
    try {
      crl = parseCrl(der);
      const loaded = acceptCrl(crl, issuers, context.graceMs);
      const id = issuerIdOf(loaded);
      // Two CRLs of one issuer in one answer: which one is current is the CA's call, not ours.
      if (byIssuer.has(id)) {
        const first = [...byIssuer.keys()].indexOf(id) + 1;
        throw new GatehouseError(
          'GH_CRL_INVALID',
          `the source holds two CRLs of this issuer (CRLs ${first} and ${i + 1}); publish one per CA`,
        );
      }
      byIssuer.set(id, loaded);
      assertNotOlder(
        loaded,
        context.seen.get(id) ?? null,
        context.inForce.has(id) ? 'the CRL in force' : 'the CRL last seen from this issuer',
      );
      return loaded;
    } catch (err) {
      if (single) throw err;
      throw new CrlSetRefusal(err, { block: i + 1, issuer: crl ? formatDn(crl.issuer) : null });
    }
  });
}

/** DER is one CRL (as before); PEM gives its CRL blocks and certificate blocks, other blocks ignored as OpenSSL does. */
function splitSource(raw: Buffer): { crls: Buffer[]; certificates: Buffer[] } {
  if (!looksLikePem(raw)) return { crls: [raw], certificates: [] };
  const blocks = decodePemBlocks(raw.toString('latin1'));
  const crls = blocks.filter((b) => b.label === 'X509 CRL').map((b) => b.der);
  // No CRL at all: parseCrl refuses it with the message every source has always had.
  if (crls.length === 0) parseCrl(raw);
  return { crls, certificates: blocks.filter((b) => b.label === 'CERTIFICATE').map((b) => b.der) };
}
