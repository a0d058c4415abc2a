/**
 * What a CA accepts as a posture report: the shape agents send, every string and list bounded so
 * one report cannot fill the store. The score is not taken from the agent: the CA computes it
 * from the checks (report.ts, scoreOf).
 */
import { z } from 'zod';
import type { PostureReport } from './report.js';

const text = (max: number) => z.string().max(max);
const MAX_PACKAGES = 20_000;

export const postureReportSchema = z.strictObject({
  format: z.literal(1),
  collectedAt: z.iso.datetime({ offset: true }),
  score: z.number().int().min(0).max(100).nullable(),
  failing: z.array(text(64)).max(64),
  checks: z
    .array(
      z.strictObject({
        id: z.string().regex(/^[a-z0-9-]{1,64}$/),
        verdict: z.enum(['pass', 'fail', 'unknown']),
        weight: z.number().int().min(0).max(100),
        reason: text(300),
        details: z.record(z.string().max(64), z.unknown()).optional(),
      }),
    )
    .max(64),
  facts: z.strictObject({
    hostname: text(200).nullable(),
    kernel: text(200).nullable(),
    uptimeSeconds: z.number().int().min(0).nullable(),
    bootedAt: z.iso.datetime({ offset: true }).nullable(),
  }),
  packages: z
    .array(
      z.strictObject({
        name: text(128),
        version: text(128),
        source: text(128),
        sourceVersion: text(128),
        architecture: text(32).nullable(),
      }),
    )
    .max(MAX_PACKAGES)
    .nullable(),
});

/** The report, or a list of what is wrong with it (paths and messages, bounded). */
export function validatePostureReport(
  value: unknown,
): { ok: true; report: PostureReport } | { ok: false; problems: string[] } {
  const parsed = postureReportSchema.safeParse(value);
  if (parsed.success) return { ok: true, report: parsed.data as PostureReport };
  return {
    ok: false,
    problems: parsed.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`.slice(0, 200)),
  };
}
