/**
 * CRL sources that bundle several CRLs with their signer certificates, as the CA's `/crls`
 * serves them during an intermediate rotation: a real gateway (runGateway) on 127.0.0.1, real
 * mTLS clients, a file source and an https URL source. Intermediate A is in tls.clientCa,
 * intermediate B (the new one) is not: B's CRL is believed only through B's certificate in the
 * source, which the root of the bundle signed.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpsServer, request as httpsRequest, type Server } from 'node:https';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import * as pki from '../src/pki/index.js';
import { x509, toCryptoKeys, webAlgorithmFor } from '../src/pki/x509-library.js';
import { parseGatewayConfig } from '../src/gateway/config.js';
import { runGateway, type RunningGateway } from '../src/gateway/run.js';
import { RevocationChecker } from '../src/gateway/revocation/revocation.js';
import { createLogger } from '../src/log/logger.js';
import { buildTestPki, makeCrl, replaceFile, type TestCa } from './helpers/crl-pki.js';
import { startEchoUpstream, type EchoUpstream } from './helpers/echo-upstream.js';
import { makeTempDir } from './helpers/tmp.js';
import { pollUntil, waitFor } from './helpers/poll.js';

const VALIDITY = { notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2060-01-01T00:00:00Z') };

interface Client {
  certPem: string;
  keyPem: string;
  serial: string;
}
interface Running {
  gw: RunningGateway;
  events(name: string): Record<string, unknown>[];
  lines: string[];
}

let tmp: ReturnType<typeof makeTempDir>;
let app: EchoUpstream;
let root: TestCa;
let intA: TestCa;
let intB: TestCa;
let noCrlSign: TestCa;
let foreignInt: TestCa;
let clientCa: string;
let serverCert: string;
let serverKey: string;
let serverPems: { cert: string; key: string };
const clients: Record<string, Client> = {};
let n = 0;

function testCa(certDer: Buffer, key: KeyObject, name: string): TestCa {
  return {
    certDer,
    certPem: pki.toPem('CERTIFICATE', certDer),
    key,
    authority: pki.prepareSigningAuthority(certDer, key),
    name,
  };
}

/** An intermediate under `parent` with keyCertSign only: it may issue certificates, not sign CRLs (RFC 5280 §4.2.1.3). */
async function intermediateWithoutCrlSign(parent: TestCa, name: string): Promise<TestCa> {
  const key = pki.generatePrivateKey('p256');
  const keys = await toCryptoKeys(key);
  const parentKeys = await toCryptoKeys(parent.key);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: pki.randomSerial().toString('hex'),
    subject: `CN=${name}, O=Gatehouse Test`,
    issuer: new x509.Name(new Uint8Array(pki.parseCertificate(parent.certDer).subjectNameDer)),
    ...VALIDITY,
    publicKey: keys.publicKey,
    signingKey: parentKeys.privateKey,
    signingAlgorithm: webAlgorithmFor(parent.key).signing,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
      new x509.SubjectKeyIdentifierExtension(pki.keyIdentifier(pki.spkiDer(key)).toString('hex')),
    ],
  });
  return testCa(Buffer.from(cert.rawData), key, name);
}

function issue(
  ca: TestCa,
  name: string,
  profile: pki.LeafProfile = 'client',
  extra: { dns?: string[]; ip?: string[] } = {},
): Client {
  const key = pki.generatePrivateKey('p256');
  const der = pki.buildLeafCertificate(ca.authority, {
    serial: pki.randomSerial(),
    commonName: name,
    organizationalUnit: 'web',
    organization: 'Gatehouse Test',
    spkiDer: pki.spkiDer(key),
    ...VALIDITY,
    profile,
    dns: extra.dns ?? [],
    ip: extra.ip ?? [],
    uri: [],
    email: [],
  });
  // The client sends its issuing intermediate: B is not in tls.clientCa, only the root is.
  const chain = ca === root ? '' : ca.certPem;
  return {
    certPem: pki.toPem('CERTIFICATE', der) + chain,
    keyPem: key.export({ type: 'pkcs8', format: 'pem' }) as string,
    serial: pki.parseCertificate(der).serial,
  };
}

const crlPem = (ca: TestCa, crlNumber: bigint, revoked: string[] = []) =>
  pki.toPem('X509 CRL', makeCrl(ca, { crlNumber, revoked }));

/** The `/crls` shape: each CA's certificate followed by its CRL. */
function bundle(...parts: Array<TestCa | string>): string {
  return parts.map((p) => (typeof p === 'string' ? p : p.certPem)).join('');
}

before(async () => {
  tmp = makeTempDir('gatehouse-crl-bundle-');
  app = await startEchoUpstream();
  const pkiA = await buildTestPki('Bundle');
  root = pkiA.root;
  intA = pkiA.intermediate;
  const keyB = pki.generatePrivateKey('p256');
  const specB = { commonName: 'Bundle Issuing B', organization: 'Gatehouse Test', ...VALIDITY };
  intB = testCa(
    await pki.buildIntermediateCertificate(keyB, { certDer: root.certDer, key: root.key }, specB),
    keyB,
    'Bundle Issuing B',
  );
  noCrlSign = await intermediateWithoutCrlSign(root, 'Bundle Issuing NoCrlSign');
  foreignInt = (await buildTestPki('Foreign')).intermediate;
  clientCa = join(tmp.dir, 'client-ca.pem');
  writeFileSync(clientCa, root.certPem + intA.certPem); // B deliberately absent
  const server = issue(root, 'localhost', 'server', { dns: ['localhost'], ip: ['127.0.0.1'] });
  serverPems = { cert: server.certPem, key: server.keyPem };
  serverCert = join(tmp.dir, 'server.pem');
  serverKey = join(tmp.dir, 'server-key.pem');
  writeFileSync(serverCert, server.certPem);
  writeFileSync(serverKey, server.keyPem, { mode: 0o600 });
  clients.a = issue(intA, 'device-a');
  clients.b = issue(intB, 'device-b');
  clients.bRevoked = issue(intB, 'device-b-revoked');
});

after(async () => {
  await app?.close();
  tmp?.cleanup();
});

async function startGateway(t: TestContext, sources: string[]): Promise<Running> {
  const lines: string[] = [];
  const config = parseGatewayConfig(
    {
      listen: '127.0.0.1:0',
      tls: { cert: serverCert, key: serverKey, clientCa },
      routes: [{ upstreams: [app.url] }],
      revocation: { crl: sources, refreshInterval: '1h' },
      admin: { listen: '127.0.0.1:0' },
    },
    'test',
    tmp.dir,
  );
  const gw = await runGateway({
    config,
    configFile: null,
    logger: createLogger({ level: 'debug', write: (l) => void lines.push(l) }),
    serveAdmin: true,
  });
  t.after(() => gw.close());
  const events = (name: string) =>
    lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.msg === name);
  return { gw, events, lines };
}

/** A file source in a fresh directory of its own, so no directory watch sees another test's writes. */
function fileSource(content: string): string {
  const path = join(tmp.dir, `s${++n}`, 'crls.pem');
  mkdirSync(join(path, '..'), { recursive: true });
  replaceFile(path, content);
  return path;
}

/** Rewrites the source, then SIGHUP-style refresh, and waits (with a deadline) for the outcome event. */
async function refreshAfter(
  r: Running,
  path: string,
  content: string,
  event: 'gateway.crl_loaded' | 'gateway.crl_refused' | 'gateway.crl_dropped',
): Promise<Record<string, unknown>> {
  const before = r.events(event).length;
  replaceFile(path, content);
  r.gw.reload();
  return pollUntil(
    () => `${event} after the reload; log:\n${r.lines.slice(-20).join('\n')}`,
    () => {
      const seen = r.events(event);
      return seen.length > before ? seen.at(-1)! : undefined;
    },
    5_000,
    20,
  );
}

/** One request over a new mTLS connection; the access-log reason is read back through x-request-id. */
function get(r: Running, client: Client): Promise<{ status: number; body: string; reason: string | null }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        servername: 'localhost',
        port: r.gw.gateway.port,
        path: '/',
        agent: false,
        headers: { host: 'localhost' },
        ca: root.certPem,
        cert: client.certPem,
        key: client.keyPem,
        timeout: 10_000,
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d.toString();
        });
        res.on('end', () => {
          const id = res.headers['x-request-id'];
          const line = r.events('gateway.request').find((e) => e.requestId === id);
          resolve({ status: res.statusCode ?? 0, body, reason: (line?.reason as string | undefined) ?? null });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end();
  });
}

async function assertAllowed(r: Running, client: Client, why: string): Promise<void> {
  const res = await get(r, client);
  assert.equal(res.status, 200, `${why}: ${res.body}`);
}

async function assertRefused(
  r: Running,
  client: Client,
  reason: 'REVOKED' | 'CRL_MISSING',
  body: RegExp,
): Promise<void> {
  const res = await get(r, client);
  assert.equal(res.status, 403, res.body);
  assert.match(res.body, body);
  // The access log line is written when the response finishes: poll it briefly.
  const logged =
    res.reason ??
    (await pollUntil('the access-log reason', async () => (await get(r, client)).reason ?? undefined, 2_000, 20));
  assert.equal(logged, reason);
}

function adminGet(r: Running, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port: r.gw.admin!.port, path }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
      });
      res.on('end', () => resolve(body));
    })
      .on('error', reject)
      .end();
  });
}

/** A small https server for the URL source; `body` is what `/crls` answers now, `fetches` how often it was asked. */
async function startCrlServer(
  t: TestContext,
  initial: string,
): Promise<{ url: string; set(body: string): void; fetches(): number }> {
  let body = initial;
  let fetches = 0;
  const server: Server = createHttpsServer({ cert: serverPems.cert, key: serverPems.key }, (req, res) => {
    if (req.url !== '/crls') {
      res.writeHead(404).end();
      return;
    }
    fetches++;
    res.writeHead(200, { 'content-type': 'application/x-pem-file' }).end(body);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  t.after(() => new Promise<void>((res) => server.close(() => res())));
  return {
    url: `https://localhost:${(server.address() as AddressInfo).port}/crls`,
    set: (next) => void (body = next),
    fetches: () => fetches,
  };
}

test('crl-bundle-url-source-lets-in-clients-of-both-intermediates-and-refuses-one-revoked-by-b', async (t) => {
  const source = await startCrlServer(
    t,
    bundle(intA, crlPem(intA, 1n), intB, crlPem(intB, 1n, [clients.bRevoked!.serial]), root, crlPem(root, 1n)),
  );
  const r = await startGateway(t, [source.url]);
  await assertAllowed(r, clients.a!, 'a client of intermediate A (in clientCa)');
  await assertAllowed(r, clients.b!, 'a client of intermediate B (not in clientCa, its certificate came with its CRL)');
  await assertRefused(
    r,
    clients.bRevoked!,
    'REVOKED',
    new RegExp(`serial ${clients.bRevoked!.serial} was revoked .* by "O=Gatehouse Test, CN=Bundle Issuing B"`),
  );
  const loaded = r.events('gateway.crl_loaded').map((e) => e.issuer);
  assert.deepEqual(loaded, [
    'O=Gatehouse Test, CN=Bundle Issuing',
    'O=Gatehouse Test, CN=Bundle Issuing B',
    'O=Gatehouse Test, CN=Bundle Root',
  ]);

  // /healthz and the gauges list every loaded CRL, each with its source.
  const health = JSON.parse(await adminGet(r, '/healthz')) as {
    crls: Array<{ source: string; issuer: string; stale: boolean }>;
  };
  assert.deepEqual(
    health.crls.map((c) => [c.source, c.issuer, c.stale]),
    [
      [source.url, 'O=Gatehouse Test, CN=Bundle Issuing', false],
      [source.url, 'O=Gatehouse Test, CN=Bundle Issuing B', false],
      [source.url, 'O=Gatehouse Test, CN=Bundle Root', false],
    ],
  );
  const metrics = await adminGet(r, '/metrics');
  const issuers = [...metrics.matchAll(/^gatehouse_gateway_crl_next_update_timestamp_seconds\{issuer="([^"]+)"\}/gm)]
    .map((m) => m[1])
    .sort();
  assert.deepEqual(issuers, [
    'O=Gatehouse Test, CN=Bundle Issuing',
    'O=Gatehouse Test, CN=Bundle Issuing B',
    'O=Gatehouse Test, CN=Bundle Root',
  ]);
});

test('crl-bundle-file-source-without-b-certificate-refused-so-b-clients-crl-missing', async (t) => {
  const path = fileSource(bundle(intA, crlPem(intA, 1n), root, crlPem(root, 1n)));
  const r = await startGateway(t, [path]);
  await assertRefused(r, clients.b!, 'CRL_MISSING', /no CRL is loaded for "O=Gatehouse Test, CN=Bundle Issuing B"/);
  // B's CRL without B's certificate: no key to verify it with, so the whole refresh is refused.
  const refused = await refreshAfter(
    r,
    path,
    bundle(intA, crlPem(intA, 2n), crlPem(intB, 1n), root, crlPem(root, 2n)),
    'gateway.crl_refused',
  );
  assert.equal(refused.level, 'error');
  assert.equal(refused.code, 'GH_CRL_SIGNATURE');
  assert.equal(refused.issuer, 'O=Gatehouse Test, CN=Bundle Issuing B');
  assert.match(
    String(refused.reason),
    /^CRL 2 \(issuer "O=Gatehouse Test, CN=Bundle Issuing B"\): CRL issuer "O=Gatehouse Test, CN=Bundle Issuing B" is not a CA of the trust bundle$/,
  );
  assert.deepEqual(
    (refused.kept as Array<{ crlNumber: string }>).map((k) => k.crlNumber),
    ['1', '1'],
    'the previous set (CRLs 1) stays whole',
  );
  await assertRefused(r, clients.b!, 'CRL_MISSING', /no CRL is loaded for "O=Gatehouse Test, CN=Bundle Issuing B"/);
  await assertAllowed(r, clients.a!, 'A keeps its previous CRL');
  // With B's certificate added, the same CRLs load.
  await refreshAfter(
    r,
    path,
    bundle(intA, crlPem(intA, 2n), intB, crlPem(intB, 1n), root, crlPem(root, 2n)),
    'gateway.crl_loaded',
  );
  await assertAllowed(r, clients.b!, 'B once its certificate is in the source');
});

test('crl-bundle-signer-certificate-not-signed-by-the-bundle-refused-and-previous-kept', async (t) => {
  const path = fileSource(bundle(intA, crlPem(intA, 1n, [clients.a!.serial]), root, crlPem(root, 1n)));
  const r = await startGateway(t, [path]);
  await assertRefused(r, clients.a!, 'REVOKED', /was revoked/);
  // Another root's intermediate, with a CRL of its own, riding along: the whole fetch is refused.
  const refused = await refreshAfter(
    r,
    path,
    bundle(intA, crlPem(intA, 2n), foreignInt, crlPem(foreignInt, 1n), root, crlPem(root, 2n)),
    'gateway.crl_refused',
  );
  const serial = pki.parseCertificate(foreignInt.certDer).serial;
  assert.equal(
    refused.reason,
    `signer certificate "O=Gatehouse Test, CN=Foreign Issuing" (serial ${serial}) cannot sign CRLs: it is not signed by a certificate of the trust bundle (tls.clientCa)`,
  );
  assert.equal(refused.code, 'GH_CRL_SIGNATURE');
  await assertRefused(r, clients.a!, 'REVOKED', /was revoked/); // CRL 2 (which un-revokes a) was not applied
  const health = JSON.parse(await adminGet(r, '/healthz')) as { crls: Array<{ lastError: string | null }> };
  assert.ok(
    health.crls.every((c) => c.lastError === refused.reason),
    'the refusal is reported on every row of the source',
  );
  const metrics = await adminGet(r, '/metrics');
  assert.match(
    metrics,
    /gatehouse_gateway_crl_next_update_timestamp_seconds\{issuer="O=Gatehouse Test, CN=Bundle Issuing"\}/,
  );
  assert.doesNotMatch(metrics, /Foreign/);
});

test('crl-bundle-signer-certificate-without-crl-sign-refused', async (t) => {
  const path = fileSource(bundle(intA, crlPem(intA, 1n), root, crlPem(root, 1n)));
  const r = await startGateway(t, [path]);
  const refused = await refreshAfter(
    r,
    path,
    bundle(intA, crlPem(intA, 2n), noCrlSign, crlPem(noCrlSign, 1n), root, crlPem(root, 2n)),
    'gateway.crl_refused',
  );
  const serial = pki.parseCertificate(noCrlSign.certDer).serial;
  assert.equal(
    refused.reason,
    `signer certificate "O=Gatehouse Test, CN=Bundle Issuing NoCrlSign" (serial ${serial}) cannot sign CRLs: its keyUsage lacks cRLSign (RFC 5280 §4.2.1.3)`,
  );
  assert.deepEqual(
    (refused.kept as Array<{ crlNumber: string }>).map((k) => k.crlNumber),
    ['1', '1'],
  );
});

test('crl-bundle-two-crls-of-one-issuer-refused', async (t) => {
  const path = fileSource(bundle(intA, crlPem(intA, 1n), root, crlPem(root, 1n)));
  const r = await startGateway(t, [path]);
  const refused = await refreshAfter(
    r,
    path,
    bundle(intA, crlPem(intA, 3n), crlPem(intA, 2n, [clients.a!.serial]), root, crlPem(root, 2n)),
    'gateway.crl_refused',
  );
  assert.equal(
    refused.reason,
    'CRL 2 (issuer "O=Gatehouse Test, CN=Bundle Issuing"): the source holds two CRLs of this issuer (CRLs 1 and 2); publish one per CA',
  );
  assert.equal(refused.crl, 2);
  await assertAllowed(r, clients.a!, 'the previous set stays');
});

test('crl-bundle-two-crls-of-one-issuer-refused-at-start-of-a-file-source', async (t) => {
  const path = fileSource(bundle(intA, crlPem(intA, 1n), crlPem(intA, 2n), root, crlPem(root, 1n)));
  await assert.rejects(
    startGateway(t, [path]),
    /cannot be used: CRL 2 \(issuer "O=Gatehouse Test, CN=Bundle Issuing"\): the source holds two CRLs of this issuer/,
  );
});

test('crl-bundle-older-crl-number-for-one-issuer-refused-and-previous-kept', async (t) => {
  const source = await startCrlServer(
    t,
    bundle(intA, crlPem(intA, 5n, [clients.a!.serial]), intB, crlPem(intB, 1n), root, crlPem(root, 1n)),
  );
  const r = await startGateway(t, [source.url]);
  await assertRefused(r, clients.a!, 'REVOKED', /was revoked/);
  // A replayed CRL 4 of A (before a's revocation), with a newer B and root: all of it is refused.
  source.set(bundle(intA, crlPem(intA, 4n), intB, crlPem(intB, 2n, [clients.b!.serial]), root, crlPem(root, 2n)));
  const before = r.events('gateway.crl_refused').length;
  r.gw.reload();
  await waitFor(() => r.events('gateway.crl_refused').length > before, 5000, 'gateway.crl_refused', 20);
  const refused = r.events('gateway.crl_refused').at(-1)!;
  assert.equal(
    refused.reason,
    'CRL 1 (issuer "O=Gatehouse Test, CN=Bundle Issuing"): CRL number 4 is older than the CRL in force (number 5); a rolled-back CRL is refused',
  );
  await assertRefused(r, clients.a!, 'REVOKED', /was revoked/);
  await assertAllowed(r, clients.b!, "B's newer CRL 2 was not applied either: all or nothing");
});

test('crl-bundle-issuer-gone-from-a-later-fetch-dropped-once-and-its-clients-crl-missing', async (t) => {
  const path = fileSource(bundle(intA, crlPem(intA, 1n), intB, crlPem(intB, 1n), root, crlPem(root, 1n)));
  const r = await startGateway(t, [path]);
  await assertAllowed(r, clients.a!, 'A before it retires');
  const dropped = await refreshAfter(
    r,
    path,
    bundle(intB, crlPem(intB, 2n), root, crlPem(root, 2n)),
    'gateway.crl_dropped',
  );
  assert.equal(dropped.issuer, 'O=Gatehouse Test, CN=Bundle Issuing');
  assert.equal(dropped.level, 'info');
  await assertRefused(r, clients.a!, 'CRL_MISSING', /no CRL is loaded for "O=Gatehouse Test, CN=Bundle Issuing"/);
  await assertAllowed(r, clients.b!, 'B stays');
  // Another fetch without A: not dropped again.
  await refreshAfter(r, path, bundle(intB, crlPem(intB, 3n), root, crlPem(root, 3n)), 'gateway.crl_loaded');
  assert.equal(r.events('gateway.crl_dropped').length, 1, 'logged once');
  // A coming back with an older CRL than the one last seen from it is still refused.
  const oldA = pki.toPem('X509 CRL', makeCrl(intA, { crlNumber: 0n, thisUpdate: new Date(Date.now() - 86_400_000) }));
  const refused = await refreshAfter(
    r,
    path,
    bundle(intA, oldA, intB, crlPem(intB, 4n), root, crlPem(root, 4n)),
    'gateway.crl_refused',
  );
  assert.match(String(refused.reason), /CRL number 0 is older than the CRL last seen from this issuer \(number 1\)/);
});

test('crl-bundle-client-of-an-issuer-without-crl-makes-the-gateway-ask-the-source-once-more-at-most-every-5-s', async (t) => {
  // The CA began issuing from B (a rotation) after the gateway's last fetch; the next one is an hour away.
  const source = await startCrlServer(t, bundle(intA, crlPem(intA, 1n), root, crlPem(root, 1n)));
  const r = await startGateway(t, [source.url]);
  assert.equal(source.fetches(), 1);
  source.set(bundle(intA, crlPem(intA, 1n), intB, crlPem(intB, 1n), root, crlPem(root, 1n)));
  await assertAllowed(r, clients.b!, 'a client of B, admitted after one more fetch instead of refused for an hour');
  assert.equal(source.fetches(), 2);
  assert.equal(r.events('gateway.crl_refresh_on_demand').length, 1);
  // B's CRL is loaded now: no further fetch for B's clients.
  await assertAllowed(r, clients.b!, 'again');
  assert.equal(source.fetches(), 2);

  // A flood from clients whose issuer has no CRL anywhere costs at most one fetch per 5 s, and they are refused.
  source.set(bundle(intA, crlPem(intA, 2n), root, crlPem(root, 2n)));
  r.gw.reload();
  await waitFor(() => r.events('gateway.crl_dropped').length > 0, 5_000, "B's CRL to be dropped", 20);
  const before = source.fetches();
  const answers = await Promise.all(Array.from({ length: 20 }, () => get(r, clients.b!)));
  assert.deepEqual([...new Set(answers.map((a) => a.status))], [403]);
  assert.ok(source.fetches() - before <= 1, `${source.fetches() - before} fetches for 20 requests`);
});

test('crl-bundle-on-demand-refresh-is-shared-while-running-and-at-most-once-per-5-s', async (t) => {
  const source = await startCrlServer(t, bundle(intA, crlPem(intA, 1n), root, crlPem(root, 1n)));
  let clock = Date.now();
  const checker = new RevocationChecker({
    sources: [source.url],
    trustBundle: readFileSync(clientCa, 'utf8'),
    ca: readFileSync(clientCa, 'utf8'),
    refreshIntervalMs: 3_600_000,
    now: () => new Date(clock),
  });
  t.after(() => checker.close());
  await checker.start();
  assert.equal(source.fetches(), 1);
  // Twenty clients at once: one fetch, which they all wait for.
  await Promise.all(Array.from({ length: 20 }, () => checker.refreshForMissingCrl()));
  assert.equal(source.fetches(), 2);
  clock += 4_000;
  await checker.refreshForMissingCrl();
  assert.equal(source.fetches(), 2, 'within 5 s of the last: no fetch');
  clock += 1_500;
  await checker.refreshForMissingCrl();
  assert.equal(source.fetches(), 3, 'past 5 s: one more');
});
