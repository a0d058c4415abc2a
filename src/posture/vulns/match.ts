/**
 * Which advisories affect a device: its installed packages (source package and source version,
 * as Debian's and Ubuntu's advisories name them) against OSV ranges of its own ecosystem,
 * versions compared by dpkg's rules. Only dpkg ecosystems are matched: a device reports dpkg's
 * database and nothing else.
 */
import { compareDebianVersions, parseDebianVersion, type DebianVersion } from '../debian-version.js';
import type { InstalledPackage } from '../collectors/packages.js';
import { SEVERITY_ORDER } from './cvss.js';
import type { Advisory, AffectedPackage, RangeEvent } from './osv.js';

export interface AdvisoryMatch {
  id: string;
  severity: Advisory['severity'];
  summary: string;
  aliases: string[];
  /** The source package and the version installed. */
  package: string;
  installed: string;
  /** The version that fixes it in this range, or null when none is published yet. */
  fixed: string | null;
}

/**
 * The device's OSV ecosystem from its os-release facts: `Debian:12` (the major version, as OSV
 * names Debian releases), `Ubuntu:22.04`; null for any other system.
 */
export function ecosystemOf(os: { id?: unknown; versionId?: unknown } | undefined): string | null {
  const id = typeof os?.id === 'string' ? os.id : '';
  const version = typeof os?.versionId === 'string' ? os.versionId : '';
  if (!/^[0-9][0-9.]*$/.test(version)) return null;
  if (id === 'debian') return `Debian:${version.split('.')[0]}`;
  if (id === 'ubuntu') return `Ubuntu:${version}`;
  return null;
}

/** OSV writes Ubuntu's LTS releases as `Ubuntu:22.04:LTS`; a device knows only `22.04`. Pro feeds are not matched. */
function deviceEcosystem(ecosystem: string): string | null {
  if (ecosystem.startsWith('Debian:')) return ecosystem;
  const ubuntu = /^Ubuntu:(\d+\.\d+)(?::LTS)?$/.exec(ecosystem);
  return ubuntu ? `Ubuntu:${ubuntu[1]}` : null;
}

type Entry = { advisory: Advisory; affected: AffectedPackage };

/** Advisories indexed by ecosystem and package, built once per listing. */
export class AdvisoryIndex {
  private readonly byPackage = new Map<string, Entry[]>();
  /** Advisories given, withdrawn ones and other ecosystems' included: 0 means nothing was imported. */
  readonly imported: number = 0;

  constructor(advisories: Iterable<Advisory>) {
    for (const advisory of advisories) {
      this.imported++;
      if (advisory.withdrawn) continue;
      for (const affected of advisory.affected) {
        const ecosystem = deviceEcosystem(affected.ecosystem);
        if (!ecosystem) continue;
        const key = `${ecosystem}\0${affected.name}`;
        const list = this.byPackage.get(key) ?? [];
        list.push({ advisory, affected });
        this.byPackage.set(key, list);
      }
    }
  }

  /** Each advisory that affects one of the packages, once per package, most severe first. */
  match(ecosystem: string, packages: readonly InstalledPackage[]): AdvisoryMatch[] {
    const seen = new Set<string>();
    const matches: AdvisoryMatch[] = [];
    for (const p of packages) {
      const sourceKey = `${p.source}\0${p.sourceVersion}`;
      if (seen.has(sourceKey)) continue; // binaries of one source share its advisories
      seen.add(sourceKey);
      for (const { advisory, affected } of this.byPackage.get(`${ecosystem}\0${p.source}`) ?? []) {
        const verdict = affects(affected, p.sourceVersion);
        if (!verdict.affected) continue;
        matches.push({
          id: advisory.id,
          severity: advisory.severity,
          summary: advisory.summary,
          aliases: advisory.aliases,
          package: p.source,
          installed: p.sourceVersion,
          fixed: verdict.fixed,
        });
      }
    }
    return matches.sort(
      (a, b) =>
        severityRank(a.severity) - severityRank(b.severity) ||
        (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) ||
        (a.package < b.package ? -1 : a.package > b.package ? 1 : 0),
    );
  }
}

const severityRank = (s: Advisory['severity']) => SEVERITY_ORDER.indexOf(s);

/**
 * Parsed versions, shared by every match: a fleet installs the same few versions of each
 * package, and parsing dominated matching a fleet against a feed. Null: dpkg cannot parse it.
 */
const parsedVersions = new Map<string, DebianVersion | null>();
const PARSED_MAX = 100_000;

function parsed(text: string): DebianVersion | null {
  let version = parsedVersions.get(text);
  if (version !== undefined) return version;
  try {
    version = parseDebianVersion(text);
  } catch {
    version = null;
  }
  if (parsedVersions.size >= PARSED_MAX) parsedVersions.clear();
  parsedVersions.set(text, version);
  return version;
}

/** A version compare that treats a version dpkg cannot parse as matching nothing. */
function compare(a: string, b: string): number | null {
  const pa = parsed(a);
  const pb = parsed(b);
  return pa === null || pb === null ? null : compareDebianVersions(pa, pb);
}

/** Whether `version` is affected, and the fix of the range it falls in. */
export function affects(affected: AffectedPackage, version: string): { affected: boolean; fixed: string | null } {
  if (affected.versions.some((v) => compare(v, version) === 0)) return { affected: true, fixed: null };
  for (const events of affected.ranges) {
    const result = inRange(events, version);
    if (result.affected) return result;
  }
  return { affected: false, fixed: null };
}

/**
 * OSV's evaluation (schema, "Evaluation"): walk the events in version order; an `introduced` at
 * or below the version opens the range, a `fixed` at or below it closes it, a `last_affected`
 * below it closes it. "0" introduces from the very first version.
 */
function inRange(events: readonly RangeEvent[], version: string): { affected: boolean; fixed: string | null } {
  const at = (e: RangeEvent) => e.introduced ?? e.fixed ?? e.lastAffected ?? e.limit!;
  const usable = events.filter((e) => e.limit === undefined && (e.introduced === '0' || compare(at(e), '0') !== null));
  const sorted = [...usable].sort((a, b) =>
    a.introduced === '0' ? -1 : b.introduced === '0' ? 1 : compare(at(a), at(b))!,
  );
  let affected = false;
  let fixed: string | null = null;
  for (const e of sorted) {
    if (e.introduced !== undefined) {
      if (e.introduced === '0' || compare(version, e.introduced)! >= 0) affected = true;
    } else if (e.fixed !== undefined) {
      if (compare(version, e.fixed)! >= 0) affected = false;
      else if (affected && fixed === null) fixed = e.fixed;
    } else if (e.lastAffected !== undefined && compare(version, e.lastAffected)! > 0) {
      affected = false;
    }
  }
  // The installed version may not parse (then nothing matched above); a fix is named only for an open range.
  return { affected: affected && compare(version, version) === 0, fixed: affected ? fixed : null };
}
