/**
 * `gatehouse demo`: the live demo the source talks end with, in one process and one state
 * folder: a CA, a header-echo app, the gateway (with its own certificate from the agent), a
 * policy that allowlists one device, two enrolled devices, and agents that keep renewing on a
 * short lifetime so a rotation visibly happens.
 *
 * Here: what the demo is made of (its devices, policy message, secret) and its start, step by
 * step. What it prints for a person to try is demo-commands.ts; `--check`, the same story run
 * unattended with curl as the client, is demo-check.ts.
 */
import { rmSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createServer as createNetServer } from 'node:net';
import YAML from 'yaml';
import type { Logger } from '../log/logger.js';
import { listenOn } from '../errors/listen.js';
import { splitHostPort } from '../config/listen.js';
import { initCa } from '../ca/init.js';
import { CA_FILES, loadCaMaterial } from '../ca/ca-dir.js';
import { startCaServer } from '../ca/server.js';
import { dashboardMount } from '../dashboard/router.js';
import { openSqliteStore } from '../store/sqlite.js';
import { enroll } from '../agent/enroll.js';
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
