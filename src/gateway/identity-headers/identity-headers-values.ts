/**
 * Header-value hygiene for identity headers. Every value the app receives is visible ASCII
 * plus space, never starts or ends with a space (HTTP trims that as OWS, RFC 9110 §5.5, which
 * would silently change a value such as `CN=a\ ` into a dangling escape) and is at most
 * 16 KiB. Values are built from "units", the smallest pieces that may stand alone (one
 * character or one whole escape sequence), so a value that must be cut is cut between two
 * units and never inside an escape.
 */
import { GatehouseError } from '../../errors/errors.js';

export const MAX_HEADER_VALUE_CHARS = 16 * 1024;
/** What a cut value ends with: `…` written as ASCII, so the value stays visible ASCII. */
export const ELLIPSIS = '...';

const VISIBLE_ASCII_AND_SPACE = /^[\x20-\x7e]*$/;

/**
 * Fails closed: a value that could inject a header line (CR, LF), be truncated by a C parser
 * (NUL), be re-decoded differently (bytes ≥ 0x80) or change under OWS trimming never leaves
 * the gateway. Stricter than Node's `http.validateHeaderValue`, which allows HTAB and 0x80–0xFF.
 */
export function assertSafeHeaderValue(value: string): string {
  if (typeof value !== 'string' || !VISIBLE_ASCII_AND_SPACE.test(value)) {
    throw new GatehouseError('GH_INTERNAL', 'identity header value has a character outside visible ASCII and space');
  }
  if (value.startsWith(' ') || value.endsWith(' '))
    throw new GatehouseError('GH_INTERNAL', 'identity header value starts or ends with a space');
  if (value.length > MAX_HEADER_VALUE_CHARS)
    throw new GatehouseError(
      'GH_INTERNAL',
      `identity header value is longer than ${MAX_HEADER_VALUE_CHARS} characters`,
    );
  return value;
}

/** `\XX` (uppercase hex) for each UTF-8 byte of one character, as RFC 4514 §2.4 hexpairs. */
export function hexEscape(ch: string): string {
  let out = '';
  for (const byte of Buffer.from(ch, 'utf8')) out += `\\${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/**
 * Free text from a certificate (a CN, an OU, a URI SAN) as units of visible ASCII. Backslash,
 * control characters, DEL, non-ASCII, a leading or trailing space and any character of
 * `alsoHex` become `\XX` of their UTF-8 bytes; everything else is itself. Reversible: replace
 * each `\XX` by its byte and decode as UTF-8.
 */
export function textUnits(value: string, alsoHex = ''): string[] {
  const chars = Array.from(value);
  return chars.map((ch, i) => {
    const code = ch.codePointAt(0)!;
    const edgeSpace = ch === ' ' && (i === 0 || i === chars.length - 1);
    return code < 0x20 || code > 0x7e || ch === '\\' || edgeSpace || alsoHex.includes(ch) ? hexEscape(ch) : ch;
  });
}

/** The units joined; when longer than `maxChars`, as many whole units as fit, then `...`. */
export function cutUnits(units: readonly string[], maxChars = MAX_HEADER_VALUE_CHARS): string {
  let total = 0;
  for (const unit of units) total += unit.length;
  if (total <= maxChars) return units.join('');
  if (maxChars < ELLIPSIS.length) return '';
  let out = '';
  for (const unit of units) {
    if (out.length + unit.length > maxChars - ELLIPSIS.length) break;
    out += unit;
  }
  return out + ELLIPSIS;
}

/** A piece of a header value: a string is kept whole, an array of units may be cut. */
export type ValuePart = string | readonly string[];

const partLength = (part: ValuePart): number =>
  typeof part === 'string' ? part.length : part.reduce((n, u) => n + u.length, 0);

/**
 * Joins parts into at most `maxChars`. Whole parts are kept; the cuttable ones share what is
 * left, shortest first, so one huge field (a 10,000-character CN) is cut while the short
 * fields beside it stay intact.
 */
export function fitParts(parts: readonly ValuePart[], maxChars = MAX_HEADER_VALUE_CHARS): string {
  let budget = maxChars - parts.reduce((n, p) => n + (typeof p === 'string' ? p.length : 0), 0);
  const out = parts.map((p) => (typeof p === 'string' ? p : ''));
  const cuttable = parts
    .flatMap((p, i) => (typeof p === 'string' ? [] : [i]))
    .sort((a, b) => partLength(parts[a]!) - partLength(parts[b]!));
  cuttable.forEach((index, k) => {
    const text = cutUnits(parts[index] as readonly string[], Math.max(0, Math.floor(budget / (cuttable.length - k))));
    out[index] = text;
    budget -= text.length;
  });
  return out.join('');
}

/** An element of a structured value (an XFCC pair, a Traefik info field) that may be left out. */
export interface ValueElement {
  parts: ValuePart[];
  /** Left out whole, last first, when the value would be too long: a certificate cut short is useless. */
  droppable: boolean;
}

/** Elements joined by `separator`, dropping droppable ones until the rest fits, then cutting. */
export function fitElements(
  elements: readonly ValueElement[],
  separator: string,
  maxChars = MAX_HEADER_VALUE_CHARS,
): string {
  let kept = [...elements];
  const length = () =>
    kept.reduce((n, e) => n + e.parts.reduce((m, p) => m + partLength(p), 0), 0) +
    separator.length * Math.max(0, kept.length - 1);
  while (length() > maxChars) {
    let last = -1;
    kept.forEach((e, i) => {
      if (e.droppable) last = i;
    });
    if (last < 0) break;
    kept = kept.filter((_, i) => i !== last);
  }
  return fitParts(
    kept.flatMap((e, i) => (i === 0 ? e.parts : [separator, ...e.parts])),
    maxChars,
  );
}

/** Go's `url.QueryEscape`, as Traefik uses: everything but `A-Za-z0-9-_.~` is %XX, space is `+`. */
export function queryEscape(ascii: string): string {
  return encodeURIComponent(ascii)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

/** A header value that is either whole or absent: used for certificates, which are useless cut. */
export function wholeOrNothing(value: string, maxChars = MAX_HEADER_VALUE_CHARS): string | null {
  return value.length <= maxChars ? value : null;
}
