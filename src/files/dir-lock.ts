/**
 * An exclusive lock as a file created with O_EXCL: for operations on a CA directory that two
 * processes (a CLI and a running CA's admin API, or two admins) must not interleave. The file
 * names its holder; one left by a process on this host that is gone (a crash) is taken over.
 */
import { readFileSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { writeNewFile } from './atomic-write.js';

/** `busy` builds the error for a lock another live process holds, from what its file says. */
export async function withDirLock<T>(
  path: string,
  busy: (holder: { pid?: number; host?: string; since?: string }) => Error,
  fn: () => Promise<T>,
): Promise<T> {
  const mine = JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() });
  for (let attempt = 0; ; attempt++) {
    try {
      writeNewFile(path, mine, 0o600);
      break;
    } catch (err) {
      if (((err as Error).cause as NodeJS.ErrnoException | undefined)?.code !== 'EEXIST') throw err;
      let holder: { pid?: number; host?: string; since?: string } = {};
      try {
        holder = JSON.parse(readFileSync(path, 'utf8')) as typeof holder;
      } catch {
        // gone meanwhile, or half written: look again
      }
      if (attempt === 0 && holder.host === hostname() && typeof holder.pid === 'number' && !processAlive(holder.pid)) {
        rmSync(path, { force: true });
        continue;
      }
      if (attempt < 1) continue;
      const error = busy(holder);
      (error as { cause?: unknown }).cause = err;
      throw error;
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(path, { force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
