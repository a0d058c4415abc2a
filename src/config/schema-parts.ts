/** Schema pieces every config file shares (the CA's gatehouse.yaml and the gateway's config). */
import { z } from 'zod';
import { parseDurationMs } from './duration.js';

/** A duration string (`500ms`, `90s`, `15m`, `24h`, `7d`) within [min, max], read as milliseconds. */
export const durationSchema = (min: string, max: string) =>
  z.string().transform((text, ctx) => {
    const ms = parseDurationMs(text);
    if (ms === null)
      ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration like 500ms, 90s, 15m, 24h or 7d` });
    else if (ms < parseDurationMs(min)! || ms > parseDurationMs(max)!)
      ctx.addIssue({ code: 'custom', message: `${text} is outside ${min}–${max}` });
    return ms ?? 0;
  });

export const hostPortSchema = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected HOST:PORT, e.g. 127.0.0.1:8443');

/** A posture requirement (a gateway rule's or a CA role's `posture:`); judged by posture/requirement.ts. */
export interface PostureRequirement {
  /** The CA's score of the latest report must be at least this (no score: not met). */
  minScore?: number;
  /** The latest report must be at most this old. */
  maxAgeMs?: number;
  /** No imported advisory of severity critical may affect the device. */
  noCritical?: boolean;
}

const MAX_AGE_MIN_MS = 60_000;
const MAX_AGE_MAX_MS = 90 * 86_400_000;

/** `posture: { minScore: 70, maxAge: 2h, noCritical: true }`, at least one of them. */
export const postureRequirementSchema = z
  .strictObject({
    minScore: z.number().int().min(0).max(100).optional(),
    maxAge: z
      .string()
      .transform((text, ctx) => {
        const ms = parseDurationMs(text);
        if (ms === null || ms < MAX_AGE_MIN_MS || ms > MAX_AGE_MAX_MS)
          ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration from 1m to 90d, like 2h` });
        return ms ?? 0;
      })
      .optional(),
    noCritical: z.boolean().optional(),
  })
  .refine(
    (p) => p.minScore !== undefined || p.maxAge !== undefined || p.noCritical !== undefined,
    'needs at least one of minScore, maxAge, noCritical',
  )
  .transform((p): PostureRequirement => ({
    ...(p.minScore !== undefined ? { minScore: p.minScore } : {}),
    ...(p.maxAge !== undefined ? { maxAgeMs: p.maxAge } : {}),
    ...(p.noCritical ? { noCritical: true } : {}),
  }));
