/**
 * The fleet's posture as admins see it (`gatehouse fleet posture`, GET /admin/posture) and as
 * metrics count it: every active identity with its latest report's score, or none when it never
 * reported. Filters: a score below N (no score counts as below), a report older than a duration
 * (never reported counts as stale).
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
    .filter((v) => query.below === undefined || v.score === null || v.score < query.below)
    .filter((v) => query.staleMs === undefined || v.reportedAt === null || now.getTime() - new Date(v.reportedAt).getTime() > query.staleMs)
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
