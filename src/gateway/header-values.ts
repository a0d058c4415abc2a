/**
 * Identity header values for the app. Every value is visible ASCII: a subject is RFC 4514-
 * escaped, with control and non-ASCII characters written as \XX hex of their UTF-8 bytes, so
 * no certificate field can inject a header line (CR/LF) or break a parser downstream.
 */
import type { NameAttribute } from '../pki/csr.js';

const MAX_VALUE_CHARS = 16 * 1024;

/** RFC 4514 §2.4 escaping of one attribute value, plus hex escapes for anything not printable ASCII. */
export function escapeDnValue(value: string): string {
  let out = '';
  const chars = [...value];
  chars.forEach((ch, i) => {
    const code = ch.codePointAt(0)!;
    if (code < 0x20 || code > 0x7e) {
      for (const byte of Buffer.from(ch, 'utf8')) out += `\\${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    } else if ('\\,+"<>;='.includes(ch) || (i === 0 && (ch === '#' || ch === ' ')) || (i === chars.length - 1 && ch === ' ')) {
      out += `\\${ch}`;
    } else {
      out += ch;
    }
  });
  return out;
}

/** RFC 4514 string: most specific RDN first (`CN=…,OU=…,O=…`), as nginx's $ssl_client_s_dn. */
export function formatSubjectRfc4514(attrs: NameAttribute[], separator = ','): string {
  return truncateValue([...attrs].reverse().map((a) => `${a.type}=${escapeDnValue(a.value)}`).join(separator));
}

/** Caps a value without cutting an escape sequence in half. */
export function truncateValue(value: string): string {
  if (value.length <= MAX_VALUE_CHARS) return value;
  let cut = value.slice(0, MAX_VALUE_CHARS - 3);
  cut = cut.replace(/\\[0-9A-F]?$/, '').replace(/\\$/, '');
  return `${cut}...`;
}

/** Free text from a certificate (a CN, an OU, a URI) as visible ASCII: backslash and anything else escaped as \XX UTF-8 hex. */
export function escapeHeaderText(value: string): string {
  let out = '';
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if (code >= 0x20 && code <= 0x7e && ch !== '\\') out += ch;
    else for (const byte of Buffer.from(ch, 'utf8')) out += `\\${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return truncateValue(out);
}

const SAFE_VALUE = /^[\x20-\x7e]*$/;

export function assertSafeHeaderValue(value: string): string {
  if (!SAFE_VALUE.test(value)) throw new Error('identity header value contains a character outside printable ASCII');
  return value;
}
