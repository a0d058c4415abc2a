/**
 * A posture requirement (a gateway rule's or a CA role's `posture:`, parsed by the schema in
 * config/schema-parts.ts) and the judgement of a device's standing against it. Both the gateway and the CA judge with this one function, so a
 * device refused at one is refused for the same reasons at the other.
 */
import { z } from 'zod';
import type { PostureRequirement } from '../config/schema-parts.js';

/** The `posture:` block as operators write it: a config schema part, read by the CA's config and the gateway's policy. */
export { postureRequirementSchema, type PostureRequirement } from '../config/schema-parts.js';

/** What the CA says of one identity (GET /v1/posture?identity=…). */
export interface PostureStanding {
  spiffeId: string;
  score: number | null;
  /** When the CA received the latest report; null: never reported. */
  reportedAt: string | null;
  /** The failing checks of the latest report, heaviest first. */
  failing: Array<{ id: string; reason: string }>;
  /** IDs of the imported critical advisories that affect the latest report's packages. */
  critical: string[];
}

/** A standing as the CA sends it: checked, because a gateway decides on it. */
export const postureStandingSchema = z.object({
  spiffeId: z.string().max(2048),
  score: z.number().int().min(0).max(100).nullable(),
  reportedAt: z.iso.datetime({ offset: true }).nullable(),
  failing: z.array(z.object({ id: z.string().max(64), reason: z.string().max(300) })).max(64),
  critical: z.array(z.string().max(100)).max(10_000),
});

export type PostureJudgement = { met: true } | { met: false; problems: string[] };

export function judgePosture(requirement: PostureRequirement, standing: PostureStanding, now: Date): PostureJudgement {
  if (standing.reportedAt === null)
    return { met: false, problems: ['the device has never sent a posture report (gatehouse agent report)'] };
  const problems: string[] = [];
  const ageMs = now.getTime() - Date.parse(standing.reportedAt);
  if (requirement.maxAgeMs !== undefined && ageMs > requirement.maxAgeMs) {
    problems.push(`its latest posture report is ${formatAge(ageMs)} old, more than ${formatAge(requirement.maxAgeMs)}`);
  }
  if (requirement.minScore !== undefined && (standing.score === null || standing.score < requirement.minScore)) {
    const failing = standing.failing.map((f) => f.id);
    const score =
      standing.score === null
        ? 'no posture score (no check could decide)'
        : `posture score ${standing.score} is below ${requirement.minScore}`;
    problems.push(failing.length ? `${score}; failing: ${failing.join(', ')}` : score);
  }
  if (requirement.noCritical && standing.critical.length > 0) {
    problems.push(
      `critical advisories affect it: ${standing.critical.slice(0, 5).join(', ')}${standing.critical.length > 5 ? `, and ${standing.critical.length - 5} more` : ''}`,
    );
  }
  return problems.length === 0 ? { met: true } : { met: false, problems };
}

/** `score ≥ 70, a report at most 2h old, no critical advisory`, for policy summaries and explanations. */
export function describeRequirement(requirement: PostureRequirement): string {
  return [
    ...(requirement.minScore !== undefined ? [`score ≥ ${requirement.minScore}`] : []),
    ...(requirement.maxAgeMs !== undefined ? [`a report at most ${formatAge(requirement.maxAgeMs)} old`] : []),
    ...(requirement.noCritical ? ['no critical advisory'] : []),
  ].join(', ');
}

function formatAge(ms: number): string {
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 120) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  return hours < 48 ? `${hours}h` : `${Math.floor(hours / 24)}d`;
}
