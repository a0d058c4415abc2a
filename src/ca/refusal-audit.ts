/**
 * Audit events for requests the CA refused before knowing who sent them. Each is kept small
 * (every text field bounded, no bodies) and rate limited per source address with a token
 * bucket, plus one bucket for all sources together, so a flood without a certificate cannot
 * grow the database by more than a bounded amount (issue 11). Events past the limit are not
 * written but counted, so the flood itself stays visible in the metrics.
 */

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

/** Sources remembered at most; the oldest are forgotten first (they start again with a full bucket). */
const MAX_SOURCES = 10_000;

interface Bucket {
  tokens: number;
  at: number;
}

export class RefusalAuditLimiter {
  private readonly sources = new Map<string, Bucket>();
  private readonly overall: Bucket;

  constructor(
    private readonly perSource: BucketSettings = DEFAULT_PER_SOURCE,
    private readonly all: BucketSettings = DEFAULT_OVERALL,
    private readonly now: () => number = Date.now,
  ) {
    this.overall = { tokens: all.burst, at: now() };
  }

  /** True when an event from `source` may be written now (and takes its token). */
  allow(source: string): boolean {
    const t = this.now();
    let bucket = this.sources.get(source);
    if (!bucket) {
      if (this.sources.size >= MAX_SOURCES) this.sources.delete(this.sources.keys().next().value!);
      bucket = { tokens: this.perSource.burst, at: t };
      this.sources.set(source, bucket);
    }
    refill(bucket, this.perSource, t);
    refill(this.overall, this.all, t);
    if (bucket.tokens < 1 || this.overall.tokens < 1) return false;
    bucket.tokens -= 1;
    this.overall.tokens -= 1;
    return true;
  }
}

function refill(bucket: Bucket, settings: BucketSettings, t: number): void {
  bucket.tokens = Math.min(settings.burst, bucket.tokens + ((t - bucket.at) / 1000) * settings.perSecond);
  bucket.at = t;
}

/** The details of a refusal event with every string cut to MAX_REFUSAL_FIELD_CHARS (marked with `…`). */
export function boundedDetails(details: Record<string, string | number | boolean | null | undefined>): Record<string, string | number | boolean | null> {
  const out: Record<string, string | number | boolean | null> = {};
  for (const [key, value] of Object.entries(details)) {
    if (value === undefined) continue;
    out[key] = typeof value === 'string' && value.length > MAX_REFUSAL_FIELD_CHARS ? `${value.slice(0, MAX_REFUSAL_FIELD_CHARS)}…` : value;
  }
  return out;
}
