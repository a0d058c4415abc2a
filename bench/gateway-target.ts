/**
 * The Gatehouse gateway under test, started exactly as an operator would:
 * `node dist/src/cli/main.js gateway --listen … --cert … --key … --client-ca … --upstream … --policy …`
 * with its JSON log (one line per request at info) on stderr, pointed at a file.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GatewayPki } from './gateway-pki.js';
import { CLIENT_ROLE } from './gateway-pki.js';
import { freePort, waitForPort } from './ports.js';
import { stopChild, track } from './procs.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

/** The policy both proxies enforce: role web may GET any path (the talk's format). */
export const BENCH_POLICY = [{ permission: { method: 'GET', resource: '/.*' }, allow: [CLIENT_ROLE] }];

export interface GatewayProcess {
  pid: number;
  port: number;
  command: string;
  /** The gateway's stderr: its JSON log, one line per request when logLevel is info. */
  logFile: string;
  logLevel: string;
  workersFlag: boolean;
  stop(): Promise<void>;
}

/** Whether this build's `gateway --help` offers --workers. */
export function gatewayHasWorkersFlag(): boolean {
  const out = spawnSync(process.execPath, [CLI, 'gateway', '--help'], { encoding: 'utf8' });
  if (out.status !== 0)
    throw new Error(`gatehouse gateway --help failed (run \`npm run build\` first?):\n${out.stderr}`);
  return /--workers\b/.test(out.stdout + out.stderr);
}

export async function startGatewayProcess(
  dir: string,
  options: { upstreamPort: number; pki: GatewayPki; workers: number; accessLog: boolean; profileDir: string | null },
): Promise<GatewayProcess> {
  const { pki, workers } = options;
  const workersFlag = gatewayHasWorkersFlag();
  if (workers > 1 && !workersFlag) {
    throw new Error(
      `BENCH_GW_WORKERS=${workers}, but this gateway's --help has no --workers: it would run 1 process against ${workers} nginx workers. Use BENCH_GW_WORKERS=1.`,
    );
  }
  const port = await freePort();
  const policyFile = join(dir, 'policy.json');
  writeFileSync(policyFile, JSON.stringify(BENCH_POLICY, null, 2));
  const args = [
    CLI,
    'gateway',
    '--listen',
    `127.0.0.1:${port}`,
    '--cert',
    pki.serverCert,
    '--key',
    pki.serverKey,
    '--client-ca',
    pki.clientCaBundle,
    '--upstream',
    `http://127.0.0.1:${options.upstreamPort}`,
    '--policy',
    policyFile,
    ...(workersFlag ? ['--workers', String(workers)] : []),
  ];
  const execArgv: string[] = [];
  if (options.profileDir) {
    mkdirSync(options.profileDir, { recursive: true });
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${options.profileDir}`);
  }
  const logLevel = options.accessLog ? 'info' : 'warn';
  const logFile = join(dir, 'gateway.log');
  const fd = openSync(logFile, 'a');
  const child = track(
    spawn(process.execPath, [...execArgv, ...args], {
      stdio: ['ignore', fd, fd],
      env: { ...process.env, GATEHOUSE_LOG_LEVEL: logLevel },
    }),
  );
  closeSync(fd);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  try {
    await waitForPort(port, 30_000, () => exited, 'gatehouse gateway');
  } catch (err) {
    throw new Error(
      `${(err as Error).message}; log:\n${existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-3000) : '(none)'}`,
      { cause: err },
    );
  }
  return {
    pid: child.pid!,
    port,
    logFile,
    logLevel,
    workersFlag,
    command: `GATEHOUSE_LOG_LEVEL=${logLevel} node ${execArgv.length ? `${execArgv.join(' ')} ` : ''}${args
      .map((a) => a.replace(dir, '$TMP'))
      .join(' ')
      .replace(CLI, 'dist/src/cli/main.js')}`,
    // SIGTERM: the CLI drains and exits normally, which also writes the --cpu-prof profile.
    stop: () => stopChild(child, { signal: 'SIGTERM' }, 15_000),
  };
}
