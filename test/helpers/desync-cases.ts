/**
 * The request-smuggling table: raw HTTP/1.x byte sequences, each with what a correct gateway
 * may answer and what may reach the app. Seeded from the published work: PortSwigger's "HTTP
 * Desync Attacks" and "HTTP/1.1 must die" (CL.TE, TE.CL, TE.TE obfuscation, Connection-named
 * framing headers), the HTTP Garden differential fuzzer (Kallus et al., 2024: bare LF/CR,
 * chunk-size and extension quirks, odd versions), and the parser advisories: Node/llhttp
 * CVE-2022-32213/32214/32215 (LF-only line ends, obs-fold in Transfer-Encoding),
 * CVE-2023-30589 (bare CR ahead of a header name), CVE-2024-27982 (obs-fold, chunk
 * extensions), CVE-2025-23167 (head ended by `\r\n\rX`), Go CVE-2025-22871 and Kestrel
 * CVE-2025-55315 (LF inside a chunk extension).
 *
 * Every case carries a marker, `/smuggled-<name>`, in the request it tries to smuggle; the
 * invariant (desync-harness.ts) fails whenever that marker reaches the app.
 */
import type { DesyncCase, Seen } from './desync-harness.js';

const CRLF = '\r\n';
/** Answers a refusal may use; which one is the gateway's choice. */
const REFUSED = [400, 411, 413, 501, 505];
const OK_OR_REFUSED = [200, ...REFUSED];

/** The request to smuggle, with forged identity headers. */
export function smuggled(name: string): string {
  return `GET /smuggled-${name} HTTP/1.1${CRLF}Host: localhost${CRLF}X-Client-Name: FORGED-admin${CRLF}X-Client-Verify: FORGED${CRLF}Content-Length: 0${CRLF}${CRLF}`;
}

/** `METHOD target HTTP/1.1` with Host: localhost, the given header lines, then `body` verbatim. */
function request(method: string, target: string, headers: string[], body = '', version = 'HTTP/1.1'): string {
  return `${method} ${target} ${version}${CRLF}Host: localhost${CRLF}${headers.map((h) => h + CRLF).join('')}${CRLF}${body}`;
}

/** A head written line by line, nothing added (for Host and line-ending cases). */
function rawHead(lines: string[], body = ''): string {
  return `${lines.join(CRLF)}${CRLF}${CRLF}${body}`;
}

/** `body` as one chunk and the last chunk (RFC 9112 §7.1). */
function chunked(body: string): string {
  return `${body.length.toString(16)}${CRLF}${body}${CRLF}0${CRLF}${CRLF}`;
}

const cl = (body: string) => `Content-Length: ${body.length}`;
const refusedOr = (...forwarded: Seen[]): Seen[][] => [[], forwarded];

// ---------------------------------------------------------------- body on every method

/** RFC 9110 §9.3: content on GET/HEAD/DELETE/OPTIONS/TRACE has no defined meaning, but it is still framed; TRACE MUST NOT carry any (§9.3.8). */
function bodyOnEveryMethod(): DesyncCase[] {
  const out: DesyncCase[] = [];
  for (const method of ['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'POST']) {
    const target = method === 'POST' ? '/submit' : '/hello';
    const client = ['DELETE', 'OPTIONS', 'TRACE'].includes(method) ? ('carol' as const) : ('alice' as const);
    const bodiless = method === 'HEAD';
    for (const framing of ['cl', 'te'] as const) {
      const name = `${method.toLowerCase()}-${framing}-body`;
      const s = smuggled(name);
      const bytes =
        framing === 'cl'
          ? request(method, target, [cl(s), 'Connection: close'], s)
          : request(method, target, ['Transfer-Encoding: chunked', 'Connection: close'], chunked(s));
      out.push({
        name,
        bytes,
        client,
        bodiless,
        expect: {
          statuses: [method === 'TRACE' ? [200, 405, ...REFUSED] : OK_OR_REFUSED],
          upstream: refusedOr({ method, target, body: s }),
        },
        note: 'either refused, or forwarded with the body framed as a body (RFC 9112 §6.3); never as a second request',
      });
    }
  }
  return out;
}

// ---------------------------------------------------------------- Connection-named fields

/**
 * RFC 9110 §7.6.1 lets Connection name hop-by-hop fields, but Content-Length and
 * Transfer-Encoding frame this very message: removing them must not leave the body unframed.
 */
function connectionNamed(): DesyncCase[] {
  const s = (n: string) => smuggled(n);
  return [
    {
      name: 'conn-content-length-get',
      bytes: request(
        'GET',
        '/hello',
        [cl(s('conn-content-length-get')), 'Connection: close, content-length'],
        s('conn-content-length-get'),
      ),
      expect: {
        statuses: [OK_OR_REFUSED],
        upstream: refusedOr({ method: 'GET', target: '/hello', body: s('conn-content-length-get') }),
      },
    },
    {
      name: 'conn-content-length-post',
      bytes: request(
        'POST',
        '/submit',
        [cl(s('conn-content-length-post')), 'Connection: close, Content-Length'],
        s('conn-content-length-post'),
      ),
      expect: {
        statuses: [OK_OR_REFUSED],
        upstream: refusedOr({ method: 'POST', target: '/submit', body: s('conn-content-length-post') }),
      },
    },
    {
      name: 'conn-transfer-encoding-get',
      bytes: request(
        'GET',
        '/hello',
        ['Transfer-Encoding: chunked', 'Connection: close, transfer-encoding'],
        chunked(s('conn-transfer-encoding-get')),
      ),
      expect: {
        statuses: [OK_OR_REFUSED],
        upstream: refusedOr({ method: 'GET', target: '/hello', body: s('conn-transfer-encoding-get') }),
      },
    },
    {
      name: 'conn-host',
      bytes: request('GET', '/hello', ['Connection: close, host']),
      expect: { statuses: [[200, 400, 421]], upstream: refusedOr({ method: 'GET', target: '/hello' }) },
    },
    {
      name: 'conn-x-client-name',
      bytes: request('GET', '/hello', ['Connection: close, x-client-name', 'X-Client-Name: FORGED-admin']),
      expect: { statuses: [[200, 400]], upstream: refusedOr({ method: 'GET', target: '/hello' }) },
      note: 'the gateway adds X-Client-Name after the hop-by-hop pass, so naming it in Connection must not remove the real one',
    },
    {
      name: 'conn-x-client-verify',
      bytes: request('GET', '/hello', ['X-Client-Verify: FORGED', 'Connection: x-client-verify, close']),
      expect: { statuses: [[200, 400]], upstream: refusedOr({ method: 'GET', target: '/hello' }) },
    },
  ];
}

// ---------------------------------------------------------------- CL.TE, TE.CL, CL.CL

function framingConflicts(): DesyncCase[] {
  const out: DesyncCase[] = [];
  const add = (name: string, build: (s: string) => string, expect: DesyncCase['expect'], note?: string) =>
    out.push({ name, bytes: build(smuggled(name)), expect, ...(note ? { note } : {}) });
  const closeAfter =
    'RFC 9112 §6.1: with both CL and TE, TE wins or the request is refused; either way the connection MUST close';
  add(
    'cl-te-post',
    (s) => request('POST', '/submit', ['Content-Length: 4', 'Transfer-Encoding: chunked'], `0${CRLF}${CRLF}${s}`),
    { statuses: [OK_OR_REFUSED], closes: true, upstream: refusedOr({ method: 'POST', target: '/submit', body: '' }) },
    closeAfter,
  );
  add(
    'te-cl-post',
    (s) => request('POST', '/submit', ['Transfer-Encoding: chunked', 'Content-Length: 3'], chunked(s)),
    {
      statuses: [OK_OR_REFUSED],
      closes: true,
      upstream: [[], [{ method: 'POST', target: '/submit', body: smuggled('te-cl-post') }]],
    },
    closeAfter,
  );
  add(
    'cl-te-get',
    (s) => request('GET', '/hello', ['Content-Length: 5', 'Transfer-Encoding: chunked'], `0${CRLF}${CRLF}${s}`),
    { statuses: [OK_OR_REFUSED], closes: true, upstream: refusedOr({ method: 'GET', target: '/hello', body: '' }) },
    closeAfter,
  );
  add(
    'te-cl-get',
    (s) => request('GET', '/hello', ['Transfer-Encoding: chunked', `Content-Length: ${chunked(s).length}`], chunked(s)),
    {
      statuses: [OK_OR_REFUSED],
      closes: true,
      upstream: refusedOr({ method: 'GET', target: '/hello', body: smuggled('te-cl-get') }),
    },
    closeAfter,
  );
  add(
    'cl-cl-differ',
    (s) => request('GET', '/hello', ['Content-Length: 0', cl(s)], s),
    { statuses: [REFUSED], closes: true, upstream: [[]] },
    'RFC 9112 §6.3 (5): differing Content-Length values are unrecoverable: 400 and close',
  );
  add(
    'cl-list-differ',
    (s) => request('GET', '/hello', [`Content-Length: 0, ${s.length}`], s),
    { statuses: [REFUSED], closes: true, upstream: [[]] },
    'RFC 9112 §6.3 (5)',
  );
  add(
    'cl-cl-same',
    (s) => request('GET', '/hello', [cl(s), cl(s), 'Connection: close'], s),
    {
      statuses: [OK_OR_REFUSED],
      upstream: refusedOr({ method: 'GET', target: '/hello', body: smuggled('cl-cl-same') }),
    },
    'RFC 9110 §8.6: identical values MAY be taken as one',
  );
  // Content-Length = 1*DIGIT (RFC 9110 §8.6); anything else is invalid: 400 and close (RFC 9112 §6.3 (5)).
  for (const [label, value] of [
    ['plus', '+N'],
    ['minus', '-N'],
    ['hex', '0xN'],
    ['decimal', 'N.0'],
    ['exponent', 'Ne0'],
    ['huge', '99999999999999999999'],
    ['empty', ''],
    ['letters', 'N abc'],
    ['comma-empty', 'N,'],
    ['nul', 'N\0'],
  ] as const) {
    add(
      `cl-${label}`,
      (s) =>
        request(
          'GET',
          '/hello',
          [`Content-Length: ${value.replace('N', String(label === 'hex' ? s.length.toString(16) : s.length))}`],
          s,
        ),
      { statuses: [REFUSED], closes: true, upstream: [[]] },
      'invalid Content-Length: RFC 9112 §6.3 (5)',
    );
  }
  for (const [label, value] of [
    ['leading-spaces', '   N'],
    ['trailing-spaces', 'N   '],
    ['tab', '\tN'],
    ['leading-zeros', '000N'],
  ] as const) {
    add(
      `cl-${label}`,
      (s) =>
        request(
          'GET',
          '/hello',
          [
            `Content-Length:${value.startsWith('\t') ? '' : ' '}${value.replace('N', String(s.length))}`,
            'Connection: close',
          ],
          s,
        ),
      {
        statuses: [OK_OR_REFUSED],
        upstream: refusedOr({ method: 'GET', target: '/hello', body: smuggled(`cl-${label}`) }),
      },
      'valid: OWS around the value is not part of it; leading zeros are digits',
    );
  }
  return out;
}

// ---------------------------------------------------------------- TE.TE obfuscation

function transferEncodingObfuscation(): DesyncCase[] {
  const out: DesyncCase[] = [];
  const refusedAndClosed = { statuses: [REFUSED], closes: true, upstream: [[]] };
  const add = (
    name: string,
    teLines: string[],
    expect: DesyncCase['expect'] | 'framed',
    note: string,
    version = 'HTTP/1.1',
  ) => {
    const s = smuggled(name);
    const framed = { statuses: [OK_OR_REFUSED], upstream: refusedOr({ method: 'GET', target: '/hello', body: s }) };
    out.push({
      name,
      bytes: request('GET', '/hello', teLines, chunked(s), version),
      expect: expect === 'framed' ? framed : expect,
      note,
    });
  };
  const notFinal = 'RFC 9112 §6.3 (4): TE present and chunked not final: 400 and close';
  add('te-xchunked', ['Transfer-Encoding: xchunked'], refusedAndClosed, notFinal);
  add('te-chunked-identity', ['Transfer-Encoding: chunked, identity'], refusedAndClosed, notFinal);
  add(
    'te-dup-chunked-identity',
    ['Transfer-Encoding: chunked', 'Transfer-Encoding: identity'],
    refusedAndClosed,
    `${notFinal} (field lines combine, RFC 9110 §5.3)`,
  );
  add(
    'te-identity-chunked',
    ['Transfer-Encoding: identity, chunked'],
    'framed',
    'identity is no longer a transfer coding (501 allowed); if accepted, chunked is final and frames the body',
  );
  add('te-leading-space', ['Transfer-Encoding:    chunked'], 'framed', 'OWS before the value is not part of it');
  add('te-tab-value', ['Transfer-Encoding:\tchunked'], 'framed', 'HTAB is OWS');
  add('te-uppercase', ['Transfer-Encoding: CHUNKED'], 'framed', 'coding names are case-insensitive (RFC 9112 §7)');
  add(
    'te-space-before-colon',
    ['Transfer-Encoding : chunked'],
    refusedAndClosed,
    'RFC 9112 §5.1: whitespace before the colon MUST be refused with 400',
  );
  add('te-tab-before-colon', ['Transfer-Encoding\t: chunked'], refusedAndClosed, 'RFC 9112 §5.1');
  add(
    'te-duplicate-chunked',
    ['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'],
    {
      statuses: [OK_OR_REFUSED],
      upstream: refusedOr({ method: 'GET', target: '/hello', body: smuggled('te-duplicate-chunked') }),
    },
    'chunked applied twice is not allowed to a sender (RFC 9112 §6.1); a recipient may refuse or decode once',
  );
  add(
    'te-obs-fold',
    ['Transfer-Encoding:', ' chunked'],
    'framed',
    'RFC 9112 §5.2: obs-fold is refused or replaced by SP',
  );
  add(
    'te-obs-fold-identity',
    ['Transfer-encoding: chunked', ' , identity'],
    refusedAndClosed,
    'obs-fold joined gives "chunked , identity": not final; refused either way',
  );
  add('te-vertical-tab', ['Transfer-Encoding:\x0bchunked'], refusedAndClosed, 'VT is not OWS: the coding is unknown');
  add('te-nul', ['Transfer-Encoding: chunked\0'], refusedAndClosed, 'NUL in a field value: 400 (RFC 9110 §5.5)');
  add('te-quoted', ['Transfer-Encoding: "chunked"'], refusedAndClosed, notFinal);
  add(
    'te-http10',
    ['Transfer-Encoding: chunked', 'Connection: keep-alive'],
    {
      statuses: [OK_OR_REFUSED],
      closes: true,
      upstream: refusedOr({ method: 'GET', target: '/hello', body: smuggled('te-http10') }),
    },
    'RFC 9112 §6.1: TE in an HTTP/1.0 message: framing faulty, close after',
    'HTTP/1.0',
  );
  return out;
}

// ---------------------------------------------------------------- chunk syntax

/** POST /submit, chunked, then a pipelined smuggled request that the gateway must judge itself (403) or never read. */
function chunkSyntax(): DesyncCase[] {
  const out: DesyncCase[] = [];
  const add = (name: string, body: string, expect: DesyncCase['expect'], note: string) => {
    out.push({
      name,
      bytes: request('POST', '/submit', ['Transfer-Encoding: chunked'], body + smuggled(name)),
      expect: { ...expect, allowAborted: true },
      note,
    });
  };
  const valid = (decoded: string) => ({
    statuses: [[200], [403, 0]],
    upstream: [[{ method: 'POST', target: '/submit', body: decoded }]],
  });
  const refused = { statuses: [REFUSED], closes: true, upstream: [[]] };
  const loose = { statuses: [OK_OR_REFUSED, [403, 0]] };
  add(
    'chunk-ext',
    `5;ext=1${CRLF}hello${CRLF}0${CRLF}${CRLF}`,
    valid('hello'),
    'RFC 9112 §7.1.1: extensions are ignored',
  );
  add(
    'chunk-ext-quoted',
    `5;name="a;b"${CRLF}hello${CRLF}0${CRLF}${CRLF}`,
    valid('hello'),
    'quoted-string extension value',
  );
  add(
    'chunk-ext-empty',
    `5;${CRLF}hello${CRLF}0${CRLF}${CRLF}`,
    loose,
    'an empty extension name is invalid; refuse or ignore',
  );
  add(
    'chunk-ext-bare-lf',
    `5;\nxx${CRLF}hello${CRLF}0${CRLF}${CRLF}`,
    refused,
    'CVE-2025-55315 / CVE-2025-22871: LF inside the chunk line is invalid (RFC 9112 §7.1)',
  );
  add(
    'chunk-ext-long',
    `5;${'a'.repeat(20_000)}${CRLF}hello${CRLF}0${CRLF}${CRLF}`,
    { statuses: [[200, 400, 413, 431]] },
    'a very long extension: accepted or refused, never a desync',
  );
  add(
    'chunk-bare-lf-lines',
    `5\nhello\n0\n\n`,
    { statuses: [OK_OR_REFUSED, [403, 0]] },
    'RFC 9112 §2.2 lets a recipient take LF as line end in the head, not clearly in chunk lines',
  );
  add('chunk-bare-cr', `5\rhello${CRLF}0${CRLF}${CRLF}`, refused, 'RFC 9112 §2.2: a bare CR is invalid');
  add('chunk-leading-zeros', `0005${CRLF}hello${CRLF}0${CRLF}${CRLF}`, valid('hello'), 'chunk-size = 1*HEXDIG');
  add(
    'chunk-size-overflow',
    `fffffffffffffffff5${CRLF}hello${CRLF}0${CRLF}${CRLF}`,
    refused,
    'a size that overflows 64 bits (wraps to 5 in a careless parser)',
  );
  add('chunk-size-0x', `0x5${CRLF}hello${CRLF}0${CRLF}${CRLF}`, refused, 'chunk-size is HEXDIG only');
  add(
    'chunk-size-space',
    `5 ${CRLF}hello${CRLF}0${CRLF}${CRLF}`,
    loose,
    'BWS is only allowed before ";" (RFC 9112 §7.1.1)',
  );
  add('chunk-size-negative', `-5${CRLF}hello${CRLF}0${CRLF}${CRLF}`, refused, 'not HEXDIG');
  add('chunk-data-longer', `3${CRLF}hello${CRLF}0${CRLF}${CRLF}`, refused, 'chunk data not followed by CRLF');
  add(
    'chunk-trailer-forbidden',
    `5${CRLF}hello${CRLF}0${CRLF}Content-Length: 50${CRLF}Transfer-Encoding: chunked${CRLF}X-Client-Name: FORGED-admin${CRLF}Host: evil.example${CRLF}${CRLF}`,
    { statuses: [OK_OR_REFUSED, [403, 0]], upstream: refusedOr({ method: 'POST', target: '/submit', body: 'hello' }) },
    'RFC 9110 §6.5.1: framing, routing and identity fields in a trailer must not be used (nor forwarded as fields)',
  );
  out.push({
    name: 'chunk-missing-final-crlf',
    bytes: request('POST', '/submit', ['Transfer-Encoding: chunked'], `5${CRLF}hello${CRLF}0${CRLF}`),
    expect: { statuses: [[0, 200, 400, 408]] },
    note: 'the trailer section never ends: the gateway may wait; nothing after it exists to smuggle',
  });
  return out;
}

// ---------------------------------------------------------------- the head

function headSyntax(): DesyncCase[] {
  const n = (name: string) => smuggled(name);
  const refused = { statuses: [REFUSED], closes: true, upstream: [[]] };
  const helloOrRefused = { statuses: [[200, 400]], upstream: refusedOr({ method: 'GET', target: '/hello' }) };
  return [
    {
      name: 'head-bare-lf',
      bytes: 'GET /hello HTTP/1.1\nHost: localhost\nConnection: close\n\n',
      expect: helloOrRefused,
      note: 'RFC 9112 §2.2: a recipient MAY take LF alone as a line end',
    },
    {
      name: 'head-bare-lf-hides-cl',
      bytes: `GET /hello HTTP/1.1${CRLF}Host: localhost${CRLF}X-A: b\nContent-Length: ${n('head-bare-lf-hides-cl').length}${CRLF}Connection: close${CRLF}${CRLF}${n('head-bare-lf-hides-cl')}`,
      expect: {
        statuses: [OK_OR_REFUSED],
        upstream: [
          [],
          [{ method: 'GET', target: '/hello', body: n('head-bare-lf-hides-cl') }],
          [{ method: 'GET', target: '/hello', body: '' }],
        ],
      },
      note: 'CVE-2022-32214: the LF either ends the X-A line (then CL frames the body) or is an invalid value character (400)',
    },
    {
      name: 'head-bare-cr-before-te',
      bytes: `POST /submit HTTP/1.1${CRLF}Host: localhost${CRLF}X-Abc: \rxTransfer-Encoding: chunked${CRLF}Content-Length: 5${CRLF}${CRLF}1${CRLF}A${CRLF}0${CRLF}${CRLF}`,
      expect: refused,
      note: 'CVE-2023-30589; RFC 9112 §2.2: a bare CR MUST be invalid or replaced by SP',
    },
    {
      name: 'head-ended-by-cr-x',
      bytes: `GET /hello HTTP/1.1${CRLF}Host: localhost${CRLF}\rX${n('head-ended-by-cr-x')}`,
      expect: refused,
      note: 'CVE-2025-23167: the head must end with CRLF CRLF',
    },
    {
      name: 'head-obs-fold',
      bytes: request('GET', '/hello', ['X-Folded: a', ' b', 'Connection: close']),
      expect: helloOrRefused,
      note: 'RFC 9112 §5.2: refuse, or replace the fold with SP',
    },
    {
      name: 'head-obs-fold-identity',
      bytes: request('GET', '/hello', ['X-Folded: a', ' X-Client-Name: FORGED-admin', 'Connection: close']),
      expect: helloOrRefused,
      note: 'a fold must never become a header line of its own',
    },
    {
      name: 'head-fold-after-request-line',
      bytes: rawHead(['GET /hello HTTP/1.1', ' X-Client-Name: FORGED-admin', 'Host: localhost', 'Connection: close']),
      expect: helloOrRefused,
      note: 'RFC 9112 §2.2: whitespace before the first field: refuse or ignore that line',
    },
    {
      name: 'head-space-before-colon',
      bytes: request(
        'GET',
        '/hello',
        [`Content-Length : ${n('head-space-before-colon').length}`],
        n('head-space-before-colon'),
      ),
      expect: refused,
      note: 'RFC 9112 §5.1: MUST be 400',
    },
    {
      name: 'head-nul-value',
      bytes: request('GET', '/hello', ['X-Nul: a\0b', 'Connection: close']),
      expect: refused,
      note: 'RFC 9110 §5.5: NUL is never allowed',
    },
    {
      name: 'head-nul-name',
      bytes: request('GET', '/hello', ['X-Cli\0ent-Name: FORGED-admin', 'Connection: close']),
      expect: refused,
      note: 'a field name is a token',
    },
    {
      name: 'head-bad-token-name',
      bytes: request('GET', '/hello', ['X(Client)Name: FORGED-admin', 'Connection: close']),
      expect: refused,
      note: 'RFC 9110 §5.1: field-name = token',
    },
    {
      name: 'head-space-in-name',
      bytes: request('GET', '/hello', ['X-Client Name: FORGED-admin', 'Connection: close']),
      expect: refused,
      note: 'RFC 9110 §5.1',
    },
    {
      name: 'head-empty-name',
      bytes: request('GET', '/hello', [': FORGED-admin', 'Connection: close']),
      expect: refused,
      note: 'an empty name is no token',
    },
    {
      name: 'head-del-in-value',
      bytes: request('GET', '/hello', ['X-Del: a\x7fb', 'Connection: close']),
      expect: helloOrRefused,
      note: 'DEL is not field-vchar; some parsers accept it',
    },
    {
      name: 'head-underscore-identity',
      bytes: request('GET', '/hello', ['X_Client_Name: FORGED-admin', 'X_Client_Verify: FORGED', 'Connection: close']),
      expect: { statuses: [[200]], upstream: [[{ method: 'GET', target: '/hello' }]] },
      note: 'CGI folds _ into -',
    },
    {
      name: 'head-forged-identity',
      bytes: request('GET', '/hello', [
        'X-Client-Name: FORGED-admin',
        'x-client-verify: FORGED',
        'X-Client-Role: FORGED-admin',
        'SSL-Client-Verify: FORGED',
        'X-Forwarded-Client-Cert: FORGED',
        'Connection: close',
      ]),
      expect: { statuses: [[200]], upstream: [[{ method: 'GET', target: '/hello' }]] },
    },
  ];
}

// ---------------------------------------------------------------- Expect: 100-continue

function expectContinue(): DesyncCase[] {
  const s = (name: string) => smuggled(name);
  const waitFor100 = { waitFor: /^HTTP\/1\.1 100 /m, deadlineMs: 1000 };
  return [
    {
      name: 'expect-post',
      bytes: [
        request('POST', '/submit', ['Content-Length: 5', 'Expect: 100-continue', 'Connection: close']),
        waitFor100,
        'hello',
      ],
      expect: { statuses: [[200]], upstream: [[{ method: 'POST', target: '/submit', body: 'hello' }]] },
    },
    {
      name: 'expect-get-no-body',
      bytes: request('GET', '/hello', ['Expect: 100-continue', 'Connection: close']),
      expect: { statuses: [[200, 417]], upstream: refusedOr({ method: 'GET', target: '/hello' }) },
    },
    {
      name: 'expect-get-cl-smuggle',
      bytes: [
        request('GET', '/hello', [cl(s('expect-get-cl-smuggle')), 'Expect: 100-continue', 'Connection: close']),
        waitFor100,
        s('expect-get-cl-smuggle'),
      ],
      expect: {
        statuses: [[...OK_OR_REFUSED, 417]],
        upstream: refusedOr({ method: 'GET', target: '/hello', body: s('expect-get-cl-smuggle') }),
      },
    },
    {
      name: 'expect-get-te-smuggle',
      bytes: [
        request('GET', '/hello', ['Transfer-Encoding: chunked', 'Expect: 100-continue', 'Connection: close']),
        waitFor100,
        chunked(s('expect-get-te-smuggle')),
      ],
      expect: {
        statuses: [[...OK_OR_REFUSED, 417]],
        upstream: refusedOr({ method: 'GET', target: '/hello', body: s('expect-get-te-smuggle') }),
      },
    },
    {
      name: 'expect-denied-then-body',
      bytes: [
        request('POST', '/admin', [cl(s('expect-denied-then-body')), 'Expect: 100-continue']),
        { waitFor: /^HTTP\/1\.1 (100|403) /m, deadlineMs: 1000 },
        s('expect-denied-then-body'),
      ],
      expect: { statuses: [[403], [0]], upstream: [[]] },
      note: "the body sent after the refusal is the refused request's body, never a request",
    },
  ];
}

// ---------------------------------------------------------------- HTTP/1.0, pipelining

function http10AndPipelining(): DesyncCase[] {
  const s = (name: string) => smuggled(name);
  const hello = { method: 'GET', target: '/hello' };
  return [
    {
      name: 'h10-keep-alive-body',
      bytes: request(
        'GET',
        '/hello',
        ['Connection: keep-alive', cl(s('h10-keep-alive-body'))],
        s('h10-keep-alive-body'),
        'HTTP/1.0',
      ),
      expect: {
        statuses: [OK_OR_REFUSED],
        upstream: refusedOr({ method: 'GET', target: '/hello', body: s('h10-keep-alive-body') }),
      },
    },
    {
      name: 'h10-no-host',
      bytes: 'GET /hello HTTP/1.0\r\n\r\n',
      expect: { statuses: [[200, 400]], upstream: refusedOr(hello) },
      note: 'Host is optional in HTTP/1.0',
    },
    {
      name: 'h10-post',
      bytes: 'POST /submit HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello',
      expect: { statuses: [[200]], upstream: [[{ method: 'POST', target: '/submit', body: 'hello' }]] },
    },
    {
      name: 'pipeline-mixed',
      bytes: [
        request('GET', '/hello', []),
        request('GET', '/smuggled-pipeline-mixed', ['X-Client-Name: FORGED-admin']),
        request('POST', '/submit', ['Content-Length: 5'], 'hello'),
        request('GET', '/hello', ['Connection: close']),
      ].join(''),
      expect: {
        statuses: [[200], [403], [200], [200]],
        upstream: [[hello, { method: 'POST', target: '/submit', body: 'hello' }, hello]],
      },
    },
    {
      name: 'pipeline-denied-with-body',
      bytes:
        request('POST', '/admin', [cl(s('pipeline-denied-with-body'))], s('pipeline-denied-with-body')) +
        request('GET', '/hello', ['Connection: close']),
      expect: { statuses: [[403], [200, 0]], upstream: [[hello], []] },
      note: "the denied request's body is skipped by its Content-Length; the gateway may also close after a refusal",
    },
    {
      name: 'pipeline-te-get-then-allowed',
      bytes:
        request('GET', '/hello', ['Transfer-Encoding: chunked'], chunked(s('pipeline-te-get-then-allowed'))) +
        request('GET', '/hello', ['Connection: close']),
      expect: {
        statuses: [OK_OR_REFUSED, [200, 0]],
        upstream: [[], [hello], [{ ...hello, body: s('pipeline-te-get-then-allowed') }, hello]],
      },
    },
    {
      // Found by the fuzzer: Node parses pipelined requests ahead of the responses, so the one
      // behind a refusal that closes the connection was forwarded although its answer never could be.
      name: 'pipeline-behind-closing-refusal',
      bytes: [
        request('GET', '/hello', []),
        `GET /hello HTTP/1.1${CRLF}Host: localhost${CRLF}Host: localhost${CRLF}${CRLF}`,
        request('GET', '/hello', ['Connection: close']),
      ].join(''),
      expect: { statuses: [[200], [400]], upstream: [[hello]], closes: true },
    },
    {
      name: 'pipeline-split-writes',
      bytes: [
        'GET /hel',
        `lo HTTP/1.1${CRLF}Host: local`,
        `host${CRLF}${CRLF}GET /smuggled-pipeline-split-writes HTTP/1.1${CRLF}Ho`,
        `st: localhost${CRLF}${CRLF}GET /hello HTTP/1.1${CRLF}Host: localhost${CRLF}Connection: close${CRLF}${CRLF}`,
      ],
      expect: { statuses: [[200], [403], [200]], upstream: [[hello, hello]] },
    },
  ];
}

// ---------------------------------------------------------------- Host

/** RFC 9112 §3.2: a request with no Host, more than one, or an invalid one MUST get a 400. */
function hostAbuse(): DesyncCase[] {
  const head = (lines: string[]) => rawHead(['GET /hello HTTP/1.1', ...lines, 'Connection: close']);
  const refused = { statuses: [[400, 421]], upstream: [[]] };
  return [
    {
      name: 'host-duplicate',
      bytes: head(['Host: localhost', 'Host: evil.example']),
      expect: refused,
      note: 'RFC 9112 §3.2: more than one Host is a 400',
    },
    {
      name: 'host-duplicate-same',
      bytes: head(['Host: localhost', 'Host: localhost']),
      expect: refused,
      note: 'RFC 9112 §3.2: even twice the same',
    },
    {
      name: 'host-userinfo',
      bytes: head(['Host: localhost:1@evil.example']),
      expect: refused,
      note: 'Host = uri-host [":" port]; no userinfo',
    },
    { name: 'host-space', bytes: head(['Host: local host']), expect: refused },
    { name: 'host-two-ports', bytes: head(['Host: localhost:1:2']), expect: refused },
    {
      name: 'host-empty',
      bytes: head(['Host:']),
      expect: { statuses: [[200, 400, 421]], upstream: refusedOr({ method: 'GET', target: '/hello' }) },
      note: 'an empty Host is valid syntax only when the target has no authority; unsure whether a gateway should route it',
    },
    {
      name: 'host-missing-http11',
      bytes: head([]),
      expect: { statuses: [[400]], upstream: [[]] },
      note: 'RFC 9112 §3.2: HTTP/1.1 without Host MUST be a 400',
    },
    {
      name: 'host-other',
      bytes: head(['Host: evil.example']),
      expect: { statuses: [[421, 400]], upstream: [[]] },
      note: 'RFC 9110 §7.4: not the name the TLS connection was made for',
    },
    {
      name: 'absolute-form-other-host',
      bytes: rawHead(['GET https://evil.example/hello HTTP/1.1', 'Host: localhost', 'Connection: close']),
      expect: refused,
      note: "RFC 9112 §3.2.2: the target's authority overrides Host",
    },
    {
      name: 'absolute-form-same-host',
      bytes: rawHead(['GET https://localhost/hello HTTP/1.1', 'Host: localhost', 'Connection: close']),
      expect: { statuses: [[200, 400]], upstream: refusedOr({ method: 'GET', target: '/hello' }) },
    },
  ];
}

// ---------------------------------------------------------------- versions

/** Odd versions, with and without a client certificate: whatever the answer, the process lives. */
function oddVersions(): DesyncCase[] {
  const out: DesyncCase[] = [];
  const lines: Array<[string, string]> = [
    ['http2', 'GET / HTTP/2.0'],
    ['http12', 'GET /hello HTTP/1.2'],
    ['http09', 'GET /hello'],
    ['http99', 'GET /hello HTTP/9.9'],
    ['lowercase', 'GET /hello http/1.1'],
    ['http110', 'GET /hello HTTP/1.10'],
    ['http20-hello', 'GET /hello HTTP/2.0'],
  ];
  for (const [label, line] of lines) {
    for (const client of ['alice', 'none'] as const) {
      const name = `version-${label}-${client === 'none' ? 'no-cert' : 'cert'}`;
      const body = label === 'http09' ? `${line}${CRLF}` : rawHead([line, 'Host: localhost', 'Connection: close']);
      out.push({
        name,
        bytes: body,
        client,
        expect: {
          statuses: [[0, 200, 400, 403, 505]],
          upstream: client === 'none' ? [[]] : [[], [{ method: 'GET', target: '/hello' }]],
        },
        note: 'RFC 9112 §2.3: HTTP/1.2 may be served as 1.1; others refused (505/400); the gateway must survive each',
      });
    }
  }
  return out;
}

// ---------------------------------------------------------------- Upgrade

/** An upgrade the app declines (200): the connection is HTTP again, or closed, never a tunnel. */
function upgrades(): DesyncCase[] {
  const s = (name: string) => smuggled(name);
  const upgrade = (extra: string[] = []) =>
    request('GET', '/hello', [
      'Connection: Upgrade',
      'Upgrade: websocket',
      'Sec-WebSocket-Version: 13',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      ...extra,
    ]);
  const hello = { method: 'GET', target: '/hello' };
  return [
    {
      name: 'upgrade-declined-then-smuggle',
      bytes: [upgrade(), { responses: 1, deadlineMs: 2000 }, s('upgrade-declined-then-smuggle')],
      expect: { statuses: [[200], [403, 0]], upstream: [[hello]] },
    },
    {
      name: 'upgrade-declined-same-write',
      bytes: upgrade() + s('upgrade-declined-same-write'),
      expect: { statuses: [[200], [403, 0]], upstream: [[hello]] },
    },
    {
      name: 'upgrade-with-cl-body',
      bytes: upgrade([cl(s('upgrade-with-cl-body'))]) + s('upgrade-with-cl-body'),
      expect: {
        statuses: [[200, 400, 0]],
        upstream: [[], [{ ...hello, body: '' }], [{ ...hello, body: s('upgrade-with-cl-body') }]],
      },
      note: 'unsure which is right: refused, forwarded without the body (and without its Content-Length), or with it framed; never a head announcing a body that is not sent',
    },
  ];
}

export const DESYNC_CASES: readonly DesyncCase[] = [
  ...bodyOnEveryMethod(),
  ...connectionNamed(),
  ...framingConflicts(),
  ...transferEncodingObfuscation(),
  ...chunkSyntax(),
  ...headSyntax(),
  ...expectContinue(),
  ...http10AndPipelining(),
  ...hostAbuse(),
  ...oddVersions(),
  ...upgrades(),
];
