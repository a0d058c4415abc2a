/**
 * Request-path normalization (src/policy/path.ts): every trick that makes the checked path
 * differ from the served path is either normalized away or refused, and the forwarded
 * encoding decodes back to exactly the checked path. WHATWG URL (Node's own parser, sharing
 * no code with ours) is the oracle for dot-segment resolution.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodePathForUpstream, normalizePath, type PathRefusal } from '../src/policy/index.js';

function assertPath(raw: string, expected: string): void {
  assert.deepEqual(normalizePath(raw), { ok: true, path: expected }, `normalizePath(${JSON.stringify(raw)})`);
}

function assertRefused(raw: string, reason: PathRefusal): void {
  assert.deepEqual(normalizePath(raw), { ok: false, reason }, `normalizePath(${JSON.stringify(raw)})`);
}

test('path-double-slash-collapsed', () => {
  assertPath('//admin', '/admin');
  assertPath('/a//b///c', '/a/b/c');
  assertPath('//', '/');
});

test('path-dot-segments-resolved', () => {
  assertPath('/a/../admin', '/admin');
  assertPath('/a/./b', '/a/b');
  assertPath('/./admin', '/admin');
  assertPath('/a/b/../../admin', '/admin');
  assertPath('/a/b/..', '/a/');
  assertPath('/a/.', '/a/');
  assertPath('/a/..', '/');
  assertPath('/...', '/...');
});

test('path-encoded-dot-dot-resolved-after-decoding', () => {
  assertPath('/a/%2e%2e/admin', '/admin');
  assertPath('/a/%2E./admin', '/admin');
  assertPath('/a/.%2e/admin', '/admin');
  assertPath('/a/%2e/admin', '/a/admin');
});

test('path-above-root-refused-not-clamped', () => {
  assertRefused('/..', 'ABOVE_ROOT');
  assertRefused('/../admin', 'ABOVE_ROOT');
  assertRefused('/%2e%2e/admin', 'ABOVE_ROOT');
  assertRefused('/a/../../admin', 'ABOVE_ROOT');
  assertRefused('//../admin', 'ABOVE_ROOT');
});

test('path-encoded-slash-refused', () => {
  assertRefused('/%2Fadmin', 'ENCODED_SLASH');
  assertRefused('/%2fadmin', 'ENCODED_SLASH');
  assertRefused('/a%2F..%2Fadmin', 'ENCODED_SLASH');
});

test('path-backslash-refused-literal-or-encoded', () => {
  assertRefused('/a\\b', 'BACKSLASH');
  assertRefused('/..\\admin', 'BACKSLASH');
  assertRefused('/%5c', 'BACKSLASH');
  assertRefused('/a/%5C../admin', 'BACKSLASH');
});

test('path-nul-refused-literal-or-encoded', () => {
  assertRefused('/%00', 'NUL');
  assertRefused('/admin%00.html', 'NUL');
  assertRefused('/admin\u0000', 'NUL');
});

test('path-malformed-escape-refused', () => {
  for (const raw of ['/%', '/%2', '/a%zz', '/%%41', '/a%g0', '/%2x']) assertRefused(raw, 'BAD_ESCAPE');
});

test('path-invalid-utf8-refused', () => {
  assertRefused('/%C3', 'BAD_ESCAPE');
  assertRefused('/%C3%28', 'BAD_ESCAPE');
  assertRefused('/%FF', 'BAD_ESCAPE');
  assertRefused('/%C0%AE%C0%AE/admin', 'BAD_ESCAPE'); // overlong '.', the old IIS trick
  assertRefused('/%ED%A0%80', 'BAD_ESCAPE'); // an encoded UTF-16 surrogate
  assertRefused('/a\ud800b', 'BAD_ESCAPE'); // a lone surrogate cannot be sent as UTF-8
});

test('path-control-char-refused', () => {
  for (const raw of ['/%0a', '/a%0D%0Ab', '/%7f', '/%C2%85', '/a\tb', '/a\nb', '/\u0085'])
    assertRefused(raw, 'CONTROL_CHAR');
});

test('path-not-absolute-refused', () => {
  for (const raw of ['', 'admin', '*', 'http://x/admin', '%2Fadmin']) assertRefused(raw, 'NOT_ABSOLUTE');
});

test('path-utf8-decoded', () => {
  assertPath('/caf%C3%A9', '/café');
  assertPath('/café', '/café');
  assertPath('/%F0%9F%98%80', '/😀');
  assertPath('/%EF%BB%BFadmin', '/\ufeffadmin'); // a BOM is kept, not silently dropped
});

test('path-case-kept', () => {
  assertPath('/ADMIN', '/ADMIN');
  assertPath('/%41dmin', '/Admin');
});

test('path-trailing-slash-kept', () => {
  assertPath('/admin/', '/admin/');
  assertPath('/admin//', '/admin/');
  assertPath('/', '/');
});

test('path-reserved-characters-decoded-as-data', () => {
  assertPath('/a%3Fb', '/a?b');
  assertPath('/a%25b', '/a%b');
  assertPath('/a%23', '/a#');
  assertPath('/a%3Bb', '/a;b');
  assertPath('/a%20b', '/a b');
});

test('encode-path-for-upstream-reencodes-what-was-decoded', () => {
  assert.equal(encodePathForUpstream('/a?b'), '/a%3Fb');
  assert.equal(encodePathForUpstream('/a%b'), '/a%25b');
  assert.equal(encodePathForUpstream('/a#'), '/a%23');
  assert.equal(encodePathForUpstream('/café'), '/caf%C3%A9');
  assert.equal(encodePathForUpstream('/a b'), '/a%20b');
  assert.equal(encodePathForUpstream('/😀'), '/%F0%9F%98%80');
  assert.equal(encodePathForUpstream('/a"<>`{}|^[]'), '/a%22%3C%3E%60%7B%7D%7C%5E%5B%5D');
});

test('encode-path-for-upstream-keeps-pchar-but-encodes-semicolon', () => {
  assert.equal(encodePathForUpstream("/a:b@c!$&'()*+,=~-._/d"), "/a:b@c!$&'()*+,=~-._/d");
  // `;` starts path parameters in Tomcat and Jetty: /public/..;/admin must not become /admin there.
  assert.equal(encodePathForUpstream('/public/..;/admin'), '/public/..%3B/admin');
});

test('encode-path-for-upstream-never-throws-on-lone-surrogate', () => {
  assert.equal(encodePathForUpstream('/a\ud800'), '/a%EF%BF%BD');
});

/** mulberry32: a seeded generator, so a failure reproduces. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TRICKY = [
  '/',
  '/',
  '/',
  '//',
  '.',
  '..',
  '%2e',
  '%2E',
  '%2e%2e',
  '%2F',
  '%2f',
  '%5c',
  '%5C',
  '\\',
  '%00',
  '\u0000',
  '%',
  '%2',
  '%zz',
  '%25',
  '%3F',
  '?',
  '#',
  '%23',
  ';',
  '%3B',
  ' ',
  '%20',
  '%C3%A9',
  'é',
  '%C3',
  '%C0%AE',
  '%F0%9F%98%80',
  '😀',
  '\ud800',
  '%0a',
  '\n',
  '%7F',
  '%C2%85',
  'a',
  'A',
  'admin',
  '~',
  '%7E',
  ':',
  '@',
  '+',
  '*',
  '[',
  '%5B',
  '"',
  '%E2%80%AE',
  '%EF%BB%BF',
];

test('path-round-trip-fuzz-2000-random-paths', () => {
  const next = random(0x5eed);
  let accepted = 0;
  for (let i = 0; i < 2000; i++) {
    const tokens = Array.from(
      { length: 1 + Math.floor(next() * 12) },
      () => TRICKY[Math.floor(next() * TRICKY.length)]!,
    );
    const raw = (next() < 0.95 ? '/' : '') + tokens.join('');
    const normalized = normalizePath(raw);
    if (!normalized.ok) continue;
    accepted++;
    const { path } = normalized;
    assert.ok(path.startsWith('/') && !path.includes('//'), `${JSON.stringify(raw)} → ${JSON.stringify(path)}`);
    assert.ok(!path.split('/').some((s) => s === '.' || s === '..'), `dot segment left in ${JSON.stringify(path)}`);
    const encoded = encodePathForUpstream(path);
    assert.match(
      encoded,
      /^(?:[A-Za-z0-9\-._~!$&'()*+,=:@/]|%[0-9A-F]{2})*$/,
      `forwarded form of ${JSON.stringify(raw)}`,
    );
    assert.deepEqual(normalizePath(encoded), { ok: true, path }, `round trip of ${JSON.stringify(raw)} via ${encoded}`);
  }
  assert.ok(accepted > 200, `only ${accepted} of 2000 random paths were accepted; the fuzz is too narrow`);
});

test('path-dot-segments-agree-with-whatwg-url', () => {
  const next = random(42);
  const segments = ['a', 'b', '.', '..', '%2e', '%2E%2e', '.%2e'];
  for (let i = 0; i < 500; i++) {
    const raw = Array.from(
      { length: 1 + Math.floor(next() * 6) },
      () => `/${segments[Math.floor(next() * segments.length)]!}`,
    ).join('');
    const ours = normalizePath(raw);
    if (!ours.ok) continue; // WHATWG clamps at the root; we refuse (path-above-root-refused-not-clamped)
    assert.equal(ours.path, new URL(`http://h${raw}`).pathname, raw);
  }
});
