/** The gateway config, route table and upstream pool, without sockets. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { parseGatewayConfig, gatewayConfigFromFlags, loadGatewayConfig } from '../src/gateway/config.js';
import { compileRoutes } from '../src/gateway/routes.js';
import { UpstreamPool } from '../src/gateway/upstream/upstream-pool.js';
import { makeTempDir } from './helpers/tmp.js';

const base = {
  listen: '127.0.0.1:8443',
  tls: { cert: 'c.pem', key: 'k.pem', clientCa: 'ca.pem' },
  routes: [{ upstreams: ['http://127.0.0.1:9000'] }],
};

function refusal(raw: unknown): string {
  try {
    parseGatewayConfig(raw, 'gw.yaml', '/etc/gatehouse');
  } catch (err) {
    assert.equal((err as { code?: string }).code, 'GH_CONFIG_INVALID');
    return (err as Error).message;
  }
  assert.fail('config was accepted');
}

test('gateway-config-defaults-and-relative-paths-resolved-against-the-file', () => {
  const config = parseGatewayConfig(base, 'gw.yaml', '/etc/gatehouse');
  assert.equal(config.tls.cert, '/etc/gatehouse/c.pem');
  assert.equal(config.routes[0]!.host, '*');
  assert.equal(config.routes[0]!.pathPrefix, '/');
  assert.equal(config.upstream.timeout, 30_000);
  assert.equal(config.revocation.grace, 3_600_000);
  assert.equal(config.revocation.unsafeFailOpenOnStaleCrl, false);
  assert.equal(config.upstream.unsafeAllowNonLocal, false);
  assert.equal(config.headers, 'default');
  assert.equal(config.policy, null);
});

test('gateway-config-refusals-name-the-path-of-the-bad-key', () => {
  assert.match(
    refusal({ ...base, routes: [base.routes[0], { upstreams: ['ftp://x'] }] }),
    /gw\.yaml: routes\[1\]\.upstreams\[0\]: ftp:\/\/x: only http:\/\/ upstreams/,
  );
  assert.match(refusal({ ...base, routse: [] }), /\(top level\): unknown key "routse"/);
  assert.match(refusal({ ...base, tls: { ...base.tls, clientCA: 'x' } }), /tls: unknown key "clientCA"/);
  assert.match(refusal({ ...base, upstream: { timeout: 'soon' } }), /upstream\.timeout: "soon" is not a duration/);
  assert.match(refusal({ ...base, routes: [] }), /routes: at least one route/);
  assert.match(refusal({ ...base, routes: [{ upstreams: [] }] }), /routes\[0\]\.upstreams: at least one upstream/);
  assert.match(
    refusal({ ...base, routes: [{ host: 'bad host', upstreams: ['http://127.0.0.1:1'] }] }),
    /routes\[0\]\.host: host: a DNS name/,
  );
  assert.match(
    refusal({ ...base, routes: [{ pathPrefix: 'api', upstreams: ['http://127.0.0.1:1'] }] }),
    /routes\[0\]\.pathPrefix/,
  );
  assert.match(refusal({ ...base, headers: 'apache' }), /headers: /);
  assert.match(refusal({ ...base, listen: '8443' }), /listen: expected HOST:PORT/);
  assert.match(refusal([1, 2]), /expected a mapping/);
});

test('gateway-config-file-yaml-and-json-and-broken-file-named', () => {
  const { dir } = makeTempDir('gwcfg-');
  const yaml = join(dir, 'gw.yaml');
  writeFileSync(
    yaml,
    'listen: 127.0.0.1:9443\ntls: {cert: a.pem, key: b.pem, clientCa: c.pem}\nroutes:\n  - host: api.example.com\n    pathPrefix: /v1\n    upstreams: [http://127.0.0.1:9000, http://127.0.0.1:9001]\n',
  );
  const fromYaml = loadGatewayConfig(yaml, {});
  assert.equal(fromYaml.routes[0]!.upstreams.length, 2);
  assert.equal(fromYaml.tls.key, join(dir, 'b.pem'));
  const json = join(dir, 'gw.json');
  writeFileSync(json, JSON.stringify(base));
  assert.equal(loadGatewayConfig(json, {}).listen, '127.0.0.1:8443');
  assert.equal(
    loadGatewayConfig(json, { GATEHOUSE_GATEWAY_LISTEN: '127.0.0.1:7443' }).listen,
    '127.0.0.1:7443',
    'env overrides the file',
  );
  writeFileSync(yaml, 'listen: [unclosed\n');
  assert.throws(
    () => loadGatewayConfig(yaml, {}),
    new RegExp(`${yaml.replace(/[.]/g, '\\.')}: not valid YAML or JSON`),
  );
  assert.throws(
    () => loadGatewayConfig(join(dir, 'missing.yaml'), {}),
    /cannot read gateway config .*missing\.yaml: ENOENT/,
  );
});

test('gateway-config-from-flags-needs-the-essentials', () => {
  assert.throws(
    () => gatewayConfigFromFlags({ listen: '127.0.0.1:1' }, {}),
    /missing --cert, --key, --client-ca, --upstream/,
  );
  const config = gatewayConfigFromFlags(
    {
      listen: '127.0.0.1:1',
      cert: 'c',
      key: 'k',
      clientCa: 'ca',
      upstream: ['http://127.0.0.1:2', 'http://127.0.0.1:3'],
      crl: ['https://ca:8443/crl'],
    },
    {},
  );
  assert.deepEqual(config.routes[0]!.upstreams, ['http://127.0.0.1:2', 'http://127.0.0.1:3']);
  assert.deepEqual(config.revocation.crl, ['https://ca:8443/crl'], 'URLs are not turned into paths');
});

test('gateway-config-flags-beat-environment-and-prefixes-must-be-normalized', () => {
  const flags = { cert: 'c', key: 'k', clientCa: 'ca', upstream: ['http://127.0.0.1:2'] };
  assert.equal(
    gatewayConfigFromFlags({ ...flags, listen: '127.0.0.1:1' }, { GATEHOUSE_GATEWAY_LISTEN: '127.0.0.1:7' }).listen,
    '127.0.0.1:1',
  );
  assert.equal(
    gatewayConfigFromFlags(flags, { GATEHOUSE_GATEWAY_LISTEN: '127.0.0.1:7' }).listen,
    '127.0.0.1:7',
    'the environment fills a missing flag',
  );
  assert.throws(() => gatewayConfigFromFlags(flags, {}), /missing --listen \(or pass --config FILE\)/);
  assert.match(
    refusal({ ...base, routes: [{ pathPrefix: '/a//b', upstreams: ['http://127.0.0.1:1'] }] }),
    /routes\[0\]\.pathPrefix: pathPrefix: must be a normalized path/,
  );
  assert.match(
    refusal({ ...base, routes: [{ pathPrefix: '/a/%2e%2e/b', upstreams: ['http://127.0.0.1:1'] }] }),
    /must be a normalized path/,
  );
  assert.equal(
    parseGatewayConfig({ ...base, routes: [{ pathPrefix: '/api/', upstreams: ['http://127.0.0.1:1'] }] }, 'x', '/')
      .routes[0]!.pathPrefix,
    '/api/',
  );
});

test('gateway-routes-exact-host-beats-wildcard-beats-any-and-longest-prefix-wins', () => {
  const table = compileRoutes(
    [
      { host: '*', pathPrefix: '/', upstreams: ['any-root'] },
      { host: '*', pathPrefix: '/api', upstreams: ['any-api'] },
      { host: '*.example.com', pathPrefix: '/', upstreams: ['wild'] },
      { host: 'app.example.com', pathPrefix: '/', upstreams: ['app-root'] },
      { host: 'app.example.com', pathPrefix: '/admin/', upstreams: ['app-admin'] },
    ],
    (route) => route.upstreams[0],
  );
  const target = (host: string | null, path: string) => table.match(host, path)?.target;
  assert.equal(target('app.example.com:8443', '/admin'), 'app-admin');
  assert.equal(target('APP.example.com', '/admin/x'), 'app-admin', 'host is case-insensitive');
  assert.equal(target('app.example.com', '/administrator'), 'app-root', 'prefixes match whole segments');
  assert.equal(target('db.example.com', '/x'), 'wild');
  assert.equal(target('example.com', '/x'), 'any-root', '*.example.com does not match the bare domain');
  assert.equal(target('other.org', '/api/v1'), 'any-api');
  assert.equal(target('other.org', '/apix'), 'any-root');
  assert.equal(target(null, '/api'), 'any-api');
  const hostOnly = compileRoutes([{ host: 'a.test', pathPrefix: '/', upstreams: ['a'] }], (r) => r.upstreams[0]);
  assert.equal(hostOnly.match('b.test', '/'), null, 'no route when no host matches');
});

test('gateway-pool-round-robin-and-passive-failure-rest', () => {
  let now = 1000;
  const pool = new UpstreamPool(['http://127.0.0.1:1', 'http://127.0.0.1:2', 'http://127.0.0.1:3'], {
    maxFails: 2,
    failTimeoutMs: 10_000,
    now: () => now,
  });
  assert.deepEqual(
    [0, 1, 2, 3].map(() => pool.pick().port),
    [1, 2, 3, 1],
  );
  const second = pool.targets[1]!;
  assert.equal(pool.failed(second), false, 'one failure is not enough');
  assert.equal(pool.failed(second), true, 'the second consecutive failure rests it');
  assert.deepEqual(
    [0, 1, 2, 3].map(() => pool.pick().port),
    [3, 1, 3, 1],
    'a resting upstream is skipped',
  );
  now += 10_001;
  assert.ok([0, 1, 2].map(() => pool.pick().port).includes(2), 'back after failTimeout');
  pool.failed(second);
  pool.succeeded(second);
  assert.equal(pool.failed(second), false, 'a success resets the count');
  pool.close();
});

test('gateway-pool-all-resting-still-tries-the-one-back-soonest', () => {
  let now = 0;
  const pool = new UpstreamPool(['http://127.0.0.1:1', 'http://127.0.0.1:2'], {
    maxFails: 1,
    failTimeoutMs: 10_000,
    now: () => now,
  });
  pool.failed(pool.targets[1]!);
  now = 5;
  pool.failed(pool.targets[0]!);
  assert.equal(pool.pick().port, 2, 'the one whose rest ends first');
  pool.close();
});

test('cluster-healthz-reads-expired-certificates-and-overdue-crls-from-merged-metrics', async () => {
  const { problemsInMetrics } = await import('../src/cli/cluster-admin.js');
  const now = 1_800_000_000;
  const healthy = `gatehouse_gateway_certificate_expiry_timestamp_seconds ${now + 3600}\ngatehouse_gateway_crl_next_update_timestamp_seconds{issuer="O=Acme, CN=Acme Issuing CA"} ${now - 10}\n`;
  assert.deepEqual(problemsInMetrics(healthy, 'gateway', 3600, now), [], 'a CRL 10 s late is within the grace');
  const sick = `gatehouse_gateway_certificate_expiry_timestamp_seconds ${now - 5}\ngatehouse_gateway_crl_next_update_timestamp_seconds{issuer="O=Acme, CN=Acme Issuing CA"} ${now - 7200}\n`;
  const problems = problemsInMetrics(sick, 'gateway', 3600, now);
  assert.equal(problems.length, 2);
  assert.match(problems[0]!, /certificate +expired 5 s ago/);
  assert.match(problems[1]!, /CRL \{issuer="O=Acme, CN=Acme Issuing CA"\} is 7200 s past its nextUpdate/);
  assert.deepEqual(
    problemsInMetrics(`gatehouse_ca_crl_next_update_timestamp_seconds{crl="root"} ${now - 1}\n`, 'ca', 0, now),
    ['CRL {crl="root"} is 1 s past its nextUpdate'],
  );
  // As prom-client writes large values, and with the clock of the call.
  const [expired, ...rest] = problemsInMetrics(
    'gatehouse_ca_certificate_expiry_timestamp_seconds{certificate="server"} 1.7e+9\n',
    'ca',
    0,
  );
  assert.match(expired ?? '', /^certificate \{certificate="server"\} expired \d+ s ago$/);
  assert.deepEqual(rest, []);
});

test('gateway-config-is-frozen-all-the-way-down-as-the-ca-config-is', () => {
  const config = parseGatewayConfig(base, 'gw.yaml', '/etc/gatehouse');
  const flags = gatewayConfigFromFlags(
    { listen: '127.0.0.1:8443', cert: 'c.pem', key: 'k.pem', clientCa: 'ca.pem', upstream: ['http://127.0.0.1:9000'] },
    {},
  );
  for (const c of [config, flags]) {
    assert.throws(() => {
      (c.upstream as { timeout: number }).timeout = 1;
    }, TypeError);
    assert.throws(() => {
      (c.routes as unknown[]).push({});
    }, TypeError);
    assert.throws(() => {
      (c.routes[0]!.upstreams as string[])[0] = 'http://evil';
    }, TypeError);
    assert.throws(() => {
      (c.tls as { cert: string }).cert = '/tmp/x';
    }, TypeError);
  }
});
