/**
 * One route's upstreams: an undici keep-alive pool per upstream, round-robin, with passive failure
 * detection as in nginx (max_fails / fail_timeout): after `maxFails` consecutive failures an
 * upstream rests for `failTimeout`. When every upstream rests, the one whose rest ends first is
 * tried anyway, so a lone upstream that comes back is used at once rather than after a pause.
 */
import { Pool } from 'undici';

export interface UpstreamTarget {
  /** `http://127.0.0.1:9000` or with a base path, no trailing slash. */
  url: string;
  hostname: string;
  port: number;
  basePath: string;
  /** Keep-alive HTTP/1.1 connections to this upstream (undici writes the request framing). */
  dispatcher: Pool;
}

interface Health {
  consecutiveFails: number;
  restingUntil: number;
}

export interface PoolOptions {
  maxFails: number;
  failTimeoutMs: number;
  /** How long a connection attempt may take (undici's connect timeout). */
  connectTimeoutMs?: number;
  now?: () => number;
}

/** Idle upstream connections close after this, under Node's own 5 s server keep-alive default. */
const IDLE_KEEP_ALIVE_MS = 4_000;

export class UpstreamPool {
  readonly targets: readonly UpstreamTarget[];
  private readonly health: Health[];
  private next = 0;
  private readonly now: () => number;

  constructor(
    urls: readonly string[],
    private readonly options: PoolOptions,
  ) {
    this.targets = urls.map((href) => {
      const url = new URL(href);
      return {
        url: href,
        hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port: Number(url.port || 80),
        basePath: url.pathname.replace(/\/$/, ''),
        // No pipelining: a request is written only once the previous response has been read,
        // so a slow or non-idempotent request never holds back, or is replayed after, another.
        dispatcher: new Pool(url.origin, {
          connections: 512,
          pipelining: 1,
          keepAliveTimeout: IDLE_KEEP_ALIVE_MS,
          keepAliveMaxTimeout: 60_000,
          connect: { timeout: options.connectTimeoutMs ?? 5_000 },
          strictContentLength: true,
        }),
      };
    });
    this.health = this.targets.map(() => ({ consecutiveFails: 0, restingUntil: 0 }));
    this.now = options.now ?? Date.now;
  }

  /** The next upstream in turn that is not resting. */
  pick(): UpstreamTarget {
    const now = this.now();
    const n = this.targets.length;
    for (let i = 0; i < n; i++) {
      const index = (this.next + i) % n;
      if (this.health[index]!.restingUntil <= now) {
        this.next = (index + 1) % n;
        return this.targets[index]!;
      }
    }
    let soonest = 0;
    for (let i = 1; i < n; i++) if (this.health[i]!.restingUntil < this.health[soonest]!.restingUntil) soonest = i;
    return this.targets[soonest]!;
  }

  succeeded(target: UpstreamTarget): void {
    const h = this.healthOf(target);
    h.consecutiveFails = 0;
    h.restingUntil = 0;
  }

  /** Returns true when this failure puts the upstream to rest. */
  failed(target: UpstreamTarget): boolean {
    const h = this.healthOf(target);
    h.consecutiveFails++;
    if (h.consecutiveFails >= this.options.maxFails) {
      h.restingUntil = this.now() + this.options.failTimeoutMs;
      h.consecutiveFails = 0;
      return true;
    }
    return false;
  }

  isResting(target: UpstreamTarget): boolean {
    return this.healthOf(target).restingUntil > this.now();
  }

  /** Closes every connection; requests still in flight fail. */
  close(): void {
    for (const target of this.targets) void target.dispatcher.destroy().catch(() => undefined);
  }

  private healthOf(target: UpstreamTarget): Health {
    return this.health[this.targets.indexOf(target)]!;
  }
}
