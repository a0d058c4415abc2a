/**
 * `ca serve --workers N` and `gateway --workers N`: N processes share the listening socket (node:cluster) and the store
 * (SQLite in WAL mode serializes their writes). Node signs on one thread, so this is how the CA
 * uses every core. The primary only supervises: it forwards SIGTERM and restarts a worker that
 * dies, unless workers die in a crash loop.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '../log/logger.js';

export interface SupervisorOptions {
  workers: number;
  logger: Logger;
  /** Log event prefix: `ca` or `gateway`. */
  component?: string;
  signal: AbortSignal;
  /** Called once, when every worker listens, with the port they share. */
  onListening: (port: number) => void;
}

const CRASH_WINDOW_MS = 10_000;
const MAX_CRASHES_IN_WINDOW = 5;

export function superviseWorkers(options: SupervisorOptions): Promise<number> {
  const { logger } = options;
  return new Promise((resolve) => {
    let stopping = false;
    let listening = 0;
    let announced = false;
    const crashes: number[] = [];
    const fork = (): Worker => {
      const worker = cluster.fork();
      worker.once('listening', (address) => {
        listening++;
        if (!announced && listening >= options.workers) {
          announced = true;
          options.onListening(address.port);
        }
      });
      return worker;
    };
    cluster.on('exit', (worker, code, signal) => {
      if (stopping) {
        if (Object.keys(cluster.workers ?? {}).length === 0) resolve(0);
        return;
      }
      const now = Date.now();
      crashes.push(now);
      while (crashes.length && now - crashes[0]! > CRASH_WINDOW_MS) crashes.shift();
      logger.error(`${options.component ?? 'ca'}.worker_exited`, { pid: worker.process.pid, code, signal, restarting: crashes.length < MAX_CRASHES_IN_WINDOW });
      if (crashes.length >= MAX_CRASHES_IN_WINDOW) {
        stopping = true;
        for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGTERM');
        if (Object.keys(cluster.workers ?? {}).length === 0) resolve(70);
        return;
      }
      fork();
    });
    options.signal.addEventListener('abort', () => {
      stopping = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGTERM');
    }, { once: true });
    for (let i = 0; i < options.workers; i++) fork();
  });
}

export const isClusterWorker = (): boolean => cluster.isWorker;
