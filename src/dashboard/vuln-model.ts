/**
 * What the dashboard shows of the CVE audit: each identity's matching advisories (from one
 * `fleetVulns` listing per page view), the fleet page's "Affected by advisory" and "Advisory
 * severity" filters, and counts. Pure: no I/O. Advisories come from imported feeds and are
 * untrusted text: nothing here renders them.
 */
import type { FleetVuln } from '../ca/vuln-views.js';
import { SEVERITY_ORDER, type Severity } from '../posture/vulns/cvss.js';
import type { IdentityView } from './fleet-model.js';

/** What "Advisory severity" offers: at least one advisory of this severity or worse. */
export const SEVERITY_FILTERS = ['critical', 'high', 'medium', 'low'] as const;
export type SeverityFilter = (typeof SEVERITY_FILTERS)[number];

export const SEVERITY_LABELS: Record<Severity, string> = {
  critical: 'Critical',
  high: 'High',
  medium: 'Medium',
  low: 'Low',
  none: 'None',
  unknown: 'Unknown',
};

/** Longer than any advisory ID or alias (OSV IDs are short): more is ignored and said. */
export const MAX_ADVISORY_QUERY = 100;

/** One advisory as it affects one identity (once, however many of its packages it matches). */
export interface IdentityVuln {
  id: string;
  aliases: readonly string[];
  severity: Severity;
}

/** Each affected identity's advisories by SPIFFE ID, most severe first (the listing's order). */
export type VulnIndex = ReadonlyMap<string, readonly IdentityVuln[]>;

export interface VulnFilterInput {
  /** As applied, for the form: trimmed, '' when absent or ignored. */
  advisory: string;
  severity: SeverityFilter | '';
  problems: string[];
}

export function readVulnFilter(params: URLSearchParams): VulnFilterInput {
  const advisory = (params.get('advisory') ?? '').trim();
  const severity = params.get('severity') ?? '';
  const problems: string[] = [];
  const result: VulnFilterInput = { advisory: '', severity: '', problems };
  if (advisory.length > MAX_ADVISORY_QUERY)
    problems.push(
      `"Affected by advisory" takes one advisory ID of at most ${MAX_ADVISORY_QUERY} characters; the value given was ignored.`,
    );
  else result.advisory = advisory;
  if (severity !== '') {
    if ((SEVERITY_FILTERS as readonly string[]).includes(severity)) result.severity = severity as SeverityFilter;
    else problems.push(`"Advisory severity" must be one of ${SEVERITY_FILTERS.join(', ')}; "${severity}" was ignored.`);
  }
  return result;
}

export function indexVulns(vulns: readonly FleetVuln[]): VulnIndex {
  const index = new Map<string, IdentityVuln[]>();
  for (const v of vulns) {
    for (const i of v.identities) {
      const list = index.get(i.spiffeId) ?? [];
      if (!list.some((x) => x.id === v.id)) list.push({ id: v.id, aliases: v.aliases, severity: v.severity });
      index.set(i.spiffeId, list);
    }
  }
  return index;
}

/** The advisory's ID or one of its aliases, case-insensitively. */
export function isKnownAs(vuln: { id: string; aliases: readonly string[] }, query: string): boolean {
  const q = query.toLowerCase();
  return vuln.id.toLowerCase() === q || vuln.aliases.some((a) => a.toLowerCase() === q);
}

export function atLeast(severity: Severity, floor: SeverityFilter): boolean {
  return SEVERITY_ORDER.indexOf(severity) <= SEVERITY_ORDER.indexOf(floor);
}

/**
 * Identities the advisory filters select: only those with a matching advisory, so only active
 * ones that reported (as `fleetVulns` lists them). Without a filter, all of `identities`.
 */
export function filterByVulns(
  identities: readonly IdentityView[],
  index: VulnIndex,
  filter: Pick<VulnFilterInput, 'advisory' | 'severity'>,
): IdentityView[] {
  if (!filter.advisory && !filter.severity) return [...identities];
  return identities.filter((i) => {
    const vulns = index.get(i.spiffeId) ?? [];
    return (
      (!filter.advisory || vulns.some((v) => isKnownAs(v, filter.advisory))) &&
      (!filter.severity || vulns.some((v) => atLeast(v.severity, filter.severity as SeverityFilter)))
    );
  });
}

/** The most severe of an identity's advisories (the index keeps them most severe first). */
export function worstSeverity(vulns: readonly IdentityVuln[]): Severity | null {
  return vulns.reduce<Severity | null>(
    (worst, v) =>
      worst === null || SEVERITY_ORDER.indexOf(v.severity) < SEVERITY_ORDER.indexOf(worst) ? v.severity : worst,
    null,
  );
}

/** Identities with at least one advisory of `floor` or worse. */
export function countAtLeast(index: VulnIndex, floor: SeverityFilter): number {
  return [...index.values()].filter((vulns) => vulns.some((v) => atLeast(v.severity, floor))).length;
}
