/**
 * One identity's standing for posture requirements: its latest report's score and failing
 * checks, and the critical advisories that affect it. Gateways ask for it (GET /v1/posture), and
 * the CA judges renewals of roles that require posture with it (posture/requirement.ts).
 */
import { GatehouseError } from '../errors/errors.js';
import type { Store } from '../store/store.js';
import type { CertRecord } from '../store/store-certificates.js';
import {
  describeRequirement,
  judgePosture,
  type PostureRequirement,
  type PostureStanding,
} from '../posture/requirement.js';
import { reportAdvisories } from './vuln-views.js';

export async function postureStanding(store: Store, spiffeId: string): Promise<PostureStanding> {
  const [latest] = await store.postureHistory(spiffeId, 1);
  if (!latest) return { spiffeId, score: null, reportedAt: null, failing: [], critical: [] };
  const matches = await reportAdvisories(store, latest);
  return {
    spiffeId,
    score: latest.score,
    reportedAt: latest.receivedAt.toISOString(),
    failing: failingChecks(latest.report),
    critical: [...new Set(matches.filter((m) => m.severity === 'critical').map((m) => m.id))],
  };
}

/** The failing checks in the order the CA recorded (heaviest first), with their reasons. */
function failingChecks(report: string): PostureStanding['failing'] {
  try {
    const parsed = JSON.parse(report) as { failing?: unknown; checks?: Array<{ id?: unknown; reason?: unknown }> };
    const reasons = new Map((parsed.checks ?? []).map((c) => [String(c.id), String(c.reason ?? '')]));
    return (Array.isArray(parsed.failing) ? parsed.failing : [])
      .filter((f): f is string => typeof f === 'string')
      .map((id) => ({ id, reason: reasons.get(id) ?? '' }));
  } catch {
    return [];
  }
}

/** A renewal of a role with `posture:` goes ahead only when the identity's standing meets it. */
export async function requirePosture(
  store: Store,
  cert: CertRecord,
  requirement: PostureRequirement,
  now: Date,
): Promise<void> {
  const judged = judgePosture(requirement, await postureStanding(store, cert.spiffeId), now);
  if (judged.met) return;
  throw new GatehouseError(
    'GH_POSTURE_REQUIRED',
    `role ${cert.role} renews only with posture (${describeRequirement(requirement)}), and ${cert.spiffeId} does not meet it: ${judged.problems.join('; ')}. Fix that, send a report (gatehouse agent report), then renew; the current certificate stays valid until ${cert.notAfter.toISOString()}`,
  );
}
