/**
 * `gatehouse demo`: the live demo the source talks end with, in one process and one state
 * folder: a CA, a header-echo app, the gateway (with its own certificate from the agent), a
 * policy that allowlists one device, two enrolled devices, and agents that keep renewing on a
 * short lifetime so a rotation visibly happens.
 *
 * `--check` runs the same story unattended with curl as the client, forces one rotation of the
 * gateway's certificate, and reports every outcome that differs from what the demo promises.
 */
import { existsSync, rmSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spawn } from 'node:child_process';
import { createServer as createNetServer } from 'node:net';
import YAML from 'yaml';
import type { Logger } from '../log/logger.js';
import { GatehouseError } from '../errors/errors.js';
import { listenOn } from '../errors/listen.js';
import { splitHostPort } from '../config/listen.js';
import { initCa } from '../ca/init.js';
import { CA_FILES, loadCaMaterial } from '../ca/ca-dir.js';
import { startCaServer } from '../ca/server.js';
import { dashboardMount } from '../dashboard/router.js';
import { openSqliteStore } from '../store/sqlite.js';
import { enroll } from '../agent/enroll.js';
import { renewOnce } from '../agent/renew.js';
import { runAgent } from '../agent/renew-scheduler.js';
import { reportPosture } from '../agent/posture-report.js';
import { parseGatewayConfig } from '../gateway/config.js';
import { runGateway, type RunningGateway } from '../gateway/run.js';
import { startDemoApp } from './demo-app.js';

export const ALLOWED_DEVICE = 'x.d.wott.local';
export const UNLISTED_DEVICE = 'y.d.wott.local';
export const DENY_MESSAGE = 'You shall not pass!';
/** The reports rule's posture requirement; the sample system scores below it. */
export const REPORTS_MIN_SCORE = 90;
/** The microservices talk's closing demo: the app's third-party credentials, delivered to its identity. */
export const DEMO_SECRET = {
  name: 'aws-credentials.yml',
  value: '---\nsecret:\n- T0t411yR4ND0M$TR1N9\n',
  grant: 'role:web',
} as const;

export interface DemoOptions {
  stateDir: string;
  caListen: string;
  gatewayListen: string;
  adminListen: string;
  /** Certificate lifetime for devices and the gateway, e.g. `2m`: renewal at about 2/3 of it. */
  lifetime: string;
  logger: Logger;
  /** The CA logs every request at info; the demo keeps it quieter than the rest. */
  caLogger: Logger;
  /** Paths in printed commands are shown relative to this folder. */
  rel(path: string): string;
  out(text: string): void;
  signal: AbortSignal;
}

export interface Outcome {
  scenario: string;
  expected: string;
  actual: string;
  ok: boolean;
}

export interface DemoWorld {
  caUrl: string;
  gatewayUrl: string;
  dirs: { ca: string; gateway: string; allowed: string; unlisted: string };
  gateway: RunningGateway;
  close(): Promise<void>;
}

/**
 * Run before the state folder is emptied: the demo's addresses can be bound. A second `npm start`
 * while one runs then fails here, with GH_LISTEN_FAILED, instead of first wiping the running
 * demo's CA keys and identities. (The servers bind again in startDemo; an address taken in
 * between fails there, with the same error.)
 */
export async function checkDemoAddresses(
  options: Pick<DemoOptions, 'caListen' | 'gatewayListen' | 'adminListen'>,
): Promise<void> {
  const addresses = [
    [options.caListen, "the CA's HTTPS API"],
    [options.gatewayListen, 'the gateway'],
    [options.adminListen, "the gateway's /metrics and /healthz listener"],
  ] as const;
  for (const [listen, what] of addresses) {
    const probe = createNetServer();
    await listenOn(probe, { listen, ...splitHostPort(listen), what });
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  }
}

/** Builds the whole demo from scratch in `stateDir` and starts it. */
export async function startDemo(options: DemoOptions): Promise<DemoWorld> {
  const { stateDir, logger } = options;
  rmSync(stateDir, { recursive: true, force: true });
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const dirs = {
    ca: join(stateDir, 'ca'),
    gateway: join(stateDir, 'gateway'),
    allowed: join(stateDir, ALLOWED_DEVICE),
    unlisted: join(stateDir, UNLISTED_DEVICE),
  };
  const closers: (() => Promise<void> | void)[] = [];
  const close = async () => {
    for (const closer of closers.reverse()) await closer();
  };
  try {
    // 1. The CA, with short lifetimes so that renewals happen while you watch.
    await initCa({
      dir: dirs.ca,
      org: 'Gatehouse Demo',
      trustDomain: 'demo.gatehouse.internal',
      listen: options.caListen,
      actor: 'local:demo',
    });
    shortenLifetimes(join(dirs.ca, CA_FILES.config), options.lifetime);
    const store = openSqliteStore(join(dirs.ca, CA_FILES.database));
    closers.push(() => store.close());
    const ca = await startCaServer({
      material: loadCaMaterial(dirs.ca),
      store,
      logger: options.caLogger,
      listen: options.caListen,
      mounts: [dashboardMount],
    });
    closers.push(() => ca.close());
    const token = async (role: string, name: string) =>
      (await ca.authority.createToken({ role, name, ttlMs: 600_000 }, { actor: 'local:demo' })).token;

    // 2. The app, which trusts the gateway's headers.
    const app = await startDemoApp();
    closers.push(() => app.close());

    // 3. The gateway's own certificate, from the agent like any machine's.
    await enroll({
      caUrl: ca.url,
      token: await token('gateway', 'gateway-1'),
      dir: dirs.gateway,
      name: 'gateway-1',
      dns: ['localhost'],
      ip: ['127.0.0.1'],
    });

    // 4. The gateway with the WoTT demo's policy: only the allowlisted device gets in.
    const bundle = join(stateDir, 'client-ca.pem');
    writeFileSync(
      bundle,
      readFileSync(join(dirs.ca, CA_FILES.rootCert), 'utf8') +
        readFileSync(join(dirs.ca, CA_FILES.intermediateCert), 'utf8'),
    );
    const policyFile = join(stateDir, 'policy.json');
    writeFileSync(
      policyFile,
      `${JSON.stringify(
        {
          version: 1,
          name: 'demo',
          denyMessage: DENY_MESSAGE,
          allowlist: [ALLOWED_DEVICE],
          rules: [
            { id: 'devices', effect: 'allow', methods: ['GET', 'POST'], paths: ['/*'], roles: ['web'] },
            // Issue 15's posture rule: the reports need a well-kept machine.
            {
              id: 'reports',
              effect: 'allow',
              methods: ['GET'],
              paths: ['/reports/*'],
              roles: ['web'],
              posture: { minScore: REPORTS_MIN_SCORE },
            },
          ],
        },
        null,
        2,
      )}\n`,
    );
    const config = parseGatewayConfig(
      {
        listen: options.gatewayListen,
        tls: { cert: join(dirs.gateway, 'cert.pem'), key: join(dirs.gateway, 'key.pem'), clientCa: bundle },
        policy: policyFile,
        routes: [{ upstreams: [app.url] }],
        revocation: { crl: [`${ca.url}/crl`, `${ca.url}/crl/root`], refreshInterval: '5s' },
        // A demo stops in seconds, not the 30 s a production gateway gives requests in flight.
        limits: { drainTimeout: '3s' },
        admin: { listen: options.adminListen },
        posture: { ca: ca.url, refresh: '5s' },
      },
      'demo',
      stateDir,
    );
    const gateway = await runGateway({
      config,
      configFile: null,
      logger: logger.child({ component: 'gateway' }),
      serveAdmin: true,
    });
    closers.push(() => gateway.close());

    // 5. Two devices, one on the allowlist and one not.
    await enroll({ caUrl: ca.url, token: await token('web', ALLOWED_DEVICE), dir: dirs.allowed, name: ALLOWED_DEVICE });
    await enroll({
      caUrl: ca.url,
      token: await token('web', UNLISTED_DEVICE),
      dir: dirs.unlisted,
      name: UNLISTED_DEVICE,
    });
    // The allowlisted device reports the posture of a sample system (this machine's would make the demo differ from one host to the next).
    const sampleSystem = writeSampleSystem(join(stateDir, 'sample-system'));
    await reportPosture({ dir: dirs.allowed, caUrl: ca.url, root: sampleSystem });

    // 6. A secret for the devices' role; each agent keeps it in its secrets folder, the
    // allowlisted one with its identity files beside it, as in the talk's `ls /var/secrets/`.
    await ca.secrets.create(
      { name: DEMO_SECRET.name, value: Buffer.from(DEMO_SECRET.value), grants: [DEMO_SECRET.grant] },
      { actor: 'local:demo' },
    );

    // Agents keep every identity fresh; the gateway reloads its own certificate when it changes.
    const agents = new AbortController();
    options.signal.addEventListener('abort', () => agents.abort(), { once: true });
    const running = [dirs.gateway, dirs.allowed, dirs.unlisted].map((dir) =>
      runAgent({
        dir,
        caUrl: ca.url,
        logger: logger.child({ component: 'agent', dir: options.rel(dir) }),
        signal: agents.signal,
        secrets: { linkIdentity: dir === dirs.allowed },
        posture: dir === dirs.allowed ? { root: sampleSystem } : null,
      }).catch((err: unknown) =>
        logger.error('demo.agent_stopped', { dir: options.rel(dir), reason: (err as Error).message }),
      ),
    );
    closers.push(async () => {
      agents.abort();
      await Promise.all(running);
    });

    return { caUrl: ca.url, gatewayUrl: `https://localhost:${gateway.gateway.port}`, dirs, gateway, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * A well-kept Debian 13 machine without a firewall: every check it can decide passes but
 * `firewall`, which makes a score of 83, short of the reports rule's 90.
 */
function writeSampleSystem(root: string): string {
  const files: Record<string, string> = {
    'etc/os-release':
      'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\n',
    'etc/ssh/sshd_config': 'PermitRootLogin no\nPasswordAuthentication no\n',
    'etc/apt/apt.conf.d/20auto-upgrades':
      'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n',
    'run/systemd/timesync/synchronized': '',
    'var/lib/dpkg/status':
      'Package: unattended-upgrades\nStatus: install ok installed\nVersion: 2.12\nArchitecture: all\n\nPackage: openssl\nStatus: install ok installed\nVersion: 3.5.1-1\nArchitecture: amd64\n',
  };
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

function shortenLifetimes(configPath: string, lifetime: string): void {
  const doc = YAML.parseDocument(readFileSync(configPath, 'utf8'));
  for (const role of ['web', 'gateway', 'admin']) doc.setIn(['roles', role, 'lifetime'], lifetime);
  writeFileSync(configPath, doc.toString(), { mode: 0o600 });
}

/** The copy-paste commands, each with what it answers. */
export function demoCommands(world: DemoWorld, rel: (p: string) => string, cli: string): string {
  const url = world.gatewayUrl;
  const cacert = `--cacert ${rel(join(world.dirs.gateway, 'ca.pem'))}`;
  const as = (dir: string) => `--cert ${rel(join(dir, 'cert.pem'))} --key ${rel(join(dir, 'key.pem'))}`;
  return [
    `Gateway: ${url}  (CA: ${world.caUrl}, metrics: http://${world.gateway.admin ? `127.0.0.1:${world.gateway.admin.port}` : '-'}/metrics)`,
    '',
    '1. No certificate: refused, and told why',
    `   curl ${cacert} ${url}/`,
    '   → 400 client certificate required',
    '',
    `2. A device that is not on the allowlist (${UNLISTED_DEVICE})`,
    `   curl ${cacert} ${as(world.dirs.unlisted)} ${url}/`,
    `   → 403 ${DENY_MESSAGE}`,
    '',
    `3. The allowlisted device (${ALLOWED_DEVICE})`,
    `   curl ${cacert} ${as(world.dirs.allowed)} ${url}/`,
    `   → 200 Welcome ${ALLOWED_DEVICE}. We've been expecting you.  (then the identity headers the app received)`,
    '',
    '4. The allowlisted device forging identity headers',
    `   curl ${cacert} ${as(world.dirs.allowed)} -H 'X-Client-Name: admin' -H 'X-Client-Role: admin' ${url}/`,
    `   → 200, and the app sees X-Client-Name: ${ALLOWED_DEVICE}: the forged values never reach it`,
    '',
    `5. The allowlisted device's secrets, delivered to its identity by its agent (role ${DEMO_SECRET.grant.slice(5)}, mode 0400)`,
    `   ls -l ${rel(join(world.dirs.allowed, 'secrets'))}/`,
    `   cat ${rel(join(world.dirs.allowed, 'secrets', DEMO_SECRET.name))}`,
    `   → ${DEMO_SECRET.value.trim().split('\n').join(' ')}`,
    '',
    `6. The allowlisted device on /reports/, whose rule requires a posture score of ${REPORTS_MIN_SCORE}: its agent reported a sample system with no firewall`,
    `   curl ${cacert} ${as(world.dirs.allowed)} ${url}/reports/q3`,
    `   → 403 … posture score 83 is below ${REPORTS_MIN_SCORE}; failing: firewall`,
    `   ${cli} fleet posture --dir ${rel(world.dirs.ca)}      (also on ${world.caUrl}/dashboard/fleet, with the admin identity: docs/dashboard.md)`,
    '',
    '7. Revoke the allowlisted device and watch it lose access within seconds',
    `   ${cli} cert revoke --ca ${world.caUrl} --identity ${rel(join(world.dirs.ca, 'admin'))} $(${cli} agent whoami --dir ${rel(world.dirs.allowed)} --json | node -pe 'JSON.parse(require("fs").readFileSync(0)).serial')`,
    `   curl ${cacert} ${as(world.dirs.allowed)} ${url}/`,
    '   → 403 client certificate refused (… revoked …)',
    '',
    'Certificates are short-lived here; the agents renew them at about two thirds of their lifetime: watch the agent.cert_renewed and gateway.reloaded log lines.',
  ].join('\n');
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
