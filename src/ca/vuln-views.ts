/**
 * The CVE audit as admins see it (`gatehouse fleet vulns`, GET /admin/vulns, the dashboard) and
 * as posture rules need it: the imported advisories matched against each active identity's
 * latest report (its OS and installed packages).
 */
import type { Store } from '../store/store.js';
import type { PostureReport } from '../posture/report.js';
import type { Advisory } from '../posture/vulns/osv.js';
import { SEVERITY_ORDER } from '../posture/vulns/cvss.js';
import { AdvisoryIndex, ecosystemOf, type AdvisoryMatch } from '../posture/vulns/match.js';
import { activeIdentities } from './active-identities.js';

export interface AffectedIdentity {
  name: string;
  role: string;
  spiffeId: string;
  package: string;
  installed: string;
  fixed: string | null;
}

export interface FleetVuln {
  id: string;
  severity: Advisory['severity'];
  summary: string;
  aliases: string[];
  identities: AffectedIdentity[];
}

const indexes = new WeakMap<Store, { version: string; index: Promise<AdvisoryIndex> }>();

/**
 * The advisories indexed for matching (feeds hold thousands), rebuilt only when the store's
 * advisories changed: an import by any process, `vuln import --dir` beside a running `ca serve`
 * included, is seen by the next lookup.
 */
export async function advisoryIndex(store: Store): Promise<AdvisoryIndex> {
  const version = await store.advisoriesVersion();
  const cached = indexes.get(store);
  if (cached && cached.version === version) return cached.index;
  const index = store.listAdvisories().then((records) => new AdvisoryIndex(records.map((r) => JSON.parse(r.record) as Advisory)));
  indexes.set(store, { version, index });
  index.catch(() => indexes.delete(store));
  return index;
}

/** The advisories that affect the device that sent `report` (its stored JSON). */
export function matchReport(index: AdvisoryIndex, report: string): AdvisoryMatch[] {
  let parsed: Pick<PostureReport, 'checks' | 'packages'>;
  try {
    parsed = JSON.parse(report) as PostureReport;
  } catch {
    return [];
  }
  const os = parsed.checks?.find((c) => c.id === 'os-supported')?.details;
  const ecosystem = ecosystemOf(os);
  if (!ecosystem || !Array.isArray(parsed.packages)) return [];
  return index.match(ecosystem, parsed.packages);
}

/** How many advisories the store holds (from the cached index): 0 until a feed is imported. */
export async function importedAdvisoryCount(store: Store): Promise<number> {
  return (await advisoryIndex(store)).imported;
}

/** One identity's matching advisories, from its latest report (none without one). */
export async function identityAdvisories(store: Store, spiffeId: string): Promise<AdvisoryMatch[]> {
  const [latest] = await store.postureHistory(spiffeId, 1);
  if (!latest) return [];
  return matchReport(await advisoryIndex(store), latest.report);
}

/** Every advisory that affects at least one active identity, most severe and widest first. */
export async function fleetVulns(store: Store, now: Date): Promise<FleetVuln[]> {
  const index = await advisoryIndex(store);
  const reports = new Map((await store.latestPosture()).map((r) => [r.spiffeId, r.report]));
  const byAdvisory = new Map<string, FleetVuln>();
  for (const identity of await activeIdentities(store, now)) {
    const report = reports.get(identity.spiffeId);
    if (!report) continue;
    for (const m of matchReport(index, report)) {
      const vuln = byAdvisory.get(m.id) ?? { id: m.id, severity: m.severity, summary: m.summary, aliases: m.aliases, identities: [] };
      vuln.identities.push({ name: identity.name, role: identity.role, spiffeId: identity.spiffeId, package: m.package, installed: m.installed, fixed: m.fixed });
      byAdvisory.set(m.id, vuln);
    }
  }
  const rank = (s: Advisory['severity']) => SEVERITY_ORDER.indexOf(s);
  return [...byAdvisory.values()].sort((a, b) => rank(a.severity) - rank(b.severity) || b.identities.length - a.identities.length || a.id.localeCompare(b.id));
}
