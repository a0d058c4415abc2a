/**
 * `ca serve --workers N` and `gateway --workers N`: N processes share the listening socket (node:cluster) and the store
 * (SQLite in WAL mode serializes their writes). Node signs on one thread, so this is how the CA
 * uses every core. The primary only supervises: it forwards SIGTERM and restarts a worker that
 * dies, unless workers die in a crash loop.
 *
 * The primary binds the shared socket when the first worker listens, and hands a bind failure to
 * every worker. That is not a crash to restart: each worker tells the primary (listenFailedInWorker),
 * the primary stops them all and fails once with that GH_LISTEN_FAILED. A stop is bounded too: a
 * worker still running `stopTimeoutMs` after SIGTERM is killed, with a log line.
 */
import cluster, { type Worker } from 'node:cluster';
import { ERRORS, GatehouseError } from '../errors/errors.js';
import type { Logger } from '../log/logger.js';

export interface SupervisorOptions {
  workers: number;
  logger: Logger;
  /** Log event prefix: `ca` or `gateway`. */
  component?: string;
  signal: AbortSignal;
  /** Called once, when every worker listens, with the port they share. */
  onListening: (port: number) => void;
  /** How long workers may take to stop after SIGTERM before they are killed (default 15 s). */
  stopTimeoutMs?: number;
}

const CRASH_WINDOW_MS = 10_000;
const MAX_CRASHES_IN_WINDOW = 5;
const LISTEN_FAILED_MESSAGE = 'gatehouse:listen-failed';

/** Resolves with the exit code once every worker is gone; rejects with GH_LISTEN_FAILED when the workers could not listen. */
export function superviseWorkers(options: SupervisorOptions): Promise<number> {
  const { logger } = options;
  const component = options.component ?? 'ca';
  return new Promise((resolve, reject) => {
    let stopping = false;
    let listening = 0;
    let announced = false;
    let exitCode = 0;
    // From a worker's message; or only its exit code, when it could not send one (it printed the error itself).
    let listenFailure: string | null = null;
    let listenFailedExit = false;
    let killTimer: NodeJS.Timeout | null = null;
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
    const alive = () => Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && !w.isDead());
    const stopAll = () => {
      stopping = true;
      for (const w of alive()) w.kill('SIGTERM');
      killTimer ??= setTimeout(() => {
        for (const w of alive()) {
          logger.warn(`${component}.worker_killed`, {
            workerPid: w.process.pid,
            afterMs: options.stopTimeoutMs ?? 15_000,
            effect: 'did not stop in time after SIGTERM: SIGKILL',
          });
          w.process.kill('SIGKILL');
        }
      }, options.stopTimeoutMs ?? 15_000);
    };
    // A worker leaves cluster.workers once it has both exited and disconnected, in either order;
    // by then its last IPC message (a listen failure) has arrived.
    const settleWhenAllGone = () => {
      if (!stopping || Object.keys(cluster.workers ?? {}).length > 0) return;
      if (killTimer) clearTimeout(killTimer);
      if (listenFailure || listenFailedExit)
        reject(
          new GatehouseError('GH_LISTEN_FAILED', listenFailure ?? 'the workers could not listen: see the error above'),
        );
      else resolve(exitCode);
    };
    cluster.on('message', (_worker, message: unknown) => {
      const text = (message as { [LISTEN_FAILED_MESSAGE]?: unknown } | null)?.[LISTEN_FAILED_MESSAGE];
      if (typeof text !== 'string' || announced) return;
      listenFailure ??= text;
      if (!stopping) stopAll();
    });
    cluster.on('disconnect', settleWhenAllGone);
    cluster.on('exit', (worker, code, signal) => {
      if (!announced && code === ERRORS.GH_LISTEN_FAILED.exit) {
        listenFailedExit = true;
        if (!stopping) stopAll();
      }
      if (stopping) return settleWhenAllGone();
      const now = Date.now();
      crashes.push(now);
      while (crashes.length && now - crashes[0]! > CRASH_WINDOW_MS) crashes.shift();
      logger.error(`${component}.worker_exited`, {
        workerPid: worker.process.pid,
        code,
        signal,
        restarting: crashes.length < MAX_CRASHES_IN_WINDOW,
      });
      if (crashes.length >= MAX_CRASHES_IN_WINDOW) {
        exitCode = 70;
        stopAll();
        return settleWhenAllGone();
      }
      fork();
    });
    options.signal.addEventListener('abort', () => stopAll(), { once: true });
    if (options.signal.aborted) stopAll();
    for (let i = 0; i < options.workers && !stopping; i++) fork();
    settleWhenAllGone();
  });
}

/**
 * In a worker, hands a GH_LISTEN_FAILED to the primary, which reports it once for all workers;
 * true when it did (the worker then exits quietly with the error's exit code).
 */
export async function listenFailedInWorker(error: GatehouseError): Promise<boolean> {
  if (!cluster.isWorker || error.code !== 'GH_LISTEN_FAILED' || !process.send || !process.connected) return false;
  try {
    await new Promise<void>((resolve, reject) =>
      process.send!({ [LISTEN_FAILED_MESSAGE]: error.message }, undefined, {}, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    return true;
  } catch {
    return false;
  }
}

export const isClusterWorker = (): boolean => cluster.isWorker;
