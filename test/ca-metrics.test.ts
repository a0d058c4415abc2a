/**
 * The CA's Prometheus metrics as operators scrape them: the real `ca serve` with
 * --metrics-listen, enrollments, renewals and refusals over HTTPS, then /metrics and /healthz;
 * with --workers 2, the primary's merged view. Also the config key and its overrides.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import YAML from 'yaml';
import { parseCaConfig } from '../src/config/ca-config.js';
import { isGatehouseError } from '../src/errors/errors.js';
import { caRequest, newCsr, type HttpResult } from './helpers/ca-http.js';
import { pollUntil } from './helpers/poll.js';
import { startCaProcess, type CaProcess } from './helpers/ca-process.js';
import { gatehouse } from './helpers/cli.js';
import { makeTempDir } from './helpers/tmp.js';
import { httpGet } from './helpers/http-get.js';
import { findLog } from './helpers/log-lines.js';

const tmp = makeTempDir();
after(() => tmp.cleanup());

/** A CA made by the CLI, with a role whose certificates live 10 s (to see one expire). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- edits reach anywhere in the YAML document
async function initCa(name: string, edit: (doc: Record<string, any>) => void = () => undefined): Promise<string> {
  const dir = join(tmp.dir, name);
  const r = await gatehouse(['ca', 'init', '--dir', dir, '--trust-domain', 'metrics.internal']);
  assert.equal(r.status, 0, r.stderr);
  const path = join(dir, 'gatehouse.yaml');
  const doc = YAML.parse(readFileSync(path, 'utf8')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- a YAML document, edited anywhere
  doc.roles.brief = { profile: 'client', lifetime: '10s' };
  edit(doc);
  writeFileSync(path, YAML.stringify(doc), { mode: 0o600 });
  return dir;
}

type Samples = Array<{ name: string; labels: Record<string, string>; value: number }>;
async function scrape(ca: CaProcess): Promise<Samples> {
  const r = await httpGet(ca.metricsUrl!);
  assert.equal(r.status, 200, r.body);
  return r.body
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((line) => {
      const m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
      assert.ok(m, `metric line: ${line}`);
      const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!]));
      return { name: m[1]!, labels, value: Number(m[3]) };
    });
}
/** The value of the one sample with exactly these labels; 0 when a counter has no such series yet. */
function value(samples: Samples, name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter(
    (s) =>
      s.name === name &&
      JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort()),
  );
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)} appears ${found.length} times`);
  return found[0]?.value ?? 0;
}

async function token(caDir: string, role: string): Promise<string> {
  const r = await gatehouse(['token', 'create', '--dir', caDir, '--role', role]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

async function enroll(ca: CaProcess, rootPem: string, body: object | string): Promise<HttpResult> {
  return caRequest(ca.url, 'enroll', { method: 'POST', ca: rootPem, body });
}

async function enrollAs(
  ca: CaProcess,
  caDir: string,
  rootPem: string,
  role: string,
  name: string,
): Promise<{ keyPem: string; certPem: string; serial: string; token: string }> {
  const t = await token(caDir, role);
  const made = await newCsr({ commonName: name });
  const r = await enroll(ca, rootPem, { token: t, csr: made.csr });
  assert.equal(r.status, 201, r.text);
  return { keyPem: made.keyPem, certPem: r.json.chain as string, serial: r.json.serial as string, token: t };
}

let single: { dir: string; ca: CaProcess; rootPem: string };

before(async () => {
  const dir = await initCa('single');
  const ca = await startCaProcess(dir, ['--metrics-listen', '127.0.0.1:0']);
  single = { dir, ca, rootPem: readFileSync(join(dir, 'root.pem'), 'utf8') };
});

after(async () => {
  await single?.ca.stop();
});

test('ca-metrics-count-issuance-refusals-states-and-expiry-from-a-real-ca-serve', async () => {
  const { ca, dir, rootPem } = single;
  assert.match(ca.metricsUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  const start = await scrape(ca);
  assert.equal(
    value(start, 'gatehouse_ca_certificates_issued_total', { kind: 'internal', role: 'ca-server' }),
    1,
    'the CA server certificate issued at start',
  );
  assert.equal(value(start, 'gatehouse_ca_certificates', { state: 'active' }), 2, 'admin and CA server certificates');
  const day = 86_400;
  // Unix timestamps: seconds from now to each.
  const nowSeconds = Date.now() / 1000;
  const expiry = (certificate: string) =>
    value(start, 'gatehouse_ca_certificate_expiry_timestamp_seconds', { certificate }) - nowSeconds;
  assert.ok(expiry('root') > 3649 * day && expiry('root') <= 3650 * day, `root ${expiry('root')}`);
  assert.ok(
    expiry('intermediate') > 1824 * day && expiry('intermediate') <= 1826 * day,
    `intermediate ${expiry('intermediate')}`,
  );
  assert.ok(expiry('server') > day - 120 && expiry('server') <= day, `server ${expiry('server')}`);
  assert.equal(
    value(start, 'gatehouse_ca_certificate_expiry_timestamp_seconds', { certificate: 'root' }),
    Date.parse(new X509Certificate(rootPem).validTo) / 1000,
    'the notAfter of root.pem',
  );
  assert.ok(
    value(start, 'gatehouse_ca_crl_next_update_timestamp_seconds', { crl: 'intermediate' }) - nowSeconds > day - 120,
  );
  assert.ok(value(start, 'gatehouse_ca_crl_next_update_timestamp_seconds', { crl: 'root' }) - nowSeconds > 179 * day);
  assert.equal(start.filter((s) => s.name === 'gatehouse_build_info').length, 1);
  assert.equal(start.find((s) => s.name === 'gatehouse_build_info')?.labels.component, 'ca');
  assert.ok(
    start.some((s) => s.name === 'process_cpu_user_seconds_total') &&
      start.some((s) => s.name === 'nodejs_eventloop_lag_seconds'),
    'default process metrics',
  );

  await enrollAs(ca, dir, rootPem, 'brief', 'brief-1');
  const web1 = await enrollAs(ca, dir, rootPem, 'web', 'web-1');
  const web2 = await enrollAs(ca, dir, rootPem, 'web', 'web-2');
  // Refusals: a used token, an unknown token, a body that is not JSON, a renewal without a certificate.
  assert.equal(
    (await enroll(ca, rootPem, { token: web1.token, csr: (await newCsr({ commonName: 'again' })).csr })).status,
    409,
  );
  assert.equal((await enroll(ca, rootPem, { token: 'GHTKN-1-nonsense', csr: 'x' })).status, 401);
  assert.equal((await enroll(ca, rootPem, '{not json')).status, 400);
  assert.equal((await caRequest(ca.url, 'renew', { method: 'POST', ca: rootPem, body: { csr: 'x' } })).status, 401);
  const renewed = await caRequest(ca.url, 'renew', {
    method: 'POST',
    ca: rootPem,
    body: { csr: (await newCsr({ commonName: 'web-1' })).csr },
    key: web1.keyPem,
    cert: web1.certPem,
  });
  assert.equal(renewed.status, 201, renewed.text);
  const revoke = await gatehouse(['cert', 'revoke', '--dir', dir, web2.serial]);
  assert.equal(revoke.status, 0, revoke.stderr);

  const after = await scrape(ca);
  assert.deepEqual(
    after
      .filter((s) => s.name === 'gatehouse_ca_certificates_issued_total')
      .map((s) => [s.labels.kind, s.labels.role, s.value])
      .sort(),
    [
      ['enroll', 'brief', 1],
      ['enroll', 'web', 2],
      ['internal', 'ca-server', 1],
      ['renew', 'web', 1],
    ],
  );
  assert.equal(value(after, 'gatehouse_ca_issuance_duration_seconds_count', { kind: 'enroll' }), 3);
  assert.equal(value(after, 'gatehouse_ca_issuance_duration_seconds_count', { kind: 'renew' }), 1);
  assert.ok(value(after, 'gatehouse_ca_issuance_duration_seconds_sum', { kind: 'enroll' }) > 0);
  assert.equal(value(after, 'gatehouse_ca_issuance_duration_seconds_bucket', { kind: 'enroll', le: '+Inf' }), 3);
  // Every response of the HTTPS API, by route (a closed set, not the path) and status code.
  const requests = (route: string, code: string, method = 'POST') =>
    value(after, 'gatehouse_ca_http_request_duration_seconds_count', { method, route, code });
  assert.equal(requests('enroll', '201'), 3);
  assert.deepEqual([requests('enroll', '409'), requests('enroll', '401'), requests('enroll', '400')], [1, 1, 1]);
  assert.equal(requests('renew', '401'), 1);
  assert.equal(requests('renew', '201'), 1);
  assert.ok(
    value(after, 'gatehouse_ca_http_request_duration_seconds_sum', { method: 'POST', route: 'enroll', code: '201' }) >
      0,
  );
  assert.deepEqual(
    after
      .filter((s) => s.name === 'gatehouse_ca_refusals_total')
      .map((s) => [s.labels.kind, s.labels.code, s.value])
      .sort(),
    [
      ['enroll', 'GH_BODY_INVALID', 1],
      ['enroll', 'GH_TOKEN_INVALID', 1],
      ['enroll', 'GH_TOKEN_USED', 1],
      ['renew', 'GH_AUTH_REQUIRED', 1],
    ],
  );

  // The state counts come from the store (cached up to 5 s): the revocation made by the CLI
  // in another process shows, and so does the 10-second certificate once it has expired.
  const states = await pollUntil(
    'revoked and expired certificates counted',
    async () => {
      const s = await scrape(ca);
      const counts = {
        active: value(s, 'gatehouse_ca_certificates', { state: 'active' }),
        expired: value(s, 'gatehouse_ca_certificates', { state: 'expired' }),
        revoked: value(s, 'gatehouse_ca_certificates', { state: 'revoked' }),
      };
      return counts.expired === 1 ? counts : undefined;
    },
    30_000,
    500,
  );
  // admin, ca-server, web-1 (still valid after its renewal), web-1 renewed; web-2 revoked; brief-1 expired.
  assert.deepEqual(states, { active: 4, expired: 1, revoked: 1 });

  const health = await httpGet(ca.metricsUrl!.replace(/\/metrics$/, '/healthz'));
  assert.equal(health.status, 200);
  const body = JSON.parse(health.body) as { status: string; crls: Record<string, { nextUpdate: string }> };
  assert.equal(body.status, 'ok');
  assert.ok(Date.parse(body.crls.intermediate!.nextUpdate) > Date.now());
  assert.equal((await httpGet(ca.metricsUrl!.replace(/\/metrics$/, '/nope'))).status, 404);

  // The HTTPS API's health check answers on /healthz and on /health, its earlier name.
  for (const path of ['healthz', 'health']) {
    const r = await caRequest(ca.url, path, { ca: rootPem });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { status: 'ok' });
  }
  assert.equal((await caRequest(ca.url, 'dashboard/', { ca: rootPem })).status > 0, true);
  assert.equal((await caRequest(ca.url, 'no/such/path', { ca: rootPem })).status, 404);
  const routes = await scrape(ca);
  assert.equal(
    value(routes, 'gatehouse_ca_http_request_duration_seconds_count', { method: 'GET', route: 'health', code: '200' }),
    2,
  );
  assert.equal(
    value(routes, 'gatehouse_ca_http_request_duration_seconds_count', { method: 'GET', route: 'other', code: '404' }),
    1,
    'an unknown path is `other`, never itself',
  );
  assert.equal(
    routes.filter(
      (s) => s.name === 'gatehouse_ca_http_request_duration_seconds_count' && s.labels.route === 'dashboard',
    ).length,
    1,
  );
});

test('ca-metrics-with-two-workers-merged-in-the-primary', async () => {
  const dir = await initCa('workers');
  const rootPem = readFileSync(join(dir, 'root.pem'), 'utf8');
  const ca = await startCaProcess(dir, ['--workers', '2', '--metrics-listen', '127.0.0.1:0']);
  try {
    const listening = findLog(ca.output(), 'ca.listening')!;
    assert.equal(listening.workers, 2);
    assert.match(String(listening.metrics), /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    for (let i = 0; i < 6; i++) await enrollAs(ca, dir, rootPem, 'web', `w-${i}`);
    for (let i = 0; i < 2; i++)
      assert.equal((await enroll(ca, rootPem, { token: 'GHTKN-1-nonsense', csr: 'x' })).status, 401);
    const s = await scrape(ca);
    assert.equal(
      value(s, 'gatehouse_ca_certificates_issued_total', { kind: 'internal', role: 'ca-server' }),
      2,
      'each worker issued its own server certificate: both registries are merged',
    );
    assert.equal(
      value(s, 'gatehouse_ca_certificates_issued_total', { kind: 'enroll', role: 'web' }),
      6,
      'counters sum over the workers',
    );
    assert.equal(value(s, 'gatehouse_ca_issuance_duration_seconds_count', { kind: 'enroll' }), 6);
    assert.equal(value(s, 'gatehouse_ca_refusals_total', { kind: 'enroll', code: 'GH_TOKEN_INVALID' }), 2);
    assert.equal(
      value(s, 'gatehouse_ca_certificates', { state: 'active' }),
      9,
      'store counts are not multiplied by the worker count (admin, 2 CA servers, 6 web)',
    );
    assert.ok(
      value(s, 'gatehouse_ca_certificate_expiry_timestamp_seconds', { certificate: 'server' }) - Date.now() / 1000 >
        86_000,
    );
    assert.equal(
      value(s, 'gatehouse_ca_http_request_duration_seconds_count', { method: 'POST', route: 'enroll', code: '201' }),
      6,
      'histograms sum over the workers',
    );
    assert.equal(s.filter((x) => x.name === 'gatehouse_build_info').length, 1, 'one build_info, not one per worker');
    assert.equal(
      value(s, 'gatehouse_build_info', s.find((x) => x.name === 'gatehouse_build_info')!.labels),
      1,
      'not summed over the workers',
    );
    const health = await httpGet(ca.metricsUrl!.replace(/\/metrics$/, '/healthz'));
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.body), { status: 'ok', workers: 2, expectedWorkers: 2, problems: [] });
  } finally {
    assert.equal(await ca.stop(), 0);
  }
});

test('ca-metrics-listen-from-config-key-and-environment-off-by-default', async () => {
  const dir = await initCa('config', (doc) => {
    doc.metrics = { listen: '127.0.0.1:0' };
  });
  const fromConfig = await startCaProcess(dir);
  try {
    assert.match(fromConfig.metricsUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    assert.equal((await httpGet(fromConfig.metricsUrl!)).status, 200);
  } finally {
    await fromConfig.stop();
  }
  const plain = await initCa('plain');
  const off = await startCaProcess(plain);
  await off.stop();
  assert.equal(off.metricsUrl, null, 'no metrics listener unless configured');
  const fromEnv = await startCaProcess(plain, [], { GATEHOUSE_METRICS_LISTEN: '127.0.0.1:0' });
  try {
    assert.match(fromEnv.metricsUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  } finally {
    await fromEnv.stop();
  }
  const bad = await gatehouse([
    'ca',
    'serve',
    '--dir',
    plain,
    '--listen',
    '127.0.0.1:0',
    '--metrics-listen',
    'nonsense',
  ]);
  assert.equal(bad.status, 64);
  assert.match(bad.stderr, /listen address "nonsense" is not HOST:PORT/);
});

test('ca-config-metrics-listen-validated-and-overridden-by-env', () => {
  const base = {
    org: 'O',
    trustDomain: 't.internal',
    keys: { root: 'r.pem', intermediate: 'i.pem' },
    roles: { web: { profile: 'client' } },
  };
  assert.equal(parseCaConfig(YAML.stringify(base), 'x', {}).metrics.listen, null);
  assert.equal(
    parseCaConfig(YAML.stringify({ ...base, metrics: { listen: '127.0.0.1:9091' } }), 'x', {}).metrics.listen,
    '127.0.0.1:9091',
  );
  assert.equal(
    parseCaConfig(YAML.stringify({ ...base, metrics: { listen: '127.0.0.1:9091' } }), 'x', {
      GATEHOUSE_METRICS_LISTEN: '[::1]:9200',
    }).metrics.listen,
    '[::1]:9200',
  );
  const refused = (doc: object, message: RegExp) =>
    assert.throws(
      () => parseCaConfig(YAML.stringify(doc), 'gatehouse.yaml', {}),
      (err) => isGatehouseError(err, 'GH_CONFIG_INVALID') && message.test(err.message),
    );
  refused({ ...base, metrics: { listen: 'everywhere' } }, /metrics\.listen: expected HOST:PORT/);
  refused({ ...base, metrics: { listen: '127.0.0.1:9091', path: '/m' } }, /metrics: unknown key "path"/);
  refused(
    { ...base, listen: '127.0.0.1:8443', metrics: { listen: '127.0.0.1:8443' } },
    /metrics\.listen: must differ from listen/,
  );
});

test('ca-metrics-count-rate-limited-requests-and-suppressed-refusal-audits', async () => {
  const dir = await initCa('limits', (doc) => {
    doc.limits = {
      enroll: { perSource: { rate: 0.1, burst: 2 }, perToken: null },
      renew: { perSource: null, perCertificate: { rate: 0.1, burst: 1 } },
    };
  });
  const rootPem = readFileSync(join(dir, 'root.pem'), 'utf8');
  const ca = await startCaProcess(dir, ['--metrics-listen', '127.0.0.1:0']);
  try {
    const limited = (s: Samples, endpoint: string, key: string) =>
      value(s, 'gatehouse_ca_rate_limited_total', { endpoint, key });
    const start = await scrape(ca);
    assert.equal(limited(start, 'enroll', 'source'), 0);
    assert.equal(value(start, 'gatehouse_ca_audit_events_suppressed_total', { type: 'ca.cert_refused' }), 0);

    // /enroll from one source, a burst of 2: one enrollment, one bad token, then 429s.
    const web1 = await enrollAs(ca, dir, rootPem, 'web', 'web-1');
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await enroll(ca, rootPem, { token: 'GHTKN-1-nonsense', csr: 'x' })).status);
    assert.deepEqual(statuses, [401, 429, 429, 429]);
    // /renew of one certificate, a burst of 1: a refused CSR still takes the token.
    const renewals: number[] = [];
    for (let i = 0; i < 3; i++)
      renewals.push(
        (
          await caRequest(ca.url, 'renew', {
            method: 'POST',
            ca: rootPem,
            body: { csr: 'x' },
            key: web1.keyPem,
            cert: web1.certPem,
          })
        ).status,
      );
    assert.deepEqual(renewals, [400, 429, 429]);
    const s = await scrape(ca);
    assert.equal(limited(s, 'enroll', 'source'), 3, 'each 429 counted once, by endpoint and key');
    assert.equal(limited(s, 'renew', 'certificate'), 2);
    assert.equal(limited(s, 'renew', 'source'), 0);
    assert.equal(
      value(s, 'gatehouse_ca_refusals_total', { kind: 'enroll', code: 'GH_RATE_LIMITED' }),
      3,
      'a 429 is a refusal too',
    );
    assert.equal(value(s, 'gatehouse_ca_refusals_total', { kind: 'renew', code: 'GH_RATE_LIMITED' }), 2);

    // 40 renewals without a certificate (no per-source limit on /renew here): their audit
    // events pass the refusal audit's burst of 20 per source (one already taken by the bad
    // token), the rest are counted as suppressed.
    for (let i = 0; i < 40; i++)
      assert.equal((await caRequest(ca.url, 'renew', { method: 'POST', ca: rootPem, body: { csr: 'x' } })).status, 401);
    const suppressed = value(await scrape(ca), 'gatehouse_ca_audit_events_suppressed_total', {
      type: 'ca.cert_refused',
    });
    assert.ok(suppressed >= 15 && suppressed <= 21, `${suppressed} of 40 refusal events suppressed`);
  } finally {
    await ca.stop();
  }
});
