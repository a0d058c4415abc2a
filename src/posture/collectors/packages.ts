/**
 * Installed packages from the dpkg database (/var/lib/dpkg/status, deb822 paragraphs), with
 * their source package: advisories (OSV `Debian:12` and others) name source packages, and the
 * CVE audit matches them against the installed binary packages' source versions.
 */
import type { CollectContext } from '../check.js';
import { readUnderRoot } from '../check.js';

export interface InstalledPackage {
  name: string;
  version: string;
  /** The source package: `Source:` (without its own version), else the package itself. */
  source: string;
  /** The source version: from `Source: name (version)` when the binary was rebuilt, else the package version. */
  sourceVersion: string;
  architecture: string | null;
}

/** Per collection: the auto-updates check and the report both need the list, and the file can be tens of MiB. */
const parsed = new WeakMap<CollectContext, InstalledPackage[] | null>();

/** Null when there is no dpkg database (not a Debian-family system). */
export function installedPackages(ctx: CollectContext): InstalledPackage[] | null {
  if (parsed.has(ctx)) return parsed.get(ctx)!;
  const packages = readInstalledPackages(ctx);
  parsed.set(ctx, packages);
  return packages;
}

function readInstalledPackages(ctx: CollectContext): InstalledPackage[] | null {
  const text = readUnderRoot(ctx, 'var/lib/dpkg/status', 64 * 1024 * 1024);
  if (text === null) return null;
  const packages: InstalledPackage[] = [];
  for (const paragraph of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of paragraph.split('\n')) {
      if (/^\s/.test(line)) continue; // a continuation line (Description, Conffiles): not needed
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (m) fields.set(m[1]!.toLowerCase(), m[2]!.trim());
    }
    // Status: want flag state; only "installed" (not config-files, half-installed, unpacked, …).
    if ((fields.get('status') ?? '').split(/\s+/)[2] !== 'installed') continue;
    const name = fields.get('package');
    const version = fields.get('version');
    if (!name || !version) continue;
    const sourceField = /^(\S+)(?:\s+\(([^)]+)\))?$/.exec(fields.get('source') ?? '');
    packages.push({
      name,
      version,
      source: sourceField?.[1] ?? name,
      sourceVersion: sourceField?.[2] ?? version,
      architecture: fields.get('architecture') ?? null,
    });
  }
  return packages;
}
