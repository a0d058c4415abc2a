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

/** How long an index is reused: advisories imported by another process show within this. */
const INDEX_TTL_MS = 30_000;
const indexes = new WeakMap<Store, { at: number; index: Promise<AdvisoryIndex> }>();

/** The advisories indexed for matching, rebuilt at most every INDEX_TTL_MS (feeds hold thousands). */
export function advisoryIndex(store: Store, now = Date.now()): Promise<AdvisoryIndex> {
  const cached = indexes.get(store);
  if (cached && now - cached.at < INDEX_TTL_MS) return cached.index;
  const index = store.listAdvisories().then((records) => new AdvisoryIndex(records.map((r) => JSON.parse(r.record) as Advisory)));
  indexes.set(store, { at: now, index });
  index.catch(() => indexes.delete(store));
  return index;
}

/** After an import in this process: the next listing sees it at once. */
export function forgetAdvisoryIndex(store: Store): void {
  indexes.delete(store);
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
