/**
 * The fleet's posture as admins see it (`gatehouse fleet posture`, GET /admin/posture) and as
 * metrics count it: every active identity with its latest report's score, or none when it never
 * reported. Filters: a score below N (no score counts as below), a report older than a duration
 * (never reported counts as stale). The score bands and both filter rules are defined here once,
 * for the CLI, the admin API, the metrics and the dashboard.
 */
import type { Store } from '../store/store.js';
import { activeIdentities } from './active-identities.js';

export interface PostureScore {
  name: string;
  role: string;
  spiffeId: string;
  score: number | null;
  reportedAt: string | null;
}

export interface PostureView extends PostureScore {
  failing: string[];
}

export interface PostureQuery {
  below?: number;
  staleMs?: number;
}

export type PostureRating = 'good' | 'fair' | 'poor';

/**
 * Score bands, best first: the `band` labels of gatehouse_ca_posture_identities and the rating
 * the dashboard gives them. The one place the thresholds live.
 */
export const POSTURE_BANDS = [
  { band: '90-100', low: 90, high: 100, rating: 'good' },
  { band: '70-89', low: 70, high: 89, rating: 'fair' },
  { band: '50-69', low: 50, high: 69, rating: 'poor' },
  { band: '0-49', low: 0, high: 49, rating: 'poor' },
] as const satisfies ReadonlyArray<{ band: string; low: number; high: number; rating: PostureRating }>;
export type PostureBand = (typeof POSTURE_BANDS)[number];

/** A report older than this is stale (the agent reports hourly): the metric's threshold. */
export const POSTURE_STALE_MS = 2 * 3_600_000;

/** The band of a score; null for no score (never reported, or no check decided). */
export function postureBand(score: number | null): PostureBand | null {
  return score === null ? null : (POSTURE_BANDS.find((b) => score >= b.low && score <= b.high) ?? null);
}

/** The scores a rating covers, e.g. poor: 0 to 69. */
export function ratingRange(rating: PostureRating): { low: number; high: number } {
  const bands = POSTURE_BANDS.filter((b) => b.rating === rating);
  return { low: Math.min(...bands.map((b) => b.low)), high: Math.max(...bands.map((b) => b.high)) };
}

/** The `below` filter: no score counts as below. */
export function isBelow(score: number | null, below: number | undefined): boolean {
  return below === undefined || score === null || score < below;
}

/** The `stale` filter: never reported counts as stale. */
export function isStale(reportedAt: Date | string | null, staleMs: number | undefined, now: Date): boolean {
  return staleMs === undefined || reportedAt === null || now.getTime() - new Date(reportedAt).getTime() > staleMs;
}

/** Scores only, from the store's summary (no report is read): cheap enough for every scrape. */
export async function postureScores(store: Store, now: Date): Promise<PostureScore[]> {
  const latest = new Map((await store.latestPostureScores()).map((r) => [r.spiffeId, r]));
  return (await activeIdentities(store, now)).map(({ name, role, spiffeId }) => {
    const record = latest.get(spiffeId);
    return { name, role, spiffeId, score: record?.score ?? null, reportedAt: record?.receivedAt.toISOString() ?? null };
  });
}

export async function fleetPosture(store: Store, query: PostureQuery, now: Date): Promise<PostureView[]> {
  const failing = new Map((await store.latestPosture()).map((r) => [r.spiffeId, failingOf(r.report)]));
  return (await postureScores(store, now))
    .filter((v) => isBelow(v.score, query.below) && isStale(v.reportedAt, query.staleMs, now))
    .map((v) => ({ ...v, failing: failing.get(v.spiffeId) ?? [] }))
    .sort((a, b) => (a.score ?? -1) - (b.score ?? -1) || a.spiffeId.localeCompare(b.spiffeId));
}

/** The failing checks the CA recorded with a report (posture-routes.ts stores them). */
function failingOf(report: string): string[] {
  try {
    const parsed = JSON.parse(report) as { failing?: unknown };
    return Array.isArray(parsed.failing) ? parsed.failing.filter((f): f is string => typeof f === 'string') : [];
  } catch {
    return [];
  }
}
