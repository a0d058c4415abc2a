/**
 * The gateway end to end: certificates from the Gatehouse CA through the agent, a header-echo
 * app, and curl as the client.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { compilePolicy } from '../src/policy/index.js';
import { createLogger } from '../src/log/logger.js';
import { parseGatewayConfig } from '../src/gateway/config.js';
import { enrollAgent, startCaFixture, writeClientCaBundle, type CaFixture } from './helpers/ca-fixture.js';
import { startEchoUpstream, type EchoUpstream } from './helpers/echo-upstream.js';
import { run, runSync } from './helpers/run.js';

let fixture: CaFixture;
let upstream: EchoUpstream;
let gateway: Gateway;
const logLines: string[] = [];
const dirs: Record<string, string> = {};

const enrollAs = async (role: string, name: string, extra: { dns?: string[]; ip?: string[] } = {}): Promise<string> =>
  (await enrollAgent(fixture, role, name, extra)).dir;

before(async () => {
  fixture = await startCaFixture();
  upstream = await startEchoUpstream();
  dirs.gw = await enrollAs('gateway', 'gw-1', { dns: ['localhost'], ip: ['127.0.0.1'] });
  dirs.device = await enrollAs('web', 'x.d.wott.local');
  dirs.other = await enrollAs('web', 'unlisted-device');
  dirs.admin = await enrollAs('admin', 'ops-1');
  // Client certificates chain to the root through the intermediate the agent received in cert.pem.
  const bundle = writeClientCaBundle(fixture);
  const policy = compilePolicy(
    {
      version: 1,
      name: 'demo',
      denyMessage: 'You shall not pass!',
      rules: [
        { id: 'devices-read', effect: 'allow', methods: ['GET'], paths: ['/*'], identities: ['x.d.wott.local'] },
        { id: 'admins', effect: 'allow', methods: '*', paths: ['/*'], roles: ['admin'] },
        { id: 'no-admin-path', effect: 'deny', methods: '*', paths: ['/admin/*'], roles: ['web'] },
      ],
    },
    'test policy',
  );
  gateway = await startGateway(configFor({ clientCa: bundle, upstreams: [upstream.url] }), {
    policy,
    logger: createLogger({ level: 'debug', write: (l) => void logLines.push(l) }),
  });
});

function configFor(options: { clientCa?: string; upstreams: string[] }) {
  return parseGatewayConfig(
    {
      listen: '127.0.0.1:0',
      tls: {
        cert: join(dirs.gw!, 'cert.pem'),
        key: join(dirs.gw!, 'key.pem'),
        clientCa: options.clientCa ?? join(dirs.gw!, 'ca.pem'),
      },
      routes: [{ upstreams: options.upstreams }],
    },
    'test',
    fixture.root,
  );
}

after(async () => {
  await gateway?.close();
  await upstream?.close();
  await fixture?.close();
});

// The gateway runs in this process: curl must run asynchronously or it would block the server.
async function curl(args: string[], identity?: string): Promise<{ status: number; body: string }> {
  const id = identity ? ['--cert', join(identity, 'cert.pem'), '--key', join(identity, 'key.pem')] : [];
  const r = await run('curl', [
    '-sS',
    '--max-time',
    '10',
    '--cacert',
    join(dirs.gw!, 'ca.pem'),
    ...id,
    '-w',
    '\n%{http_code}',
    ...args,
  ]);
  assert.equal(r.status, 0, r.stderr);
  const cut = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(cut + 1)), body: r.stdout.slice(0, cut) };
}

const url = (path: string) => `https://localhost:${gateway.port}${path}`;

test('gateway-no-client-cert-answers-400-client-certificate-required', async () => {
  const r = await curl([url('/')]);
  assert.equal(r.status, 400);
  assert.match(r.body, /client certificate required/);
});

test('gateway-allowlisted-device-reaches-app-with-identity-headers', async () => {
  const r = await curl([url('/hello?x=1')], dirs.device);
  assert.equal(r.status, 200, r.body);
  const echoed = JSON.parse(r.body) as { url: string; headers: Record<string, string> };
  assert.equal(echoed.url, '/hello?x=1');
  assert.equal(echoed.headers['x-client-verify'], 'SUCCESS');
  assert.equal(echoed.headers['x-client-name'], 'x.d.wott.local');
  assert.equal(echoed.headers['x-client-role'], 'web');
  assert.equal(echoed.headers['x-client-spiffe-id'], 'spiffe://test.internal/web/x.d.wott.local');
  assert.match(echoed.headers['client-cert'] ?? '', /^:[A-Za-z0-9+/=]+:$/);
});

test('gateway-unlisted-device-gets-you-shall-not-pass', async () => {
  const r = await curl([url('/hello')], dirs.other);
  assert.equal(r.status, 403);
  assert.equal(r.body.trim(), 'You shall not pass!');
});

test('gateway-inbound-identity-headers-stripped-every-spelling', async () => {
  const forged = [
    'X-Client-Role: admin',
    'x_client_name: mallory',
    'X-CLIENT-SPIFFE-ID: spiffe://evil/admin/x',
    'ssl-client-verify: SUCCESS',
    'X-Forwarded-Client-Cert: By=evil',
    'Client-Cert: :AAAA:',
  ];
  const r = await curl([...forged.flatMap((h) => ['-H', h]), url('/')], dirs.device);
  assert.equal(r.status, 200, r.body);
  const echoed = JSON.parse(r.body) as { rawHeaders: string[] };
  const text = echoed.rawHeaders.join('\n');
  for (const bad of ['mallory', 'spiffe://evil', 'By=evil', ':AAAA:'])
    assert.ok(!text.includes(bad), `${bad} reached the app`);
  assert.ok(!echoed.rawHeaders.some((h) => /^x_client/i.test(h)));
  assert.equal(echoed.rawHeaders.filter((h) => h.toLowerCase() === 'x-client-role').length, 1);
});

test('gateway-deny-rule-wins-and-path-tricks-normalized-or-refused', async () => {
  assert.equal((await curl([url('/admin/panel')], dirs.device)).status, 403, 'deny wins over the broader allow');
  assert.equal(
    (await curl(['--path-as-is', url('//admin/panel')], dirs.device)).status,
    403,
    'duplicate slash normalized before matching',
  );
  assert.equal((await curl(['--path-as-is', url('/a/../admin/panel')], dirs.device)).status, 403);
  assert.equal((await curl(['--path-as-is', url('/a/%2e%2e/admin/panel')], dirs.device)).status, 403);
  assert.equal(
    (await curl(['--path-as-is', url('/%2Fadmin/panel')], dirs.device)).status,
    400,
    'encoded slash is ambiguous',
  );
  const checked = await curl(['--path-as-is', url('/a/./b//c')], dirs.device);
  assert.equal((JSON.parse(checked.body) as { url: string }).url, '/a/b/c', 'the checked path is the forwarded path');
  const upper = await curl([url('/ADMIN/panel')], dirs.device);
  assert.equal(upper.status, 200, 'paths are case-sensitive: /ADMIN is not /admin');
  assert.equal(
    (JSON.parse(upper.body) as { url: string }).url,
    '/ADMIN/panel',
    'and the app gets exactly the path that was checked',
  );
  assert.equal((await curl([url('/admin/panel')], dirs.admin)).status, 200, 'admins pass');
  assert.equal((await curl(['-X', 'POST', url('/hello')], dirs.device)).status, 403, 'the device may only GET');
});

test('gateway-certificate-from-another-ca-refused-403', async () => {
  const other = join(fixture.root, 'foreign');
  assert.equal(
    runSync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      `${other}.key`,
      '-out',
      `${other}.pem`,
      '-subj',
      '/CN=x.d.wott.local/OU=web',
      '-days',
      '1',
      '-addext',
      'extendedKeyUsage=clientAuth',
    ]).status,
    0,
  );
  const r = await run('curl', [
    '-sS',
    '--max-time',
    '10',
    '--cacert',
    join(dirs.gw!, 'ca.pem'),
    '--cert',
    `${other}.pem`,
    '--key',
    `${other}.key`,
    '-w',
    '\n%{http_code}',
    url('/'),
  ]);
  assert.match(r.stdout, /403$/);
  assert.match(r.stdout, /client certificate refused/);
});

test('gateway-server-only-certificate-as-client-refused-403', async () => {
  const r = await curl([url('/')], dirs.gw);
  assert.equal(r.status, 403);
});

test('gateway-upstream-down-answers-502-and-logs-every-request', async () => {
  const dead = await startEchoUpstream();
  const deadUrl = dead.url;
  await dead.close();
  const g2 = await startGateway(configFor({ upstreams: [deadUrl] }), {
    policy: compilePolicy({ version: 1, rules: [{ effect: 'allow', methods: '*', paths: ['*'], roles: ['web'] }] }),
    logger: createLogger({ level: 'error', write: () => undefined }),
  });
  try {
    const r = await run('curl', [
      '-sS',
      '--max-time',
      '10',
      '--cacert',
      join(dirs.gw!, 'ca.pem'),
      '--cert',
      join(dirs.device!, 'cert.pem'),
      '--key',
      join(dirs.device!, 'key.pem'),
      '-w',
      '\n%{http_code}',
      `https://localhost:${g2.port}/`,
    ]);
    assert.match(r.stdout, /upstream of routes\[0\] is unavailable\n+502$/);
  } finally {
    await g2.close();
  }
  const lines = logLines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === 'gateway.request');
  assert.ok(lines.length >= 5);
  assert.ok(
    lines.some(
      (l) =>
        l.status === 403 && l.reason === 'POLICY_DENIED' && l.identity === 'spiffe://test.internal/web/unlisted-device',
    ),
  );
});

test('gateway-non-local-upstream-refused-unless-unsafe-opt-in', async () => {
  await assert.rejects(
    startGateway(configFor({ upstreams: ['http://10.1.2.3:80'] }), {
      policy: compilePolicy({ version: 1, rules: [{ effect: 'allow', methods: '*', paths: ['*'], roles: ['web'] }] }),
      logger: createLogger({ level: 'error', write: () => undefined }),
    }),
    /routes\[0\]\.upstreams: upstream http:\/\/10\.1\.2\.3 is not on loopback/,
  );
});
