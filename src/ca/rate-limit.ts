/**
 * Token buckets (issue 11): one bucket, buckets keyed by a string with bounded memory, and the
 * request rate limits of POST /enroll and POST /renew built from `limits` in gatehouse.yaml.
 * A bucket holds at most `burst` tokens, earns `rate` per second back, and a request takes one.
 */
import { performance } from 'node:perf_hooks';
import type { CaConfig, RateLimitConfig } from '../config/ca-config.js';
import type { Logger } from '../log/logger.js';

/** Milliseconds from a monotonic clock by default: a wall-clock step must neither refill nor drain a bucket. */
export type Clock = () => number;
const monotonic: Clock = () => performance.now();

export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly settings: RateLimitConfig,
    now: number,
  ) {
    this.tokens = settings.burst;
    this.at = now;
  }

  /** Whether one token is there at `now` (earning back what the time since the last look allows). */
  ready(now: number): boolean {
    this.refill(now);
    return this.tokens >= 1;
  }

  /** Takes one token; call after ready(). */
  take(): void {
    this.tokens -= 1;
  }

  /** A full bucket is the same as a new one: forgetting it loses nothing. */
  full(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.settings.burst;
  }

  /**
   * Whole seconds until a token is back, at least 1: Retry-After carries delay-seconds, a
   * non-negative integer (RFC 9110 §10.2.3), and 0 would invite an immediate retry.
   */
  retryAfterSeconds(now: number): number {
    this.refill(now);
    return Math.max(1, Math.ceil((1 - this.tokens) / this.settings.rate));
  }

  private refill(now: number): void {
    if (now <= this.at) return;
    this.tokens = Math.min(this.settings.burst, this.tokens + ((now - this.at) / 1000) * this.settings.rate);
    this.at = now;
  }
}

export type Take = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/** Keys tracked at most by one KeyedTokenBuckets: about 100 bytes each. */
export const DEFAULT_MAX_KEYS = 10_000;
/** Full buckets forgotten per call, so memory shrinks back after a flood without a sweep timer. */
const PRUNE_PER_CALL = 2;

/**
 * One bucket per key (a source address, a token, a certificate serial), at most `maxKeys` of
 * them: keys made up by an attacker (sprayed addresses, invented tokens) cannot grow memory
 * without bound. The map is kept in least-recently-used order; the oldest buckets are dropped
 * first when full, and when none is full the least recently used goes anyway: it comes back
 * with a full bucket, which a client with fresh keys would get in any case.
 */
export class KeyedTokenBuckets {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly now: Clock;
  private readonly maxKeys: number;

  constructor(
    private readonly settings: RateLimitConfig,
    options: { now?: Clock; maxKeys?: number } = {},
  ) {
    this.now = options.now ?? monotonic;
    this.maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS;
  }

  /** Keys tracked now. */
  get size(): number {
    return this.buckets.size;
  }

  /** Takes a token of `key`'s bucket, or says how long to wait for one. */
  take(key: string): Take {
    const now = this.now();
    const bucket = this.bucket(key, now);
    if (!bucket.ready(now)) return { allowed: false, retryAfterSeconds: bucket.retryAfterSeconds(now) };
    bucket.take();
    return { allowed: true };
  }

  /** `key`'s bucket, made full if new, and marked most recently used. */
  bucket(key: string, now: number = this.now()): TokenBucket {
    let bucket = this.buckets.get(key);
    if (bucket) this.buckets.delete(key);
    else {
      this.prune(now);
      bucket = new TokenBucket(this.settings, now);
    }
    this.buckets.set(key, bucket);
    return bucket;
  }

  private prune(now: number): void {
    let pruned = 0;
    for (const [key, oldest] of this.buckets) {
      if (this.buckets.size < this.maxKeys && (pruned >= PRUNE_PER_CALL || !oldest.full(now))) return;
      this.buckets.delete(key);
      pruned++;
    }
  }
}

export type LimitedEndpoint = 'enroll' | 'renew';
/** What a bucket is keyed by: the peer address, the join token, the presented certificate's serial. */
export type LimitKey = 'source' | 'token' | 'certificate';

/** A refusal is logged at most once a minute per endpoint and key, with the count since the last line. */
const LOG_EVERY_SECONDS = 60;

/**
 * The request rate limits of the CA API, one set of buckets per endpoint and key. Refusals are
 * reported (metrics) every time and logged at warn once a minute per limit, never audited: a
 * flood must not write per request.
 */
export class RequestRateLimits {
  private readonly limits = new Map<string, KeyedTokenBuckets>();
  private readonly logs = new Map<string, { bucket: TokenBucket; refused: number }>();
  private readonly now: Clock;

  constructor(
    limits: CaConfig['limits'],
    private readonly options: {
      logger?: Logger;
      onLimited?: (endpoint: LimitedEndpoint, key: LimitKey) => void;
      now?: Clock;
      maxKeys?: number;
    } = {},
  ) {
    this.now = options.now ?? monotonic;
    const configured: Array<[LimitedEndpoint, LimitKey, RateLimitConfig | null]> = [
      ['enroll', 'source', limits.enroll.perSource],
      ['enroll', 'token', limits.enroll.perToken],
      ['renew', 'source', limits.renew.perSource],
      ['renew', 'certificate', limits.renew.perCertificate],
    ];
    for (const [endpoint, key, settings] of configured) {
      if (settings)
        this.limits.set(
          `${endpoint}:${key}`,
          new KeyedTokenBuckets(settings, { now: this.now, ...(options.maxKeys ? { maxKeys: options.maxKeys } : {}) }),
        );
    }
  }

  /** Takes a token for `value` from the limit of `endpoint` by `key`; always allowed when that limit is off. */
  take(endpoint: LimitedEndpoint, key: LimitKey, value: string): Take {
    const verdict = this.limits.get(`${endpoint}:${key}`)?.take(value) ?? { allowed: true };
    if (!verdict.allowed) this.refused(endpoint, key, verdict.retryAfterSeconds);
    return verdict;
  }

  private refused(endpoint: LimitedEndpoint, key: LimitKey, retryAfterSeconds: number): void {
    this.options.onLimited?.(endpoint, key);
    const name = `${endpoint}:${key}`;
    const now = this.now();
    let log = this.logs.get(name);
    if (!log)
      this.logs.set(
        name,
        (log = { bucket: new TokenBucket({ rate: 1 / LOG_EVERY_SECONDS, burst: 1 }, now), refused: 0 }),
      );
    log.refused++;
    if (!log.bucket.ready(now)) return;
    log.bucket.take();
    this.options.logger?.warn('ca.rate_limited', {
      endpoint,
      limit: key,
      refusedSinceLastLine: log.refused,
      retryAfterSeconds,
      note: `further refusals of this limit are logged at most once every ${LOG_EVERY_SECONDS} s; see gatehouse_ca_rate_limited_total`,
    });
    log.refused = 0;
  }
}

/** The per-source key of a peer address: an IPv4-mapped IPv6 address is its IPv4 address, so dual-stack listeners count one source once. */
export function sourceKey(remoteAddress: string | undefined): string {
  if (!remoteAddress) return 'unknown';
  return remoteAddress.startsWith('::ffff:') && remoteAddress.includes('.') ? remoteAddress.slice(7) : remoteAddress;
}
