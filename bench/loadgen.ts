/**
 * Parent side of the load generator: each measurement forks a fresh load-child process, so
 * the client never shares an event loop with the CA under test (it still shares the 2 cores).
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stopChild, track } from './procs.js';

export interface LoadSpec {
  label: string;
  /** https://127.0.0.1:PORT/path; always POST with a JSON body. */
  url: string;
  /** JSON file holding an array of request bodies (strings), used round-robin. */
  bodiesFile: string;
  /** Each body at most once (single-use join tokens); the run is flagged if they run out. */
  useOnce: boolean;
  concurrency: number;
  warmupS: number;
  durationS: number;
  tls: { keyPem: string; certPem: string; caPem: string };
  /** The server process whose CPU time is read at the window's edges. */
  serverPid: number;
  clkTck: number;
}

export interface LoadResult {
  ok: number;
  errors: number;
  statuses: Record<string, number>;
  errorKinds: Record<string, number>;
  firstError: string | null;
  windowS: number;
  certsPerS: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  serverCpuUsPerCert: number;
  serverCpuPct: number;
  /** Kernel (stime) share of the server's CPU, %: syscalls, TLS socket I/O, fsync. */
  serverSysShare: number;
  clientCpuPct: number;
  /** Busy CPU of all other processes on the machine during the window (100 = one core). */
  otherCpuPct: number;
  bodiesExhausted: boolean;
}

const CHILD = fileURLToPath(new URL('./load-child.js', import.meta.url));

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const child = track(fork(CHILD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] }));
  const limitMs = (spec.warmupS + spec.durationS + 60) * 1000;
  try {
    return await new Promise<LoadResult>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${spec.label}: load generator did not finish within ${limitMs / 1000} s`)), limitMs);
      child.once('message', (msg: { result?: LoadResult; error?: string }) => {
        clearTimeout(timer);
        if (msg.result) resolve(msg.result);
        else reject(new Error(`${spec.label}: load generator failed: ${msg.error}`));
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${spec.label}: load generator exited early (code ${code}, signal ${signal})`));
      });
      child.send(spec);
    });
  } finally {
    await stopChild(child, { signal: 'SIGTERM' }, 2000);
  }
}
