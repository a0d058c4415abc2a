/**
 * What the dashboard shows about device posture: each identity's latest score, the fleet page's
 * "Score below" and "Report older than" filters, counts by rating, a report's checks in the order
 * to fix them. Pure: no I/O, the clock is an argument. The bands and the filter rules are
 * posture-views.ts's, so the dashboard counts as `gatehouse fleet posture` and the metrics do.
 */
import { isBelow, isStale, postureBand, type PostureQuery, type PostureRating } from '../ca/posture-views.js';
import { SELF_RENEWED_ROLES } from '../ca/active-identities.js';
import { parseDurationMs } from '../config/duration.js';
import type { CheckResult } from '../posture/check.js';
import type { IdentityView } from './fleet-model.js';

export type RatingOrNone = PostureRating | 'none';
export const RATINGS: readonly RatingOrNone[] = ['good', 'fair', 'poor', 'none'];
export const RATING_LABELS: Record<RatingOrNone, string> = {
  good: 'Good',
  fair: 'Fair',
  poor: 'Poor',
  none: 'No report',
};

/** An identity's latest report, as the store summarises it. */
export interface LatestScore {
  score: number | null;
  receivedAt: Date;
}

/** Latest scores by SPIFFE ID. */
export type ScoreIndex = ReadonlyMap<string, LatestScore>;

/** What "Report older than" offers. */
export const STALE_CHOICES: ReadonlyArray<{ value: string; label: string }> = [
  { value: '1h', label: '1 hour' },
  { value: '2h', label: '2 hours' },
  { value: '24h', label: '24 hours' },
  { value: '7d', label: '7 days' },
];

export interface PostureFilterInput {
  /** The query as applied: valid values only, for the form. */
  below: string;
  stale: string;
  query: PostureQuery;
  /** One sentence per ignored parameter. */
  problems: string[];
}

/** `below` (1–100) and `stale` (one of STALE_CHOICES) from the query; anything else is ignored and said. */
export function readPostureFilter(params: URLSearchParams): PostureFilterInput {
  const belowText = params.get('below') ?? '';
  const staleText = params.get('stale') ?? '';
  const problems: string[] = [];
  const query: PostureQuery = {};
  if (belowText !== '') {
    const below = /^\d{1,3}$/.test(belowText) ? Number(belowText) : NaN;
    if (below >= 1 && below <= 100) query.below = below;
    else problems.push(`"Score below" must be a whole number from 1 to 100; "${belowText}" was ignored.`);
  }
  if (staleText !== '') {
    if (STALE_CHOICES.some((c) => c.value === staleText)) query.staleMs = parseDurationMs(staleText)!;
    else
      problems.push(
        `"Report older than" must be one of ${STALE_CHOICES.map((c) => c.value).join(', ')}; "${staleText}" was ignored.`,
      );
  }
  return {
    below: query.below === undefined ? '' : String(query.below),
    stale: query.staleMs === undefined ? '' : staleText,
    query,
    problems,
  };
}

export function hasPostureFilter(query: PostureQuery): boolean {
  return query.below !== undefined || query.staleMs !== undefined;
}

/**
 * Identities the posture filters select. Only those expected to report take part: a revoked or
 * expired identity can no longer report and the CA's own are not machines, as in fleetPosture.
 */
export function filterByPosture(
  identities: readonly IdentityView[],
  scores: ScoreIndex,
  query: PostureQuery,
  now: Date,
): IdentityView[] {
  if (!hasPostureFilter(query)) return [...identities];
  return identities.filter((i) => {
    if (i.state === 'revoked' || i.state === 'expired' || SELF_RENEWED_ROLES.has(i.role)) return false;
    const latest = scores.get(i.spiffeId);
    return isBelow(latest?.score ?? null, query.below) && isStale(latest?.receivedAt ?? null, query.staleMs, now);
  });
}

/** good, fair, poor; none for no score (never reported, or no check decided). */
export function ratingOf(score: number | null | undefined): RatingOrNone {
  return postureBand(score ?? null)?.rating ?? 'none';
}

export function countByRating(scores: ReadonlyArray<{ score: number | null }>): Record<RatingOrNone, number> {
  const counts: Record<RatingOrNone, number> = { good: 0, fair: 0, poor: 0, none: 0 };
  for (const s of scores) counts[ratingOf(s.score)]++;
  return counts;
}

const VERDICT_ORDER = { fail: 0, unknown: 1, pass: 2 } as const;

/** Failing checks first, then those that could not tell, then passing ones; heaviest first within each. */
export function checksFailingFirst(checks: readonly CheckResult[]): CheckResult[] {
  return [...checks].sort(
    (a, b) => VERDICT_ORDER[a.verdict] - VERDICT_ORDER[b.verdict] || b.weight - a.weight || a.id.localeCompare(b.id),
  );
}
