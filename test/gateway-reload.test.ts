/**
 * Hot reload without dropping requests: the gateway's own certificate renewed by the agent
 * while a load runs, a broken certificate, policy or config file keeping the last good state,
 * and routes changed by editing the config file.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { connect } from 'node:tls';
import { Agent, request } from 'node:https';
import { renewOnce } from '../src/agent/renew.js';
import { loadGatewayConfig } from '../src/gateway/config.js';
import { runGateway, type RunningGateway } from '../src/gateway/run.js';
import { createLogger } from '../src/log/logger.js';
import { enrollAgent, startCaFixture, writeClientCaBundle, type CaFixture } from './helpers/ca-fixture.js';
import { startEchoUpstream, type EchoUpstream } from './helpers/echo-upstream.js';
import { pollUntil, waitFor } from './helpers/poll.js';

let fixture: CaFixture;
let appA: EchoUpstream;
let appB: EchoUpstream;
let running: RunningGateway;
let configFile = '';
let policyFile = '';
const logLines: string[] = [];
const dirs: Record<string, string> = {};

const enrollAs = async (role: string, name: string, extra: { dns?: string[]; ip?: string[] } = {}): Promise<string> =>
  (await enrollAgent(fixture, role, name, extra)).dir;

/** Replace a file the way agents and editors do: write aside, then rename over. */
function replaceFile(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

const logs = () => logLines.map((l) => JSON.parse(l) as Record<string, unknown>);

async function waitForLog(
  match: (l: Record<string, unknown>) => boolean,
  after = 0,
  timeoutMs = 8000,
): Promise<Record<string, unknown>> {
  return pollUntil(`a log line matching ${match}`, () => logs().slice(after).find(match), timeoutMs);
}

const ALLOW_WEB = JSON.stringify([{ permission: { method: 'GET', resource: '/.*' }, allow: ['web'] }]);
const ALLOW_NOBODY = JSON.stringify([{ permission: { method: 'GET', resource: '/.*' }, allow: ['nobody'] }]);

function configYaml(upstream: string): string {
  return `listen: 127.0.0.1:0\ntls: { cert: ${join(dirs.gw!, 'cert.pem')}, key: ${join(dirs.gw!, 'key.pem')}, clientCa: ${join(fixture.root, 'client-ca.pem')} }\npolicy: policy.json\nroutes:\n  - upstreams: [${upstream}]\n`;
}

before(async () => {
  fixture = await startCaFixture();
  appA = await startEchoUpstream({ name: 'A' });
  appB = await startEchoUpstream({ name: 'B' });
  dirs.gw = await enrollAs('gateway', 'gw-1', { dns: ['localhost'] });
  dirs.device = await enrollAs('web', 'device-1');
  writeClientCaBundle(fixture);
  policyFile = join(fixture.root, 'policy.json');
  writeFileSync(policyFile, ALLOW_WEB);
  configFile = join(fixture.root, 'gateway.yaml');
  writeFileSync(configFile, configYaml(appA.url));
  running = await runGateway({
    config: loadGatewayConfig(configFile, {}),
    configFile,
    logger: createLogger({ level: 'debug', write: (l) => void logLines.push(l) }),
    serveAdmin: false,
  });
});

after(async () => {
  await running?.close();
  await Promise.all([appA?.close(), appB?.close()]);
  await fixture?.close();
});

const clientTls = () => ({
  ca: readFileSync(join(dirs.gw!, 'ca.pem')),
  cert: readFileSync(join(dirs.device!, 'cert.pem')),
  key: readFileSync(join(dirs.device!, 'key.pem')),
});

function get(agent: Agent | false, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        servername: 'localhost',
        port: running.gateway.port,
        path,
        agent,
        headers: { host: 'localhost' },
        ...(agent ? {} : clientTls()),
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The serial of the certificate a fresh handshake presents. */
function servedSerial(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: '127.0.0.1', port: running.gateway.port, servername: 'localhost', ...clientTls() },
      () => {
        const serial = socket.getPeerX509Certificate()!.serialNumber.toLowerCase().replace(/^0+/, '');
        socket.end();
        resolve(serial);
      },
    );
    socket.on('error', reject);
  });
}

test('gateway-own-certificate-renewed-under-load-not-one-request-fails', async () => {
  const before = await servedSerial();
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 4, ...clientTls() });
  let stop = false;
  const results = { ok: 0, failed: [] as string[] };
  // Four keep-alive loops and two loops with a new connection (full handshake) per request.
  const loop = async (agent: Agent | false) => {
    while (!stop) {
      try {
        const r = await get(agent, '/load');
        if (r.status === 200) results.ok++;
        else results.failed.push(`HTTP ${r.status} ${r.body.slice(0, 100)}`);
      } catch (err) {
        results.failed.push((err as Error).message);
      }
    }
  };
  const loops = [keepAlive, keepAlive, keepAlive, keepAlive, false as const, false as const].map(loop);
  // Load before the renewal, and load after the reload: requests on both sides of the switch.
  await waitFor(() => results.ok + results.failed.length >= 10, 10_000, 'ten requests before the renewal');
  const mark = logLines.length;
  const { current } = await renewOnce({ dir: dirs.gw! });
  await waitForLog((l) => l.msg === 'gateway.reloaded' && l.what === 'tls', mark);
  const reloadedAt = results.ok + results.failed.length;
  await waitFor(
    () => results.ok + results.failed.length >= reloadedAt + 20,
    10_000,
    'twenty requests after the reload',
  );
  stop = true;
  await Promise.all(loops);
  keepAlive.destroy();
  assert.deepEqual(
    results.failed,
    [],
    `${results.failed.length} of ${results.ok + results.failed.length} requests failed`,
  );
  assert.ok(results.ok > 20, `${results.ok} requests ran during the renewal`);
  const after = await servedSerial();
  assert.notEqual(after, before);
  assert.equal(after, current.serial, 'new handshakes get the renewed certificate');
});

test('gateway-broken-certificate-file-keeps-the-last-good-one', async () => {
  const certPath = join(dirs.gw!, 'cert.pem');
  const good = readFileSync(certPath, 'utf8');
  const serial = await servedSerial();
  const mark = logLines.length;
  replaceFile(certPath, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
  const failure = await waitForLog((l) => l.msg === 'gateway.reload_failed' && l.what === 'tls', mark);
  assert.match(String(failure.reason), /cert\.pem/);
  assert.equal(await servedSerial(), serial, 'the previous certificate is still served');
  assert.equal((await get(false, '/still-up')).status, 200);
  const mark2 = logLines.length;
  running.reload(); // SIGHUP with the file still broken: same outcome, nothing torn down.
  await waitForLog((l) => l.msg === 'gateway.reload_failed' && l.what === 'tls', mark2);
  replaceFile(certPath, good);
  await waitForLog((l) => l.msg === 'gateway.reloaded' && l.what === 'tls', mark2);
});

test('gateway-policy-file-change-applies-and-broken-policy-keeps-the-old', async () => {
  assert.equal((await get(false, '/p')).status, 200);
  let mark = logLines.length;
  replaceFile(policyFile, ALLOW_NOBODY);
  await waitForLog((l) => l.msg === 'gateway.reloaded' && l.what === 'policy', mark);
  assert.equal((await get(false, '/p')).status, 403, 'the new policy is in force');
  mark = logLines.length;
  replaceFile(policyFile, '[{"permission": {"method": "GET"}, "allow": ');
  const failure = await waitForLog((l) => l.msg === 'gateway.reload_failed' && l.what === 'policy', mark);
  assert.match(String(failure.reason), /policy\.json/);
  assert.equal((await get(false, '/p')).status, 403, 'the last good policy stays in force');
  mark = logLines.length;
  replaceFile(policyFile, ALLOW_WEB);
  await waitForLog((l) => l.msg === 'gateway.reloaded' && l.what === 'policy', mark);
  assert.equal((await get(false, '/p')).status, 200);
});

test('gateway-routes-reloaded-from-config-file-and-broken-config-keeps-the-old', async () => {
  assert.equal((JSON.parse((await get(false, '/r')).body) as { upstream: string }).upstream, 'A');
  let mark = logLines.length;
  replaceFile(configFile, configYaml(appB.url));
  await waitForLog((l) => l.msg === 'gateway.reloaded' && l.what === 'routes', mark);
  assert.equal((JSON.parse((await get(false, '/r')).body) as { upstream: string }).upstream, 'B');
  mark = logLines.length;
  replaceFile(configFile, `${configYaml(appA.url)}routse: []\n`);
  const failure = await waitForLog((l) => l.msg === 'gateway.reload_failed' && l.what === 'routes', mark);
  assert.match(String(failure.reason), /unknown key "routse"/);
  assert.equal(
    (JSON.parse((await get(false, '/r')).body) as { upstream: string }).upstream,
    'B',
    'the last good routes stay',
  );
  mark = logLines.length;
  replaceFile(configFile, configYaml(appA.url).replace('listen: 127.0.0.1:0', 'listen: 127.0.0.1:1'));
  const warning = await waitForLog((l) => l.msg === 'gateway.restart_needed', mark);
  assert.deepEqual(warning.keys, ['listen']);
  assert.equal((JSON.parse((await get(false, '/r')).body) as { upstream: string }).upstream, 'A', 'routes still apply');
});
