/**
 * Posture rules end to end: devices report to a real CA over mutual TLS, a gateway whose policy
 * requires posture asks the CA (with its own certificate) and refuses a weak device with 403
 * naming the failing checks, lets it in after a good report, refuses a device with a critical
 * advisory, and, when the CA cannot be reached, keeps deciding from a recent answer and then
 * fails closed with 503. The CA side: who may read a standing, and a role that renews only with
 * posture.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { parseGatewayConfig, type GatewayConfig } from '../src/gateway/config.js';
import { loadPolicy, runGateway, type RunningGateway } from '../src/gateway/run.js';
import { createLogger, silentLogger } from '../src/log/logger.js';
import { reportPosture } from '../src/agent/posture-report.js';
import { runAgent } from '../src/agent/renew-scheduler.js';
import { importAdvisories, parseAdvisories } from '../src/ca/vuln-import.js';
import { isGatehouseError } from '../src/errors/errors.js';
import { enrollAgent, startCaFixture, writeClientCaBundle, type CaFixture } from './helpers/ca-fixture.js';
import { startEchoUpstream, type EchoUpstream } from './helpers/echo-upstream.js';
import { caRequest } from './helpers/ca-http.js';
import { gatehouse } from './helpers/cli.js';
import { run } from './helpers/run.js';
import { waitFor } from './helpers/procs.js';
import { writeTree } from './helpers/system-tree.js';

let fixture: CaFixture;
let app: EchoUpstream;
let gateway: RunningGateway;
const dirs: Record<string, string> = {};
const logLines: string[] = [];
let policyFile: string;

/** A Debian 13 machine; `weak` turns root login and password login on. */
function systemTree(dir: string, weak: boolean, packages: Array<[string, string]> = []): string {
  const files: Record<string, string> = {
    'etc/os-release':
      'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\n',
    'etc/ssh/sshd_config': weak
      ? 'PermitRootLogin yes\nPasswordAuthentication yes\n'
      : 'PermitRootLogin no\nPasswordAuthentication no\n',
    'run/systemd/timesync/synchronized': '',
    'var/lib/dpkg/status': packages
      .map(([name, version]) => `Package: ${name}\nStatus: install ok installed\nVersion: ${version}\n`)
      .join('\n'),
  };
  writeTree(dir, files);
  return dir;
}

async function report(name: string, weak: boolean, packages: Array<[string, string]> = []): Promise<number | null> {
  const { received } = await reportPosture({
    dir: dirs[name]!,
    root: systemTree(join(fixture.root, `system-${name}`), weak, packages),
  });
  return received!.score;
}

function gatewayConfig(posture: Record<string, unknown>): Readonly<GatewayConfig> {
  return parseGatewayConfig(
    {
      listen: '127.0.0.1:0',
      tls: { cert: join(dirs.gw!, 'cert.pem'), key: join(dirs.gw!, 'key.pem'), clientCa: writeClientCaBundle(fixture) },
      routes: [{ upstreams: [app.url] }],
      policy: policyFile,
      posture,
    },
    'test',
    fixture.root,
  );
}

before(async () => {
  fixture = await startCaFixture();
  app = await startEchoUpstream();
  for (const name of ['good', 'weak', 'silent', 'patched-late'])
    dirs[name] = (await enrollAgent(fixture, 'web', name)).dir;
  dirs.gw = (await enrollAgent(fixture, 'gateway', 'gw-1', { dns: ['localhost'] })).dir;
  policyFile = join(fixture.root, 'policy.yaml');
  writeFileSync(
    policyFile,
    `version: 1
rules:
  - { id: api, effect: allow, methods: [GET], paths: ['/api/*'], roles: [web], posture: { minScore: 70, maxAge: 1h } }
  - { id: strict, effect: allow, methods: [GET], paths: ['/strict'], roles: [web], posture: { noCritical: true } }
  - { id: public, effect: allow, methods: [GET], paths: ['/public/*'], roles: [web] }
`,
  );
  gateway = await runGateway({
    config: gatewayConfig({ ca: fixture.url, refresh: '1s', staleFor: '3s' }),
    configFile: null,
    logger: createLogger({ level: 'info', write: (l) => void logLines.push(l) }),
    serveAdmin: false,
  });
});

after(async () => {
  await gateway?.close();
  await app?.close();
  await fixture?.close();
});

/** GET /v1/posture answered by the CA: the gateway asking for a standing. */
function postureFetchesByGateway(): number {
  return fixture.logLines.filter(
    (l) => l.includes('"msg":"ca.request"') && l.includes('"method":"GET"') && l.includes('"path":"/v1/posture"'),
  ).length;
}

async function curl(
  name: string,
  path: string,
  port = gateway.gateway.port,
): Promise<{ status: number; body: string }> {
  const r = await run('curl', [
    '-sS',
    '--max-time',
    '10',
    '--cacert',
    join(dirs.gw!, 'ca.pem'),
    '--cert',
    join(dirs[name]!, 'cert.pem'),
    '--key',
    join(dirs[name]!, 'key.pem'),
    '-w',
    '\n%{http_code}',
    `https://localhost:${port}${path}`,
  ]);
  assert.equal(r.status, 0, r.stderr);
  const cut = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(cut + 1)), body: r.stdout.slice(0, cut) };
}

test('gateway-posture-rule-refuses-a-weak-device-naming-its-failing-checks-and-admits-it-after-a-good-report', async () => {
  assert.ok((await report('good', false))! >= 70);
  assert.ok((await report('weak', true))! < 70);
  assert.equal((await curl('good', '/api/x')).status, 200);
  const weak = await curl('weak', '/api/x');
  assert.equal(weak.status, 403, weak.body);
  assert.match(
    weak.body,
    /rule api requires posture \(score ≥ 70, a report at most 60m old\), and spiffe:\/\/test\.internal\/web\/weak does not meet it: posture score \d+ is below 70; failing: .*ssh-root-login/,
  );
  assert.match(weak.body, /ssh-password-auth/);
  const silent = await curl('silent', '/api/x');
  assert.equal(silent.status, 403);
  assert.match(silent.body, /never sent a posture report/);
  assert.equal((await curl('weak', '/public/x')).status, 200, 'a rule without posture is not affected');

  // Fixed and reported: in again once the gateway's cached answer (refresh 1 s) is renewed.
  await report('weak', false);
  await waitFor(
    async () => (await curl('weak', '/api/x')).status === 200,
    10_000,
    'the weak device to be admitted after a good report',
  );
  const refusals = logLines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === 'gateway.request' && l.reason === 'POSTURE_FAILED');
  assert.ok(refusals.length >= 2, 'refusals logged with reason POSTURE_FAILED');
  assert.ok(refusals.every((l) => l.status === 403 && l.rule !== undefined));
});

/** An upgrade through the gateway: resolves with the socket once the app answered 101. */
function openTunnel(name: string, path: string): Promise<{ socket: TLSSocket }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(
      {
        host: '127.0.0.1',
        port: gateway.gateway.port,
        servername: 'localhost',
        ALPNProtocols: ['http/1.1'],
        ca: readFileSync(join(dirs.gw!, 'ca.pem')),
        cert: readFileSync(join(dirs[name]!, 'cert.pem')),
        key: readFileSync(join(dirs[name]!, 'key.pem')),
      },
      () =>
        socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`),
    );
    let head = '';
    socket.on('data', (d: Buffer) => {
      head += d.toString();
      if (!head.includes('\r\n\r\n')) return;
      if (head.startsWith('HTTP/1.1 101')) resolve({ socket });
      else reject(new Error(`not upgraded: ${head.split('\r\n')[0]}`));
    });
    socket.on('error', () => undefined);
  });
}

test('gateway-posture-an-open-websocket-tunnel-is-closed-when-the-device-falls-below-the-rule', async () => {
  await report('good', false);
  const { socket } = await openTunnel('good', '/api/ws');
  try {
    // Past refresh (1 s) the tunnel's recheck fetches a newer standing from the CA: two such
    // fetches with the tunnel still open show the rechecks judged it and let it be.
    const fetched = postureFetchesByGateway();
    await waitFor(() => postureFetchesByGateway() >= fetched + 2, 10_000, 'two posture fetches by the tunnel recheck');
    assert.ok(!socket.destroyed, 'open while the posture meets the rule (two rechecks)');
    await report('good', true);
    await waitFor(() => socket.closed, 10_000, 'the tunnel to close within the refresh and the recheck period');
    const line = logLines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'gateway.tunnel_closed' && l.reason === 'POSTURE_FAILED');
    assert.match(String(line?.detail), /does not meet it: posture score \d+ is below 70/);
  } finally {
    socket.destroy();
    await report('good', false);
  }
});

test('gateway-posture-no-critical-refuses-a-device-a-critical-advisory-affects', async () => {
  await report('patched-late', false, [['openssl', '3.0.11-1~deb12u2']]);
  assert.equal((await curl('patched-late', '/strict')).status, 200, 'no advisory imported yet');
  const feed = JSON.parse(readFileSync(resolve('docs/examples/osv-fixture.json'), 'utf8')) as Array<
    Record<string, unknown>
  >;
  // The fixture's advisories are for Debian 12; this device runs 13.
  const forTrixie = feed.map((r) => ({
    ...r,
    id: `${String(r.id)}-13`,
    affected: (r.affected as Array<{ package: { ecosystem: string } }>).map((a) => ({
      ...a,
      package: { ...a.package, ecosystem: a.package.ecosystem.replace('Debian:12', 'Debian:13') },
    })),
  }));
  await importAdvisories(
    fixture.store,
    parseAdvisories(forTrixie, (i) => `record ${i}`),
    { actor: 'test' },
    new Date(),
  );
  await waitFor(
    async () => (await curl('patched-late', '/strict')).status === 403,
    10_000,
    'the critical advisory to refuse the device',
  );
  const refused = await curl('patched-late', '/strict');
  assert.match(refused.body.trimEnd(), /critical advisories affect it: GATEHOUSE-TEST-0001-13$/);
  assert.equal((await curl('good', '/strict')).status, 200, 'a device without the package passes');
});

/** A TCP relay to the CA that the test can cut, so the CA itself keeps running. */
async function relayTo(port: number): Promise<{ url: string; cut(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let open = true;
  const server: Server = createServer((client) => {
    if (!open) return client.destroy();
    const upstream = connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `https://localhost:${(server.address() as AddressInfo).port}`,
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}

test('gateway-posture-when-the-ca-is-unreachable-decides-from-a-recent-answer-then-fails-closed', async () => {
  const relay = await relayTo(Number(new URL(fixture.url).port));
  const logs: string[] = [];
  const g = await runGateway({
    config: gatewayConfig({ ca: relay.url, refresh: '1s', staleFor: '3s', timeout: '1s' }),
    configFile: null,
    logger: createLogger({ level: 'info', write: (l) => void logs.push(l) }),
    serveAdmin: false,
  });
  try {
    // The gateway's one good answer is fetched after this instant: staleFor counts from it.
    const askedAt = Date.now();
    assert.equal((await curl('good', '/api/x', g.gateway.port)).status, 200);
    relay.cut();
    // Past refresh, within staleFor: the last answer still decides, and the gateway says it is stale.
    await waitFor(
      async () => {
        const status = (await curl('good', '/api/x', g.gateway.port)).status;
        assert.equal(status, 200, 'a recent answer is used while the CA is unreachable');
        return logs.some((l) => l.includes('"gateway.posture_stale"'));
      },
      3_000, // staleFor: after it, the gateway fails closed
      'a request decided by the stale answer',
    );
    await waitFor(
      async () => (await curl('good', '/api/x', g.gateway.port)).status === 503,
      10_000,
      'the gateway to fail closed after staleFor',
    );
    assert.ok(Date.now() - askedAt >= 3000, 'not before staleFor ran out');
    const body = (await curl('good', '/api/x', g.gateway.port)).body;
    assert.match(body, /503 Service Unavailable: rule api requires posture, and the CA could not be asked/);
    assert.equal((await curl('good', '/public/x', g.gateway.port)).status, 200, 'rules without posture need no CA');
    assert.ok(
      logs.some((l) => l.includes('"gateway.posture_stale"')) &&
        logs.some((l) => l.includes('"gateway.posture_unavailable"')),
    );
  } finally {
    await g.close();
    await relay.close();
  }
  // Opted in, and named unsafe: allowed when the CA cannot be asked.
  const unsafe = await runGateway({
    config: gatewayConfig({ ca: 'https://localhost:1', unsafeAllowWhenUnavailable: true, timeout: '500ms' }),
    configFile: null,
    logger: silentLogger,
    serveAdmin: false,
  });
  try {
    assert.equal((await curl('weak', '/api/x', unsafe.gateway.port)).status, 200);
  } finally {
    await unsafe.close();
  }
});

test('gateway-posture-rules-without-a-ca-to-ask-are-refused-at-load', () => {
  assert.throws(
    () => loadPolicy(gatewayConfig({}), silentLogger),
    (err: unknown) =>
      isGatehouseError(err, 'GH_CONFIG_INVALID') &&
      /rules that require posture \(api, strict\): set posture\.ca/.test((err as Error).message),
  );
  assert.throws(
    () =>
      parseGatewayConfig(
        {
          listen: '127.0.0.1:0',
          tls: { cert: 'c', key: 'k', clientCa: 'a' },
          routes: [{ upstreams: [app.url] }],
          posture: { ca: 'http://ca:8443' },
        },
        'test',
        '/',
      ),
    /posture\.ca: an https:\/\/ URL/,
  );
});

test('posture-standing-readable-by-itself-admins-and-server-roles-only', async () => {
  const file = (name: string, f: string) => readFileSync(join(dirs[name]!, f), 'utf8');
  const as = (name: string) => ({
    ca: file(name, 'ca.pem'),
    cert: file(name, 'cert.pem'),
    key: file(name, 'key.pem'),
    method: 'GET' as const,
  });
  const weakId = encodeURIComponent('spiffe://test.internal/web/weak');
  const byGateway = await caRequest(fixture.url, `v1/posture?identity=${weakId}`, as('gw'));
  assert.equal(byGateway.status, 200, byGateway.text);
  assert.equal(byGateway.json.spiffeId, 'spiffe://test.internal/web/weak');
  assert.equal(typeof byGateway.json.score, 'number');
  const own = await caRequest(fixture.url, 'v1/posture', as('good'));
  assert.equal(own.json.spiffeId, 'spiffe://test.internal/web/good', 'without identity=: the caller itself');
  const other = await caRequest(fixture.url, `v1/posture?identity=${weakId}`, as('good'));
  assert.equal(other.status, 403, other.text);
  assert.equal(other.json.error.code, 'GH_AUTH_FORBIDDEN');
  assert.equal(
    (await caRequest(fixture.url, `v1/posture?identity=${weakId}`, { ca: file('good', 'ca.pem'), method: 'GET' }))
      .status,
    401,
  );
});

test('policy-check-judges-posture-from-a-standing-file-or-the-ca', async () => {
  await report('weak', true);
  const standingFile = join(fixture.root, 'weak-standing.json');
  const fetched = await caRequest(
    fixture.url,
    `v1/posture?identity=${encodeURIComponent('spiffe://test.internal/web/weak')}`,
    {
      ca: readFileSync(join(dirs.gw!, 'ca.pem'), 'utf8'),
      cert: readFileSync(join(dirs.gw!, 'cert.pem'), 'utf8'),
      key: readFileSync(join(dirs.gw!, 'key.pem'), 'utf8'),
      method: 'GET',
    },
  );
  writeFileSync(standingFile, fetched.text);
  const cert = join(dirs.weak!, 'cert.pem');
  const unknown = await gatehouse(['policy', 'check', '--policy', policyFile, '--cert', cert, 'GET', '/api/x']);
  assert.equal(unknown.status, 1, 'a posture it cannot see is not met');
  assert.match(
    unknown.stdout,
    /posture: +the rule requires score ≥ 70, a report at most 60m old\ndecision: ALLOW only if the posture meets it/,
  );
  const fromFile = await gatehouse([
    'policy',
    'check',
    '--policy',
    policyFile,
    '--cert',
    cert,
    '--posture',
    standingFile,
    'GET',
    '/api/x',
  ]);
  assert.equal(fromFile.status, 1, fromFile.stdout);
  assert.match(
    fromFile.stdout,
    /decision: REFUSED \(POSTURE_FAILED\): posture score \d+ is below 70; failing: .*ssh-root-login/,
  );
  const fromCa = await gatehouse([
    'policy',
    'check',
    '--policy',
    policyFile,
    '--cert',
    join(dirs.good!, 'cert.pem'),
    '--ca',
    fixture.url,
    '--identity',
    dirs.gw!,
    '--json',
    'GET',
    '/api/x',
  ]);
  assert.equal(fromCa.status, 0, fromCa.stderr);
  const decided = JSON.parse(fromCa.stdout);
  assert.equal(decided.allowed, true);
  assert.deepEqual(decided.posture.problems, []);
  assert.equal(decided.posture.standing.spiffeId, 'spiffe://test.internal/web/good');
  const mismatch = await gatehouse([
    'policy',
    'check',
    '--policy',
    policyFile,
    '--cert',
    join(dirs.good!, 'cert.pem'),
    '--posture',
    standingFile,
    'GET',
    '/api/x',
  ]);
  assert.equal(mismatch.status, 64);
  assert.match(
    mismatch.stderr,
    /standing is of spiffe:\/\/test\.internal\/web\/weak, not of the certificate's spiffe:\/\/test\.internal\/web\/good/,
  );
});

test('ca-role-with-posture-renews-only-a-device-that-meets-it', async () => {
  const ca = await startCaFixture({
    configEdit: (yaml) => yaml.replace(/(web:\n\s+profile: client\n)/, '$1    posture: { minScore: 70 }\n'),
  });
  try {
    const good = (await enrollAgent(ca, 'web', 'good')).dir;
    const weak = (await enrollAgent(ca, 'web', 'weak')).dir;
    assert.ok(
      ((await reportPosture({ dir: good, root: systemTree(join(ca.root, 'good-system'), false) })).received!.score ??
        0) >= 70,
    );
    await reportPosture({ dir: weak, root: systemTree(join(ca.root, 'weak-system'), true) });
    const renewed = await gatehouse(['agent', 'renew', '--dir', good]);
    assert.equal(renewed.status, 0, renewed.stderr);
    const refused = await gatehouse(['agent', 'renew', '--dir', weak]);
    assert.equal(refused.status, 77, refused.stderr);
    assert.match(
      refused.stderr,
      /role web renews only with posture \(score ≥ 70\), and spiffe:\/\/test\.internal\/web\/weak does not meet it: posture score \d+ is below 70; failing: .*ssh-root-login.*\[GH_POSTURE_REQUIRED\]/s,
    );
    const audited = await ca.store.listAudit({ type: 'ca.cert_refused' });
    assert.ok(
      audited.some((e) => e.details.code === 'GH_POSTURE_REQUIRED'),
      'the refusal is audited',
    );

    // The machine is fixed; its agent, refused for posture, reports at once and renews at the
    // retry instead of waiting for its hourly report. Its clock is 18 h on: the renewal is due.
    const lines: Array<Record<string, unknown>> = [];
    const controller = new AbortController();
    const running = runAgent({
      dir: weak,
      logger: createLogger({ level: 'debug', write: (l) => void lines.push(JSON.parse(l) as Record<string, unknown>) }),
      signal: controller.signal,
      now: () => new Date(Date.now() + 18 * 3_600_000),
      random: () => 0.99,
      retryBaseMs: 100,
      secrets: null,
      posture: { intervalMs: 3_600_000, root: systemTree(join(ca.root, 'weak-system-fixed'), false) },
    });
    try {
      await waitFor(() => lines.some((l) => l.msg === 'agent.cert_renewed'), 20_000, 'the fixed machine to renew');
    } finally {
      controller.abort();
      await running;
    }
    const order = ['agent.renew_failed', 'agent.posture_reported', 'agent.cert_renewed'].map((msg) =>
      lines.findIndex((l) => l.msg === msg),
    );
    assert.ok(
      order[0]! >= 0 && order[0]! < order[1]! && order[1]! < order[2]!,
      `refused, reported, renewed: ${lines.map((l) => l.msg).join(', ')}`,
    );
    assert.equal(lines.find((l) => l.msg === 'agent.renew_failed')!.code, 'GH_POSTURE_REQUIRED');
  } finally {
    await ca.close();
  }
});
