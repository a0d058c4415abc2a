/**
 * Summarizes a V8 .cpuprofile (from BENCH_CPU_PROF=1, or any `node --cpu-prof`): the top
 * functions by self time, and self time grouped by where the code lives (our src/, a package
 * in node_modules, Node internals, GC, idle), so "where does a certificate's CPU go" is one look.
 *
 *   node dist/bench/profile-summary.js bench/results/profiles/CPU.*.cpuprofile [--top 30] [--callers NAME]
 *
 * --callers NAME: self time of functions called NAME, split by their caller chain (3 frames up).
 */
import { readFileSync } from 'node:fs';
import { isEntryPoint } from './entry.js';
import { fmtNum, table } from './stats.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** "src/ca/authority.ts"-like place for a frame, or a package name, or a V8 pseudo-frame. */
function place(url: string, fn: string): { group: string; where: string } {
  if (!url) return { group: fn.startsWith('(') ? fn : '(native)', where: '' };
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(url);
  if (pkg) return { group: `pkg ${pkg[1]}`, where: `${pkg[1]}/${pkg[2]}` };
  if (url.startsWith('node:')) return { group: 'node internals', where: url };
  const own = /\/dist\/((?:src|bench)\/.*)$/.exec(url);
  if (own) return { group: `${own[1]!.split('/').slice(0, 2).join('/')}`, where: own[1]! };
  return { group: 'other', where: url };
}

/** A span of the monotonic clock in µs (`process.hrtime` / 1000: the clock V8 stamps samples with). */
export type TimeWindow = readonly [startUs: number, endUs: number];

/** Self time (µs) per node; with `windows`, only of the samples taken inside one of them. */
function selfTimes(profile: CpuProfile, windows?: readonly TimeWindow[]): Map<number, number> {
  const selfUs = new Map<number, number>();
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (windows && !windows.some(([a, b]) => t >= a && t <= b)) return;
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  });
  return selfUs;
}

/** Who calls `name`: its self time keyed by the three frames above it. */
export function callers(profile: CpuProfile, name: string): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const chains = new Map<string, number>();
  for (const [id, us] of selfTimes(profile)) {
    if (byId.get(id)!.callFrame.functionName !== name) continue;
    const frames: string[] = [];
    for (let p = parent.get(id); p !== undefined && frames.length < 3; p = parent.get(p))
      frames.push(byId.get(p)!.callFrame.functionName || '(anonymous)');
    const key = frames.join(' < ');
    chains.set(key, (chains.get(key) ?? 0) + us);
  }
  const rows = [...chains.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, fmtNum(v / 1000, 0)]);
  return table([`callers of ${name}`, 'ms'], rows);
}

/**
 * Self time (µs) by place, as in the summary's first table: `src/gateway`, `node internals`,
 * `(garbage collector)`, …; with `windows`, only of the samples taken inside them.
 */
export function selfTimeByPlace(profile: CpuProfile, windows?: readonly TimeWindow[]): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const groups = new Map<string, number>();
  for (const [id, us] of selfTimes(profile, windows)) {
    const { functionName, url } = byId.get(id)!.callFrame;
    const group = place(url, functionName || '(anonymous)').group;
    groups.set(group, (groups.get(group) ?? 0) + us);
  }
  return groups;
}

/** Self time (µs) by function (`name  place:line`, as in the summary's second table); with `windows`, only inside them. */
export function selfTimeByFunction(profile: CpuProfile, windows?: readonly TimeWindow[]): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const fns = new Map<string, number>();
  for (const [id, us] of selfTimes(profile, windows)) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const name = functionName || '(anonymous)';
    const p = place(url, name);
    const key = `${name}  ${p.where ? `${p.where}:${lineNumber + 1}` : ''}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
  }
  return fns;
}

export function summarize(profile: CpuProfile, top: number): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = selfTimes(profile);
  const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const fns = new Map<string, number>();
  const groups = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const name = functionName || '(anonymous)';
    const p = place(url, name);
    const key = `${name}  ${p.where ? `${p.where}:${lineNumber + 1}` : ''}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
    groups.set(p.group, (groups.get(p.group) ?? 0) + us);
  }
  const pct = (us: number) => `${fmtNum((us / totalUs) * 100, 1)} %`;
  const ms = (us: number) => fmtNum(us / 1000, 0);
  const sorted = (m: Map<string, number>, n: number) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n);
  return [
    `profile: ${fmtNum(totalUs / 1e6, 1)} s sampled`,
    '',
    table(
      ['self time by place', 'ms', 'share'],
      sorted(groups, 20).map(([k, v]) => [k, ms(v), pct(v)]),
    ),
    '',
    table(
      [`top ${top} functions by self time`, 'ms', 'share'],
      sorted(fns, top).map(([k, v]) => [k, ms(v), pct(v)]),
    ),
  ].join('\n');
}

function main(): void {
  const args = process.argv.slice(2);
  const topAt = args.indexOf('--top');
  const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 30;
  const callersAt = args.indexOf('--callers');
  const callersOf = callersAt >= 0 ? args.splice(callersAt, 2)[1] : undefined;
  if (!args.length) throw new Error('usage: profile-summary.js FILE.cpuprofile [--top N] [--callers NAME]');
  for (const file of args) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    process.stdout.write(`== ${file}\n${callersOf ? callers(profile, callersOf) : summarize(profile, top)}\n\n`);
  }
}

if (isEntryPoint(import.meta.url)) main();
