/**
 * Gatehouse as an HTTP target: `ca init` in the temp dir, the CA server in a child process
 * (ca-child.ts), and one client identity enrolled over HTTP with a join token, used for the
 * mutual-TLS /renew runs. One identity renews over and over, which only the CA child's
 * benchmark-only `unsafeRenewWithoutLineage` allows (a real CA takes it for a copied identity).
 */
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initCa } from '../src/ca/init.js';
import { CA_FILES } from '../src/ca/ca-dir.js';
import { buildCsrPem } from '../src/pki/csr-build.js';
import { generatePrivateKey, privateKeyToPem } from '../src/pki/keys.js';
import type { CaChildReply, CaChildRequest } from './ca-child.js';
import type { BenchConfig } from './config.js';
import { IDENTITY_NAME, RESULTS_DIR, postJson } from './fixtures.js';
import { stopChild, track } from './procs.js';

export interface HttpTarget {
  name: string;
  pid: number;
  baseUrl: string;
  /** The client side of mutual TLS: key, certificate chain, and the root that signed the server. */
  tls: { keyPem: string; certPem: string; caPem: string };
  logFile: string;
  stop(): Promise<void>;
}

export interface GatehouseTarget extends HttpTarget {
  createTokens(count: number): Promise<{ tokens: string[]; ms: number }>;
}

const CHILD = fileURLToPath(new URL('./ca-child.js', import.meta.url));
export const PROFILE_DIR = join(RESULTS_DIR, 'profiles');
const ROLE = 'web';

function logTail(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-15).join('\n') : '(no log)';
}

/** The next reply of `type` from the CA child; its errors and an early exit reject. */
function nextReply<T extends CaChildReply['type']>(child: ChildProcess, type: T, timeoutMs: number, logFile: string): Promise<Extract<CaChildReply, { type: T }>> {
  return new Promise((resolve, reject) => {
    const done = (fn: () => void) => { clearTimeout(timer); child.off('message', onMessage); child.off('exit', onExit); fn(); };
    const onMessage = (msg: CaChildReply) => {
      if (msg.type === type) done(() => resolve(msg as Extract<CaChildReply, { type: T }>));
      else if (msg.type === 'error') done(() => reject(new Error(`Gatehouse CA child: ${msg.message}`)));
    };
    const onExit = (code: number | null) => done(() => reject(new Error(`Gatehouse CA child exited (code ${code}); log tail:\n${logTail(logFile)}`)));
    const timer = setTimeout(() => done(() => reject(new Error(`Gatehouse CA child: no "${type}" within ${timeoutMs / 1000} s`))), timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

export async function startGatehouse(tmp: string, config: BenchConfig): Promise<GatehouseTarget> {
  const caDir = join(tmp, 'gatehouse-ca');
  await initCa({ dir: caDir, org: 'Bench Org', trustDomain: 'bench.internal' });
  // The load comes from one address and one identity: measure issuance, not the rate limits.
  appendFileSync(join(caDir, CA_FILES.config), 'limits:\n  enroll: { perSource: null, perToken: null }\n  renew: { perSource: null, perCertificate: null }\n');
  const logFile = join(tmp, 'gatehouse-ca.log');
  const fd = openSync(logFile, 'a');
  if (config.cpuProfile) mkdirSync(PROFILE_DIR, { recursive: true });
  const child = track(fork(CHILD, [caDir], {
    stdio: ['ignore', fd, fd, 'ipc'],
    env: { ...process.env, GATEHOUSE_LOG_LEVEL: config.caLogLevel },
    execArgv: config.cpuProfile ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [],
  }));
  closeSync(fd);
  const ready = await nextReply(child, 'ready', 60_000, logFile);

  const createTokens = async (count: number) => {
    const reply = nextReply(child, 'tokens', 600_000, logFile);
    child.send({ type: 'tokens', count, role: ROLE, name: IDENTITY_NAME } satisfies CaChildRequest);
    const { tokens, ms } = await reply;
    return { tokens, ms };
  };

  // The client identity, enrolled through the public API as an agent would.
  const [token] = (await createTokens(1)).tokens;
  const key = generatePrivateKey('p256');
  const answer = await postJson(`${ready.url}/enroll`, { token, csr: await buildCsrPem(key, { commonName: IDENTITY_NAME }) }, { caPem: ready.rootPem });
  if (answer.status !== 201) throw new Error(`Gatehouse /enroll for the bench identity answered ${answer.status}: ${answer.text}`);
  const tls = { keyPem: privateKeyToPem(key), certPem: (JSON.parse(answer.text) as { chain: string }).chain, caPem: ready.rootPem };

  return {
    name: 'gatehouse', pid: ready.pid, baseUrl: ready.url, tls, logFile, createTokens,
    stop: () => stopChild(child, { message: { type: 'stop' } satisfies CaChildRequest }, 10_000),
  };
}
