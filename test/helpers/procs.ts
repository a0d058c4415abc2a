/**
 * Processes and ports as the kernel sees them (Linux /proc), for tests that stop servers: which
 * processes descend from one, whether one still runs (same pid and start time, not a zombie),
 * which run in a folder, whether a port can be bound again.
 */
import { readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';

export interface Proc {
  pid: number;
  ppid: number;
  /** Start time in clock ticks since boot: with the pid, names one process even if the pid is reused. */
  start: string;
  state: string;
  cmdline: string;
}

export function procInfo(pid: number): Proc | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm) ": field 3 (state) is [0], 4 (ppid) is [1], 22 (starttime) is [19].
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    return { pid, state: fields[0]!, ppid: Number(fields[1]), start: fields[19]!, cmdline };
  } catch {
    return null;
  }
}

export function allProcs(): Proc[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map((e) => procInfo(Number(e)))
    .filter((p): p is Proc => p !== null);
}

/** `root` and every process below it, now. */
export function processTree(root: number): Proc[] {
  const procs = allProcs();
  const tree = procs.filter((p) => p.pid === root);
  for (let i = 0; i < tree.length; i++) tree.push(...procs.filter((p) => p.ppid === tree[i]!.pid));
  return tree;
}

/** Those of `procs` still running: same pid and start time, and not a zombie. */
export function stillRunning(procs: readonly Proc[]): Proc[] {
  return procs.filter((p) => {
    const now = procInfo(p.pid);
    return now !== null && now.start === p.start && now.state !== 'Z';
  });
}

/** Running processes whose working directory is `dir` (an orphan keeps its folder even when reparented). */
export function processesIn(dir: string): Proc[] {
  const real = realpathSync(dir);
  return allProcs().filter((p) => {
    try {
      return readlinkSync(`/proc/${p.pid}/cwd`) === real && p.state !== 'Z';
    } catch {
      return false;
    }
  });
}

/** Whether `port` on `host` can be bound now (and is released again at once). */
export function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** A port held by a plain listener of this process, as "another process" would hold it. */
export async function occupyPort(
  host = '127.0.0.1',
): Promise<{ port: number; server: Server; close(): Promise<void> }> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    server,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export { waitFor } from './poll.js';
