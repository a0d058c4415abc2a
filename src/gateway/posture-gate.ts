/**
 * Posture rules at the gateway: the CA's standing for a device (GET /v1/posture over mutual TLS
 * with the gateway's own certificate), cached per identity, judged against the deciding rule's
 * requirement (posture/requirement.ts, the same judgement the CA makes for renewals).
 *
 * When the CA cannot be reached, a standing fetched within `staleFor` is still used; after that
 * the request is refused with 503 (fail closed), unless `unsafeAllowWhenUnavailable` is set.
 * A cached answer is judged synchronously, so a device that passes costs no CA round trip per
 * request.
 */
import { request as httpsRequest, Agent } from 'node:https';
import type { Logger } from '../log/logger.js';
import {
  describeRequirement,
  judgePosture,
  postureStandingSchema,
  type PostureRequirement,
  type PostureStanding,
} from '../posture/requirement.js';

export interface PostureGateOptions {
  caUrl: string;
  /** The CA's root bundle (PEM), read when a connection is made. */
  trust: () => string;
  /** The gateway's own certificate chain and key (PEM), current after a renewal. */
  identity: () => { cert: string; key: string };
  refreshMs: number;
  staleForMs: number;
  timeoutMs: number;
  unsafeAllowWhenUnavailable: boolean;
  logger: Logger;
  /** Counts lookups by result: cached, fetched, stale, unavailable, allowed_unsafe. */
  onLookup?: (result: string) => void;
  now?: () => number;
}

export type PostureVerdict =
  { ok: true } | { ok: false; reason: 'POSTURE_FAILED' | 'POSTURE_UNAVAILABLE'; message: string };

const MAX_ENTRIES = 10_000;
const MAX_ANSWER_BYTES = 64 * 1024;

interface Entry {
  standing: PostureStanding;
  fetchedAt: number;
}

export class PostureGate {
  private readonly cache = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<Entry>>();
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 4, timeout: 60_000 });
  private readonly now: () => number;

  constructor(private readonly options: PostureGateOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Synchronous when the cached standing is fresh; otherwise asks the CA. Never rejects. */
  check(
    spiffeId: string | null,
    requirement: PostureRequirement,
    rule: string,
  ): PostureVerdict | Promise<PostureVerdict> {
    if (spiffeId === null)
      return {
        ok: false,
        reason: 'POSTURE_FAILED',
        message: `403 Forbidden: rule ${rule} requires posture, and this certificate has no SPIFFE ID to look it up by`,
      };
    const cached = this.cache.get(spiffeId);
    if (cached && this.now() - cached.fetchedAt < this.options.refreshMs) {
      this.options.onLookup?.('cached');
      return this.judge(cached.standing, requirement, rule);
    }
    return this.fetch(spiffeId).then(
      (entry) => {
        this.options.onLookup?.('fetched');
        return this.judge(entry.standing, requirement, rule);
      },
      (err: Error) => {
        const stale = this.cache.get(spiffeId);
        if (stale && this.now() - stale.fetchedAt < this.options.staleForMs) {
          this.options.onLookup?.('stale');
          this.options.logger.warn('gateway.posture_stale', {
            spiffeId,
            reason: err.message,
            fetchedAt: new Date(stale.fetchedAt).toISOString(),
          });
          return this.judge(stale.standing, requirement, rule);
        }
        this.options.logger.error('gateway.posture_unavailable', {
          spiffeId,
          ca: this.options.caUrl,
          reason: err.message,
          effect: this.options.unsafeAllowWhenUnavailable ? 'allowed (posture.unsafeAllowWhenUnavailable)' : 'refused',
        });
        if (this.options.unsafeAllowWhenUnavailable) {
          this.options.onLookup?.('allowed_unsafe');
          return { ok: true };
        }
        this.options.onLookup?.('unavailable');
        return {
          ok: false,
          reason: 'POSTURE_UNAVAILABLE',
          message: `503 Service Unavailable: rule ${rule} requires posture, and the CA could not be asked (${err.message}); try again shortly`,
        };
      },
    );
  }

  /**
   * For open WebSocket tunnels, rechecked every few seconds without waiting: the cached verdict,
   * fetching a newer standing in the background once `refresh` has passed. Null when nothing is
   * cached yet (the tunnel stays until an answer comes). Past `staleFor` without a new answer the
   * tunnel fails closed, as a new request would.
   */
  peek(spiffeId: string | null, requirement: PostureRequirement, rule: string): PostureVerdict | null {
    if (spiffeId === null)
      return {
        ok: false,
        reason: 'POSTURE_FAILED',
        message: `rule ${rule} requires posture, and this certificate has no SPIFFE ID`,
      };
    const cached = this.cache.get(spiffeId);
    const age = cached ? this.now() - cached.fetchedAt : Infinity;
    if (age >= this.options.refreshMs) this.fetch(spiffeId).catch(() => undefined);
    if (!cached) return null;
    if (age < this.options.refreshMs || age < this.options.staleForMs)
      return this.judge(cached.standing, requirement, rule);
    if (this.options.unsafeAllowWhenUnavailable) return null;
    return {
      ok: false,
      reason: 'POSTURE_UNAVAILABLE',
      message: `rule ${rule} requires posture, and the CA has not answered for ${Math.round(age / 1000)} s`,
    };
  }

  close(): void {
    this.agent.destroy();
  }

  private judge(standing: PostureStanding, requirement: PostureRequirement, rule: string): PostureVerdict {
    const judged = judgePosture(requirement, standing, new Date(this.now()));
    if (judged.met) return { ok: true };
    return {
      ok: false,
      reason: 'POSTURE_FAILED',
      message: `403 Forbidden: rule ${rule} requires posture (${describeRequirement(requirement)}), and ${standing.spiffeId} does not meet it: ${judged.problems.join('; ')}`,
    };
  }

  /** One request per identity at a time: a burst of a device's requests waits for one answer. */
  private fetch(spiffeId: string): Promise<Entry> {
    const running = this.inflight.get(spiffeId);
    if (running) return running;
    const started = this.get(spiffeId)
      .then((standing) => {
        const entry = { standing, fetchedAt: this.now() };
        this.cache.delete(spiffeId);
        this.cache.set(spiffeId, entry);
        // Oldest first in a Map: the bound drops the identity looked up longest ago.
        if (this.cache.size > MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
        return entry;
      })
      .finally(() => this.inflight.delete(spiffeId));
    this.inflight.set(spiffeId, started);
    return started;
  }

  private get(spiffeId: string): Promise<PostureStanding> {
    const url = new URL(
      `v1/posture?identity=${encodeURIComponent(spiffeId)}`,
      this.options.caUrl.endsWith('/') ? this.options.caUrl : `${this.options.caUrl}/`,
    );
    const { cert, key } = this.options.identity();
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        url,
        {
          agent: this.agent,
          ca: this.options.trust(),
          cert,
          key,
          headers: { accept: 'application/json' },
          timeout: this.options.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_ANSWER_BYTES) req.destroy(new Error(`the CA's answer is over ${MAX_ANSWER_BYTES} bytes`));
            else chunks.push(chunk);
          });
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode !== 200)
              return reject(new Error(`the CA answered ${res.statusCode}: ${text.slice(0, 200)}`));
            try {
              const parsed = postureStandingSchema.safeParse(JSON.parse(text));
              if (!parsed.success) return reject(new Error("the CA's answer is not a posture standing"));
              if (parsed.data.spiffeId !== spiffeId)
                return reject(new Error(`the CA answered for ${parsed.data.spiffeId}, not ${spiffeId}`));
              resolve(parsed.data);
            } catch {
              reject(new Error("the CA's answer is not JSON"));
            }
          });
          res.on('error', reject);
        },
      );
      // A whole-request deadline: the socket timeout alone would let a trickle hold a request.
      const deadline = setTimeout(
        () => req.destroy(new Error(`no answer within ${this.options.timeoutMs} ms`)),
        this.options.timeoutMs,
      );
      deadline.unref();
      req.on('close', () => clearTimeout(deadline));
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.options.timeoutMs} ms`)));
      req.on('error', reject);
      req.end();
    });
  }
}
