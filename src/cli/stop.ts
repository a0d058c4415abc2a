/**
 * How the long-running commands stop: they wait for the command's signal (SIGINT or SIGTERM,
 * turned into an AbortSignal by main.ts), then close what they run within a deadline. What does
 * not close in time is logged and left to the process exit, which main.ts makes explicit.
 */
import cluster from 'node:cluster';
import type { Logger } from '../log/logger.js';

/**
 * Resolves on the stop signal, at once when it came while the command was still starting (an
 * AbortSignal does not replay 'abort' to a late listener); in a cluster worker also when the
 * primary is gone, rather than serving unsupervised.
 */
export function untilStopped(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
    if (cluster.isWorker) process.once('disconnect', () => resolve());
  });
}

/**
 * Waits for `close()` at most `ms`. Past it, logs `event` (warn) and returns: the process exits
 * next, which cuts whatever is still open. `close()` must never be started twice, so a second
 * signal cannot start a second, overlapping cleanup: main.ts ignores it.
 */
export async function closeWithin(
  close: () => Promise<void>,
  ms: number,
  logger: Logger,
  event: string,
): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    const closed = await Promise.race([close().then(() => true as const), deadline]);
    if (!closed)
      logger.warn(event, { afterMs: ms, effect: 'not closed in time: what is still open is cut as the process exits' });
    return closed;
  } finally {
    clearTimeout(timer);
  }
}
