/**
 * `gatehouse demo --check`: the story run unattended against a started demo, with curl as an
 * independent client; it forces one rotation of the gateway's certificate and reports every
 * outcome that differs from what the walkthrough (demo-commands.ts) promises.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { GatehouseError } from '../errors/errors.js';
import { renewOnce } from '../agent/renew.js';
import {
  ALLOWED_DEVICE,
  DEMO_SECRET,
  DENY_MESSAGE,
  REPORTS_MIN_SCORE,
  UNLISTED_DEVICE,
  type DemoWorld,
} from './demo.js';

export interface Outcome {
  scenario: string;
  expected: string;
  actual: string;
  ok: boolean;
}

interface CurlResult {
  status: number;
  body: string;
}

function curl(args: string[]): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sS', '--max-time', '10', '-w', '\n%{http_code}', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', (e) =>
      reject(
        new GatehouseError(
          'GH_DEMO_CHECK_FAILED',
          `--check runs curl as the client, and it cannot be started (${e.message}): apt-get install -y curl`,
        ),
      ),
    );
    child.on('close', (code) => {
      if (code !== 0) return resolve({ status: 0, body: `curl exit ${code}: ${err.trim()}` });
      const cut = out.lastIndexOf('\n');
      resolve({ status: Number(out.slice(cut + 1)), body: out.slice(0, cut) });
    });
  });
}

/** The demo's promises, checked with curl as an independent client. */
export async function checkDemo(world: DemoWorld): Promise<Outcome[]> {
  const url = `${world.gatewayUrl}/`;
  const cacert = ['--cacert', join(world.dirs.gateway, 'ca.pem')];
  const as = (dir: string) => ['--cert', join(dir, 'cert.pem'), '--key', join(dir, 'key.pem')];
  const outcomes: Outcome[] = [];
  const expect = (scenario: string, expected: string, r: CurlResult, ok: boolean) =>
    outcomes.push({ scenario, expected, actual: `${r.status} ${r.body.split('\n')[0]!.slice(0, 120)}`, ok });

  const none = await curl([...cacert, url]);
  expect(
    'no certificate',
    '400 client certificate required',
    none,
    none.status === 400 && /client certificate required/.test(none.body),
  );
  const unlisted = await curl([...cacert, ...as(world.dirs.unlisted), url]);
  expect(
    `unlisted device ${UNLISTED_DEVICE}`,
    `403 ${DENY_MESSAGE}`,
    unlisted,
    unlisted.status === 403 && unlisted.body.trim() === DENY_MESSAGE,
  );
  const welcome = `Welcome ${ALLOWED_DEVICE}. We've been expecting you.`;
  const allowed = await curl([...cacert, ...as(world.dirs.allowed), url]);
  expect(
    `allowlisted device ${ALLOWED_DEVICE}`,
    `200 ${welcome}`,
    allowed,
    allowed.status === 200 && allowed.body.startsWith(welcome),
  );
  const forged = await curl([
    ...cacert,
    ...as(world.dirs.allowed),
    '-H',
    'X-Client-Name: admin',
    '-H',
    'X-Client-Role: admin',
    '-H',
    'x_client_spiffe_id: spiffe://evil/admin',
    url,
  ]);
  const leaked = /admin|spiffe:\/\/evil/i.test(
    forged.body
      .split('\n')
      .filter((l) => /x[-_]client/i.test(l))
      .join('\n'),
  );
  expect(
    'forged identity headers',
    `200, the app sees only ${ALLOWED_DEVICE}`,
    forged,
    forged.status === 200 && forged.body.startsWith(welcome) && !leaked,
  );

  const weak = await curl([...cacert, ...as(world.dirs.allowed), `${url}reports/q3`]);
  expect(
    `posture rule refuses ${ALLOWED_DEVICE} on /reports/`,
    `403 naming the failing check (score below ${REPORTS_MIN_SCORE}, failing: firewall)`,
    weak,
    weak.status === 403 &&
      new RegExp(`posture score \\d+ is below ${REPORTS_MIN_SCORE}; failing: firewall$`).test(weak.body.trim()),
  );

  // The secret the allowlisted device's agent fetched over mutual TLS; none for the gateway's role.
  const secretFile = join(world.dirs.allowed, 'secrets', DEMO_SECRET.name);
  const secretDeadline = Date.now() + 15_000;
  while (!existsSync(secretFile) && Date.now() < secretDeadline) await new Promise((r) => setTimeout(r, 100));
  const delivered = existsSync(secretFile) ? readFileSync(secretFile, 'utf8') : null;
  const secretMode = delivered === null ? null : statSync(secretFile).mode & 0o777;
  const linked = existsSync(join(world.dirs.allowed, 'secrets', 'cert.pem'));
  const gatewayHasIt = existsSync(join(world.dirs.gateway, 'secrets', DEMO_SECRET.name));
  outcomes.push({
    scenario: `secret ${DEMO_SECRET.name} delivered to ${ALLOWED_DEVICE}`,
    expected: 'the exact value, mode 0400, identity files linked beside it; nothing for the gateway',
    actual:
      delivered === null
        ? 'no file within 15 s'
        : `${delivered === DEMO_SECRET.value ? 'exact value' : 'a different value'}, mode ${secretMode!.toString(8)}, ${linked ? 'identity linked' : 'no identity links'}, gateway ${gatewayHasIt ? 'has it too' : 'has none'}`,
    ok: delivered === DEMO_SECRET.value && secretMode === 0o400 && linked && !gatewayHasIt,
  });

  // A rotation of the gateway's own certificate, as its agent will do on schedule.
  const before = world.gateway.gateway.serverCertificate().serial;
  const { current } = await renewOnce({ dir: world.dirs.gateway, caUrl: world.caUrl });
  const deadline = Date.now() + 10_000;
  while (world.gateway.gateway.serverCertificate().serial !== current.serial && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  const served = world.gateway.gateway.serverCertificate().serial;
  const afterRotation = await curl([...cacert, ...as(world.dirs.allowed), url]);
  outcomes.push({
    scenario: 'gateway certificate rotated by the agent',
    expected: 'new certificate served, device still welcome',
    actual: `serial ${before.slice(0, 8)}… → ${served.slice(0, 8)}…, ${afterRotation.status}`,
    ok:
      served === current.serial &&
      served !== before &&
      afterRotation.status === 200 &&
      afterRotation.body.startsWith(welcome),
  });
  return outcomes;
}

export function formatOutcomes(outcomes: readonly Outcome[]): string {
  return outcomes
    .map((o) => `${o.ok ? 'ok  ' : 'FAIL'}  ${o.scenario}\n      expected: ${o.expected}\n      got:      ${o.actual}`)
    .join('\n');
}
