/**
 * One route's upstreams: an HTTP/1.1 keep-alive pool, round-robin, with passive failure
 * detection as in nginx (max_fails / fail_timeout): after `maxFails` consecutive failures an
 * upstream rests for `failTimeout`. When every upstream rests, the one whose rest ends first is
 * tried anyway, so a lone upstream that comes back is used at once rather than after a pause.
 */
import { Agent } from 'node:http';

export interface UpstreamTarget {
  /** `http://127.0.0.1:9000` or with a base path, no trailing slash. */
  url: string;
  hostname: string;
  port: number;
  basePath: string;
}

interface Health {
  consecutiveFails: number;
  restingUntil: number;
}

export interface PoolOptions {
  maxFails: number;
  failTimeoutMs: number;
  now?: () => number;
}

export class UpstreamPool {
  readonly agent = new Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 128, scheduling: 'lifo' });
  readonly targets: readonly UpstreamTarget[];
  private readonly health: Health[];
  private next = 0;
  private readonly now: () => number;

  constructor(urls: readonly string[], private readonly options: PoolOptions) {
    this.targets = urls.map((href) => {
      const url = new URL(href);
      return { url: href, hostname: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 80), basePath: url.pathname.replace(/\/$/, '') };
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

  close(): void {
    this.agent.destroy();
  }

  private healthOf(target: UpstreamTarget): Health {
    return this.health[this.targets.indexOf(target)]!;
  }
}
