/**
 * X.509 v2 CRLs (RFC 5280 §5). Written with der.ts rather than the library because the
 * library checks every new entry against all earlier ones (quadratic in revocations).
 * Cross-checked with `openssl crl -verify` and @peculiar/x509's parser in tests.
 */
import * as der from './der.js';
import type { SigningAuthority } from './leaf-certificate.js';
import { signWith } from './keys.js';

export const CRL_REASONS = [
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  /* 7 unused */ '',
  'removeFromCRL',
  'privilegeWithdrawn',
  'aACompromise',
] as const;
export type CrlReason = Exclude<(typeof CRL_REASONS)[number], ''>;

export function isCrlReason(value: string): value is CrlReason {
  return value !== '' && (CRL_REASONS as readonly string[]).includes(value);
}

export interface RevokedEntry {
  serial: string;
  revokedAt: Date;
  reason: CrlReason;
}

export interface CrlSpec {
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: RevokedEntry[];
}

export function buildCrl(issuer: SigningAuthority, spec: CrlSpec): Buffer {
  const revoked = spec.entries.map((entry) => {
    const code = CRL_REASONS.indexOf(entry.reason);
    // RFC 5280 §5.3.1: reasonCode is omitted rather than "unspecified".
    const reasonExt =
      code > 0 ? [der.seq(der.seq(der.oid('2.5.29.21'), der.octetString(der.tlv(0x0a, Buffer.from([code])))))] : [];
    return der.seq(der.uintBytes(Buffer.from(evenHex(entry.serial), 'hex')), der.time(entry.revokedAt), ...reasonExt);
  });
  const crlNumber = Buffer.from(evenHex(spec.crlNumber.toString(16)), 'hex');
  const extensions = der.ctx(
    0,
    true,
    der.seq(
      // RFC 5280 §5.2.1 and §5.2.3: AKI and CRL number are required in conforming CRLs.
      der.seq(der.oid('2.5.29.35'), der.octetString(der.seq(der.ctx(0, false, issuer.keyIdentifier)))),
      der.seq(der.oid('2.5.29.20'), der.octetString(der.uintBytes(crlNumber))),
    ),
  );
  const tbs = der.seq(
    der.smallInt(1), // v2
    issuer.algorithm.identifierDer,
    issuer.subjectNameDer,
    der.time(spec.thisUpdate),
    der.time(spec.nextUpdate),
    // One concatenation, not a spread: 100k+ arguments overflow the call stack.
    ...(revoked.length ? [der.tlv(der.TAG.SEQUENCE, Buffer.concat(revoked))] : []),
    extensions,
  );
  const signature = signWith(issuer.algorithm, issuer.privateKey, tbs);
  return der.seq(tbs, issuer.algorithm.identifierDer, der.bitString(signature));
}

function evenHex(hex: string): string {
  return hex.length % 2 ? `0${hex}` : hex;
}
