/**
 * Audit events for requests the CA refused before knowing who sent them. Each is kept small
 * (every text field bounded, no bodies) and rate limited per source address with a token
 * bucket, plus one bucket for all sources together, so a flood without a certificate cannot
 * grow the database by more than a bounded amount (issue 11). Events past the limit are not
 * written but counted, so the flood itself stays visible in the metrics.
 */
import { KeyedTokenBuckets, TokenBucket } from './rate-limit.js';

/** Longest text kept in any field of a refusal event (a path, a reason). */
export const MAX_REFUSAL_FIELD_CHARS = 200;

export interface BucketSettings {
  /** Events a source may write at once. */
  burst: number;
  /** Events per second it earns back. */
  perSecond: number;
}

/** Per source: 20 at once, then one every 2 s; all sources together: 200 at once, 20 per second. */
export const DEFAULT_PER_SOURCE: BucketSettings = { burst: 20, perSecond: 0.5 };
export const DEFAULT_OVERALL: BucketSettings = { burst: 200, perSecond: 20 };

/** Sources remembered at most (rate-limit.ts forgets full buckets first, then the least recently seen). */
const MAX_SOURCES = 10_000;

export class RefusalAuditLimiter {
  private readonly sources: KeyedTokenBuckets;
  private readonly overall: TokenBucket;

  constructor(
    perSource: BucketSettings = DEFAULT_PER_SOURCE,
    all: BucketSettings = DEFAULT_OVERALL,
    private readonly now: () => number = Date.now,
  ) {
    this.sources = new KeyedTokenBuckets(
      { rate: perSource.perSecond, burst: perSource.burst },
      { now, maxKeys: MAX_SOURCES },
    );
    this.overall = new TokenBucket({ rate: all.perSecond, burst: all.burst }, now());
  }

  /** True when an event from `source` may be written now (and takes its token from both buckets). */
  allow(source: string): boolean {
    const t = this.now();
    const bucket = this.sources.bucket(source, t);
    // Both must have a token before either gives one: a source refused overall keeps its own.
    if (!bucket.ready(t) || !this.overall.ready(t)) return false;
    bucket.take();
    this.overall.take();
    return true;
  }
}

/** The details of a refusal event with every string cut to MAX_REFUSAL_FIELD_CHARS (marked with `…`). */
export function boundedDetails(
  details: Record<string, string | number | boolean | null | undefined>,
): Record<string, string | number | boolean | null> {
  const out: Record<string, string | number | boolean | null> = {};
  for (const [key, value] of Object.entries(details)) {
    if (value === undefined) continue;
    out[key] =
      typeof value === 'string' && value.length > MAX_REFUSAL_FIELD_CHARS
        ? `${value.slice(0, MAX_REFUSAL_FIELD_CHARS)}…`
        : value;
  }
  return out;
}
