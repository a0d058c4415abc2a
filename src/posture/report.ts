/**
 * A device's posture report: every collector's result, a score, the installed packages for the
 * CVE audit, and a few facts (kernel, uptime, last boot). The score is
 *
 *   score = round(100 × Σ weight of passing checks / Σ weight of passing and failing checks)
 *
 * Checks that could not tell ("unknown": not this OS, not readable without root) count neither
 * way, and are listed; with no decided check at all the score is null, which a policy that asks
 * for a minimum treats as not met.
 */
import type { CheckResult, CollectContext, Collector } from './check.js';
import { readUnderRoot } from './check.js';
import { firewallCollector } from './collectors/firewall.js';
import { identityFilesCollector } from './collectors/identity-files.js';
import { listeningSocketsCollector } from './collectors/listening-sockets.js';
import { osReleaseCollector } from './collectors/os-release.js';
import { installedPackages, type InstalledPackage } from './collectors/packages.js';
import { pendingUpgradesCollector } from './collectors/pending-upgrades.js';
import { sshdPasswordCollector, sshdRootLoginCollector } from './collectors/sshd.js';
import { autoUpdatesCollector, timeSyncCollector } from './collectors/system.js';

export const REPORT_FORMAT = 1;

export const COLLECTORS: readonly Collector[] = [
  osReleaseCollector,
  autoUpdatesCollector,
  pendingUpgradesCollector,
  sshdRootLoginCollector,
  sshdPasswordCollector,
  listeningSocketsCollector,
  firewallCollector,
  timeSyncCollector,
  identityFilesCollector,
];

export interface PostureFacts {
  hostname: string | null;
  kernel: string | null;
  uptimeSeconds: number | null;
  bootedAt: string | null;
}

export interface PostureReport {
  format: typeof REPORT_FORMAT;
  collectedAt: string;
  score: number | null;
  /** Failing checks' ids, heaviest first: what to fix first. */
  failing: string[];
  checks: CheckResult[];
  facts: PostureFacts;
  /** Null when the system has no dpkg database. */
  packages: InstalledPackage[] | null;
}

/** The failing checks' ids, heaviest first: what to fix first. */
export function failingOf(checks: readonly CheckResult[]): string[] {
  return checks
    .filter((c) => c.verdict === 'fail')
    .sort((a, b) => b.weight - a.weight)
    .map((c) => c.id);
}

export function scoreOf(checks: readonly CheckResult[]): number | null {
  const decided = checks.filter((c) => c.verdict !== 'unknown');
  const total = decided.reduce((n, c) => n + c.weight, 0);
  if (total === 0) return null;
  return Math.round((100 * decided.filter((c) => c.verdict === 'pass').reduce((n, c) => n + c.weight, 0)) / total);
}

export function collectPosture(ctx: CollectContext, collectors: readonly Collector[] = COLLECTORS): PostureReport {
  const checks = collectors.map((collector) => {
    try {
      return collector.collect(ctx);
    } catch (err) {
      // A collector's bug must not cost the whole report: that one check is unknown.
      return {
        id: collector.id,
        weight: collector.weight,
        verdict: 'unknown' as const,
        reason: `the check failed: ${(err as Error).message.split('\n')[0]!.slice(0, 200)}`,
      };
    }
  });
  return {
    format: REPORT_FORMAT,
    collectedAt: ctx.now.toISOString(),
    score: scoreOf(checks),
    failing: failingOf(checks),
    checks,
    facts: factsOf(ctx),
    packages: installedPackages(ctx),
  };
}

function factsOf(ctx: CollectContext): PostureFacts {
  const uptime = Number((readUnderRoot(ctx, 'proc/uptime') ?? '').split(/\s+/)[0]);
  const uptimeSeconds = Number.isFinite(uptime) && uptime > 0 ? Math.floor(uptime) : null;
  const line = (path: string) => (readUnderRoot(ctx, path) ?? '').trim().split('\n')[0]!.slice(0, 200) || null;
  return {
    hostname: line('proc/sys/kernel/hostname') ?? line('etc/hostname'),
    kernel: line('proc/sys/kernel/osrelease'),
    uptimeSeconds,
    bootedAt: uptimeSeconds === null ? null : new Date(ctx.now.getTime() - uptimeSeconds * 1000).toISOString(),
  };
}
