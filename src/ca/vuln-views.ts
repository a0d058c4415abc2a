/**
 * The CVE audit as admins see it (`gatehouse fleet vulns`, GET /admin/vulns, the dashboard) and
 * as posture rules need it: the imported advisories matched against each active identity's
 * latest report (its OS and installed packages).
 */
import type { Store } from '../store/store.js';
import type { PostureRecord } from '../store/store-posture.js';
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
  const index = store
    .listAdvisories()
    .then((records) => new AdvisoryIndex(records.map((r) => JSON.parse(r.record) as Advisory)));
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

/**
 * Matches per report, kept with the index they were made with: a device reports hourly and
 * advisories change at imports, so the fleet page and posture lookups mostly find them here
 * instead of parsing a report with its package list again.
 */
const memos = new WeakMap<AdvisoryIndex, Map<string, AdvisoryMatch[]>>();
const MEMO_MAX = 50_000;

type ReportKey = Pick<PostureRecord, 'spiffeId' | 'receivedAt'>;
const keyOf = (r: ReportKey) => `${r.spiffeId}\0${r.receivedAt.getTime()}`;

/** The matches of an identity's latest report, read from the store only when not already matched (or given). */
async function matchLatest(
  store: Store,
  index: AdvisoryIndex,
  latest: ReportKey & { report?: string },
): Promise<AdvisoryMatch[]> {
  let memo = memos.get(index);
  if (!memo) memos.set(index, (memo = new Map()));
  const key = keyOf(latest);
  const known = memo.get(key);
  if (known) return known;
  const [record] =
    latest.report !== undefined ? [latest as PostureRecord] : await store.postureHistory(latest.spiffeId, 1);
  const matches = record ? matchReport(index, record.report) : [];
  if (memo.size >= MEMO_MAX) memo.clear();
  memo.set(record ? keyOf(record) : key, matches);
  return matches;
}

/** How many advisories the store holds (from the cached index): 0 until a feed is imported. */
export async function importedAdvisoryCount(store: Store): Promise<number> {
  return (await advisoryIndex(store)).imported;
}

/** One identity's matching advisories, from its latest report (none without one). */
export async function identityAdvisories(store: Store, spiffeId: string): Promise<AdvisoryMatch[]> {
  const [latest] = await store.postureHistory(spiffeId, 1);
  return latest ? reportAdvisories(store, latest) : [];
}

/** The advisories matching a report already read (the identity's latest). */
export async function reportAdvisories(store: Store, record: PostureRecord): Promise<AdvisoryMatch[]> {
  return matchLatest(store, await advisoryIndex(store), record);
}

/** Every advisory that affects at least one active identity, most severe and widest first. */
export async function fleetVulns(store: Store, now: Date): Promise<FleetVuln[]> {
  const index = await advisoryIndex(store);
  if (index.imported === 0) return [];
  const latest = new Map((await store.latestPostureScores()).map((r) => [r.spiffeId, r]));
  const byAdvisory = new Map<string, FleetVuln>();
  for (const identity of await activeIdentities(store, now)) {
    const report = latest.get(identity.spiffeId);
    if (!report) continue;
    for (const m of await matchLatest(store, index, report)) {
      const vuln = byAdvisory.get(m.id) ?? {
        id: m.id,
        severity: m.severity,
        summary: m.summary,
        aliases: m.aliases,
        identities: [],
      };
      vuln.identities.push({
        name: identity.name,
        role: identity.role,
        spiffeId: identity.spiffeId,
        package: m.package,
        installed: m.installed,
        fixed: m.fixed,
      });
      byAdvisory.set(m.id, vuln);
    }
  }
  const rank = (s: Advisory['severity']) => SEVERITY_ORDER.indexOf(s);
  return [...byAdvisory.values()].sort(
    (a, b) =>
      rank(a.severity) - rank(b.severity) ||
      b.identities.length - a.identities.length ||
      (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
}
