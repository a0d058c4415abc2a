/**
 * Collectors of how the machine keeps itself patched and on time:
 * - auto-updates: unattended-upgrades installed and switched on by APT::Periodic (Debian, Ubuntu);
 * - time-sync: a time daemon running or systemd-timesyncd synchronized (certificates and tokens
 *   are judged by the clock; a machine hours off refuses or accepts the wrong ones).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { CollectContext, Collector } from '../check.js';
import { defineCollector, processIds, processName, readUnderRoot } from '../check.js';
import { installedPackages } from './packages.js';

/** APT::Periodic::Unattended-Upgrade "1"; in apt.conf.d, the last file (in name order) that sets it wins. */
function aptPeriodic(ctx: CollectContext, key: string): string | null {
  let value: string | null = null;
  let names: string[];
  try {
    names = readdirSync(join(ctx.root, 'etc/apt/apt.conf.d')).sort();
  } catch {
    return null;
  }
  const re = new RegExp(`^\\s*APT::Periodic::${key}\\s+"([^"]*)"\\s*;`, 'm');
  for (const name of names) {
    const m = re.exec(readUnderRoot(ctx, `etc/apt/apt.conf.d/${name}`) ?? '');
    if (m) value = m[1]!;
  }
  return value;
}

export const autoUpdatesCollector: Collector = defineCollector('auto-updates', 10, (ctx) => {
  const packages = installedPackages(ctx);
  if (packages === null)
    return {
      verdict: 'unknown',
      reason: 'no dpkg database (/var/lib/dpkg/status): automatic updates cannot be checked on this system',
    };
  if (!packages.some((p) => p.name === 'unattended-upgrades'))
    return {
      verdict: 'fail',
      reason: 'unattended-upgrades is not installed: security updates wait for someone to apply them',
    };
  const value = aptPeriodic(ctx, 'Unattended-Upgrade');
  if (value === null || value === '0')
    return {
      verdict: 'fail',
      reason: `unattended-upgrades is installed but not switched on (APT::Periodic::Unattended-Upgrade ${value === null ? 'unset' : '"0"'})`,
    };
  return { verdict: 'pass', reason: `unattended-upgrades runs (APT::Periodic::Unattended-Upgrade "${value}")` };
});

const TIME_DAEMONS = new Set(['chronyd', 'ntpd', 'openntpd', 'systemd-timesyn', 'ntpsec', 'timesyncd']);

export const timeSyncCollector: Collector = defineCollector('time-sync', 5, (ctx) => {
  if (readUnderRoot(ctx, 'run/systemd/timesync/synchronized') !== null)
    return { verdict: 'pass', reason: 'systemd-timesyncd says the clock is synchronized' };
  const pids = processIds(ctx);
  if (pids === null) return { verdict: 'unknown', reason: 'no /proc: running time daemons cannot be seen here' };
  for (const pid of pids) {
    const comm = processName(ctx, pid);
    if (comm && TIME_DAEMONS.has(comm)) return { verdict: 'pass', reason: `${comm} keeps the clock (pid ${pid})` };
  }
  return {
    verdict: 'fail',
    reason:
      'no time daemon runs (chrony, ntpd, systemd-timesyncd): the clock drifts, and certificates are judged by it',
  };
});
