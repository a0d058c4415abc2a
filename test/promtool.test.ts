/**
 * Every metrics endpoint passes `promtool check metrics` (Prometheus' own parser and linter, from
 * Debian's `prometheus` package): a real `ca serve`, its `--workers 2` primary (merged), and a real
 * gateway, single and `--workers 2`, each after traffic that gives every gatehouse_ family samples
 * (the histograms included). promtool reads the exposition on stdin, exits 0 and prints nothing
 * when it has no complaint. Also checked: gatehouse_build_info, and the expiry timestamps against
 * the notAfter of the certificates themselves, read with openssl and from the TLS handshake.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { join } from 'node:path';
import YAML from 'yaml';
import { caRequest, newCsr } from './helpers/ca-http.js';
import { startCaProcess, type CaProcess } from './helpers/ca-process.js';
import { enrollAgent, startCaFixture, writeClientCaBundle, type CaFixture } from './helpers/ca-fixture.js';
import { startEchoUpstream, type EchoUpstream } from './helpers/echo-upstream.js';
import { startGatewayProcess, type GatewayProcess } from './helpers/gateway-process.js';
import { gatehouse } from './helpers/cli.js';
import { run } from './helpers/run.js';
import { makeTempDir } from './helpers/tmp.js';
import { httpGet } from './helpers/http-get.js';
import { waitFor } from './helpers/poll.js';

const tmp = makeTempDir();
after(() => tmp.cleanup());

async function promtool(exposition: string): Promise<{ status: number | null; output: string }> {
  const r = await run('promtool', ['check', 'metrics'], { input: exposition });
  return { status: r.status, output: (r.stdout + r.stderr).trim() };
}

/** promtool passes: exit 0, nothing printed. */
async function assertPromtoolPasses(what: string, exposition: string): Promise<void> {
  const r = await promtool(exposition);
  assert.deepEqual(r, { status: 0, output: '' }, `promtool check metrics on ${what}`);
}

type Samples = Array<{ name: string; labels: Record<string, string>; value: number }>;
function parse(body: string): Samples {
  return body
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((line) => {
      const m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
      assert.ok(m, `metric line: ${line}`);
      return {
        name: m[1]!,
        labels: Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!])),
        value: Number(m[3]),
      };
    });
}
function sample(samples: Samples, name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.equal(found.length, 1, `${name} ${JSON.stringify(labels)}: ${found.length} samples`);
  return found[0]!.value;
}
/** The gatehouse_ families declared (# TYPE) that have no sample: traffic should have given each one. */
function familiesWithoutSamples(body: string, prefix: string): string[] {
  const families = [...body.matchAll(/^# TYPE (\w+) (\w+)$/gm)].filter((m) => m[1]!.startsWith(prefix));
  const names = new Set(parse(body).map((s) => s.name));
  return families
    .filter(([, name, type]) => !(type === 'histogram' ? names.has(`${name}_count`) : names.has(name!)))
    .map((m) => m[1]!);
}
/** Every gatehouse_ family the endpoint declares is named in its operator documentation. */
function assertDocumented(body: string, doc: string): void {
  const text = readFileSync(doc, 'utf8');
  const undocumented = [...body.matchAll(/^# TYPE (gatehouse_\w+) /gm)]
    .map((m) => m[1]!)
    .filter((name) => !text.includes(`\`${name}\``));
  assert.deepEqual(undocumented, [], `metrics missing from ${doc}`);
}
function assertBuildInfo(samples: Samples, component: string): void {
  const info = samples.filter((s) => s.name === 'gatehouse_build_info');
  const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
  assert.deepEqual(info, [
    { name: 'gatehouse_build_info', labels: { version, node_version: process.version, component }, value: 1 },
  ]);
}

/** notAfter as Unix seconds, read by openssl from a PEM file (its first certificate). */
async function opensslNotAfter(pemFile: string): Promise<number> {
  const r = await run('openssl', ['x509', '-noout', '-enddate', '-in', pemFile]);
  assert.equal(r.status, 0, r.stderr);
  const m = /^notAfter=(.+)$/m.exec(r.stdout);
  assert.ok(m, r.stdout);
  const at = Date.parse(m[1]!);
  assert.ok(Number.isFinite(at), `openssl date ${m[1]}`);
  return at / 1000;
}
/** notAfter of the certificate a TLS server presents, as Unix seconds. */
function servedNotAfter(port: number, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const at = Date.parse(socket.getPeerCertificate().valid_to) / 1000;
      socket.end();
      resolve(at);
    });
    socket.on('error', reject);
  });
}

test('promtool-rejects-a-misnamed-metric-so-the-checks-below-can-fail', async () => {
  // The guard of this file: the names prom-client's defaults used to expose, and what a timestamp must not be called.
  const bad = await promtool(
    '# HELP nodejs_active_handles_total Total number of active handles.\n# TYPE nodejs_active_handles_total gauge\nnodejs_active_handles_total 3\n',
  );
  assert.notEqual(bad.status, 0);
  assert.match(bad.output, /nodejs_active_handles_total non-counter metrics should not have "_total" suffix/);
  const noHelp = await promtool('# TYPE gatehouse_x_seconds gauge\ngatehouse_x_seconds 1\n');
  assert.notEqual(noHelp.status, 0);
  assert.match(noHelp.output, /no help text/);
  assert.deepEqual(
    await promtool('# HELP gatehouse_x_total x\n# TYPE gatehouse_x_total counter\ngatehouse_x_total 1\n'),
    { status: 0, output: '' },
  );
});

async function initCa(name: string): Promise<string> {
  const dir = join(tmp.dir, name);
  const r = await gatehouse(['ca', 'init', '--dir', dir, '--trust-domain', 'promtool.internal']);
  assert.equal(r.status, 0, r.stderr);
  const path = join(dir, 'gatehouse.yaml');
  const doc = YAML.parse(readFileSync(path, 'utf8')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- a YAML document, edited anywhere
  // A small enroll burst so the traffic below meets the rate limit; none on /renew.
  doc.limits = {
    enroll: { perSource: { rate: 0.01, burst: 4 }, perToken: null },
    renew: { perSource: null, perCertificate: null },
  };
  writeFileSync(path, YAML.stringify(doc), { mode: 0o600 });
  return dir;
}

async function enrollAs(
  ca: CaProcess,
  dir: string,
  rootPem: string,
  name: string,
): Promise<{ keyPem: string; certPem: string }> {
  const t = await gatehouse(['token', 'create', '--dir', dir, '--role', 'web']);
  assert.equal(t.status, 0, t.stderr);
  const made = await newCsr({ commonName: name });
  const r = await caRequest(ca.url, 'enroll', { ca: rootPem, body: { token: t.stdout.trim(), csr: made.csr } });
  assert.equal(r.status, 201, r.text);
  return { keyPem: made.keyPem, certPem: r.json.chain as string };
}

/** Traffic touching every metric of the CA: issuance, refusals, a rate limit, suppressed audits, a copied identity, every route. */
async function caTraffic(ca: CaProcess, dir: string, rootPem: string): Promise<void> {
  const web1 = await enrollAs(ca, dir, rootPem, 'web-1');
  const web2 = await enrollAs(ca, dir, rootPem, 'web-2');
  // A secret read and a refused one (gatehouse_ca_secret_reads_total, route secrets).
  const created = await gatehouse(
    ['secret', 'create', 'db-password', '--from-stdin', '--grant', 'role:web', '--dir', dir],
    { input: 'hunter2' },
  );
  assert.equal(created.status, 0, created.stderr);
  assert.equal(
    (await caRequest(ca.url, 'v1/secrets/db-password', { ca: rootPem, key: web2.keyPem, cert: web2.certPem })).status,
    200,
  );
  assert.equal(
    (await caRequest(ca.url, 'v1/secrets/not-granted', { ca: rootPem, key: web2.keyPem, cert: web2.certPem })).status,
    403,
  );
  assert.equal(
    (await caRequest(ca.url, 'enroll', { ca: rootPem, body: { token: 'GHTKN-1-nonsense', csr: 'x' } })).status,
    401,
  );
  assert.equal((await caRequest(ca.url, 'enroll', { ca: rootPem, body: '{not json' })).status, 400);
  assert.equal(
    (await caRequest(ca.url, 'enroll', { ca: rootPem, body: { token: 'GHTKN-1-nonsense', csr: 'x' } })).status,
    429,
  );
  const renew = (key: string, cert: string) =>
    newCsr({ commonName: 'web-1' }).then((m) =>
      caRequest(ca.url, 'renew', { ca: rootPem, key, cert, body: { csr: m.csr } }),
    );
  assert.equal((await renew(web1.keyPem, web1.certPem)).status, 201);
  assert.equal(
    (await renew(web1.keyPem, web1.certPem)).status,
    403,
    'the renewed certificate again with another key: reuse',
  );
  // Anonymous refusals past the refusal audit's burst of 20 per source are counted, not written.
  for (let i = 0; i < 25; i++)
    assert.equal((await caRequest(ca.url, 'renew', { ca: rootPem, body: { csr: 'x' } })).status, 401);
  for (const path of ['roots', 'crl', 'crl/root', 'healthz', 'health'])
    assert.equal((await caRequest(ca.url, path, { ca: rootPem })).status, 200, path);
  assert.equal((await caRequest(ca.url, 'admin/tokens', { ca: rootPem })).status, 401);
  assert.ok((await caRequest(ca.url, 'dashboard/', { ca: rootPem })).status > 0);
  assert.equal((await caRequest(ca.url, 'nope', { ca: rootPem })).status, 404);
}

test('promtool-passes-on-a-live-ca-metrics-endpoint-with-build-info-timestamps-and-the-request-histogram', async () => {
  const dir = await initCa('single');
  const rootPem = readFileSync(join(dir, 'root.pem'), 'utf8');
  const ca = await startCaProcess(dir, ['--metrics-listen', '127.0.0.1:0']);
  try {
    await caTraffic(ca, dir, rootPem);
    const r = await httpGet(ca.metricsUrl!);
    assert.equal(r.status, 200);
    assert.deepEqual(familiesWithoutSamples(r.body, 'gatehouse_'), [], 'every gatehouse_ family has samples');
    await assertPromtoolPasses('ca serve /metrics', r.body);

    assertDocumented(r.body, 'docs/operations.md');
    const s = parse(r.body);
    assertBuildInfo(s, 'ca');
    const expiry = (certificate: string) =>
      sample(s, 'gatehouse_ca_certificate_expiry_timestamp_seconds', { certificate });
    assert.equal(expiry('root'), await opensslNotAfter(join(dir, 'root.pem')));
    assert.equal(expiry('intermediate'), await opensslNotAfter(join(dir, 'intermediate.pem')));
    assert.equal(
      expiry('server'),
      await servedNotAfter(Number(new URL(ca.url).port), rootPem),
      'the HTTPS certificate the CA serves',
    );
    // The CRL's nextUpdate, as openssl reads it from /crl. The revocation of the copied lineage
    // reissues the CRL in the background: compare a scrape with the CRL served before and after it.
    const crlFile = join(dir, 'served.crl');
    const servedNextUpdate = async () => {
      writeFileSync(crlFile, (await caRequest(ca.url, 'crl', { ca: rootPem })).body);
      const crl = await run('openssl', ['crl', '-inform', 'DER', '-noout', '-nextupdate', '-in', crlFile]);
      assert.equal(crl.status, 0, crl.stderr);
      return Date.parse(/nextUpdate=(.+)/.exec(crl.stdout)![1]!) / 1000;
    };
    for (let attempt = 0; ; attempt++) {
      const before = await servedNextUpdate();
      const scraped = sample(
        parse((await httpGet(ca.metricsUrl!)).body),
        'gatehouse_ca_crl_next_update_timestamp_seconds',
        { crl: 'intermediate' },
      );
      if (before === (await servedNextUpdate()) || attempt === 10) {
        assert.equal(scraped, before);
        break;
      }
    }
    assert.ok(
      !r.body.includes('gatehouse_ca_certificate_expiry_seconds') &&
        !r.body.includes('gatehouse_ca_crl_next_update_seconds'),
      'the old "seconds until" names are gone',
    );

    assert.match(r.body, /^# TYPE gatehouse_ca_http_request_duration_seconds histogram$/m);
    assert.equal(
      sample(s, 'gatehouse_ca_http_request_duration_seconds_count', { method: 'POST', route: 'enroll', code: '201' }),
      2,
    );
    assert.equal(
      sample(s, 'gatehouse_ca_http_request_duration_seconds_bucket', {
        method: 'POST',
        route: 'enroll',
        code: '201',
        le: '+Inf',
      }),
      2,
    );
    const routes = new Set(
      s.filter((x) => x.name === 'gatehouse_ca_http_request_duration_seconds_count').map((x) => x.labels.route),
    );
    assert.deepEqual(
      [...routes].sort(),
      ['admin', 'crl', 'dashboard', 'enroll', 'health', 'other', 'renew', 'roots', 'secrets'],
      'the closed set of routes, never a raw path',
    );
  } finally {
    await ca.stop();
  }
});

test('promtool-passes-on-the-merged-metrics-of-a-ca-serve-workers-2-primary', async () => {
  const dir = await initCa('workers');
  const rootPem = readFileSync(join(dir, 'root.pem'), 'utf8');
  const ca = await startCaProcess(dir, ['--workers', '2', '--metrics-listen', '127.0.0.1:0']);
  try {
    for (let i = 0; i < 4; i++) await enrollAs(ca, dir, rootPem, `w-${i}`);
    assert.equal(
      (await caRequest(ca.url, 'enroll', { ca: rootPem, body: { token: 'GHTKN-1-nonsense', csr: 'x' } })).status,
      401,
    );
    for (const path of ['roots', 'healthz', 'nope']) await caRequest(ca.url, path, { ca: rootPem });
    const r = await httpGet(ca.metricsUrl!);
    assert.equal(r.status, 200);
    await assertPromtoolPasses('the ca serve --workers 2 primary /metrics', r.body);
    const s = parse(r.body);
    assertBuildInfo(s, 'ca');
    assert.equal(
      sample(s, 'gatehouse_ca_http_request_duration_seconds_count', { method: 'POST', route: 'enroll', code: '201' }),
      4,
    );
    // The soonest over the workers: each has its own HTTPS certificate, issued about when it started.
    const server =
      sample(s, 'gatehouse_ca_certificate_expiry_timestamp_seconds', { certificate: 'server' }) - Date.now() / 1000;
    assert.ok(server > 86_400 - 300 && server <= 86_400, `server certificate expires in ${server} s`);
    assert.equal(
      sample(s, 'gatehouse_ca_certificate_expiry_timestamp_seconds', { certificate: 'root' }),
      await opensslNotAfter(join(dir, 'root.pem')),
    );
  } finally {
    assert.equal(await ca.stop(), 0);
  }
});

let fixture: CaFixture;
let app: EchoUpstream;
let gwDir = '';
let deviceDir = '';
let bundle = '';
before(async () => {
  fixture = await startCaFixture({ crlCheckIntervalMs: 200 });
  app = await startEchoUpstream();
  gwDir = (await enrollAgent(fixture, 'gateway', 'gw-1', { dns: ['localhost'], ip: ['127.0.0.1'] })).dir;
  deviceDir = (await enrollAgent(fixture, 'web', 'device-1')).dir;
  bundle = writeClientCaBundle(fixture);
});
after(async () => {
  await app?.close();
  await fixture?.close();
});

async function startGateway(extraArgs: string[]): Promise<{ gateway: GatewayProcess; metricsUrl: string }> {
  const gateway = await startGatewayProcess({
    cert: join(gwDir, 'cert.pem'),
    key: join(gwDir, 'key.pem'),
    clientCa: bundle,
    upstream: app.url,
    extraArgs: [
      '--admin-listen',
      '127.0.0.1:0',
      '--crl',
      `${fixture.url}/crl`,
      '--crl',
      `${fixture.url}/crl/root`,
      ...extraArgs,
    ],
  });
  const admin = await gateway.waitForLog((l) => l.msg === 'gateway.admin_started');
  return { gateway, metricsUrl: `http://127.0.0.1:${String(admin.listen).split(':').pop()}/metrics` };
}

/** Once every process has loaded both CRLs (until then the devices are refused as CRL_MISSING): allowed requests, one without a certificate, a refused TLS 1.1 handshake. */
async function gatewayTraffic(gateway: GatewayProcess, processes: number): Promise<void> {
  await waitFor(
    () => gateway.logs().filter((l) => l.msg === 'gateway.crl_loaded').length >= 2 * processes,
    15_000,
    () => `every process to load both CRLs:\n${gateway.stderr().slice(-4000)}`,
  );
  const curl = (args: string[]) =>
    run('curl', [
      '-sS',
      '--max-time',
      '10',
      '--cacert',
      join(gwDir, 'ca.pem'),
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      ...args,
    ]);
  for (let i = 0; i < 3; i++)
    assert.equal(
      (await curl(['--cert', join(deviceDir, 'cert.pem'), '--key', join(deviceDir, 'key.pem'), `${gateway.url}/p${i}`]))
        .stdout,
      '200',
    );
  assert.equal((await curl([`${gateway.url}/no-cert`])).stdout, '400');
  await curl(['--tlsv1.0', '--tls-max', '1.1', `${gateway.url}/old-tls`]);
}

test('promtool-passes-on-a-live-gateway-metrics-endpoint-with-build-info-timestamps-and-the-request-histogram', async () => {
  const { gateway, metricsUrl } = await startGateway([]);
  try {
    await gatewayTraffic(gateway, 1);
    gateway.child.kill('SIGHUP');
    await gateway.waitForLog((l) => l.msg === 'gateway.reloaded');
    const { body } = await httpGet(metricsUrl);
    const missing = familiesWithoutSamples(body, 'gatehouse_');
    assert.deepEqual(
      missing,
      ['gatehouse_gateway_upstream_failures_total', 'gatehouse_gateway_posture_lookups_total'],
      'every family has samples but posture lookups (no posture rule) and upstream failures (the one upstream is up)',
    );
    await assertPromtoolPasses('gateway /metrics', body);

    assertDocumented(body, 'docs/gateway.md');
    const s = parse(body);
    assertBuildInfo(s, 'gateway');
    assert.equal(
      sample(s, 'gatehouse_gateway_certificate_expiry_timestamp_seconds'),
      await opensslNotAfter(join(gwDir, 'cert.pem')),
    );
    assert.equal(
      sample(s, 'gatehouse_gateway_certificate_expiry_timestamp_seconds'),
      await servedNotAfter(gateway.port, readFileSync(join(gwDir, 'ca.pem'), 'utf8')),
    );
    const nextUpdates = s.filter((x) => x.name === 'gatehouse_gateway_crl_next_update_timestamp_seconds');
    assert.equal(nextUpdates.length, 2, 'intermediate and root CRLs');
    for (const { value } of nextUpdates) assert.ok(value > Date.now() / 1000, 'nextUpdate ahead');
    for (const x of s.filter((y) => y.name === 'gatehouse_gateway_crl_this_update_timestamp_seconds'))
      assert.ok(x.value <= Date.now() / 1000 + 1 && x.value > Date.now() / 1000 - 3600);
    assert.ok(
      !body.includes('gatehouse_gateway_certificate_expiry_seconds') &&
        !body.includes('gatehouse_gateway_crl_age_seconds'),
      'the old names are gone',
    );

    assert.match(body, /^# TYPE gatehouse_gateway_request_duration_seconds histogram$/m);
    assert.equal(sample(s, 'gatehouse_gateway_request_duration_seconds_count', { route: 'routes[0]', code: '2xx' }), 3);
    assert.equal(sample(s, 'gatehouse_gateway_request_duration_seconds_count', { route: 'none', code: '4xx' }), 1);
    assert.equal(
      sample(s, 'gatehouse_gateway_request_duration_seconds_bucket', { route: 'routes[0]', code: '2xx', le: '+Inf' }),
      3,
    );
  } finally {
    await gateway.stop();
  }
});

test('promtool-passes-on-the-merged-metrics-of-a-gateway-workers-2-primary', async () => {
  const { gateway, metricsUrl } = await startGateway(['--workers', '2']);
  try {
    await gatewayTraffic(gateway, 2);
    const r = await httpGet(metricsUrl);
    assert.equal(r.status, 200);
    await assertPromtoolPasses('the gateway --workers 2 primary /metrics', r.body);
    const s = parse(r.body);
    assertBuildInfo(s, 'gateway');
    assert.equal(
      sample(s, 'gatehouse_gateway_request_duration_seconds_count', { route: 'routes[0]', code: '2xx' }),
      3,
      'summed over the workers',
    );
    assert.equal(
      sample(s, 'gatehouse_gateway_certificate_expiry_timestamp_seconds'),
      await opensslNotAfter(join(gwDir, 'cert.pem')),
      'the minimum of equal timestamps is the timestamp',
    );
  } finally {
    assert.equal(await gateway.stop(), 0);
  }
});
