/**
 * One posture check's result: a verdict, the weight it carries in the score, and one line a
 * person can act on. Collectors read everything below `root` (default `/`), so tests point them
 * at a fixture tree, and they never run external programs.
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { join } from 'node:path';

export type Verdict = 'pass' | 'fail' | 'unknown';

export interface CheckResult {
  id: string;
  verdict: Verdict;
  weight: number;
  reason: string;
  /** What was seen, for the report (bounded, never secrets). */
  details?: Record<string, unknown>;
}

export interface CollectContext {
  /** The file system root to read from: `/` on a machine, a fixture tree in tests. */
  root: string;
  now: Date;
  /** The agent's identity directory (its key and certificate), when the agent collects. */
  identityDir?: string;
}

export interface Collector {
  id: string;
  weight: number;
  collect(ctx: CollectContext): CheckResult;
}

/** A file below the root, or null when it does not exist or cannot be read (a collector then says unknown). */
export function readUnderRoot(ctx: CollectContext, path: string, maxBytes = 1024 * 1024): string | null {
  try {
    const text = readFileSync(join(ctx.root, path), 'utf8');
    return text.length > maxBytes ? text.slice(0, maxBytes) : text;
  } catch {
    return null;
  }
}

/**
 * A file below the root line by line, read in 64 KiB chunks so a file of tens of MiB (APT's lists)
 * is never held whole; at most maxBytes are read. False when it does not exist or cannot be read.
 */
export function readLinesUnderRoot(
  ctx: CollectContext,
  path: string,
  onLine: (line: string) => void,
  maxBytes = 512 * 1024 * 1024,
): boolean {
  let fd: number;
  try {
    fd = openSync(join(ctx.root, path), 'r');
  } catch {
    return false;
  }
  try {
    const chunk = Buffer.alloc(64 * 1024);
    const decoder = new StringDecoder('utf8');
    let rest = '';
    let total = 0;
    for (
      let n: number;
      total < maxBytes && (n = readSync(fd, chunk, 0, Math.min(chunk.length, maxBytes - total), null)) > 0;
      total += n
    ) {
      const lines = (rest + decoder.write(chunk.subarray(0, n))).split('\n');
      rest = lines.pop()!;
      for (const line of lines) onLine(line);
    }
    rest += decoder.end();
    if (rest) onLine(rest);
    return true;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

/** A collector from its id, weight and check; the result carries the id and weight. */
export function defineCollector(
  id: string,
  weight: number,
  check: (ctx: CollectContext) => Omit<CheckResult, 'id' | 'weight'>,
): Collector {
  return { id, weight, collect: (ctx) => ({ id, weight, ...check(ctx) }) };
}

/** The process IDs under <root>/proc, or null without a /proc. */
export function processIds(ctx: CollectContext): string[] | null {
  try {
    return readdirSync(join(ctx.root, 'proc')).filter((e) => /^\d+$/.test(e));
  } catch {
    return null;
  }
}

/** A process's command name (proc(5) `comm`), or null when it is gone or unreadable. */
export function processName(ctx: CollectContext, pid: string): string | null {
  return (readUnderRoot(ctx, `proc/${pid}/comm`) ?? '').trim() || null;
}
