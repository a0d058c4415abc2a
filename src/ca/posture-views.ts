/**
 * The fleet's posture as admins see it (`gatehouse fleet posture`, GET /admin/posture): every
 * active identity with its latest report's score and failing checks, or none when it never
 * reported. Filters: a score below N (no score counts as below), a report older than a duration
 * (never reported counts as stale).
 */
import type { Store } from '../store/store.js';

export interface PostureView {
  name: string;
  role: string;
  spiffeId: string;
  score: number | null;
  reportedAt: string | null;
  failing: string[];
}

export interface PostureQuery {
  below?: number;
  staleMs?: number;
}

const SELF_RENEWED_ROLES = new Set(['ca-server']);

export async function fleetPosture(store: Store, query: PostureQuery, now: Date): Promise<PostureView[]> {
  const latest = new Map((await store.latestPosture()).map((r) => [r.spiffeId, r]));
  const identities = new Map<string, { name: string; role: string }>();
  for (const cert of await store.listCerts({ state: 'active', now, excludeSuperseded: true })) {
    if (!SELF_RENEWED_ROLES.has(cert.role)) identities.set(cert.spiffeId, { name: cert.name, role: cert.role });
  }
  const views: PostureView[] = [...identities].map(([spiffeId, { name, role }]) => {
    const record = latest.get(spiffeId);
    let failing: string[] = [];
    if (record) {
      try {
        const parsed = JSON.parse(record.report) as { failing?: unknown };
        failing = Array.isArray(parsed.failing) ? parsed.failing.filter((f): f is string => typeof f === 'string') : [];
      } catch {
        failing = [];
      }
    }
    return { name, role, spiffeId, score: record?.score ?? null, reportedAt: record?.receivedAt.toISOString() ?? null, failing };
  });
  return views
    .filter((v) => query.below === undefined || v.score === null || v.score < query.below)
    .filter((v) => query.staleMs === undefined || v.reportedAt === null || now.getTime() - new Date(v.reportedAt).getTime() > query.staleMs)
    .sort((a, b) => (a.score ?? -1) - (b.score ?? -1) || a.spiffeId.localeCompare(b.spiffeId));
}
