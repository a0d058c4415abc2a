/**
 * Routing, upstream pools, HTTP/2, WebSocket upgrades and metrics, through real sockets:
 * curl and Node's TLS client as the callers, header-echo apps as the upstreams.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { connect as http2Connect } from 'node:http2';
import { request as httpGet } from 'node:http';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { parseGatewayConfig } from '../src/gateway/config.js';
import { runGateway, type RunningGateway } from '../src/gateway/run.js';
import { createLogger } from '../src/log/logger.js';
import { enrollAgent, startCaFixture, writeClientCaBundle, type CaFixture } from './helpers/ca-fixture.js';
import { startEchoUpstream, type EchoUpstream } from './helpers/echo-upstream.js';
import { run } from './helpers/run.js';
import { waitFor } from './helpers/poll.js';

let fixture: CaFixture;
let appA: EchoUpstream;
let appB: EchoUpstream;
let slow: EchoUpstream;
let silent: Server;
let running: RunningGateway;
const logLines: string[] = [];
const dirs: Record<string, string> = {};
let deadUrl = '';

const enrollAs = async (role: string, name: string, extra: { dns?: string[]; ip?: string[] } = {}): Promise<string> =>
  (await enrollAgent(fixture, role, name, extra)).dir;

before(async () => {
  fixture = await startCaFixture();
  appA = await startEchoUpstream({ name: 'A' });
  appB = await startEchoUpstream({ name: 'B' });
  slow = await startEchoUpstream({ name: 'slow', delayMs: 3000 });
  const dead = await startEchoUpstream();
  deadUrl = dead.url;
  await dead.close();
  // Accepts connections and never answers: for the connect-succeeds-but-silent case.
  silent = createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
  dirs.gw = await enrollAs('gateway', 'gw-1', { dns: ['localhost', 'api.test.internal', 'app.test.internal'] });
  dirs.device = await enrollAs('web', 'device-1');
  dirs.admin = await enrollAs('admin', 'ops-1');
  const bundle = writeClientCaBundle(fixture);
  const policyFile = join(fixture.root, 'policy.json');
  writeFileSync(
    policyFile,
    JSON.stringify([
      { permission: { method: 'GET', resource: '/.*' }, allow: ['web', 'admin'] },
      { permission: { method: 'POST', resource: '/.*' }, allow: ['web'] },
    ]),
  );
  const config = parseGatewayConfig(
    {
      listen: '127.0.0.1:0',
      tls: { cert: join(dirs.gw, 'cert.pem'), key: join(dirs.gw, 'key.pem'), clientCa: bundle },
      policy: policyFile,
      routes: [
        { host: 'api.test.internal', upstreams: [appB.url] },
        { pathPrefix: '/rr', upstreams: [appA.url, appB.url] },
        { pathPrefix: '/flaky', upstreams: [deadUrl, appA.url] },
        { pathPrefix: '/slow', upstreams: [slow.url], timeout: '300ms' },
        {
          pathPrefix: '/silent',
          upstreams: [`http://127.0.0.1:${(silent.address() as AddressInfo).port}`],
          timeout: '300ms',
        },
        { pathPrefix: '/down', upstreams: [deadUrl] },
        { upstreams: [appA.url] },
      ],
      upstream: { maxFails: 2, failTimeout: '1m' },
      admin: { listen: '127.0.0.1:0' },
    },
    'test',
    fixture.root,
  );
  running = await runGateway({
    config,
    configFile: null,
    logger: createLogger({ level: 'debug', write: (l) => void logLines.push(l) }),
    serveAdmin: true,
  });
});

after(async () => {
  await running?.close();
  await Promise.all([appA?.close(), appB?.close(), slow?.close()]);
  silent?.close();
  await fixture?.close();
});

const port = () => running.gateway.port;

async function curl(
  args: string[],
  identity: string | null = dirs.device!,
): Promise<{ status: number; body: string; httpVersion: string }> {
  const id = identity ? ['--cert', join(identity, 'cert.pem'), '--key', join(identity, 'key.pem')] : [];
  const r = await run('curl', [
    '-sS',
    '--max-time',
    '10',
    '--cacert',
    join(dirs.gw!, 'ca.pem'),
    ...id,
    '-w',
    '\n%{http_code} %{http_version}',
    ...args,
  ]);
  assert.equal(r.status, 0, r.stderr);
  const cut = r.stdout.lastIndexOf('\n');
  const [status, httpVersion] = r.stdout.slice(cut + 1).split(' ');
  return { status: Number(status), body: r.stdout.slice(0, cut), httpVersion: httpVersion! };
}

const echoed = (body: string) =>
  JSON.parse(body) as { upstream: string; url: string; headers: Record<string, string>; rawHeaders: string[] };
const resolveTo = (host: string) => ['--resolve', `${host}:${port()}:127.0.0.1`];

test('gateway-routes-by-host-then-path-prefix', async () => {
  const byHost = await curl([...resolveTo('api.test.internal'), `https://api.test.internal:${port()}/rr/x`]);
  assert.equal(byHost.status, 200, byHost.body);
  assert.equal(echoed(byHost.body).upstream, 'B', 'the exact host route wins over a path prefix');
  const fallback = await curl([`https://localhost:${port()}/other`]);
  assert.equal(echoed(fallback.body).upstream, 'A');
});

test('gateway-sni-host-mismatch-answers-421', async () => {
  const r = await curl([
    ...resolveTo('api.test.internal'),
    '-H',
    'Host: app.test.internal',
    `https://api.test.internal:${port()}/`,
  ]);
  assert.equal(r.status, 421);
  assert.match(r.body, /TLS server name "api\.test\.internal" does not match Host "app\.test\.internal"/);
  const same = await curl([
    ...resolveTo('api.test.internal'),
    '-H',
    'Host: API.test.internal:443',
    `https://api.test.internal:${port()}/`,
  ]);
  assert.equal(same.status, 200, 'case and port do not matter');
});

test('gateway-round-robin-across-upstreams', async () => {
  const seen = [];
  for (let i = 0; i < 4; i++) seen.push(echoed((await curl([`https://localhost:${port()}/rr/${i}`])).body).upstream);
  assert.deepEqual([...seen].sort(), ['A', 'A', 'B', 'B']);
  assert.notEqual(seen[0], seen[1]);
});

test('gateway-refused-upstream-retried-then-rested-passively', async () => {
  for (let i = 0; i < 6; i++) {
    const r = await curl([`https://localhost:${port()}/flaky/${i}`]);
    assert.equal(r.status, 200, 'a GET whose upstream refused the connection goes to the next one');
    assert.equal(echoed(r.body).upstream, 'A');
  }
  const failures = logLines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === 'gateway.upstream_failed' && l.upstream === deadUrl && l.route === 'routes[2]');
  assert.equal(failures.length, 2, 'after maxFails (2) the dead upstream rests and is not tried again');
  assert.equal(failures[1]!.resting, true);
});

test('gateway-upstream-timeout-504-and-down-502-with-readable-reason', async () => {
  const slowR = await curl([`https://localhost:${port()}/slow`]);
  assert.equal(slowR.status, 504);
  assert.match(slowR.body, /upstream of routes\[3\] did not answer within 300 ms/);
  const silentR = await curl(['-H', 'Accept: application/json', `https://localhost:${port()}/silent`]);
  assert.equal(silentR.status, 504);
  assert.equal((JSON.parse(silentR.body) as { error: { code: string } }).error.code, 'UPSTREAM_TIMEOUT');
  const down = await curl([`https://localhost:${port()}/down`]);
  assert.equal(down.status, 502);
  assert.match(down.body, /upstream of routes\[5\] is unavailable/);
});

test('gateway-http2-negotiated-by-alpn-with-identity-and-stripping', async () => {
  const r = await curl([
    '--http2',
    '-H',
    'X-Client-Name: mallory',
    '-H',
    'x_client_role: admin',
    `https://localhost:${port()}/h2?q=1`,
  ]);
  assert.equal(r.status, 200, r.body);
  assert.equal(r.httpVersion, '2');
  const app = echoed(r.body);
  assert.equal(app.url, '/h2?q=1');
  assert.equal(app.headers['x-client-name'], 'device-1');
  assert.equal(app.headers['x-client-role'], 'web');
  assert.equal(app.headers.host, `localhost:${port()}`, 'the :authority becomes Host for the HTTP/1.1 upstream');
  assert.match(
    app.headers['client-cert-chain'] ?? '',
    /^:[A-Za-z0-9+/=]+:(, :[A-Za-z0-9+/=]+:)+$/,
    'RFC 9440 Client-Cert-Chain carries the intermediate and root the handshake verified',
  );
  assert.ok(!app.rawHeaders.some((h, i) => i % 2 === 0 && h.startsWith(':')), 'no pseudo-header reaches the app');
  const refused = await curl(['--http2', `https://localhost:${port()}/`], null);
  assert.equal(refused.status, 400);
  assert.equal(refused.httpVersion, '2');
});

function h2Request(headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(`https://localhost:${port()}`, {
      ca: readFileSync(join(dirs.gw!, 'ca.pem')),
      cert: readFileSync(join(dirs.device!, 'cert.pem')),
      key: readFileSync(join(dirs.device!, 'key.pem')),
    });
    session.on('error', reject);
    const stream = session.request({ ':path': '/h2-raw', ...headers });
    let status = 0;
    let body = '';
    stream.on('response', (h) => {
      status = Number(h[':status']);
    });
    stream.on('data', (d: Buffer) => {
      body += d.toString();
    });
    stream.on('end', () => {
      session.close();
      resolve({ status, body });
    });
    stream.on('error', reject);
    stream.end();
  });
}

test('gateway-http2-host-field-cannot-differ-from-the-checked-authority', async () => {
  // RFC 9113 §8.3.1: a host field naming another entity than :authority makes the request malformed.
  const before = appA.requestCount();
  const refused = await h2Request({ ':authority': `localhost:${port()}`, host: 'internal-admin.example' });
  assert.equal(refused.status, 400, refused.body);
  assert.match(refused.body, /host "internal-admin.example" differs from :authority/);
  assert.equal(appA.requestCount(), before, 'nothing reached the app');

  const r = await h2Request({
    ':authority': `localhost:${port()}`,
    'x-forwarded-proto': 'http',
    'x-real-ip': '10.0.0.1',
    forwarded: 'for=10.0.0.1;proto=http',
  });
  assert.equal(r.status, 200, r.body);
  const app = echoed(r.body);
  const hosts = app.rawHeaders.filter((_, i) => i % 2 === 0).filter((name) => name.toLowerCase() === 'host');
  assert.equal(hosts.length, 1, `one Host reaches the app: ${JSON.stringify(app.rawHeaders)}`);
  assert.equal(app.headers.host, `localhost:${port()}`);
  assert.equal(app.headers['x-forwarded-proto'], 'https', 'the client cannot claim another scheme');
  assert.equal(app.headers['x-real-ip'], '127.0.0.1');
  assert.equal(app.headers.forwarded, `for=127.0.0.1;host="localhost:${port()}";proto=https`);
});

test('gateway-http2-oversized-head-gets-431', async () => {
  const r = await h2Request({ 'x-big': 'a'.repeat(20 * 1024) });
  assert.equal(r.status, 431);
  assert.match(r.body, /request head is over 16384 bytes/);
});

test('gateway-http2-post-body-forwarded', async () => {
  const r = await curl(['--http2', '-X', 'POST', '--data-binary', 'hello', `https://localhost:${port()}/post`]);
  assert.equal(r.status, 200, r.body);
  assert.equal(echoed(r.body).headers['content-length'], '5');
});

function upgrade(identity: string | null, path: string, extraHeaders = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      {
        host: '127.0.0.1',
        port: port(),
        servername: 'localhost',
        ALPNProtocols: ['http/1.1'],
        ca: readFileSync(join(dirs.gw!, 'ca.pem')),
        ...(identity
          ? { cert: readFileSync(join(identity, 'cert.pem')), key: readFileSync(join(identity, 'key.pem')) }
          : {}),
      },
      () => {
        socket.write(
          `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${extraHeaders}\r\n`,
        );
      },
    );
    let received = '';
    socket.on('data', (data: Buffer) => {
      received += data.toString();
      if (
        received.includes('\r\n\r\n') &&
        received.startsWith('HTTP/1.1 101') &&
        !received.includes('ping-through-the-tunnel')
      )
        socket.write('ping-through-the-tunnel');
      else if (received.includes('ping-through-the-tunnel') || !received.startsWith('HTTP/1.1 101'))
        setTimeout(() => socket.end(), 50);
    });
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
    setTimeout(() => socket.destroy(), 5000).unref();
  });
}

test('gateway-websocket-upgrade-tunnels-with-identity', async () => {
  const answer = await upgrade(dirs.device!, '/ws', 'X-Client-Name: mallory\r\n');
  assert.match(answer, /^HTTP\/1\.1 101 Switching Protocols/);
  assert.match(answer, /X-Seen-Client: device-1/, 'the app learned the verified identity, not the forged one');
  assert.match(answer, /ping-through-the-tunnel/, 'bytes flow both ways after the upgrade');
});

test('gateway-websocket-upgrade-refused-without-certificate-or-by-policy', async () => {
  assert.match(await upgrade(null, '/ws'), /^HTTP\/1\.1 400 Bad Request[\s\S]*client certificate required/);
  assert.match(await upgrade(dirs.device!, '/a/%2Fb'), /^HTTP\/1\.1 400 [\s\S]*ambiguous path/);
});

function adminGet(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port: running.admin!.port, path }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

test('gateway-admin-metrics-count-handshakes-requests-and-latency', async () => {
  await curl([`https://localhost:${port()}/metrics-probe`]);
  await curl([`https://localhost:${port()}/`], null);
  const { status, body } = await adminGet('/metrics');
  assert.equal(status, 200);
  const value = (pattern: RegExp) => Number(body.match(pattern)?.[1] ?? 'NaN');
  assert.ok(value(/^gatehouse_gateway_handshakes_total\{outcome="verified"\} (\d+)/m) >= 1);
  assert.ok(value(/^gatehouse_gateway_handshakes_total\{outcome="no_certificate"\} (\d+)/m) >= 1);
  assert.ok(value(/^gatehouse_gateway_requests_total\{decision="allowed",reason="",status="200"\} (\d+)/m) >= 1);
  assert.ok(
    value(/^gatehouse_gateway_requests_total\{decision="refused",reason="NO_CERTIFICATE",status="400"\} (\d+)/m) >= 1,
  );
  assert.ok(value(/^gatehouse_gateway_upstream_latency_seconds_count\{route="routes\[6\]"\} (\d+)/m) >= 1);
  assert.ok(
    value(/^gatehouse_gateway_request_duration_seconds_count\{route="routes\[6\]",code="2xx"\} (\d+)/m) >= 1,
    'the configured route and the status class',
  );
  assert.ok(
    value(/^gatehouse_gateway_request_duration_seconds_count\{route="none",code="4xx"\} (\d+)/m) >= 1,
    'refused before routing (no certificate)',
  );
  const expiry = value(/^gatehouse_gateway_certificate_expiry_timestamp_seconds (\S+)/m) - Date.now() / 1000;
  assert.ok(expiry > 3600 && expiry <= 86_400, `certificate expiry timestamp ${expiry} s ahead`);
  assert.match(
    body,
    /^gatehouse_build_info\{version="\d+\.\d+\.\d+[^"]*",node_version="v\d+[^"]*",component="gateway"\} 1$/m,
  );
  assert.match(body, /^process_cpu_seconds_total /m);
});

test('gateway-admin-healthz-and-unknown-path', async () => {
  const health = await adminGet('/healthz');
  assert.equal(health.status, 200);
  const parsed = JSON.parse(health.body) as { status: string; certificate: { serial: string } };
  assert.equal(parsed.status, 'ok');
  assert.match(parsed.certificate.serial, /^[0-9a-f]+$/);
  assert.equal((await adminGet('/nope')).status, 404);
});

test('gateway-access-log-line-has-the-fields-operators-need', async () => {
  await curl([`https://localhost:${port()}/logged`]);
  const line = logLines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === 'gateway.request' && l.path === '/logged')
    .pop();
  assert.ok(line);
  for (const key of [
    'requestId',
    'identity',
    'role',
    'method',
    'path',
    'decision',
    'rule',
    'status',
    'upstreamMs',
    'tls',
    'resumed',
    'route',
    'upstream',
    'durationMs',
  ]) {
    assert.ok(key in line, `access log has ${key}`);
  }
  assert.equal(line.identity, 'spiffe://test.internal/web/device-1');
  assert.equal(line.tls, 'TLSv1.3');
});

test('gateway-websocket-tunnel-closed-when-the-policy-no-longer-allows-it', async () => {
  const { compilePolicy, loadPolicyFile } = await import('../src/policy/index.js');
  const socket = connect({
    host: '127.0.0.1',
    port: port(),
    servername: 'localhost',
    ALPNProtocols: ['http/1.1'],
    ca: readFileSync(join(dirs.gw!, 'ca.pem')),
    cert: readFileSync(join(dirs.device!, 'cert.pem')),
    key: readFileSync(join(dirs.device!, 'key.pem')),
  });
  let received = '';
  const upgraded = new Promise<void>((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      received += d.toString();
      if (received.includes('\r\n\r\n')) resolve();
    });
    socket.on('error', reject);
  });
  socket.write('GET /ws-long HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  await upgraded;
  assert.match(received, /^HTTP\/1\.1 101 /);
  const policyFile = join(fixture.root, 'policy.json');
  try {
    running.gateway.setPolicy(
      compilePolicy({
        version: 1,
        rules: [{ effect: 'allow', methods: ['GET'], paths: ['/elsewhere'], roles: ['web'] }],
      }),
    );
    await waitFor(() => socket.closed, 8_000, 'the tunnel to close after the policy stopped allowing it');
    assert.ok(
      logLines.some(
        (l) => (JSON.parse(l) as { msg?: string }).msg === 'gateway.tunnel_closed' && l.includes('POLICY_DENIED'),
      ),
    );
  } finally {
    socket.destroy();
    running.gateway.setPolicy(loadPolicyFile(policyFile));
  }
});
