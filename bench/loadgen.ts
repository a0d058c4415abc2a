/**
 * Parent side of the load generator: each measurement forks a fresh load-child process, so
 * the client never shares an event loop with the CA under test (it still shares the 2 cores).
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stopChild, track } from './procs.js';

/** A client identity of a fleet, with the request bodies it sends (a renewal's CSR must carry its own name). */
export interface FleetIdentity {
  keyPem: string;
  certPem: string;
  bodies: string[];
}

export interface LoadSpec {
  label: string;
  /** https://127.0.0.1:PORT/path, one per server (CA replicas): connection loop i uses urls[i % n]; always POST with a JSON body. */
  urls: string[];
  /** JSON file holding an array of request bodies (strings), used round-robin. */
  bodiesFile: string;
  /** Each body at most once (single-use join tokens); the run is flagged if they run out. */
  useOnce: boolean;
  concurrency: number;
  warmupS: number;
  durationS: number;
  tls: { keyPem: string; certPem: string; caPem: string };
  /** Client identities: connection loop i uses identities[i % n] and its own bodies (default: tls and bodiesFile). */
  identities?: FleetIdentity[];
  /** The server processes (one per URL) whose CPU time (each with its descendants) is read at the window's edges. */
  serverPids: number[];
  /** A database server (the postmaster) whose tree's CPU is read too and reported apart from the servers'. */
  dbPid?: number;
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
  /** All server processes together (every replica). */
  serverCpuUsPerCert: number;
  serverCpuPct: number;
  /** Per server (replica), in spec.serverPids order: its CPU per certificate it issued itself, its CPU %, its own certs/s. */
  replicaCpuUsPerCert: number[];
  replicaCpuPct: number[];
  replicaCertsPerS: number[];
  /** The database server's CPU (postmaster and all its children) per certificate and in %; NaN without dbPid. */
  dbCpuUsPerCert: number;
  dbCpuPct: number;
  /** Kernel (stime) share of the server's CPU, %: syscalls, TLS socket I/O, fsync. */
  serverSysShare: number;
  clientCpuPct: number;
  /** Busy CPU of all other processes (not server, database or client) on the machine during the window (100 = one core). */
  otherCpuPct: number;
  bodiesExhausted: boolean;
}

const CHILD = fileURLToPath(new URL('./load-child.js', import.meta.url));

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const child = track(fork(CHILD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] }));
  const limitMs = (spec.warmupS + spec.durationS + 60) * 1000;
  try {
    return await new Promise<LoadResult>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${spec.label}: load generator did not finish within ${limitMs / 1000} s`)),
        limitMs,
      );
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
