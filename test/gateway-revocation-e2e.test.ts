/**
 * Revocation through the whole path: the Gatehouse CA revokes a device, the gateway fetches
 * the CA's /crl over HTTPS and refuses the device, also on a keep-alive connection that was
 * opened (and allowed) before the revocation.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { request as httpGet } from 'node:http';
import type { Identity } from '../src/pki/certificate.js';
import { parseGatewayConfig } from '../src/gateway/config.js';
import { runGateway, type RunningGateway } from '../src/gateway/run.js';
import { createLogger } from '../src/log/logger.js';
import { enrollAgent, startCaFixture, writeClientCaBundle, type CaFixture } from './helpers/ca-fixture.js';
import { startEchoUpstream, type EchoUpstream } from './helpers/echo-upstream.js';
import { run } from './helpers/run.js';
import { pollUntil } from './helpers/poll.js';

let fixture: CaFixture;
let app: EchoUpstream;
let running: RunningGateway;
const logLines: string[] = [];
const dirs: Record<string, string> = {};
const identities: Record<string, Identity> = {};

async function enrollAs(role: string, name: string, extra: { dns?: string[] } = {}): Promise<string> {
  const { dir, identity } = await enrollAgent(fixture, role, name, extra);
  identities[name] = identity;
  return dir;
}

before(async () => {
  fixture = await startCaFixture({ crlCheckIntervalMs: 200 });
  app = await startEchoUpstream();
  dirs.gw = await enrollAs('gateway', 'gw-1', { dns: ['localhost'] });
  dirs.keeper = await enrollAs('web', 'keeper');
  dirs.doomed = await enrollAs('web', 'doomed');
  dirs.later = await enrollAs('web', 'revoked-later');
  const bundle = writeClientCaBundle(fixture);
  await fixture.server.authority.revokeCertificate(identities.doomed!.serial, 'keyCompromise', { actor: 'test' });
  const config = parseGatewayConfig(
    {
      listen: '127.0.0.1:0',
      tls: { cert: join(dirs.gw, 'cert.pem'), key: join(dirs.gw, 'key.pem'), clientCa: bundle },
      routes: [{ upstreams: [app.url] }],
      revocation: { crl: [`${fixture.url}/crl`, `${fixture.url}/crl/root`], refreshInterval: '1s' },
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
  await app?.close();
  await fixture?.close();
});

async function curl(identity: string, path = '/'): Promise<{ status: number; body: string }> {
  const r = await run('curl', [
    '-sS',
    '--max-time',
    '10',
    '--cacert',
    join(dirs.gw!, 'ca.pem'),
    '--cert',
    join(identity, 'cert.pem'),
    '--key',
    join(identity, 'key.pem'),
    '-w',
    '\n%{http_code}',
    `https://localhost:${running.gateway.port}${path}`,
  ]);
  assert.equal(r.status, 0, r.stderr);
  const cut = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(cut + 1)), body: r.stdout.slice(0, cut) };
}

test('gateway-revoked-device-refused-403-naming-revocation-and-others-pass', async () => {
  // Revoked before the gateway started; the CA publishes the new CRL within its 200 ms check,
  // and the gateway picks it up within its 1 s refresh.
  const refused = await pollUntil(
    'the revoked device to be refused',
    async () => {
      const r = await curl(dirs.doomed!);
      return r.status === 200 ? undefined : r;
    },
    10_000,
    100,
  );
  assert.equal(refused.status, 403);
  assert.match(refused.body, /client certificate refused \(.*revoked.*keyCompromise/i);
  assert.equal((await curl(dirs.keeper!)).status, 200);
  const line = logLines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l.msg === 'gateway.request' && l.reason === 'REVOKED');
  assert.ok(line, 'the refusal is logged with reason REVOKED');
});

function keepAliveGet(
  agent: Agent,
  path: string,
  port = running.gateway.port,
): Promise<{ status: number; body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', servername: 'localhost', port, path, agent, headers: { host: 'localhost' } },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, reused: req.reusedSocket }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('gateway-certificate-revoked-after-connecting-refused-on-the-open-connection', async () => {
  const agent = new Agent({
    keepAlive: true,
    maxSockets: 1,
    ca: readFileSync(join(dirs.gw!, 'ca.pem')),
    cert: readFileSync(join(dirs.later!, 'cert.pem')),
    key: readFileSync(join(dirs.later!, 'key.pem')),
  });
  try {
    const first = await keepAliveGet(agent, '/before');
    assert.equal(first.status, 200);
    await fixture.server.authority.revokeCertificate(identities['revoked-later']!.serial, 'superseded', {
      actor: 'test',
    });
    // Within one refresh interval (1 s) plus the CA's CRL regeneration (200 ms check).
    const after = await pollUntil(
      'the open connection to be refused after the revocation',
      async () => {
        const r = await keepAliveGet(agent, '/after');
        assert.ok(r.reused, 'the same connection is reused');
        return r.status === 200 ? undefined : r;
      },
      10_000,
      100,
    );
    assert.equal(after.status, 403, after.body);
    assert.match(after.body, /revoked/);
  } finally {
    agent.destroy();
  }
});

test('gateway-metrics-and-healthz-report-crl-freshness', async () => {
  const get = (path: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
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
  const metrics = await get('/metrics');
  const thisUpdates = [
    ...metrics.body.matchAll(/^gatehouse_gateway_crl_this_update_timestamp_seconds\{issuer="([^"]+)"\} (\S+)$/gm),
  ];
  assert.equal(thisUpdates.length, 2, 'one thisUpdate per CRL (intermediate and root)');
  for (const [, , at] of thisUpdates) {
    const age = Date.now() / 1000 - Number(at);
    assert.ok(age >= -1 && age < 3600, `CRL age ${age}`);
  }
  const nextUpdates = [
    ...metrics.body.matchAll(/^gatehouse_gateway_crl_next_update_timestamp_seconds\{issuer="[^"]+"\} (\S+)$/gm),
  ];
  assert.equal(nextUpdates.length, 2);
  for (const [, at] of nextUpdates) assert.ok(Number(at) > Date.now() / 1000, `nextUpdate ${at} is ahead`);
  const health = await get('/healthz');
  assert.equal(health.status, 200, health.body);
  const parsed = JSON.parse(health.body) as { crls: { stale: boolean; thisUpdate: string }[] };
  assert.equal(parsed.crls.length, 2);
  assert.ok(parsed.crls.every((c) => c.stale === false && c.thisUpdate));
});

test('gateway-open-connection-refused-while-the-crl-is-stale-and-let-back-in-when-fresh', async () => {
  const { startGateway } = await import('../src/gateway/gateway.js');
  const { allowAllPolicy } = await import('../src/policy/index.js');
  // A checker whose verdict the test sets: the gateway's side of the contract, on a real socket.
  let verdict: { ok: true } | { ok: false; reason: 'CRL_STALE'; detail: string } = { ok: true };
  const checker = { generation: 1, check: () => verdict, status: () => [] };
  const config = parseGatewayConfig(
    {
      listen: '127.0.0.1:0',
      tls: { cert: join(dirs.gw!, 'cert.pem'), key: join(dirs.gw!, 'key.pem'), clientCa: writeClientCaBundle(fixture) },
      routes: [{ upstreams: [app.url] }],
    },
    'test',
    fixture.root,
  );
  const gateway = await startGateway(config, {
    policy: allowAllPolicy(),
    logger: createLogger({ level: 'error', write: () => undefined }),
    revocation: checker,
  });
  const agent = new Agent({
    keepAlive: true,
    maxSockets: 1,
    ca: readFileSync(join(dirs.gw!, 'ca.pem')),
    cert: readFileSync(join(dirs.keeper!, 'cert.pem')),
    key: readFileSync(join(dirs.keeper!, 'key.pem')),
  });
  try {
    assert.equal((await keepAliveGet(agent, '/1', gateway.port)).status, 200);
    verdict = { ok: false, reason: 'CRL_STALE', detail: 'the CRL is past its nextUpdate plus grace' };
    checker.generation++;
    const stale = await keepAliveGet(agent, '/2', gateway.port);
    assert.equal(stale.status, 403);
    assert.ok(stale.reused);
    assert.match(stale.body, /past its nextUpdate/);
    verdict = { ok: true };
    checker.generation++;
    const fresh = await keepAliveGet(agent, '/3', gateway.port);
    assert.ok(fresh.reused, 'the same connection');
    assert.equal(fresh.status, 200, 'a fresh CRL lets the still-valid certificate back in');
  } finally {
    agent.destroy();
    await gateway.close();
  }
});
