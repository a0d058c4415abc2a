/**
 * Distinguished names for identity headers, read from the certificate's DER with our own
 * reader (never from Node's subject strings, CVE-2021-44532) and written as RFC 4514 strings
 * that are visible ASCII only.
 *
 * The format is what nginx puts in `$ssl_client_s_dn` (OpenSSL `XN_FLAG_RFC2253`): most
 * specific RDN first, `,` between RDNs, `+` inside a multi-valued RDN, OpenSSL short names,
 * `\,` style escapes for RFC 4514 §2.4 specials and `\XX` hex of the UTF-8 bytes for control
 * and non-ASCII characters. It deliberately differs from OpenSSL in two places, both still
 * valid RFC 4514: `=` is escaped (`\=`) so that a naive `split('=')` cannot be fooled, and a
 * value-final space is `\20` instead of `\ `, because a header value ending in a space loses
 * it to OWS trimming and would leave a dangling backslash.
 *
 * `pki/certificate.ts` `formatDn` is not used: it separates RDNs with `, `, writes control
 * characters as lowercase `\0d`, leaves non-ASCII raw (not header-safe) and flattens
 * multi-valued RDNs.
 */
import { children, expectTag, readNode, seq, utf8, TAG } from '../../pki/der.js';
import { readName, type NameAttribute } from '../../pki/csr.js';
import type { CertificateInfo } from '../../pki/certificate.js';
import { cutUnits, hexEscape, MAX_HEADER_VALUE_CHARS } from './identity-headers-values.js';

export interface DnAttribute extends NameAttribute {
  /** The AttributeValue TLV, written as `#hex` for types without a short name (RFC 4514 §2.4). */
  valueDer?: Buffer;
}

/** One RDN, its attributes in DER order. */
export type Rdn = readonly DnAttribute[];

/** RDNs of a DER Name in DER order (most general first), multi-valued RDNs kept together. */
export function readRdns(nameDer: Buffer): Rdn[] {
  return children(expectTag(readNode(nameDer), TAG.SEQUENCE, 'Name')).map((rdn) => {
    // readName decodes the strings exactly as parseCertificate did; one RDN at a time keeps the grouping.
    const attrs = readName(readNode(seq(rdn.raw)));
    const atvs = children(rdn);
    return attrs.map((a, i) => ({ ...a, valueDer: children(atvs[i]!)[1]!.raw }));
  });
}

/** The issuer Name of a certificate, from its tbsCertificate (RFC 5280 §4.1). */
export function issuerNameDer(cert: CertificateInfo): Buffer {
  const fields = children(readNode(cert.tbsDer));
  const offset = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] version is optional
  return expectTag(fields[offset + 2], TAG.SEQUENCE, 'issuer').raw;
}

// OpenSSL's short names beyond pki/oids.ts ATTRIBUTE_NAMES, so that these print as nginx prints them.
const OPENSSL_SHORT_NAMES: Record<string, string> = {
  '2.5.4.4': 'SN',
  '2.5.4.9': 'street',
  '2.5.4.12': 'title',
  '2.5.4.17': 'postalCode',
  '2.5.4.42': 'GN',
  '2.5.4.43': 'initials',
  '2.5.4.46': 'dnQualifier',
  '2.5.4.65': 'pseudonym',
};

function shortName(attr: NameAttribute): string | null {
  const name = attr.type !== attr.oid ? attr.type : OPENSSL_SHORT_NAMES[attr.oid];
  return name && /^[A-Za-z][A-Za-z0-9-]*$/.test(name) ? name : null;
}

const RFC4514_SPECIALS = ',+"\\<>;=';

/**
 * RFC 4514 §2.4 escaping of one value, as units. `hexSpecials` writes the specials as `\XX`
 * too (`\2C` for `,`), for formats whose readers split on `,` `;` `"` without knowing RFC 4514.
 */
export function dnValueUnits(value: string, hexSpecials = false): string[] {
  const chars = Array.from(value);
  return chars.map((ch, i) => {
    const code = ch.codePointAt(0)!;
    if (code < 0x20 || code > 0x7e) return hexEscape(ch);
    if (ch === ' ' && i === chars.length - 1) return '\\20';
    if (!RFC4514_SPECIALS.includes(ch) && !(i === 0 && (ch === '#' || ch === ' '))) return ch;
    return hexSpecials ? hexEscape(ch) : `\\${ch}`;
  });
}

/** `TYPE=value` as units; the prefix (separator and type) is glued to the first unit so a cut never ends on it. */
function attributeUnits(attr: DnAttribute, separator: string, typeName: string | null, hexSpecials: boolean): string[] {
  const type = typeName ?? shortName(attr);
  const head = `${separator}${type ?? attr.oid}=`;
  const body = type
    ? dnValueUnits(attr.value, hexSpecials)
    : [...(attr.valueDer ?? utf8(attr.value))].map(
        (b, i) => `${i === 0 ? '#' : ''}${b.toString(16).toUpperCase().padStart(2, '0')}`,
      );
  if (body.length === 0) return [head];
  body[0] = head + body[0];
  return body;
}

type DnInput = ReadonlyArray<DnAttribute | Rdn>;

/** RFC 4514 units: RDNs and the attributes inside each in reverse DER order, as OpenSSL prints them. */
export function dnUnits(rdns: DnInput): string[] {
  const units: string[] = [];
  const groups = rdns.map((r) => ('oid' in r ? [r] : r));
  for (let i = groups.length - 1; i >= 0; i--) {
    const rdn = groups[i]!;
    for (let j = rdn.length - 1; j >= 0; j--) {
      const separator = units.length === 0 ? '' : j === rdn.length - 1 ? ',' : '+';
      for (const unit of attributeUnits(rdn[j]!, separator, null, false)) units.push(unit);
    }
  }
  return units;
}

/**
 * RFC 4514 string of a Name, capped at `maxChars` (cut between escapes, then `...`). Accepts
 * RDNs from `readRdns` or a flat attribute list such as `CertificateInfo.subject`.
 */
export function formatDnRfc4514(rdns: DnInput, maxChars = MAX_HEADER_VALUE_CHARS): string {
  return cutUnits(dnUnits(rdns), maxChars);
}

const DC = '0.9.2342.19200300.100.1.25';
const TRAEFIK_ORDER: Array<[oid: string, name: string, onlyLast: boolean]> = [
  ['2.5.4.6', 'C', false],
  ['2.5.4.8', 'ST', false],
  ['2.5.4.7', 'L', false],
  ['2.5.4.10', 'O', false],
  ['2.5.4.11', 'OU', false],
  ['2.5.4.5', 'SN', true],
  ['2.5.4.3', 'CN', true],
];

/**
 * A Name as Traefik's passTLSClientCert writes it: DC…, C…, ST…, L…, O…, OU… (subject only),
 * SN (serialNumber), CN, comma-joined, empty values skipped, Go's pkix.Name keeping the last
 * CN and serialNumber. Traefik escapes nothing; specials are written as `\XX` here so the
 * `Subject="…";…` structure cannot be broken by a value.
 */
export function traefikDnUnits(rdns: readonly Rdn[], withOu: boolean): string[] {
  const flat = rdns.flat();
  const picked: Array<[DnAttribute, string]> = flat.filter((a) => a.oid === DC).map((a) => [a, 'DC']);
  for (const [oid, name, onlyLast] of TRAEFIK_ORDER) {
    if (oid === '2.5.4.11' && !withOu) continue;
    const values = flat.filter((a) => a.oid === oid);
    for (const a of onlyLast ? values.slice(-1) : values) picked.push([a, name]);
  }
  const units: string[] = [];
  for (const [attr, name] of picked.filter(([a]) => a.value.length > 0)) {
    for (const unit of attributeUnits(attr, units.length === 0 ? '' : ',', name, true)) units.push(unit);
  }
  return units;
}
