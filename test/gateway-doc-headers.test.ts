/**
 * docs/gateway.md against what an app really receives. The header tables of every identity
 * header preset (default, nginx, envoy, traefik), the forwarding headers, the quick start's
 * sample output and the inbound table are read from the doc; a real `gatehouse gateway` process
 * per preset sits in front of the header-echo app; a client presenting its intermediate makes a
 * real mTLS request carrying forged copies of every header the doc says is dropped or replaced.
 *
 * Every header the doc says is sent must arrive once, in the shape of the doc's example where it
 * gives one (`…` stands for "more"); nothing the doc says is dropped may arrive; and no
 * identity-related header (one the gateway would strip or replace if a client sent it) may
 * arrive unless the doc lists it. A header renamed in the code or in the doc fails here.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import * as pki from '../src/pki/index.js';
import { IDENTITY_HEADER_PRESETS } from '../src/gateway/identity-headers/identity-headers.js';
import { inboundRule } from '../src/gateway/identity-headers/inbound-headers.js';
import { enrollAgent, startCaFixture, writeClientCaBundle, type CaFixture } from './helpers/ca-fixture.js';
import { startEchoUpstream, type EchoUpstream } from './helpers/echo-upstream.js';
import { startGatewayProcess, type GatewayProcess } from './helpers/gateway-process.js';

const DOC = readFileSync('docs/gateway.md', 'utf8');
/** The quick start's gateway port, which the doc's examples show. */
const DOC_PORT = '9443';
const FORGED = 'forged-by-the-client';

// ---------------------------------------------------------------- reading the doc

interface Row {
  name: string;
  value: string;
}

/** The lines of `doc` from the heading line `heading` to the next heading of the same or a higher level. */
function section(heading: string): string {
  const lines = DOC.split('\n');
  const start = lines.indexOf(heading);
  assert.ok(start >= 0, `docs/gateway.md has the heading ${JSON.stringify(heading)}`);
  const level = /^#+/.exec(heading)![0].length;
  // A `# comment` inside a fenced block is not a heading.
  let fenced = false;
  const end = lines.findIndex((l, i) => {
    if (i <= start) return false;
    if (l.startsWith('```')) fenced = !fenced;
    return !fenced && /^#+ /.test(l) && /^#+/.exec(l)![0].length <= level;
  });
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n');
}

const splitCells = (line: string) =>
  line
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());

/** The rows of the first table in `text` whose header row is `| <first> | … |`; the first cell's backticked name. */
function table(text: string, first: string): Row[] {
  const lines = text.split('\n');
  const head = lines.findIndex((l) => l.startsWith('|') && splitCells(l)[0] === first);
  assert.ok(head >= 0, `a table starting with "| ${first} |"`);
  const rows: Row[] = [];
  for (let i = head + 2; i < lines.length && lines[i]!.startsWith('|'); i++) {
    const [nameCell, value] = splitCells(lines[i]!);
    const name = /^`([^`]+)`$/.exec(nameCell!)?.[1];
    assert.ok(name, `the first cell of ${lines[i]} is one backticked name`);
    rows.push({ name, value: value! });
  }
  assert.ok(rows.length > 0);
  return rows;
}

/** The doc's example in a value cell: the first backticked text that opens the cell or follows ": ". */
function exampleOf(value: string): string | null {
  return /(?:^|: )`([^`]+)`/.exec(value)?.[1] ?? null;
}

/**
 * An example as a pattern: `…` is "one or more characters" (after lowercase hex: more hex),
 * `<unix seconds>` and ten-digit numbers are Unix times, the quick start's port is the test's.
 */
function examplePattern(example: string, port: number): RegExp {
  let out = '';
  const tokens = example
    .replaceAll(DOC_PORT, '\u0001')
    .split(/(<unix seconds>|(?<!\d)\d{10}(?!\d)|[0-9a-f]{6,}…|…|\u0001)/);
  for (const token of tokens) {
    if (token === '<unix seconds>' || /^\d{10}$/.test(token)) out += '\\d{10}';
    else if (/^[0-9a-f]{6,}…$/.test(token)) out += '[0-9a-f]+';
    else if (token === '…') out += '.+?';
    else if (token === '\u0001') out += String(port);
    else out += token.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

/** Go's url.QueryUnescape, which the doc says traefik's values went through. */
const queryUnescape = (v: string) => decodeURIComponent(v.replace(/\+/g, ' '));

/** Every header name the inbound table says a client's copy never reaches the app as sent (prefixes as `name*`). */
function inboundTableNames(): Array<{ name: string; prefix: boolean; what: string }> {
  const start = DOC.indexOf('<!-- inbound-headers:start -->');
  const end = DOC.indexOf('<!-- inbound-headers:end -->');
  assert.ok(start > 0 && end > start, 'docs/gateway.md has the inbound-headers table');
  const rows = DOC.slice(start, end)
    .split('\n')
    .filter((l) => l.startsWith('|'))
    .slice(2);
  return rows.flatMap((line) => {
    const [names, what] = splitCells(line);
    return [...names!.matchAll(/`([^`]+)`/g)].map((m) => ({
      name: m[1]!.replace(/\*$/, ''),
      prefix: m[1]!.endsWith('*'),
      what: what!,
    }));
  });
}

/** A header of the identity or forwarding kind: one the gateway strips or replaces from clients (framing and hop-by-hop fields aside). */
function identityRelated(name: string): boolean {
  const rule = inboundRule(name);
  return rule !== null && rule.action !== 'frame' && !rule.why.startsWith('hop-by-hop');
}

interface DocumentedHeader extends Row {
  example: string | null;
}

/** What docs/gateway.md says each preset sends, and the forwarding headers it says every request gets. */
const documented = (() => {
  const presets: Record<string, DocumentedHeader[]> = {};
  const headings = DOC.split('\n').filter((l) => /^### `[a-z]+`$/.test(l));
  for (const heading of headings) {
    const preset = /`([a-z]+)`/.exec(heading)![1]!;
    const text = section(heading);
    // The envoy section names its one header in prose and tabulates the header's elements.
    const single = /^One header, `([^`]+)`/m.exec(text)?.[1];
    presets[preset] = single
      ? [{ name: single, value: '', example: null }]
      : table(text, 'header').map((r) => ({ ...r, example: exampleOf(r.value) }));
  }
  const forwarding = table(section('#### Forwarding headers'), 'header').map((r) => ({
    ...r,
    example: exampleOf(r.value),
  }));
  const xfccElements = table(section('### `envoy`'), 'element');
  const xfccExample = /```text\n(By=[^\n]+)\n```/.exec(section('### `envoy`'))?.[1];
  const traefikExample = /```text\n(Subject%3D[^\n]+)\n```/.exec(section('### `traefik`'))?.[1];
  assert.ok(xfccExample && traefikExample, 'the envoy and traefik sections show an example value');
  return { presets, forwarding, xfccElements, xfccExample, traefikExample };
})();

// ---------------------------------------------------------------- a real gateway per preset

let fixture: CaFixture;
let echo: EchoUpstream;
let clientDir = '';
let gatewayDir = '';
const gateways = new Map<string, GatewayProcess>();

before(async () => {
  // The quick start's names, so the doc's example values are the values expected here.
  fixture = await startCaFixture({ org: 'Acme', trustDomain: 'acme.internal' });
  gatewayDir = (await enrollAgent(fixture, 'gateway', 'gw-1', { dns: ['localhost'], ip: ['127.0.0.1'] })).dir;
  clientDir = (await enrollAgent(fixture, 'web', 'laptop-1')).dir;
  const bundle = writeClientCaBundle(fixture);
  echo = await startEchoUpstream();
  for (const preset of IDENTITY_HEADER_PRESETS) {
    gateways.set(
      preset,
      await startGatewayProcess({
        cert: join(gatewayDir, 'cert.pem'),
        key: join(gatewayDir, 'key.pem'),
        clientCa: bundle,
        upstream: echo.url,
        headers: preset,
        extraArgs: ['--workers', '1'],
      }),
    );
  }
});

after(async () => {
  for (const gateway of gateways.values()) await gateway.stop();
  await echo?.close();
  await fixture?.close();
});

/** Forged copies of every name of the inbound table (a sample name per prefix), in `-` and `_` spellings. */
function forgedHeaders(): Record<string, string> {
  // These change the request itself (framing, Host, upgrade); the desync tests cover them.
  const structural = new Set([
    'content-length',
    'transfer-encoding',
    'host',
    'expect',
    'connection',
    'upgrade',
    'te',
    'trailer',
    'keep-alive',
    'proxy-connection',
    'http2-settings',
  ]);
  const out: Record<string, string> = {};
  for (const { name, prefix } of inboundTableNames()) {
    const full = prefix ? `${name}forged` : name;
    if (structural.has(full)) continue;
    out[full] = FORGED;
    if (full.includes('-')) out[full.replace(/-/g, '_')] = FORGED;
  }
  return out;
}

interface Received {
  headers: Record<string, string>;
  /** Lowercase name → how many times it arrived. */
  counts: Map<string, number>;
}

/** One HTTP/1.1 request over mutual TLS, the client presenting leaf and intermediate (the agent's cert.pem). */
function callThrough(gateway: GatewayProcess, headers: Record<string, string>): Promise<Received> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: gateway.port,
        path: '/hello?x=1',
        method: 'GET',
        headers,
        ca: readFileSync(join(gatewayDir, 'ca.pem')),
        cert: readFileSync(join(clientDir, 'cert.pem')),
        key: readFileSync(join(clientDir, 'key.pem')),
        agent: false,
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          try {
            assert.equal(res.statusCode, 200, body);
            const echoed = JSON.parse(body) as { rawHeaders: string[]; headers: Record<string, string> };
            const counts = new Map<string, number>();
            for (let i = 0; i < echoed.rawHeaders.length; i += 2)
              counts.set(
                echoed.rawHeaders[i]!.toLowerCase(),
                (counts.get(echoed.rawHeaders[i]!.toLowerCase()) ?? 0) + 1,
              );
            resolve({ headers: echoed.headers, counts });
          } catch (err) {
            reject(err);
          }
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const leafDer = () => pki.decodePem(readFileSync(join(clientDir, 'cert.pem'), 'utf8'), 'CERTIFICATE')[0]!;
const intermediateDer = () =>
  pki.decodePem(readFileSync(join(fixture.caDir, 'intermediate.pem'), 'utf8'), 'CERTIFICATE')[0]!;
const rootDer = () => pki.decodePem(readFileSync(join(fixture.caDir, 'root.pem'), 'utf8'), 'CERTIFICATE')[0]!;
const byteSequences = (v: string) =>
  v.split(', ').map((item) => Buffer.from(/^:([A-Za-z0-9+/=]+):$/.exec(item)![1]!, 'base64'));

/** What the doc's words promise beyond its examples, checked against the certificates themselves. */
function assertMeaning(name: string, value: string): void {
  const leaf = pki.parseCertificate(leafDer());
  const pemOf = (der: Buffer) => pki.toPem('CERTIFICATE', der);
  switch (name.toLowerCase()) {
    case 'x-client-name':
      return assert.equal(value, 'laptop-1');
    case 'x-client-role':
      return assert.equal(value, 'web');
    case 'x-client-spiffe-id':
      return assert.equal(value, 'spiffe://acme.internal/web/laptop-1');
    case 'x-client-serial':
      return assert.equal(value, leaf.serial);
    case 'x-client-fingerprint':
      return assert.equal(value, pki.sha256Hex(leafDer()));
    case 'client-cert':
      return assert.deepEqual(byteSequences(value), [leafDer()]);
    case 'client-cert-chain':
      return assert.deepEqual(byteSequences(value), [intermediateDer(), rootDer()], 'issuing CA, then root');
    case 'ssl-client-subject-dn':
      return assert.equal(value, 'CN=laptop-1,OU=web,O=Acme');
    case 'ssl-client-cert':
      return assert.equal(decodeURIComponent(value), pemOf(leafDer()));
    case 'x-forwarded-tls-client-cert':
      return assert.deepEqual(Buffer.from(queryUnescape(value), 'base64'), leafDer());
    case 'x-forwarded-client-cert':
      return assertXfcc(value);
    default:
  }
}

/** XFCC elements `Key=value` / `Key="…"` joined by `;` (quoted values may hold `;`). */
function xfccElements(value: string): Array<[string, string]> {
  return [...value.matchAll(/([A-Za-z]+)=("(?:[^"\\]|\\.)*"|[^;]*)(?:;|$)/g)].map((m) => [
    m[1]!,
    m[2]!.startsWith('"') ? m[2]!.slice(1, -1) : m[2]!,
  ]);
}

function assertXfcc(value: string): void {
  const elements = xfccElements(value);
  assert.deepEqual(
    elements.map(([k]) => k),
    documented.xfccElements.map((e) => e.name),
    "every element of the doc's table, in its order",
  );
  const get = (key: string) => elements.find(([k]) => k === key)![1];
  assert.equal(get('By'), 'spiffe://acme.internal/gateway/gw-1');
  assert.match(get('Hash'), /^[0-9a-f]{64}$/);
  assert.equal(get('Hash'), pki.sha256Hex(leafDer()));
  assert.equal(decodeURIComponent(get('Cert')), pki.toPem('CERTIFICATE', leafDer()));
  assert.equal(
    decodeURIComponent(get('Chain')),
    [leafDer(), intermediateDer(), rootDer()].map((d) => pki.toPem('CERTIFICATE', d)).join(''),
    'leaf, issuing CA, root',
  );
  assert.equal(get('Subject'), 'CN=laptop-1,OU=web,O=Acme');
  assert.equal(get('URI'), 'spiffe://acme.internal/web/laptop-1');
  assert.match(value, examplePattern(documented.xfccExample, 0), "the doc's example has the shape of the real value");
}

/** The doc's words for a shape: hex where it says lowercase hex, decoded first where it says the value is URL-escaped. */
function assertDocumentedShape(header: DocumentedHeader, value: string, port: number): void {
  if (/lowercase hex/.test(header.value)) assert.match(value, /^[0-9a-f]+$/, `${header.name} is lowercase hex`);
  if (/SHA-256/.test(header.value)) assert.match(value, /^[0-9a-f]{64}$/, `${header.name} is a SHA-256`);
  if (header.example === null) return;
  const pattern = examplePattern(header.example, port);
  const escaped = /QueryEscape|URL-encoded|URL-escaped/.test(header.value);
  assert.ok(
    pattern.test(value) || (escaped && pattern.test(queryUnescape(value))),
    `${header.name}: ${JSON.stringify(value.slice(0, 300))} does not have the documented shape \`${header.example}\` (${pattern})`,
  );
}

test('gateway-doc-lists-a-header-table-for-every-preset-the-code-has', () => {
  assert.deepEqual(Object.keys(documented.presets).sort(), [...IDENTITY_HEADER_PRESETS].sort());
  assert.deepEqual(
    documented.forwarding.map((h) => h.name),
    ['X-Forwarded-For', 'X-Real-IP', 'X-Forwarded-Proto', 'X-Forwarded-Host', 'Forwarded'],
  );
});

for (const preset of IDENTITY_HEADER_PRESETS) {
  test(`gateway-doc-headers-${preset}-preset-are-what-the-app-receives`, async () => {
    const gateway = gateways.get(preset)!;
    const expected = [...documented.presets[preset]!, ...documented.forwarding];
    const received = await callThrough(gateway, forgedHeaders());

    for (const header of expected) {
      const name = header.name.toLowerCase();
      assert.equal(
        received.counts.get(name),
        1,
        `${header.name} (documented for the ${preset} preset) arrives exactly once; arrived: ${[...received.counts.keys()].join(', ')}`,
      );
      const value = received.headers[name]!;
      assertDocumentedShape(header, value, gateway.port);
      assertMeaning(name, value);
    }
    // Nothing the client forged reaches the app, under any name or spelling.
    for (const [name, value] of Object.entries(received.headers))
      assert.ok(!String(value).includes(FORGED), `the client's ${name} reached the app`);
    for (const name of Object.keys(forgedHeaders())) {
      if (!expected.some((h) => h.name.toLowerCase() === name))
        assert.equal(received.counts.get(name), undefined, `${name}, which the doc says is dropped, arrived`);
    }
    // And no identity-related header arrives that the doc does not list for this preset.
    const undocumented = [...received.counts.keys()].filter(
      (name) => identityRelated(name) && !expected.some((h) => h.name.toLowerCase() === name),
    );
    assert.deepEqual(undocumented, [], `identity-related headers the doc does not list for the ${preset} preset`);
  });
}

test('gateway-doc-traefik-example-has-the-shape-of-the-real-info-header', async () => {
  const received = await callThrough(gateways.get('traefik')!, {});
  const info = received.headers['x-forwarded-tls-client-cert-info']!;
  // Compared decoded: in the escaped form a Unix time runs into the `%22` around it.
  assert.match(queryUnescape(info), examplePattern(queryUnescape(documented.traefikExample), 0));
  assert.match(
    queryUnescape(info),
    /^Subject="O=Acme,OU=web,CN=laptop-1";Issuer="O=Acme,CN=Acme Issuing CA";NB="\d+";NA="\d+";SAN="spiffe:\/\/acme.internal\/web\/laptop-1"$/,
  );
});

test('gateway-doc-quick-start-sample-shows-the-headers-the-default-preset-sends', async () => {
  const sample = /```text\n(\{\n "url": "\/hello\?x=1",[\s\S]*?\n\})\n```/.exec(section('## Quick start'))?.[1];
  assert.ok(sample, "the quick start shows the app's answer");
  const shown = Object.keys((JSON.parse(sample) as { headers: Record<string, string> }).headers);
  const received = await callThrough(gateways.get('default')!, {});
  const related = (names: string[]) => names.filter(identityRelated).sort();
  assert.deepEqual(
    related(shown),
    related([...received.counts.keys()]),
    'the sample shows every identity and forwarding header the app gets, and no other',
  );
  assert.deepEqual(
    related(shown),
    [...documented.presets.default!, ...documented.forwarding].map((h) => h.name.toLowerCase()).sort(),
  );
});
