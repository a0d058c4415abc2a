/**
 * Advisories in the Open Source Vulnerability format (OSV schema 1.x, https://ossf.github.io/osv-schema/),
 * as OSV.dev, GitHub and Debian publish them, reduced to what the audit matches on: which
 * packages of which ecosystem, which version ranges, and how severe. Unknown fields are ignored
 * (the schema grows); the fields used are checked and bounded.
 */
import { z } from 'zod';
import { cvss3BaseScore, ratingOf, SEVERITY_ORDER, type Severity } from './cvss.js';

/** One OSV range event: exactly one of introduced, fixed, last_affected or limit (schema §affected[].ranges[].events). */
export interface RangeEvent {
  introduced?: string;
  fixed?: string;
  lastAffected?: string;
  limit?: string;
}

export interface AffectedPackage {
  ecosystem: string;
  name: string;
  /** ECOSYSTEM ranges only: SEMVER and GIT ranges do not describe dpkg versions. */
  ranges: RangeEvent[][];
  /** Versions listed one by one (`versions`), matched exactly. */
  versions: string[];
}

export interface Advisory {
  id: string;
  modified: string;
  withdrawn: string | null;
  summary: string;
  aliases: string[];
  severity: Severity;
  /** The highest CVSS v3 base score given, when one is. */
  cvss: number | null;
  affected: AffectedPackage[];
}

const str = (max: number) => z.string().min(1).max(max);
const version = z.string().min(1).max(256);
const severityEntry = z.object({ type: z.string().max(32), score: z.string().max(256) });
const event = z
  .object({ introduced: version, fixed: version, last_affected: version, limit: version })
  .partial()
  .refine(
    (e) => Object.keys(e).length === 1,
    'each range event has exactly one of introduced, fixed, last_affected, limit',
  );

const osvSchema = z.object({
  schema_version: z.string().max(32).optional(),
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:+-]{0,99}$/, 'an OSV id such as DSA-5532-1 or CVE-2024-1234'),
  modified: z.iso.datetime({ offset: true }),
  withdrawn: z.iso.datetime({ offset: true }).optional(),
  aliases: z.array(str(100)).max(200).optional(),
  summary: z.string().max(10_000).optional(),
  details: z.string().max(1_000_000).optional(),
  severity: z.array(severityEntry).max(20).optional(),
  affected: z
    .array(
      z.object({
        package: z.object({ ecosystem: str(100), name: str(200) }).optional(),
        severity: z.array(severityEntry).max(20).optional(),
        ranges: z
          .array(z.object({ type: z.string().max(32), events: z.array(event).min(1).max(200) }))
          .max(100)
          .optional(),
        versions: z.array(version).max(20_000).optional(),
        ecosystem_specific: z.record(z.string(), z.unknown()).optional(),
        database_specific: z.record(z.string(), z.unknown()).optional(),
      }),
    )
    .max(2_000)
    .optional(),
  database_specific: z.record(z.string(), z.unknown()).optional(),
});

type OsvRecord = z.infer<typeof osvSchema>;

/** The advisory, or what is wrong with the record (paths and messages, bounded). */
export function parseOsv(value: unknown): { ok: true; advisory: Advisory } | { ok: false; problems: string[] } {
  const parsed = osvSchema.safeParse(value);
  if (!parsed.success)
    return {
      ok: false,
      problems: parsed.error.issues
        .slice(0, 3)
        .map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`.slice(0, 200)),
    };
  return { ok: true, advisory: normalize(parsed.data) };
}

function normalize(osv: OsvRecord): Advisory {
  const affected: AffectedPackage[] = [];
  for (const a of osv.affected ?? []) {
    if (!a.package) continue; // an affected entry without a package names nothing we can match
    affected.push({
      ecosystem: a.package.ecosystem,
      name: a.package.name,
      ranges: (a.ranges ?? []).filter((r) => r.type === 'ECOSYSTEM').map((r) => r.events.map(toEvent)),
      versions: a.versions ?? [],
    });
  }
  const { severity, cvss } = severityOf(osv);
  return {
    id: osv.id,
    modified: new Date(osv.modified).toISOString(),
    withdrawn: osv.withdrawn ? new Date(osv.withdrawn).toISOString() : null,
    summary: (osv.summary ?? osv.details ?? '').split('\n')[0]!.slice(0, 300),
    aliases: osv.aliases ?? [],
    severity,
    cvss,
    affected,
  };
}

function toEvent(e: z.infer<typeof event>): RangeEvent {
  if (e.introduced !== undefined) return { introduced: e.introduced };
  if (e.fixed !== undefined) return { fixed: e.fixed };
  if (e.last_affected !== undefined) return { lastAffected: e.last_affected };
  return { limit: e.limit! };
}

/** Words that databases use for their own ratings (GitHub's MODERATE, Debian's urgency, Ubuntu's priority). */
const WORDS: Record<string, Severity> = {
  critical: 'critical',
  high: 'high',
  important: 'high',
  moderate: 'medium',
  medium: 'medium',
  low: 'low',
  negligible: 'low',
  unimportant: 'low',
};

/**
 * The most severe rating any source in the record gives: CVSS v3 vectors (computed), then the
 * databases' own words. CVSS v4 vectors are not computed here; a record with only those is
 * rated by its words, or "unknown".
 */
function severityOf(osv: OsvRecord): { severity: Severity; cvss: number | null } {
  const ratings: Severity[] = [];
  let cvss: number | null = null;
  const entries = [...(osv.severity ?? []), ...(osv.affected ?? []).flatMap((a) => a.severity ?? [])];
  for (const e of entries) {
    if (e.type === 'CVSS_V3') {
      const score = cvss3BaseScore(e.score);
      if (score !== null) {
        cvss = Math.max(cvss ?? 0, score);
        ratings.push(ratingOf(score));
      }
    } else if (e.type === 'Ubuntu') {
      const word = WORDS[e.score.toLowerCase()];
      if (word) ratings.push(word);
    }
  }
  const words = [
    osv.database_specific?.severity,
    ...(osv.affected ?? []).flatMap((a) => [
      a.database_specific?.severity,
      a.ecosystem_specific?.severity,
      a.ecosystem_specific?.urgency,
    ]),
  ];
  for (const w of words) {
    const word = typeof w === 'string' ? WORDS[w.toLowerCase()] : undefined;
    if (word) ratings.push(word);
  }
  const severity =
    ratings.length === 0
      ? 'unknown'
      : ratings.reduce((a, b) => (SEVERITY_ORDER.indexOf(a) <= SEVERITY_ORDER.indexOf(b) ? a : b));
  return { severity, cvss };
}
