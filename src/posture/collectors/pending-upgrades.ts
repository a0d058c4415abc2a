/**
 * Upgrades APT already knows about, without the network: the installed packages (dpkg database)
 * against the package indexes the last `apt-get update` downloaded (/var/lib/apt/lists/*_Packages).
 * A newer version in a list whose name says `security` is a security fix waiting to be applied:
 * that fails; newer versions elsewhere are listed but pass. The lists are read line by line,
 * keeping only Package, Version and Architecture of installed names. Compressed lists
 * (Acquire::GzipIndexes, lz4) are skipped: decompressing them needs more than reading files.
 * Only lists of the machine's own release count (os-release's VERSION_CODENAME, with -updates and
 * -security); finer pinning, holds and phased updates are not modelled.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Collector } from '../check.js';
import { defineCollector, readLinesUnderRoot, readUnderRoot } from '../check.js';
import { parseOsRelease } from './os-release.js';
import { compareDebianVersions } from '../debian-version.js';
import { installedPackages, type InstalledPackage } from './packages.js';

const LISTS = 'var/lib/apt/lists';
const MAX_LISTED = 50;
const NAMES_IN_REASON = 3;

export interface PendingUpgrade {
  name: string;
  architecture: string | null;
  installed: string;
  candidate: string;
  security: boolean;
}

/** Negative, 0 or positive; null when either is not a valid Debian version (that entry is skipped). */
function compare(a: string, b: string): number | null {
  try {
    return compareDebianVersions(a, b);
  } catch {
    return null;
  }
}

export const pendingUpgradesCollector: Collector = defineCollector('pending-upgrades', 10, (ctx) => {
  const packages = installedPackages(ctx);
  if (packages === null)
    return {
      verdict: 'unknown',
      reason: 'no dpkg database (/var/lib/dpkg/status): pending upgrades cannot be checked on this system',
    };
  let names: string[];
  try {
    names = readdirSync(join(ctx.root, LISTS))
      .filter((n) => /_Packages(\.[a-z0-9]+)?$/.test(n))
      .sort();
  } catch {
    names = [];
  }
  // Lists of another release (a pinned trixie source on bookworm) or of backports are not what
  // `apt-get upgrade` installs by default: only the machine's own codename and its -updates and
  // -security suites count, when os-release names the codename.
  const codename = parseOsRelease(readUnderRoot(ctx, 'etc/os-release') ?? '').VERSION_CODENAME;
  const ownRelease = (n: string) =>
    !codename || new RegExp(`_dists_${codename.replace(/[^a-z0-9]/g, '')}(-updates|-security)?_`).test(n);
  const plain = names.filter((n) => n.endsWith('_Packages') && ownRelease(n));
  const compressed = names.length - plain.length;
  let newest = 0;
  for (const n of names) {
    try {
      newest = Math.max(newest, statSync(join(ctx.root, LISTS, n)).mtimeMs);
    } catch {
      // gone meanwhile
    }
  }
  const listsUpdatedAt = newest > 0 ? new Date(newest).toISOString() : null;
  if (plain.length === 0) {
    if (compressed > 0)
      return {
        verdict: 'unknown',
        reason: `APT's package lists are compressed (${compressed} in /${LISTS}): pending upgrades cannot be read from them`,
        details: { compressedListsSkipped: compressed, listsUpdatedAt },
      };
    return {
      verdict: 'unknown',
      reason: `no APT package lists in /${LISTS}: \`apt-get update\` has not run`,
      details: { listsUpdatedAt },
    };
  }

  const byName = new Map<string, Array<{ pkg: InstalledPackage; pending: PendingUpgrade | null }>>();
  for (const pkg of packages) {
    const entry = { pkg, pending: null };
    byName.set(pkg.name, [...(byName.get(pkg.name) ?? []), entry]);
  }
  const offer = (name: string, version: string, architecture: string, security: boolean) => {
    for (const entry of byName.get(name) ?? []) {
      const { pkg } = entry;
      if (architecture !== 'all' && pkg.architecture !== null && architecture !== pkg.architecture) continue;
      if ((compare(version, pkg.version) ?? 0) <= 0) continue;
      if (entry.pending === null) {
        entry.pending = { name, architecture: pkg.architecture, installed: pkg.version, candidate: version, security };
        continue;
      }
      // The highest candidate; security when any security list has a version newer than the installed one.
      if ((compare(version, entry.pending.candidate) ?? 0) > 0) entry.pending.candidate = version;
      entry.pending.security ||= security;
    }
  };
  let listsRead = 0;
  for (const list of plain) {
    const security = list.includes('security');
    let name = '';
    let version = '';
    let architecture = '';
    const end = () => {
      if (name && version && byName.has(name)) offer(name, version, architecture || 'all', security);
      name = version = architecture = '';
    };
    const ok = readLinesUnderRoot(ctx, `${LISTS}/${list}`, (line) => {
      if (line === '' || line === '\r') return end();
      const c = line.charCodeAt(0);
      if (c !== 80 && c !== 86 && c !== 65) return; // only P…, V…, A… lines can be the fields needed
      if (line.startsWith('Package:')) name = line.slice(8).trim();
      else if (line.startsWith('Version:')) version = line.slice(8).trim();
      else if (line.startsWith('Architecture:')) architecture = line.slice(13).trim();
    });
    end();
    if (ok) listsRead++;
  }

  const pending = [...byName.values()].flatMap((entries) => entries.flatMap((e) => (e.pending ? [e.pending] : [])));
  const securityUpgrades = pending.filter((p) => p.security);
  const details = {
    installedPackages: packages.length,
    pending: pending.length,
    securityPending: securityUpgrades.length,
    upgrades: [...securityUpgrades, ...pending.filter((p) => !p.security)].slice(0, MAX_LISTED),
    listsRead,
    ...(compressed > 0 ? { compressedListsSkipped: compressed } : {}),
    listsUpdatedAt,
  };
  const asOf = listsUpdatedAt ? ` (lists from ${listsUpdatedAt.slice(0, 10)})` : '';
  if (securityUpgrades.length > 0) {
    const shown = securityUpgrades
      .slice(0, NAMES_IN_REASON)
      .map((p) => p.name.slice(0, 40))
      .join(', ');
    const more = securityUpgrades.length > NAMES_IN_REASON ? ', …' : '';
    return {
      verdict: 'fail',
      reason: `${securityUpgrades.length} security upgrade${securityUpgrades.length === 1 ? '' : 's'} pending: ${shown}${more}${asOf}; apt-get upgrade`,
      details,
    };
  }
  return {
    verdict: 'pass',
    reason: `no security upgrades pending, ${pending.length} non-security upgrade${pending.length === 1 ? '' : 's'} pending${asOf}`,
    details,
  };
});
