/**
 * Gatehouse as an HTTP target: `ca init` in the temp dir, the CA server in a child process
 * (ca-child.ts), and a fleet of client identities (BENCH_FLEET) enrolled over HTTP with join
 * tokens, used for the mutual-TLS /renew runs. Each renews the same certificate over and over,
 * which only the CA child's benchmark-only `unsafeRenewWithoutLineage` allows (a real CA takes
 * that for a copied identity).
 */
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initCa } from '../src/ca/init.js';
import { CA_FILES } from '../src/ca/ca-dir.js';
import { buildCsrPem } from '../src/pki/csr-build.js';
import { generatePrivateKey, privateKeyToPem } from '../src/pki/keys.js';
import type { CaChildReply, CaChildRequest } from './ca-child.js';
import type { BenchConfig } from './config.js';
import type { FleetIdentity } from './loadgen.js';
import { IDENTITY_NAME, RESULTS_DIR, postJson } from './fixtures.js';
import { stopChild, track } from './procs.js';

export interface HttpTarget {
  name: string;
  pid: number;
  baseUrl: string;
  /** The client side of mutual TLS: key, certificate chain, and the root that signed the server. */
  tls: { keyPem: string; certPem: string; caPem: string };
  /** A fleet of client identities (tls's first), each with its /renew bodies: the load spreads its connections over them. */
  identities?: FleetIdentity[];
  logFile: string;
  stop(): Promise<void>;
  /** Several servers behind one target (CA replicas on one database); the first is pid/baseUrl. The load spreads its connections over them. */
  replicas?: { baseUrl: string; pid: number }[];
  /** A database server (the postmaster) whose CPU is reported apart from the target's. */
  dbPid?: number;
}

export interface GatehouseOptions {
  /** Target name in the report (default gatehouse). */
  name?: string;
  /** postgres:// URL for `ca init --store`; none: the SQLite file in the CA dir. */
  storeUrl?: string;
  /** CA processes, each on its own copy of the CA dir (default 1); more than one needs a shared (PostgreSQL) store. */
  replicas?: number;
  dbPid?: number;
}

export interface GatehouseTarget extends HttpTarget {
  createTokens(count: number, identity?: string): Promise<{ tokens: string[]; ms: number }>;
}

const CHILD = fileURLToPath(new URL('./ca-child.js', import.meta.url));
export const PROFILE_DIR = join(RESULTS_DIR, 'profiles');
const ROLE = 'web';
const RENEW_CSRS_PER_IDENTITY = 4;

function logTail(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-15).join('\n') : '(no log)';
}

/** The next reply of `type` from the CA child; its errors and an early exit reject. */
function nextReply<T extends CaChildReply['type']>(
  child: ChildProcess,
  type: T,
  timeoutMs: number,
  logFile: string,
): Promise<Extract<CaChildReply, { type: T }>> {
  return new Promise((resolve, reject) => {
    const done = (fn: () => void) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      fn();
    };
    const onMessage = (msg: CaChildReply) => {
      if (msg.type === type) done(() => resolve(msg as Extract<CaChildReply, { type: T }>));
      else if (msg.type === 'error') done(() => reject(new Error(`Gatehouse CA child: ${msg.message}`)));
    };
    const onExit = (code: number | null) =>
      done(() => reject(new Error(`Gatehouse CA child exited (code ${code}); log tail:\n${logTail(logFile)}`)));
    const timer = setTimeout(
      () => done(() => reject(new Error(`Gatehouse CA child: no "${type}" within ${timeoutMs / 1000} s`))),
      timeoutMs,
    );
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

function forkCa(caDir: string, logFile: string, config: BenchConfig): ChildProcess {
  const fd = openSync(logFile, 'a');
  if (config.cpuProfile) mkdirSync(PROFILE_DIR, { recursive: true });
  const child = track(
    fork(CHILD, [caDir], {
      stdio: ['ignore', fd, fd, 'ipc'],
      env: { ...process.env, GATEHOUSE_LOG_LEVEL: config.caLogLevel },
      execArgv: config.cpuProfile ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [],
    }),
  );
  closeSync(fd);
  return child;
}

export async function startGatehouse(
  tmp: string,
  config: BenchConfig,
  options: GatehouseOptions = {},
): Promise<GatehouseTarget> {
  const name = options.name ?? 'gatehouse';
  const replicas = options.replicas ?? 1;
  const caDir = join(tmp, `${name}-ca`);
  await initCa({
    dir: caDir,
    org: 'Bench Org',
    trustDomain: 'bench.internal',
    ...(options.storeUrl ? { storeUrl: options.storeUrl } : {}),
  });
  // The load comes from one address and a few identities: measure issuance, not the rate limits.
  appendFileSync(
    join(caDir, CA_FILES.config),
    'limits:\n  enroll: { perSource: null, perToken: null }\n  renew: { perSource: null, perCertificate: null }\n',
  );
  // Replicas as an operator makes them: copies of the CA directory (keys, gatehouse.yaml naming the shared database).
  const dirs = [caDir];
  for (let i = 2; i <= replicas; i++) {
    const copy = `${caDir}-r${i}`;
    const cp = spawnSync('cp', ['-a', caDir, copy], { encoding: 'utf8' });
    if (cp.status !== 0) throw new Error(`cp -a ${caDir} ${copy}: ${cp.stderr}`);
    dirs.push(copy);
  }
  const logFiles = dirs.map((_, i) => join(tmp, `${name}-ca${i ? `-r${i + 1}` : ''}.log`));
  const children = dirs.map((dir, i) => forkCa(dir, logFiles[i]!, config));
  const readies = await Promise.all(children.map((child, i) => nextReply(child, 'ready', 60_000, logFiles[i]!)));
  const child = children[0]!;
  const logFile = logFiles[0]!;
  const ready = readies[0]!;

  const createTokens = async (count: number, identity = IDENTITY_NAME) => {
    const reply = nextReply(child, 'tokens', 600_000, logFile);
    child.send({ type: 'tokens', count, role: ROLE, name: identity } satisfies CaChildRequest);
    const { tokens, ms } = await reply;
    return { tokens, ms };
  };

  // The client identities, enrolled through the public API as agents would (replicas share them
  // through the store): a fleet, so that /renew measures devices renewing side by side rather
  // than one name whose renewals must take turns on its reservation.
  const enrollOne = async (identity: string) => {
    const [token] = (await createTokens(1, identity)).tokens;
    const key = generatePrivateKey('p256');
    const answer = await postJson(
      `${ready.url}/enroll`,
      { token, csr: await buildCsrPem(key, { commonName: identity }) },
      { caPem: ready.rootPem },
    );
    if (answer.status !== 201)
      throw new Error(`Gatehouse /enroll for the bench identity ${identity} answered ${answer.status}: ${answer.text}`);
    // A renewal's CSR must carry the identity's own name: a few per identity, each a fresh key.
    const bodies = await Promise.all(
      Array.from({ length: RENEW_CSRS_PER_IDENTITY }, async () =>
        JSON.stringify({ csr: await buildCsrPem(generatePrivateKey('p256'), { commonName: identity }) }),
      ),
    );
    return { keyPem: privateKeyToPem(key), certPem: (JSON.parse(answer.text) as { chain: string }).chain, bodies };
  };
  const identities = [await enrollOne(IDENTITY_NAME)];
  for (let i = 2; i <= config.fleetSize; i++) identities.push(await enrollOne(`${IDENTITY_NAME}-${i}`));
  const tls = { keyPem: identities[0]!.keyPem, certPem: identities[0]!.certPem, caPem: ready.rootPem };

  return {
    name,
    pid: ready.pid,
    baseUrl: ready.url,
    tls,
    identities,
    logFile,
    createTokens,
    ...(replicas > 1 ? { replicas: readies.map((r) => ({ baseUrl: r.url, pid: r.pid })) } : {}),
    ...(options.dbPid !== undefined ? { dbPid: options.dbPid } : {}),
    stop: async () => {
      await Promise.all(
        children.map((c) => stopChild(c, { message: { type: 'stop' } satisfies CaChildRequest }, 10_000)),
      );
    },
  };
}
