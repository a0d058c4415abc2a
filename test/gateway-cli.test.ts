/**
 * The gateway as operators run it: the CLI process, SIGTERM draining requests in flight,
 * --workers with reloads reaching every worker and metrics merged in the primary.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpGet } from 'node:http';
import { enrollAgent, startCaFixture, writeClientCaBundle, type CaFixture } from './helpers/ca-fixture.js';
import { startEchoUpstream, type EchoUpstream } from './helpers/echo-upstream.js';
import { startGatewayProcess, type GatewayProcess } from './helpers/gateway-process.js';
import { run } from './helpers/run.js';
import { waitFor } from './helpers/procs.js';
import { findLog } from './helpers/log-lines.js';

let fixture: CaFixture;
let slowApp: EchoUpstream;
let app: EchoUpstream;
const dirs: Record<string, string> = {};
let bundle = '';

const enrollAs = async (role: string, name: string, extra: { dns?: string[]; ip?: string[] } = {}): Promise<string> =>
  (await enrollAgent(fixture, role, name, extra)).dir;

before(async () => {
  fixture = await startCaFixture();
  app = await startEchoUpstream();
  slowApp = await startEchoUpstream({ delayMs: 1500 });
  dirs.gw = await enrollAs('gateway', 'gw-1', { dns: ['localhost'] });
  dirs.device = await enrollAs('web', 'device-1');
  bundle = writeClientCaBundle(fixture);
});

after(async () => {
  await Promise.all([app?.close(), slowApp?.close()]);
  await fixture?.close();
});

const start = (upstream: string, extraArgs: string[]) =>
  startGatewayProcess({
    cert: join(dirs.gw!, 'cert.pem'),
    key: join(dirs.gw!, 'key.pem'),
    clientCa: bundle,
    upstream,
    extraArgs,
  });

function curl(gateway: GatewayProcess, path: string) {
  return run('curl', [
    '-sS',
    '--max-time',
    '10',
    '--cacert',
    join(dirs.gw!, 'ca.pem'),
    '--cert',
    join(dirs.device!, 'cert.pem'),
    '--key',
    join(dirs.device!, 'key.pem'),
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    `${gateway.url}${path}`,
  ]);
}

test('gateway-sigterm-drains-the-request-in-flight-and-stops-accepting', async () => {
  const gateway = await start(slowApp.url, ['--workers', '1']);
  const reached = slowApp.requestCount();
  const inFlight = curl(gateway, '/slow');
  // In flight: the app has it (and answers 1.5 s later) when the gateway is told to stop.
  await waitFor(() => slowApp.requestCount() > reached, 10_000, 'the request to reach the slow app');
  const stopped = gateway.stop('SIGTERM');
  await gateway.waitForLog((l) => l.msg === 'gateway.stopping');
  const refused = await curl(gateway, '/new');
  assert.equal(
    refused.status,
    7,
    `a new connection is refused while draining (curl exit ${refused.status}: ${refused.stderr})`,
  );
  const r = await inFlight;
  assert.equal(r.stdout, '200', `the request in flight finished: ${r.stderr}`);
  assert.equal(await stopped, 0);
});

function adminGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path }, (res) => {
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

test('gateway-workers-share-the-port-reload-on-sighup-and-merge-metrics', async () => {
  const gateway = await start(app.url, ['--workers', '2', '--admin-listen', '127.0.0.1:0']);
  try {
    const listening = await gateway.waitForLog((l) => l.msg === 'gateway.listening');
    assert.match(String(listening.url), /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(listening.workers, 2);
    assert.equal(listening.level, 'info');
    assert.ok(
      !/Gatehouse gateway listening/.test(gateway.stderr()),
      'no sentence for a person when stderr is not a terminal: one JSON stream',
    );
    const admin = await gateway.waitForLog((l) => l.msg === 'gateway.admin_started');
    const adminPort = Number(String(admin.listen).split(':').pop());
    for (let i = 0; i < 6; i++) assert.equal((await curl(gateway, `/w${i}`)).stdout, '200');
    // A worker counts a request when its response has finished, which may be just after curl
    // has read it: wait for the six, then check that no more than six were counted.
    const allowed = async () => {
      const metrics = await adminGet(adminPort, '/metrics');
      assert.equal(metrics.status, 200);
      return Number(
        /^gatehouse_gateway_requests_total\{decision="allowed",reason="",status="200"\} (\d+)/m.exec(
          metrics.body,
        )?.[1] ?? 0,
      );
    };
    await waitFor(async () => (await allowed()) >= 6, 10_000, 'the six requests in the merged counters');
    const served = new Set(
      gateway
        .logs()
        .filter((l) => l.msg === 'gateway.request')
        .map((l) => l.worker),
    );
    assert.equal(
      await allowed(),
      6,
      `the primary sums every worker's counters (requests served by workers ${[...served].join(', ')})`,
    );
    const health = await adminGet(adminPort, '/healthz');
    assert.equal(health.status, 200);
    const parsed = JSON.parse(health.body) as { workers: number; problems: string[] };
    assert.equal(parsed.workers, 2);
    assert.deepEqual(parsed.problems, [], 'the merged metrics show a valid certificate');

    gateway.child.kill('SIGHUP');
    await gateway.waitForLog((l) => l.msg === 'gateway.reloaded' && l.what === 'tls' && l.worker === 1);
    await gateway.waitForLog((l) => l.msg === 'gateway.reloaded' && l.what === 'tls' && l.worker === 2);
    assert.equal((await curl(gateway, '/after-hup')).stdout, '200');
  } finally {
    assert.equal(await gateway.stop('SIGTERM'), 0);
  }
});

test('gateway-bad-config-exits-78-naming-the-key', async () => {
  const file = join(fixture.root, 'bad-gateway.yaml');
  writeFileSync(
    file,
    `listen: 127.0.0.1:0\ntls: { cert: c.pem, key: k.pem, clientCa: ca.pem }\nroutes:\n  - upstreams: [http://127.0.0.1:1]\n    timeout: forever\n`,
  );
  const { gatehouse } = await import('./helpers/cli.js');
  const r = await gatehouse(['gateway', '--config', file]);
  assert.equal(r.status, 78);
  assert.match(r.stderr, /routes\[0\]\.timeout: "forever" is not a duration/);
  const both = await gatehouse(['gateway', '--config', file, '--listen', '127.0.0.1:1']);
  assert.equal(both.status, 64);
  assert.match(both.stderr, /--config replaces --listen/);
  const missing = await gatehouse(['gateway', '--listen', '127.0.0.1:0']);
  assert.equal(missing.status, 64);
  assert.match(missing.stderr, /missing --cert, --key, --client-ca, --upstream/);
});

test('gateway-slowloris-gets-408-after-headers-timeout-and-is-logged', async () => {
  const file = join(fixture.root, 'slow-headers.yaml');
  writeFileSync(
    file,
    `listen: 127.0.0.1:0\ntls: { cert: ${join(dirs.gw!, 'cert.pem')}, key: ${join(dirs.gw!, 'key.pem')}, clientCa: ${bundle} }\nroutes:\n  - upstreams: [${app.url}]\nlimits: { headersTimeout: 2s }\nworkers: 1\n`,
  );
  const { spawn } = await import('node:child_process');
  const { CLI_PATH } = await import('./helpers/cli.js');
  const child = spawn(process.execPath, [CLI_PATH, 'gateway', '--config', file], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  try {
    await waitFor(
      () => !!findLog(stderr, 'gateway.listening'),
      30_000,
      () => `the gateway to listen:\n${stderr}`,
    );
    const port = Number(String(findLog(stderr, 'gateway.listening')!.url).split(':').pop());
    const { connect } = await import('node:tls');
    const started = Date.now();
    const answer = await new Promise<{ text: string; ms: number }>((resolve, reject) => {
      const socket = connect(
        {
          host: '127.0.0.1',
          port,
          servername: 'localhost',
          ALPNProtocols: ['http/1.1'],
          ca: readFileSync(join(dirs.gw!, 'ca.pem')),
          cert: readFileSync(join(dirs.device!, 'cert.pem')),
          key: readFileSync(join(dirs.device!, 'key.pem')),
        },
        () => {
          socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n');
        },
      );
      // One header line every 500 ms, never the blank line that ends the head.
      const drip = setInterval(() => {
        if (!socket.destroyed) socket.write('X-Drip: 1\r\n');
      }, 500);
      let text = '';
      socket.on('data', (d: Buffer) => {
        text += d.toString();
      });
      socket.on('close', () => {
        clearInterval(drip);
        resolve({ text, ms: Date.now() - started });
      });
      socket.on('error', reject);
    });
    assert.match(answer.text, /^HTTP\/1\.1 408 Request Timeout[\s\S]*the request head did not arrive within 2000 ms/);
    assert.ok(answer.ms < 10_000, `closed after ${answer.ms} ms, not held open`);
    // Log lines are written once per event-loop turn, so the line can trail the socket's close.
    await waitFor(
      () => /"reason":"REQUEST_TIMEOUT","status":408/.test(stderr),
      2_000,
      () => `the REQUEST_TIMEOUT access-log line:\n${stderr.slice(-3000)}`,
    );
  } finally {
    child.kill('SIGTERM');
  }
});

test('gateway-keepalive-timeout-never-cuts-a-slow-request-and-http2-can-be-turned-off', async () => {
  const { parseGatewayConfig } = await import('../src/gateway/config.js');
  const { runGateway } = await import('../src/gateway/run.js');
  const { createLogger } = await import('../src/log/logger.js');
  for (const http2 of [true, false]) {
    const config = parseGatewayConfig(
      {
        listen: '127.0.0.1:0',
        http2,
        tls: { cert: join(dirs.gw!, 'cert.pem'), key: join(dirs.gw!, 'key.pem'), clientCa: bundle },
        routes: [{ upstreams: [slowApp.url] }],
        limits: { keepAliveTimeout: '1s' },
      },
      'test',
      fixture.root,
    );
    const running = await runGateway({
      config,
      configFile: null,
      logger: createLogger({ level: 'error', write: () => undefined }),
      serveAdmin: false,
    });
    try {
      // The app answers after 1.5 s: longer than keepAliveTimeout, well within the route timeout.
      const r = await run('curl', [
        '-sS',
        '--http2',
        '--max-time',
        '10',
        '--cacert',
        join(dirs.gw!, 'ca.pem'),
        '--cert',
        join(dirs.device!, 'cert.pem'),
        '--key',
        join(dirs.device!, 'key.pem'),
        '-o',
        '/dev/null',
        '-w',
        '%{http_code} %{http_version}',
        `https://localhost:${running.gateway.port}/slow`,
      ]);
      assert.equal(r.stdout, http2 ? '200 2' : '200 1.1', `http2: ${http2}: ${r.stderr}`);
    } finally {
      await running.close();
    }
  }
});
