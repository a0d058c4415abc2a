/**
 * Identity headers (src/gateway/identity-headers/identity-headers.ts) against real
 * certificates: a CA, an intermediate and leaves from our PKI module, and hostile self-signed
 * certificates made by `openssl req`, whose own RFC 2253 printer (what nginx puts in
 * $ssl_client_s_dn) is the oracle.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { join } from 'node:path';
import * as pki from '../src/pki/index.js';
import {
  IDENTITY_HEADER_NAMES,
  IDENTITY_HEADER_PRESETS,
  identityHeaders,
  type VerifiedPeer,
} from '../src/gateway/identity-headers/identity-headers.js';
import { assertSafeHeaderValue } from '../src/gateway/identity-headers/identity-headers-values.js';
import { formatDnRfc4514, readRdns } from '../src/gateway/identity-headers/identity-headers-dn.js';
import { forwardableRequestHeaders, inboundRule } from '../src/gateway/identity-headers/inbound-headers.js';
import { runSync } from './helpers/run.js';
import { makeTempDir } from './helpers/tmp.js';

const tmp = makeTempDir('gatehouse-headers-');
after(() => tmp.cleanup());

const HOUR_MS = 3_600_000;
const now = new Date();
const GATEWAY = { spiffeId: 'spiffe://t/gateway/gw' };

// ---------------------------------------------------------------- fixtures

const rootKey = pki.generatePrivateKey('p256');
const rootDer = await pki.buildRootCertificate(rootKey, {
  commonName: 'Headers Root',
  organization: 'Gatehouse Test',
  notBefore: now,
  notAfter: new Date(now.getTime() + 24 * HOUR_MS),
});
const intKey = pki.generatePrivateKey('p256');
const intDer = await pki.buildIntermediateCertificate(
  intKey,
  { certDer: rootDer, key: rootKey },
  {
    commonName: 'Headers Issuing CA',
    organization: 'Gatehouse Test',
    notBefore: now,
    notAfter: new Date(now.getTime() + 24 * HOUR_MS),
  },
);
const issuing = pki.prepareSigningAuthority(intDer, intKey);

function leaf(
  commonName: string,
  more: { ou?: string; uri?: string[]; dns?: string[]; ip?: string[]; email?: string[] } = {},
): Buffer {
  return pki.buildLeafCertificate(issuing, {
    serial: pki.randomSerial(),
    commonName,
    organizationalUnit: more.ou ?? 'web',
    organization: 'prod',
    spkiDer: pki.spkiDer(pki.generatePrivateKey('p256')),
    notBefore: now,
    notAfter: new Date(now.getTime() + HOUR_MS),
    profile: 'client',
    dns: more.dns ?? [],
    ip: more.ip ?? [],
    uri: more.uri ?? ['spiffe://t/web/x'],
    email: more.email ?? [],
  });
}

function peerOf(der: Buffer, chainDer?: Buffer[]): VerifiedPeer {
  const cert = pki.parseCertificate(der);
  return { cert, identity: pki.identityOf(cert), ...(chainDer ? { chainDer } : {}) };
}

let fileCount = 0;
/** A self-signed certificate made by `openssl req`; arguments are an array, never a shell. */
function opensslCert(subject: string | null, extra: string[] = []): { der: Buffer; file: string } {
  const base = join(tmp.dir, `c${fileCount++}`);
  const subj = subject === null ? [] : ['-subj', subject];
  const r = runSync('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${base}.key`,
    '-out',
    `${base}.der`,
    '-outform',
    'DER',
    '-days',
    '1',
    '-utf8',
    ...subj,
    ...extra,
  ]);
  assert.equal(r.status, 0, `openssl refused ${JSON.stringify(subject)}: ${r.stderr}`);
  return { der: readFileSync(`${base}.der`), file: `${base}.der` };
}

function derFile(der: Buffer): string {
  const file = join(tmp.dir, `d${fileCount++}.der`);
  writeFileSync(file, der);
  return file;
}

/** `openssl x509 -noout -subject|-issuer -nameopt RFC2253`, without the `subject=` prefix. */
function opensslDn(file: string, which: 'subject' | 'issuer'): string {
  const r = runSync('openssl', ['x509', '-inform', 'DER', '-in', file, '-noout', `-${which}`, '-nameopt', 'RFC2253']);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.replace(new RegExp(`^${which}=`), '').replace(/\n$/, '');
}

const headerMap = (headers: Array<[string, string]>) => new Map(headers.map(([n, v]) => [n.toLowerCase(), v]));

// ---------------------------------------------------------------- decoders (the app's side)

/** Strict RFC 4514 reader: RDNs in string order, each [type, value]; throws on a broken escape. */
function parseRfc4514(dn: string): Array<Array<[string, string]>> {
  const rdns: Array<Array<[string, string]>> = [];
  let rdn: Array<[string, string]> = [];
  let type = '';
  let bytes: number[] = [];
  let inValue = false;
  const finish = () => {
    rdn.push([type, Buffer.from(bytes).toString('utf8')]);
    type = '';
    bytes = [];
    inValue = false;
  };
  for (let i = 0; i < dn.length; i++) {
    const c = dn[i]!;
    if (!inValue) {
      if (c === '=') inValue = true;
      else type += c;
      continue;
    }
    if (c === '\\') {
      const pair = dn.slice(i + 1, i + 3);
      if (/^[0-9A-F]{2}$/.test(pair)) {
        bytes.push(parseInt(pair, 16));
        i += 2;
        continue;
      }
      const next = dn[i + 1];
      if (next === undefined || !'\\"+,;<>= #'.includes(next))
        throw new Error(`broken escape at ${i} in ${dn.slice(Math.max(0, i - 10), i + 10)}`);
      bytes.push(next.charCodeAt(0));
      i += 1;
      continue;
    }
    if (c === ',' || c === '+') {
      finish();
      if (c === ',') {
        rdns.push(rdn);
        rdn = [];
      }
      continue;
    }
    if ('";<>='.includes(c) || c.charCodeAt(0) < 0x20 || c.charCodeAt(0) > 0x7e)
      throw new Error(`unescaped ${JSON.stringify(c)} at ${i}`);
    bytes.push(c.charCodeAt(0));
  }
  if (inValue) finish();
  if (rdn.length) rdns.push(rdn);
  return rdns;
}

/** Undoes the `\XX` text escape of X-Client-Name/Role/Spiffe-Id and XFCC URI/By. */
function unescapeText(value: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    if (value[i] === '\\') {
      bytes.push(parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(value.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Envoy XFCC, one element: `;`-separated `Key=value`, quoted values with `\"`/`\\` escapes. */
function parseXfcc(value: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < value.length) {
    const eq = value.indexOf('=', i);
    const key = value.slice(i, eq);
    let v = '';
    i = eq + 1;
    if (value[i] === '"') {
      for (i++; value[i] !== '"'; i++) {
        assert.ok(i < value.length, 'unterminated quoted XFCC value');
        if (value[i] === '\\') i++;
        v += value[i];
      }
      i++;
    } else {
      while (i < value.length && value[i] !== ';') v += value[i++];
      assert.ok(!/[,"=]/.test(v), `unquoted XFCC value with a special: ${v}`);
    }
    assert.ok(i === value.length || value[i] === ';', `XFCC element ${key} not followed by ; (a second element?)`);
    out.set(key, v);
    i++;
  }
  return out;
}

/** Go's url.QueryUnescape. */
const queryUnescape = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));

/** Traefik's X-Forwarded-Tls-Client-Cert-Info: `Key="value"` fields joined by `;`. */
function parseTraefikInfo(encoded: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const field of queryUnescape(encoded).split(';')) {
    const m = /^(\w+)="([^"]*)"$/.exec(field);
    assert.ok(m, `malformed Traefik field ${field}`);
    out.set(m[1]!, m[2]!);
  }
  return out;
}

/** Our RFC 4514 output in OpenSSL's spelling: `\=` → `=`, value-final `\20` → `\ ` (the two documented deviations). */
function asOpenssl(dn: string): string {
  let out = '';
  for (let i = 0; i < dn.length; i++) {
    if (dn[i] !== '\\') {
      out += dn[i];
      continue;
    }
    const pair = dn.slice(i + 1, i + 3);
    const valueEnd = i + 3 === dn.length || dn[i + 3] === ',' || dn[i + 3] === '+';
    if (dn[i + 1] === '=') {
      out += '=';
      i += 1;
    } else if (pair === '20' && valueEnd) {
      out += '\\ ';
      i += 2;
    } else if (/^[0-9A-F]{2}$/.test(pair)) {
      out += `\\${pair}`;
      i += 2;
    } else {
      out += dn.slice(i, i + 2);
      i += 1;
    }
  }
  return out;
}

function assertHeaderSafe(name: string, value: string, context: string): void {
  assert.doesNotThrow(() => validateHeaderName(name), `${context}: name ${name}`);
  assert.doesNotThrow(() => validateHeaderValue(name, value), `${context}: ${name} rejected by Node`);
  assert.doesNotThrow(() => assertSafeHeaderValue(value), `${context}: ${name}`);
  assert.ok(!/[\r\n\0]/.test(value), `${context}: ${name} holds CR, LF or NUL`);
  assert.match(value, /^[\x20-\x7e]*$/, `${context}: ${name} outside visible ASCII`);
  assert.ok(value.length <= 16 * 1024, `${context}: ${name} is ${value.length} chars`);
  assert.ok(
    inboundRule(name)?.action === 'strip' && IDENTITY_HEADER_NAMES.has(name.toLowerCase()),
    `${context}: ${name} would not be stripped inbound`,
  );
}

// ---------------------------------------------------------------- hostile subjects

const OPENSSL_HOSTILE: Array<[string, string[]]> = [
  ['/O=prod/OU=web/CN=a,b"c\\\\d\\+e=f;g<h>', ['-multivalue-rdn']],
  ['/O=prod /OU= web /CN=#hash', []],
  ['/O=prod/OU=web/CN=line\r\nX-Client-Role: admin', []],
  ['/O=Société/OU=wéb/CN=café 😀', []],
  ['/O=prod/OU=web+UID=u\\,1/CN=tab\there\x7fdel\x01', ['-multivalue-rdn']],
  ['/O=prod/OU=web/CN=trailing ', []],
];
// openssl refuses NUL (argv) and CNs over 64 characters; our builder writes any string.
const BUILT_HOSTILE = [
  'nul\0byte',
  'x\r\nX-Client-Role: admin',
  'é😀',
  'x'.repeat(10_000),
  'é'.repeat(10_000),
  '😀'.repeat(5_000),
  ','.repeat(10_000),
  `${'a\\'.repeat(6_000)}"`,
];

const hostile = [
  ...OPENSSL_HOSTILE.map(([subject, extra]) => ({
    label: `openssl ${JSON.stringify(subject)}`,
    ...opensslCert(subject, extra),
  })),
  ...BUILT_HOSTILE.map((cn) => ({
    label: `built CN ${JSON.stringify(cn.slice(0, 24))}…(${cn.length})`,
    der: leaf(cn, { uri: ['spiffe://t/web/a;b=c,"d\\e'] }),
    file: '',
  })),
];

test('identity-headers-every-preset-value-header-safe-for-hostile-subjects', () => {
  for (const { label, der } of hostile) {
    const peer = peerOf(der, [intDer]);
    for (const preset of IDENTITY_HEADER_PRESETS) {
      const headers = identityHeaders(preset, peer, GATEWAY);
      assert.ok(headers.length > 0);
      for (const [name, value] of headers) assertHeaderSafe(name, value, `${preset} ${label}`);
    }
  }
});

test('identity-headers-hostile-subject-dn-decodes-back-to-der-values', () => {
  for (const { label, der } of hostile) {
    const peer = peerOf(der);
    const dn = headerMap(identityHeaders('nginx', peer)).get('ssl-client-subject-dn')!;
    const rdns = readRdns(peer.cert.subjectNameDer);
    const expected = [...rdns]
      .reverse()
      .map((rdn) => [...rdn].reverse().map((a): [string, string] => [a.type, a.value]));
    if (dn.endsWith('...') && formatDnRfc4514(rdns, Infinity) !== dn) {
      // Cut: whole escapes only, and what is left decodes to a prefix of the CN.
      const [[cn, ...rest] = []] = parseRfc4514(dn.slice(0, -3));
      assert.equal(rest.length, 0, label);
      assert.equal(cn![0], 'CN');
      assert.ok(cn![1].length > 0 && expected[0]![0]![1].startsWith(cn![1]), `${label}: cut value is not a prefix`);
      assert.ok(!cn![1].includes('\uFFFD'), `${label}: cut inside a UTF-8 sequence`);
    } else {
      assert.deepEqual(parseRfc4514(dn), expected, label);
    }
  }
});

test('identity-headers-hostile-openssl-subjects-match-openssl-rfc2253-but-two-documented-escapes', () => {
  for (const { label, der, file } of hostile.filter((h) => h.file)) {
    const h = headerMap(identityHeaders('nginx', peerOf(der)));
    assert.equal(asOpenssl(h.get('ssl-client-subject-dn')!), opensslDn(file, 'subject'), label);
    assert.equal(asOpenssl(h.get('ssl-client-issuer-dn')!), opensslDn(file, 'issuer'), label);
  }
});

test('identity-headers-cr-lf-nul-and-unicode-written-as-utf8-hex', () => {
  const dn = (cn: string) => headerMap(identityHeaders('default', peerOf(leaf(cn)))).get('x-client-subject');
  assert.equal(dn('x\r\nX-Client-Role: admin'), 'CN=x\\0D\\0AX-Client-Role: admin,OU=web,O=prod');
  assert.equal(dn('nul\0byte'), 'CN=nul\\00byte,OU=web,O=prod');
  assert.equal(dn('café 😀'), 'CN=caf\\C3\\A9 \\F0\\9F\\98\\80,OU=web,O=prod');
  assert.equal(dn('a,b"c\\d+e=f;g<h>'), 'CN=a\\,b\\"c\\\\d\\+e\\=f\\;g\\<h\\>,OU=web,O=prod');
  assert.equal(dn(' #x '), 'CN=\\ #x\\20,OU=web,O=prod');
  assert.equal(dn('#x'), 'CN=\\#x,OU=web,O=prod');
  const name = headerMap(identityHeaders('default', peerOf(leaf(' a\\b\r\né ')))).get('x-client-name')!;
  assert.equal(name, '\\20a\\5Cb\\0D\\0A\\C3\\A9\\20');
  assert.equal(unescapeText(name), ' a\\b\r\né ');
});

test('identity-headers-long-cn-capped-at-16kib-never-mid-escape', () => {
  for (const cn of ['é'.repeat(10_000), '😀'.repeat(5_000), '\r\n'.repeat(5_000), 'a\\'.repeat(6_000)]) {
    const peer = peerOf(leaf(cn, { uri: ['spiffe://t/web/x'] }), [intDer]);
    for (const preset of IDENTITY_HEADER_PRESETS) {
      for (const [name, value] of identityHeaders(preset, peer, GATEWAY))
        assert.ok(value.length <= 16 * 1024, `${preset} ${name}`);
    }
    const h = headerMap(identityHeaders('default', peer));
    assert.ok(h.get('x-client-subject')!.endsWith('...'));
    assert.ok(h.get('x-client-name')!.endsWith('...'));
    // A certificate cut short is useless: it is left out rather than truncated.
    if ((peer.cert.der.length * 4) / 3 > 16 * 1024) assert.equal(h.get('client-cert'), undefined);
    const xfcc = parseXfcc(headerMap(identityHeaders('envoy', peer, GATEWAY)).get('x-forwarded-client-cert')!);
    assert.equal(xfcc.get('Hash'), createHash('sha256').update(peer.cert.der).digest('hex'), 'Hash survives the cut');
    assert.equal(xfcc.get('URI'), 'spiffe://t/web/x', 'short elements stay whole');
    assert.equal(xfcc.get('By'), GATEWAY.spiffeId);
    assert.ok(xfcc.get('Subject')!.endsWith('...'));
    assert.doesNotThrow(() => parseRfc4514(xfcc.get('Subject')!.slice(0, -3)));
    const info = parseTraefikInfo(headerMap(identityHeaders('traefik', peer)).get('x-forwarded-tls-client-cert-info')!);
    assert.ok(info.get('Subject')!.endsWith('...'));
    assert.equal(info.get('SAN'), 'spiffe://t/web/x');
  }
});

// ---------------------------------------------------------------- each preset against its oracle

test('identity-headers-nginx-dn-equals-openssl-rfc2253-for-benign-subjects', () => {
  const benign: Array<[string, string[]]> = [
    ['/C=US/ST=California/L=San Francisco/O=Example Inc/OU=web/CN=client1/emailAddress=ops@example.com', []],
    ['/DC=org/DC=example/O=prod/OU=web+UID=u1/CN=client1', ['-multivalue-rdn']],
    ['/O=prod/title=Boss/serialNumber=42/CN=client 1', []],
  ];
  for (const [subject, extra] of benign) {
    const { der, file } = opensslCert(subject, extra);
    const h = headerMap(identityHeaders('nginx', peerOf(der)));
    assert.equal(h.get('ssl-client-subject-dn'), opensslDn(file, 'subject'), subject);
    assert.equal(h.get('ssl-client-issuer-dn'), opensslDn(file, 'issuer'), subject);
  }
  const ours = leaf('client1');
  const h = headerMap(identityHeaders('nginx', peerOf(ours)));
  assert.equal(h.get('ssl-client-subject-dn'), 'CN=client1,OU=web,O=prod');
  assert.equal(h.get('ssl-client-subject-dn'), opensslDn(derFile(ours), 'subject'));
  assert.equal(h.get('ssl-client-issuer-dn'), opensslDn(derFile(ours), 'issuer'));
});

test('identity-headers-unknown-attribute-type-written-as-hex-der-like-openssl', () => {
  const config = join(tmp.dir, 'oid.cnf');
  writeFileSync(
    config,
    'oid_section = new_oids\n[new_oids]\nmyattr = 1.2.3.4\n[req]\ndistinguished_name = dn\nprompt = no\nutf8 = yes\n[dn]\nmyattr = zz,z\nCN = x\n',
  );
  const { der, file } = opensslCert(null, ['-config', config]);
  const dn = headerMap(identityHeaders('nginx', peerOf(der))).get('ssl-client-subject-dn');
  assert.equal(dn, opensslDn(file, 'subject'));
  assert.match(dn!, /1\.2\.3\.4=#0C047A7A2C7A/);
});

test('identity-headers-nginx-cert-url-decodes-to-exact-pem', () => {
  const der = leaf('client1');
  const file = derFile(der);
  const pem = runSync('openssl', ['x509', '-inform', 'DER', '-in', file]).stdout;
  const value = headerMap(identityHeaders('nginx', peerOf(der))).get('ssl-client-cert')!;
  assert.equal(decodeURIComponent(value), pem);
  assert.equal(decodeURIComponent(value), pki.toPem('CERTIFICATE', der));
  assert.match(value, /^-----BEGIN%20CERTIFICATE-----%0A[A-Za-z0-9%]+%0A-----END%20CERTIFICATE-----%0A$/);
  assert.equal(headerMap(identityHeaders('nginx', peerOf(der))).get('ssl-client-verify'), 'SUCCESS');
});

test('identity-headers-default-preset-values-and-client-cert-is-exact-der', () => {
  const der = leaf('client1', { ou: 'web', uri: ['spiffe://t/web/client1'] });
  const file = derFile(der);
  const h = headerMap(identityHeaders('default', peerOf(der, [der, intDer])));
  assert.equal(h.get('x-client-verify'), 'SUCCESS');
  assert.equal(h.get('x-client-subject'), 'CN=client1,OU=web,O=prod');
  assert.equal(h.get('x-client-name'), 'client1');
  assert.equal(h.get('x-client-role'), 'web');
  assert.equal(h.get('x-client-spiffe-id'), 'spiffe://t/web/client1');
  const serial = runSync('openssl', ['x509', '-inform', 'DER', '-in', file, '-noout', '-serial'])
    .stdout.trim()
    .replace(/^serial=/, '');
  assert.equal(h.get('x-client-serial'), serial.toLowerCase());
  const fingerprint = runSync('openssl', ['x509', '-inform', 'DER', '-in', file, '-noout', '-fingerprint', '-sha256'])
    .stdout.trim()
    .replace(/^.*=/, '');
  assert.equal(h.get('x-client-fingerprint'), fingerprint.replace(/:/g, '').toLowerCase());
  const clientCert = h.get('client-cert')!;
  assert.match(clientCert, /^:[A-Za-z0-9+/]+=*:$/, 'RFC 8941 byte sequence');
  assert.deepEqual(Buffer.from(clientCert.slice(1, -1), 'base64'), der);
  // RFC 9440 §2.3: the chain without the leaf (the leaf copy in chainDer is ignored).
  assert.equal(h.get('client-cert-chain'), `:${intDer.toString('base64')}:`);
  assert.equal(headerMap(identityHeaders('default', peerOf(der))).get('client-cert-chain'), undefined);
});

test('identity-headers-default-omits-name-role-spiffe-when-null', () => {
  const { der } = opensslCert('/O=prod/OU=a/OU=b/CN=one/CN=two');
  const peer = peerOf(der);
  assert.equal(peer.identity.name, null);
  const h = headerMap(identityHeaders('default', peer));
  for (const absent of ['x-client-name', 'x-client-role', 'x-client-spiffe-id'])
    assert.equal(h.has(absent), false, absent);
  assert.equal(h.get('x-client-subject'), 'CN=two,CN=one,OU=b,OU=a,O=prod');
});

test('identity-headers-envoy-xfcc-hash-cert-subject-uri', () => {
  const der = leaf('client1', { uri: ['spiffe://t/web/client1'] });
  const file = derFile(der);
  const value = headerMap(identityHeaders('envoy', peerOf(der, [intDer]), GATEWAY)).get('x-forwarded-client-cert')!;
  assert.match(
    value,
    /^By=spiffe:\/\/t\/gateway\/gw;Hash=[0-9a-f]{64};Cert="[^"]+";Chain="[^"]+";Subject="CN=client1,OU=web,O=prod";URI=spiffe:\/\/t\/web\/client1$/,
  );
  const xfcc = parseXfcc(value);
  assert.deepEqual([...xfcc.keys()], ['By', 'Hash', 'Cert', 'Chain', 'Subject', 'URI']);
  assert.equal(xfcc.get('Hash'), createHash('sha256').update(der).digest('hex'));
  const fingerprint = runSync('openssl', ['x509', '-inform', 'DER', '-in', file, '-noout', '-fingerprint', '-sha256'])
    .stdout.trim()
    .replace(/^.*=/, '');
  assert.equal(xfcc.get('Hash'), fingerprint.replace(/:/g, '').toLowerCase());
  assert.equal(
    decodeURIComponent(xfcc.get('Cert')!),
    runSync('openssl', ['x509', '-inform', 'DER', '-in', file]).stdout,
  );
  assert.equal(
    decodeURIComponent(xfcc.get('Chain')!),
    pki.toPem('CERTIFICATE', der) + pki.toPem('CERTIFICATE', intDer),
  );
  // Without a gateway identity and a SPIFFE ID, By and URI are left out, not empty.
  const bare = parseXfcc(
    headerMap(identityHeaders('envoy', peerOf(leaf('c', { uri: [] })))).get('x-forwarded-client-cert')!,
  );
  assert.deepEqual([...bare.keys()], ['Hash', 'Cert', 'Subject']);
});

test('identity-headers-envoy-xfcc-quotes-and-escapes-hostile-values', () => {
  const hostileUri = 'spiffe://t/web/a;b=c,"d\\e';
  const der = leaf('a"b\\c,d', { uri: [hostileUri] });
  const value = headerMap(identityHeaders('envoy', peerOf(der), { spiffeId: 'spiffe://t/gw;x=1' })).get(
    'x-forwarded-client-cert',
  )!;
  const xfcc = parseXfcc(value);
  assert.deepEqual([...xfcc.keys()], ['By', 'Hash', 'Cert', 'Subject', 'URI']);
  assert.equal(xfcc.get('By'), 'spiffe://t/gw;x=1');
  assert.equal(unescapeText(xfcc.get('URI')!), hostileUri);
  assert.equal(xfcc.get('Subject'), 'CN=a\\"b\\\\c\\,d,OU=web,O=prod');
  assert.deepEqual(parseRfc4514(xfcc.get('Subject')!)[0], [['CN', 'a"b\\c,d']]);
  assert.ok(value.includes('Subject="CN=a\\\\\\"b\\\\\\\\c\\\\,d,OU=web,O=prod"'), value);
});

test('identity-headers-traefik-cert-and-info', () => {
  const der = leaf('client1', {
    dns: ['a.example'],
    ip: ['10.0.0.1'],
    email: ['ops@example.com'],
    uri: ['spiffe://t/web/x'],
  });
  const peer = peerOf(der);
  const h = headerMap(identityHeaders('traefik', peer));
  const certHeader = h.get('x-forwarded-tls-client-cert')!;
  assert.match(certHeader, /^[A-Za-z0-9%]+$/, 'url-encoded base64, no armour');
  assert.deepEqual(Buffer.from(queryUnescape(certHeader), 'base64'), der);
  const info = parseTraefikInfo(h.get('x-forwarded-tls-client-cert-info')!);
  assert.deepEqual([...info.keys()], ['Subject', 'Issuer', 'NB', 'NA', 'SAN']);
  assert.equal(info.get('Subject'), 'O=prod,OU=web,CN=client1');
  assert.equal(info.get('Issuer'), 'O=Gatehouse Test,CN=Headers Issuing CA');
  assert.equal(info.get('NB'), String(Math.floor(peer.cert.notBefore.getTime() / 1000)));
  assert.equal(info.get('NA'), String(Math.floor(peer.cert.notAfter.getTime() / 1000)));
  assert.equal(info.get('SAN'), 'a.example,ops@example.com,10.0.0.1,spiffe://t/web/x');
  // Hostile values cannot break the `Key="…";` structure or the SAN list.
  const bad = parseTraefikInfo(
    headerMap(
      identityHeaders('traefik', peerOf(leaf('x";SAN="evil,y', { uri: ['spiffe://t/a,b'], dns: ['c;d'] }))),
    ).get('x-forwarded-tls-client-cert-info')!,
  );
  assert.equal(bad.get('Subject'), 'O=prod,OU=web,CN=x\\22\\3BSAN\\3D\\22evil\\2Cy');
  assert.equal(bad.get('SAN')!.split(',').length, 2);
});

test('identity-headers-repeat-calls-follow-every-input', () => {
  const peer = peerOf(leaf('client1', { uri: ['spiffe://t/web/client1'] }));
  const first = identityHeaders('default', peer);
  first[0]![1] = 'FAILED';
  first.push(['X-Client-Role', 'admin']);
  assert.deepEqual(
    identityHeaders('default', peer),
    identityHeaders('default', peerOf(peer.cert.der)),
    'a caller cannot change what the next request gets',
  );
  assert.equal(headerMap(identityHeaders('default', peer)).get('x-client-verify'), 'SUCCESS');
  assert.equal(
    parseXfcc(headerMap(identityHeaders('envoy', peer, GATEWAY)).get('x-forwarded-client-cert')!).get('By'),
    GATEWAY.spiffeId,
  );
  assert.equal(
    parseXfcc(
      headerMap(identityHeaders('envoy', peer, { spiffeId: 'spiffe://t/gateway/other' })).get(
        'x-forwarded-client-cert',
      )!,
    ).get('By'),
    'spiffe://t/gateway/other',
  );
  assert.equal(parseXfcc(headerMap(identityHeaders('envoy', peer)).get('x-forwarded-client-cert')!).has('By'), false);
  assert.equal(
    headerMap(identityHeaders('default', { ...peer, identity: { ...peer.identity, role: null } })).has('x-client-role'),
    false,
  );
  assert.equal(
    headerMap(identityHeaders('default', { ...peer, chainDer: [intDer] })).get('client-cert-chain'),
    `:${intDer.toString('base64')}:`,
  );
  const other = peerOf(leaf('client2'));
  assert.equal(
    headerMap(
      identityHeaders('default', {
        cert: Object.assign(peer.cert, { der: other.cert.der, subjectNameDer: other.cert.subjectNameDer }),
        identity: other.identity,
      }),
    ).get('x-client-name'),
    'client2',
  );
});

// ---------------------------------------------------------------- stripping

test('identity-headers-inbound-stripped-every-spelling-case-and-repeat', () => {
  const emitted = new Set<string>();
  const chained = peerOf(leaf('client1'), [intDer]);
  for (const preset of IDENTITY_HEADER_PRESETS)
    for (const [name] of identityHeaders(preset, chained, GATEWAY)) emitted.add(name.toLowerCase());
  assert.deepEqual(
    [...emitted].sort(),
    [...IDENTITY_HEADER_NAMES].sort(),
    'the strip set is exactly what the presets emit',
  );

  const spellings = (name: string) => {
    const mixed = [...name].map((c, i) => (i % 2 ? c.toUpperCase() : c.toLowerCase())).join('');
    return [name, name.toUpperCase(), name.toLowerCase(), mixed].flatMap((n) => [n, n.replace(/-/g, '_')]);
  };
  const forged = [
    ...IDENTITY_HEADER_NAMES,
    'X-Client-Anything',
    'x_client_role',
    'X-Forwarded-Tls-Client-Whatever',
    'ssl_client_s_dn',
  ]
    .flatMap(spellings)
    .flatMap((n) => [n, 'forged', n, 'forged-again']);
  const ordinary = [
    'Host',
    'gw.example',
    'Accept',
    '*/*',
    'X-Request-Id',
    'r1',
    'Cookie',
    'a=1',
    'Accept',
    'text/html',
    'Cookie',
    'b=2',
  ];
  const raw: string[] = [];
  for (let i = 0; i < Math.max(forged.length, ordinary.length); i += 2) {
    if (i < forged.length) raw.push(forged[i]!, forged[i + 1]!);
    if (i < ordinary.length) raw.push(ordinary[i]!, ordinary[i + 1]!);
  }
  // Host is the gateway's to write (checked, once); the rest of the ordinary headers pass.
  assert.deepEqual(forwardableRequestHeaders(raw), ordinary.slice(2));
  for (const name of ['X-Clientele', 'Authorization', 'Accept']) assert.equal(inboundRule(name), null, name);
  for (const name of ['x_forwarded_client_cert', 'CLIENT_CERT_CHAIN', 'Ssl-Client-Escaped-Cert'])
    assert.equal(inboundRule(name)?.action, 'strip', name);
});

test('identity-headers-assert-safe-header-value-fails-closed', () => {
  for (const bad of ['a\rb', 'a\nb', 'a\0b', 'é', 'a\tb', 'a\x7fb', ' lead', 'trail ', 'x'.repeat(16 * 1024 + 1)]) {
    assert.throws(() => assertSafeHeaderValue(bad), { code: 'GH_INTERNAL' }, JSON.stringify(bad.slice(0, 10)));
  }
  for (const ok of ['', 'SUCCESS', 'CN=a\\,b,O=x y', 'x'.repeat(16 * 1024)])
    assert.equal(assertSafeHeaderValue(ok), ok);
  for (const preset of ['apache', 'toString', '__proto__'])
    assert.throws(() => identityHeaders(preset as never, peerOf(leaf('c'))), { code: 'GH_INTERNAL' }, preset);
});
