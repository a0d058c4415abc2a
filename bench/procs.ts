/**
 * Child-process bookkeeping: every child the bench starts is registered here and killed on
 * normal exit, on an error and on SIGINT/SIGTERM, and temp dirs are removed. Also reads a
 * process's CPU time from /proc, which is independent of who else shares the 2 cores.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';

const children = new Set<ChildProcess>();
const tempDirs: string[] = [];
let installed = false;

export function track<T extends ChildProcess>(child: T): T {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function removeOnExit(dir: string): void {
  tempDirs.push(dir);
}

/**
 * Synchronous, so it also works from process.on('exit'). A child's own children (nginx
 * workers, cluster workers) are killed first: they can outlive a SIGKILLed parent.
 */
export function cleanupAll(): void {
  for (const child of children) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      for (const pid of descendants(child.pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  children.clear();
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export function installCleanupHandlers(): void {
  if (installed) return;
  installed = true;
  process.on('exit', cleanupAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\n${signal}: stopping child processes and removing temp dirs\n`);
      cleanupAll();
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    });
  }
}

/** Asks a child to stop (message or signal), then SIGKILLs it if it has not exited in time. */
export async function stopChild(
  child: ChildProcess,
  how: { message?: unknown; signal?: NodeJS.Signals },
  timeoutMs = 5000,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    if (how.message !== undefined && child.connected) child.send(how.message as object);
    else child.kill(how.signal ?? 'SIGTERM');
  } catch {
    /* raced with exit */
  }
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

let clockTicks: number | undefined;

/** USER_HZ, the unit of utime/stime in /proc/<pid>/stat (100 on Linux, asked rather than assumed). */
export function clkTck(): number {
  if (clockTicks === undefined) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(out.stdout?.trim());
    clockTicks = Number.isInteger(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

/**
 * User and kernel CPU time of a process and its live descendants (all threads), in
 * microseconds: with `--workers N` the CA is a cluster primary plus N worker processes.
 */
export function processCpuUs(pid: number, ticksPerSecond = clkTck()): { user: number; system: number } {
  let user = 0;
  let system = 0;
  for (const p of [pid, ...descendants(pid)]) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${p}/stat`, 'utf8');
    } catch {
      continue; // exited between listing and reading
    }
    // Fields after "pid (comm) ": state is [0], utime is [11], stime is [12] (proc(5) fields 14, 15).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    user += (Number(fields[11]) * 1e6) / ticksPerSecond;
    system += (Number(fields[12]) * 1e6) / ticksPerSecond;
  }
  return { user, system };
}

function descendants(root: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parentOf.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone */
    }
  }
  const found: number[] = [];
  const walk = (pid: number) => {
    for (const [child, parent] of parentOf)
      if (parent === pid) {
        found.push(child);
        walk(child);
      }
  };
  walk(root);
  return found;
}

/**
 * CPU time of this process's children that have exited and been reaped (cutime + cstime of
 * /proc/self/stat), in microseconds: around one short-lived child such as ab, its own CPU.
 */
export function reapedChildrenCpuUs(ticksPerSecond = clkTck()): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[13]) + Number(fields[14])) * 1e6) / ticksPerSecond;
}

/** CPU time all cores spent busy (user+nice+system+irq+softirq+steal), in microseconds, from /proc/stat. */
export function machineBusyUs(ticksPerSecond = clkTck()): number {
  const first = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const [user, nice, system, , , irq, softirq, steal] = first.trim().split(/\s+/).slice(1).map(Number);
  return (
    (((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) * 1e6) / ticksPerSecond
  );
}
