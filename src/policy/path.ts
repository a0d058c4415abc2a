/**
 * Request-path normalization. The path the policy checks must be the path the app serves, so
 * the gateway checks the normalized path and forwards exactly that path, re-encoded. Anything
 * two parsers could read differently is refused instead of guessed (fail closed, HTTP 400).
 *
 *   //admin          → /admin          duplicate slashes collapse
 *   /a/../admin      → /admin          RFC 3986 §5.2.4 remove_dot_segments
 *   /a/%2e%2e/admin  → /admin          %2E is unreserved, so it is a dot once decoded
 *   /%2e%2e/admin    → ABOVE_ROOT      decodes to /../admin; refused, never clamped to /admin
 *   /..              → ABOVE_ROOT
 *   /%2Fadmin        → ENCODED_SLASH   one segment to us, two to many apps
 *   /a%5Cb, /a\b     → BACKSLASH       a separator on Windows and in some URL parsers
 *   /caf%C3%A9       → /café           UTF-8 decoded; /caf%C3 → BAD_ESCAPE
 *   /admin/          → /admin/         a trailing slash is kept
 *   /ADMIN           → /ADMIN          case is kept; matching is case-sensitive
 */

export type PathRefusal =
  'ENCODED_SLASH' | 'BACKSLASH' | 'NUL' | 'BAD_ESCAPE' | 'NOT_ABSOLUTE' | 'ABOVE_ROOT' | 'CONTROL_CHAR';

export type NormalizedPath = { ok: true; path: string } | { ok: false; reason: PathRefusal };

// fatal: invalid or overlong UTF-8 (the old %C0%AF trick) is an error, not U+FFFD.
// ignoreBOM: a decoded U+FEFF stays in the path instead of vanishing silently.
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const UTF8 = new TextEncoder();

// C0 controls, DEL and C1 controls (Unicode category Cc). Headers, logs and file systems
// treat them specially, and no legitimate path needs them.
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;
// A surrogate half without its partner cannot be encoded as UTF-8 for the upstream.
const LONE_SURROGATE_RE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Normalize a request-target path (the caller has already cut the query at the first `?`). */
export function normalizePath(rawPath: string): NormalizedPath {
  if (!rawPath.startsWith('/')) return refuse('NOT_ABSOLUTE');
  const literal = checkLiteral(rawPath);
  if (literal) return refuse(literal);

  const rawSegments = rawPath.split('/');
  const kept: string[] = [];
  let trailingSlash = false;
  for (let i = 1; i < rawSegments.length; i++) {
    const segment = decodeSegment(rawSegments[i]!);
    if (!segment.ok) return segment;
    const last = i === rawSegments.length - 1;
    // Dot segments are resolved after decoding: `%2e%2e` is `..` (RFC 3986 §2.3, §6.2.2.2).
    if (segment.path === '..') {
      if (kept.length === 0) return refuse('ABOVE_ROOT');
      kept.pop();
    } else if (segment.path !== '.' && segment.path !== '') {
      kept.push(segment.path);
    }
    // `/a/`, `/a/.` and `/b/a/..` all end in a directory (RFC 3986 §5.2.4 step 2B/2C).
    trailingSlash = last && (segment.path === '' || segment.path === '.' || segment.path === '..');
  }
  if (kept.length === 0) return { ok: true, path: '/' };
  return { ok: true, path: `/${kept.join('/')}${trailingSlash ? '/' : ''}` };
}

function refuse(reason: PathRefusal): NormalizedPath {
  return { ok: false, reason };
}

/** Characters that are refused even unencoded; checked before decoding so the reason is exact. */
function checkLiteral(rawPath: string): PathRefusal | null {
  for (let i = 0; i < rawPath.length; i++) {
    const code = rawPath.charCodeAt(i);
    if (code === 0x00) return 'NUL';
    if (code === 0x5c) return 'BACKSLASH';
  }
  if (CONTROL_RE.test(rawPath)) return 'CONTROL_CHAR';
  if (LONE_SURROGATE_RE.test(rawPath)) return 'BAD_ESCAPE';
  return null;
}

/**
 * Percent-decode one segment into UTF-8 bytes, then into text. Literal non-ASCII characters
 * stand for themselves, so `/é` and `/%C3%A9` are the same path.
 */
function decodeSegment(segment: string): NormalizedPath {
  if (!segment.includes('%')) return { ok: true, path: segment };
  const bytes: number[] = [];
  for (let i = 0; i < segment.length; i++) {
    const code = segment.charCodeAt(i);
    if (code !== 0x25) {
      if (code < 0x80) bytes.push(code);
      else {
        const char = String.fromCodePoint(segment.codePointAt(i)!);
        for (const byte of UTF8.encode(char)) bytes.push(byte);
        i += char.length - 1;
      }
      continue;
    }
    const byte = (hexValue(segment.charCodeAt(i + 1)) << 4) | hexValue(segment.charCodeAt(i + 2));
    if (byte < 0) return refuse('BAD_ESCAPE');
    if (byte === 0x2f) return refuse('ENCODED_SLASH');
    if (byte === 0x5c) return refuse('BACKSLASH');
    if (byte === 0x00) return refuse('NUL');
    bytes.push(byte);
    i += 2;
  }
  let text: string;
  try {
    text = STRICT_UTF8.decode(Uint8Array.from(bytes));
  } catch {
    return refuse('BAD_ESCAPE');
  }
  if (CONTROL_RE.test(text)) return refuse('CONTROL_CHAR');
  return { ok: true, path: text };
}

/** Value of one hex digit, or a large negative number so that a bad escape stays negative. */
function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x37;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  return -0x1000;
}

/**
 * Characters sent unencoded: RFC 3986 pchar (unreserved, sub-delims, `:` `@`) plus the `/`
 * separator, except `;`. Tomcat and Jetty cut `;params` out of a segment before routing, so
 * `/public/..;/admin` or `/admin;x/panel` would reach a path we never checked; sent as `%3B`
 * the `;` is data to them too, which is how we read it.
 */
const KEEP_RE = /^[A-Za-z0-9\-._~!$&'()*+,=:@/]$/;
const KEEP_ALL_RE = /^[A-Za-z0-9\-._~!$&'()*+,=:@/]*$/;

/**
 * Encode a normalized path for the request line to the upstream, so that the upstream decodes
 * it to exactly the path we checked: `normalizePath(encodePathForUpstream(p))` gives back `p`.
 * Never throws; `%` becomes `%25`, `?` `%3F`, `#` `%23`, non-ASCII its UTF-8 bytes.
 */
export function encodePathForUpstream(path: string): string {
  if (KEEP_ALL_RE.test(path)) return path;
  let out = '';
  for (const char of path) {
    if (KEEP_RE.test(char)) {
      out += char;
      continue;
    }
    // A lone surrogate (never produced by normalizePath) encodes as U+FFFD rather than throwing.
    for (const byte of UTF8.encode(char)) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
