/**
 * A minimal DER (X.690) encoder and reader for the issuance hot path.
 * General certificate work goes through @peculiar/x509; this exists because building one
 * certificate through the library costs ~2.5 ms against ~30 µs for the signature itself
 * (see bench/issuance.ts). Everything written here is cross-checked in tests against
 * @peculiar/x509's parser and `openssl`.
 */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

export function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = content.length === 1 ? content[0]! : Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), encodeLength(body.length), body]);
}

export const seq = (...items: Buffer[]): Buffer => tlv(TAG.SEQUENCE, ...items);
export const set = (...items: Buffer[]): Buffer => tlv(TAG.SET, ...items);
export const octetString = (b: Buffer): Buffer => tlv(TAG.OCTET_STRING, b);
export const bitString = (b: Buffer): Buffer => tlv(TAG.BIT_STRING, Buffer.from([0]), b);
export const utf8 = (s: string): Buffer => tlv(TAG.UTF8_STRING, Buffer.from(s, 'utf8'));
export const bool = (v: boolean): Buffer => tlv(TAG.BOOLEAN, Buffer.from([v ? 0xff : 0x00]));
/** Context-specific tag: constructed for EXPLICIT wrappers, primitive for IMPLICIT strings. */
export const ctx = (n: number, constructed: boolean, ...content: Buffer[]): Buffer =>
  tlv((constructed ? 0xa0 : 0x80) | n, ...content);

/** INTEGER from unsigned big-endian bytes: minimal, with a 0x00 pad when the top bit is set. */
export function uintBytes(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  return tlv(TAG.INTEGER, (trimmed[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

/** INTEGER for 0 ≤ n ≤ 255 (versions, path lengths). */
export function smallInt(n: number): Buffer {
  return uintBytes(Buffer.from([n]));
}

const oidCache = new Map<string, Buffer>();
export function oid(dotted: string): Buffer {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  const parts = dotted.split('.').map(Number);
  const bytes: number[] = [parts[0]! * 40 + parts[1]!];
  for (const part of parts.slice(2)) {
    const chunk: number[] = [part & 0x7f];
    for (let v = Math.floor(part / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  const encoded = tlv(TAG.OID, Buffer.from(bytes));
  oidCache.set(dotted, encoded);
  return encoded;
}

/** The instant a DER time encodes: whole seconds (fractions are not allowed, RFC 5280 §4.1.2.5.1). */
export function encodedInstant(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; seconds, Zulu. */
export function time(date: Date): Buffer {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
  const year = date.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(TAG.UTC_TIME, Buffer.from(digits.slice(2) + 'Z', 'ascii'));
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(digits + 'Z', 'ascii'));
}

// ---------------------------------------------------------------- reading

export interface DerNode {
  tag: number;
  /** Offset of the tag byte in the source buffer. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  end: number;
  /** The whole TLV, without copying. */
  raw: Buffer;
  content: Buffer;
}

export class DerError extends Error {}

/** Tag and bounds of one TLV, read without slicing: for loops over very many nodes (large CRLs). */
export interface DerHeader {
  tag: number;
  contentStart: number;
  end: number;
}

/** Fills `out` with the TLV at `offset`. Rejects indefinite and non-minimal lengths (DER, X.690 §10.1). */
export function readHeader(buf: Buffer, offset: number, out: DerHeader): DerHeader {
  if (offset + 2 > buf.length) throw new DerError('truncated');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not supported');
  let pos = offset + 1;
  const first = buf[pos++]!;
  let length: number;
  if (first < 0x80) {
    length = first;
  } else {
    const count = first & 0x7f;
    if (count === 0 || count > 4) throw new DerError('unsupported length encoding');
    if (pos + count > buf.length) throw new DerError('truncated');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[pos++]!;
    if (length < 0x80 || (count > 1 && buf[pos - count] === 0)) throw new DerError('non-minimal length');
  }
  const end = pos + length;
  if (end > buf.length) throw new DerError('truncated');
  out.tag = tag;
  out.contentStart = pos;
  out.end = end;
  return out;
}

/** Read one TLV at `offset`. */
export function readNode(buf: Buffer, offset = 0): DerNode {
  const { tag, contentStart, end } = readHeader(buf, offset, { tag: 0, contentStart: 0, end: 0 });
  return {
    tag,
    start: offset,
    contentStart,
    end,
    raw: buf.subarray(offset, end),
    content: buf.subarray(contentStart, end),
  };
}

/** The children of a constructed node. */
export function children(node: DerNode): DerNode[] {
  const out: DerNode[] = [];
  const src = node.raw;
  let pos = node.contentStart - node.start;
  while (pos < src.length) {
    const child = readNode(src, pos);
    out.push(child);
    pos = child.end;
  }
  return out;
}

export function expectTag(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (!node || node.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}`);
  return node;
}

export function decodeOid(content: Buffer): string {
  if (content.length === 0) throw new DerError('empty OID');
  const parts: number[] = [];
  const first = content[0]!;
  parts.push(first < 80 ? Math.floor(first / 40) : 2, first < 80 ? first % 40 : first - 80);
  let value = 0;
  for (let i = 1; i < content.length; i++) {
    const b = content[i]!;
    value = value * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      parts.push(value);
      value = 0;
    }
  }
  return parts.join('.');
}

/**
 * RFC 5280 §4.1.2.5 (and §5.1.2.4 for CRLs): UTCTime YYMMDDHHMMSSZ (YY < 50 is 20YY) or
 * GeneralizedTime YYYYMMDDHHMMSSZ; seconds and Zulu required, no fractions.
 * Milliseconds since the epoch, or NaN when `buf[start, end)` is not such a time.
 * Read digit by digit: a CRL with 100 000 entries holds 100 000 of these.
 */
export function timeValue(buf: Buffer, tag: number, start: number, end: number): number {
  const length = end - start;
  let year: number;
  let p = start;
  if (tag === TAG.UTC_TIME && length === 13) {
    const yy = twoDigits(buf, p);
    year = yy < 50 ? 2000 + yy : 1900 + yy;
    p += 2;
  } else if (tag === TAG.GENERALIZED_TIME && length === 15) {
    year = twoDigits(buf, p) * 100 + twoDigits(buf, p + 2);
    if (year < 100) return NaN; // Date.UTC would read 0–99 as 1900–1999
    p += 4;
  } else {
    return NaN;
  }
  const month = twoDigits(buf, p);
  const day = twoDigits(buf, p + 2);
  const hour = twoDigits(buf, p + 4);
  const minute = twoDigits(buf, p + 6);
  const second = twoDigits(buf, p + 8);
  if (
    buf[end - 1] !== 0x5a /* Z */ ||
    month < 1 ||
    month > 12 ||
    day < 1 ||
    hour > 23 ||
    minute > 59 ||
    second > 59 ||
    hour < 0 ||
    minute < 0 ||
    second < 0
  )
    return NaN;
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  // Date.UTC rolls 31 February over into March; such a time is invalid.
  return new Date(ms).getUTCDate() === day ? ms : NaN;
}

/** Two ASCII digits as a number, or a negative number when either is not a digit. */
function twoDigits(buf: Buffer, p: number): number {
  const a = buf[p]! - 0x30;
  const b = buf[p + 1]! - 0x30;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1000;
}

export function readTime(node: DerNode | undefined, what: string): Date {
  if (!node) throw new DerError(`${what}: missing time`);
  const ms = timeValue(node.raw, node.tag, node.contentStart - node.start, node.raw.length);
  if (Number.isNaN(ms)) throw new DerError(`${what}: unsupported time "${node.content.toString('latin1')}"`);
  return new Date(ms);
}
