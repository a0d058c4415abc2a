/**
 * The gateway's admission decision without sockets or TLS: the facts of a request in, the
 * refusal or the exact head the upstream would get out. The raw-bytes suite
 * (gateway-desync.test.ts) proves the same rules through the real gateway and two apps; this
 * one pins each rule on its own, including the ones Node's parser would not let through.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { parseCertificatePem, identityOf } from '../src/pki/certificate.js';
import { compilePolicy } from '../src/policy/index.js';
import { admitRequest, type RequestFacts } from '../src/gateway/request/request-admission.js';
import { compileRoutes } from '../src/gateway/routes.js';
import {
  INBOUND_RULES,
  forwardableRequestHeaders,
  forwardableResponseHeaders,
  inboundRule,
} from '../src/gateway/identity-headers/inbound-headers.js';
import { framingOfHttp1 } from '../src/gateway/request/request-framing.js';
import { isValidAuthority } from '../src/gateway/request/request-host.js';
import type { PeerVerdict } from '../src/gateway/peer-admission.js';
import { makeCa, makeLeaf } from './helpers/openssl-pki.js';
import { makeTempDir } from './helpers/tmp.js';

const tmp = makeTempDir('gatehouse-admission-');
let verdict: PeerVerdict;
const noCert: PeerVerdict = {
  peer: null,
  refusal: { reason: 'NO_CERTIFICATE', detail: 'no client certificate was presented' },
};

before(async () => {
  const ca = await makeCa(tmp.dir, 'Admission Test CA');
  const leaf = await makeLeaf(ca, { subject: '/O=acme/OU=web/CN=alice' });
  const cert = parseCertificatePem(leaf.pem)[0]!;
  verdict = { peer: { cert, identity: identityOf(cert), chainDer: [cert.der], fullChain: true }, refusal: null };
});
after(() => tmp.cleanup());

const policy = compilePolicy(
  {
    version: 1,
    name: 'admission',
    rules: [{ id: 'alice', effect: 'allow', methods: ['GET', 'POST', 'DELETE'], paths: ['/*'], identities: ['alice'] }],
  },
  'test',
);
const routes = compileRoutes(
  [
    { host: 'app.example', pathPrefix: '', upstreams: ['http://127.0.0.1:1'] },
    { host: '*', pathPrefix: '', upstreams: ['http://127.0.0.1:2'] },
  ] as never,
  (_route, label) => label,
);
const settings = { headers: 'default' as const, maxHeaderBytes: 16 * 1024, denyMessage: null, gatewaySpiffeId: null };

function h1(lines: [string, string][], options: Partial<RequestFacts> = {}): RequestFacts {
  return {
    method: 'GET',
    httpVersion: '1.1',
    http2: false,
    target: '/hello',
    rawHeaders: lines.flat(),
    upgrade: false,
    sni: null,
    remoteAddress: '127.0.0.1',
    ...options,
  };
}

function admit(facts: RequestFacts, who: PeerVerdict = verdict) {
  return admitRequest(facts, who, policy, routes, settings, {});
}

function refusal(facts: RequestFacts, who?: PeerVerdict): { reason: string; message: string } {
  const a = admit(facts, who);
  assert.equal(a.ok, false, `expected a refusal for ${JSON.stringify(facts.rawHeaders)}`);
  return a as { reason: string; message: string };
}

function upstreamHeaders(facts: RequestFacts): [string, string][] {
  const a = admit(facts);
  assert.ok(a.ok, `expected admission: ${!a.ok ? a.message : ''}`);
  const out: [string, string][] = [];
  for (let i = 0; i < a.headers.length; i += 2) out.push([a.headers[i]!.toLowerCase(), a.headers[i + 1]!]);
  return out;
}

const values = (headers: [string, string][], name: string) => headers.filter(([n]) => n === name).map(([, v]) => v);

test('admission-request-line-claiming-http2-or-other-versions-answers-505', () => {
  for (const version of ['2.0', '0.9', '1.2', '9.9']) {
    const r = refusal(h1([['Host', 'app.example']], { httpVersion: version }), noCert);
    assert.equal(r.reason, 'VERSION_UNSUPPORTED', version);
    assert.match(r.message, /^505 HTTP Version Not Supported/);
  }
  assert.equal(
    refusal(h1([['Host', 'x']], { method: 'CONNECT', http2: true, httpVersion: '2.0', authority: 'x' })).reason,
    'METHOD_UNSUPPORTED',
  );
});

test('admission-framing-decided-once-and-never-taken-from-the-client-headers', () => {
  const chunkedGet = admit(
    h1([
      ['Host', 'app.example'],
      ['Transfer-Encoding', 'chunked'],
    ]),
  );
  assert.ok(chunkedGet.ok);
  assert.deepEqual(chunkedGet.framing, { kind: 'chunked' }, 'a GET body is framed, not dropped and not left unframed');
  const lengthGet = admit(
    h1([
      ['Host', 'app.example'],
      ['Content-Length', '12'],
      ['Connection', 'content-length, transfer-encoding, host'],
    ]),
  );
  assert.ok(lengthGet.ok);
  assert.deepEqual(lengthGet.framing, { kind: 'length', length: 12 }, 'Connection cannot remove the framing');
  const headers = upstreamHeaders(
    h1([
      ['Host', 'app.example'],
      ['Content-Length', '12'],
      ['Connection', 'content-length, host, x-client-name'],
    ]),
  );
  assert.deepEqual(values(headers, 'host'), ['app.example'], 'Connection cannot remove Host either');
  assert.deepEqual(values(headers, 'x-client-name'), ['alice'], 'nor a header the gateway adds');
  assert.deepEqual(
    [...values(headers, 'content-length'), ...values(headers, 'transfer-encoding'), ...values(headers, 'connection')],
    [],
    'the forwarder writes framing itself',
  );
});

test('admission-ambiguous-framing-refused-before-the-certificate-is-even-looked-at', () => {
  const cases: [string, [string, string][], string, string?][] = [
    [
      'CL and TE',
      [
        ['Content-Length', '5'],
        ['Transfer-Encoding', 'chunked'],
      ],
      'FRAMING_INVALID',
    ],
    [
      'two lengths',
      [
        ['Content-Length', '5'],
        ['Content-Length', '5'],
      ],
      'FRAMING_INVALID',
    ],
    ['signed length', [['Content-Length', '+5']], 'FRAMING_INVALID'],
    ['hex length', [['Content-Length', '0x5']], 'FRAMING_INVALID'],
    ['chunked not last', [['Transfer-Encoding', 'chunked, identity']], 'FRAMING_INVALID'],
    [
      'chunked twice',
      [
        ['Transfer-Encoding', 'chunked'],
        ['Transfer-Encoding', 'chunked'],
      ],
      'FRAMING_INVALID',
    ],
    ['unknown coding', [['Transfer-Encoding', 'xchunked']], 'FRAMING_INVALID'],
    ['gzip then chunked', [['Transfer-Encoding', 'gzip, chunked']], 'TRANSFER_CODING_UNSUPPORTED'],
    ['TE in HTTP/1.0', [['Transfer-Encoding', 'chunked']], 'FRAMING_INVALID', '1.0'],
  ];
  for (const [what, lines, reason, version] of cases) {
    assert.equal(
      refusal(h1([['Host', 'app.example'], ...lines], version ? { httpVersion: version } : {}), noCert).reason,
      reason,
      what,
    );
  }
  assert.equal(
    refusal(
      h1(
        [
          ['Host', 'app.example'],
          ['Content-Length', '3'],
        ],
        { upgrade: true },
      ),
    ).reason,
    'FRAMING_INVALID',
    'an Upgrade with a body',
  );
  assert.deepEqual(framingOfHttp1('1.1', ['Content-Length', '0']), {
    ok: true,
    framing: { kind: 'length', length: 0 },
  });
});

test('admission-one-valid-host-or-400', () => {
  for (const [what, lines] of [
    [
      'duplicate',
      [
        ['Host', 'app.example'],
        ['Host', 'app.example'],
      ],
    ],
    ['userinfo', [['Host', 'localhost:1@evil']]],
    ['space', [['Host', 'a b']]],
    ['two ports', [['Host', 'localhost:1:2']]],
    ['port 0', [['Host', 'localhost:0']]],
    ['empty', [['Host', '']]],
    ['missing in HTTP/1.1', []],
  ] as [string, [string, string][]][]) {
    assert.equal(refusal(h1(lines), noCert).reason, 'HOST_INVALID', what);
  }
  for (const ok of ['app.example', 'app.example:8443', '127.0.0.1:1', '[::1]:443', 'localhost.'])
    assert.ok(isValidAuthority(ok), ok);
  assert.equal(
    refusal(h1([['Host', 'app.example']], { target: 'http://other.example/hello' })).reason,
    'HOST_INVALID',
    'absolute-form naming another host',
  );
  const absolute = admit(h1([['Host', 'app.example']], { target: 'http://app.example/hello?x=1' }));
  assert.ok(absolute.ok);
  assert.equal(absolute.pathAndQuery, '/hello?x=1', 'forwarded in origin form');
});

test('admission-http10-without-host-gets-the-route-host-written-in', () => {
  const headers = upstreamHeaders(h1([], { httpVersion: '1.0' }));
  assert.deepEqual(values(headers, 'host'), ['localhost'], 'the any-host route: no TLS name, so a fixed name');
  const viaSni = upstreamHeaders(h1([], { httpVersion: '1.0', sni: 'app.example' }));
  assert.deepEqual(values(viaSni, 'host'), ['app.example']);
});

test('admission-http2-authority-and-framing', () => {
  const h2 = (rawHeaders: string[], options: Partial<RequestFacts> = {}): RequestFacts => ({
    method: 'POST',
    httpVersion: '2.0',
    http2: true,
    target: '/hello',
    authority: 'app.example',
    rawHeaders: [':method', 'POST', ':path', '/hello', ':authority', 'app.example', ':scheme', 'https', ...rawHeaders],
    endStream: false,
    upgrade: false,
    sni: null,
    remoteAddress: '::1',
    ...options,
  });
  assert.equal(refusal(h2(['transfer-encoding', 'chunked'])).reason, 'FRAMING_INVALID');
  assert.equal(refusal(h2(['host', 'internal.example'])).reason, 'HOST_INVALID');
  assert.equal(
    refusal(h2(['content-length', '5'], { endStream: true })).reason,
    'FRAMING_INVALID',
    'a length for a stream that ended',
  );
  assert.equal(refusal(h2([], { authority: 'a@b' })).reason, 'HOST_INVALID');
  const streamed = admit(h2([]));
  assert.ok(streamed.ok);
  assert.deepEqual(streamed.framing, { kind: 'chunked' }, 'no content-length: chunked upstream');
  const headers = upstreamHeaders(h2(['content-length', '5']));
  assert.deepEqual(values(headers, 'host'), ['app.example']);
  assert.ok(!headers.some(([n]) => n.startsWith(':')), 'no pseudo-header upstream');
  assert.deepEqual(
    values(headers, 'forwarded'),
    ['for="[::1]";host="app.example";proto=https'],
    'RFC 7239 quotes an IPv6 address',
  );
});

test('admission-every-header-of-the-inbound-table-is-dropped-or-replaced-in-every-spelling', () => {
  const probes = INBOUND_RULES.filter((r) => r.action !== 'frame')
    .flatMap((r) => {
      const name = r.match === 'prefix' ? `${r.name}probe` : r.name;
      return [
        name,
        name.toUpperCase(),
        name.replace(/-/g, '_'),
        name
          .split('-')
          .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
          .join('-'),
      ];
    })
    .filter(
      (name) =>
        !['connection', 'upgrade', 'te', 'trailer', 'keep-alive'].includes(name.toLowerCase().replace(/_/g, '-')),
    );
  const sent: [string, string][] = [
    ['Host', 'app.example'],
    ...probes.map((n): [string, string] => [n, 'forged']),
    ['X-Request-Id', 'kept'],
    ['Authorization', 'Bearer kept'],
  ];
  const headers = upstreamHeaders(h1(sent));
  assert.deepEqual(
    headers.filter(([, v]) => v === 'forged'),
    [],
    'no client value of a table header reaches the app',
  );
  assert.deepEqual(values(headers, 'x-request-id'), ['kept']);
  assert.deepEqual(values(headers, 'authorization'), ['Bearer kept'], 'ordinary headers pass');
  for (const name of ['x-forwarded-for', 'x-real-ip', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded'])
    assert.equal(values(headers, name).length, 1, `${name}: the gateway's value, once`);
  assert.deepEqual(values(headers, 'x-forwarded-for'), ['127.0.0.1']);
  for (const name of [
    'X-Amzn-Mtls-Clientcert-Leaf',
    'Cf-Client-Cert-Der-Base64',
    'X-ARR-ClientCert',
    'SSL_CLIENT_S_DN',
    'X-SSL-Client-Verify',
    'X-Forwarded-Client-Cert',
    'x_http_method_override',
  ]) {
    assert.notEqual(inboundRule(name), null, name);
  }
  assert.equal(inboundRule('X-Clientele'), null, 'a look-alike that is not a prefix match is kept');
});

test('admission-response-headers-lose-hop-by-hop-and-conflicting-framing', () => {
  assert.deepEqual(
    forwardableResponseHeaders([
      'Content-Type',
      'text/plain',
      'Connection',
      'close, x-secret',
      'X-Secret',
      '1',
      'Keep-Alive',
      'timeout=5',
      'Content-Length',
      '2',
    ]),
    ['Content-Type', 'text/plain', 'Content-Length', '2'],
  );
  assert.deepEqual(
    forwardableResponseHeaders(['Transfer-Encoding', 'chunked', 'Content-Length', '2']),
    [],
    'a length beside chunked is not passed on',
  );
  assert.deepEqual(forwardableRequestHeaders(['Connection', 'x-a', 'X-A', '1', 'X-B', '2']), ['X-B', '2']);
});

test('admission-order-no-certificate-then-policy', () => {
  assert.equal(refusal(h1([['Host', 'app.example']]), noCert).reason, 'NO_CERTIFICATE');
  assert.equal(refusal(h1([['Host', 'app.example']], { method: 'PUT' })).reason, 'POLICY_DENIED');
  assert.equal(refusal(h1([['Host', 'app.example']], { sni: 'other.example' })).reason, 'MISDIRECTED');
  assert.equal(refusal(h1([['Host', 'app.example']], { target: '/%2e%2e/admin' })).reason, 'PATH_AMBIGUOUS');
  const allowed = admit(h1([['Host', 'app.example']], { method: 'DELETE' }));
  assert.ok(allowed.ok);
  assert.equal(allowed.route.label, 'routes[0]');
});

/** The table docs/gateway.md shows, rendered from INBOUND_RULES: the docs cannot drift from the code. */
function inboundRulesMarkdown(): string {
  const groups = new Map<string, string[]>();
  for (const r of INBOUND_RULES) {
    const key = `${r.action}|${r.why}`;
    groups.set(key, [...(groups.get(key) ?? []), r.match === 'prefix' ? `\`${r.name}*\`` : `\`${r.name}\``]);
  }
  const action = {
    frame: 'written by the gateway',
    strip: 'dropped',
    replace: "replaced by the gateway's value",
  } as const;
  const rows = [...groups].map(([key, names]) => {
    const [what, why] = key.split('|') as [keyof typeof action, string];
    return `| ${names.join(', ')} | ${action[what]} | ${why} |`;
  });
  return ['| client header (case and `_`/`-` folded) | what happens | why |', '|---|---|---|', ...rows].join('\n');
}

test('admission-inbound-table-in-docs-matches-the-code', async () => {
  const { readFileSync } = await import('node:fs');
  const docs = readFileSync('docs/gateway.md', 'utf8');
  const block = /<!-- inbound-headers:start -->\n([\s\S]*?)\n<!-- inbound-headers:end -->/.exec(docs)?.[1];
  assert.equal(
    block,
    inboundRulesMarkdown(),
    'docs/gateway.md between the inbound-headers markers must be exactly this table',
  );
});
