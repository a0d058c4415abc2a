/**
 * What the two request pipelines (http-pipeline.ts for requests, upgrade-pipeline.ts for
 * Upgrade tunnels) share: the context they run in, built once by gateway.ts, and the two steps
 * they word alike, asking the posture gate and the refusal for an upstream that gave up.
 */
import type { Logger } from '../log/logger.js';
import type { PostureRequirement } from '../posture/requirement.js';
import type { GatewayConfig } from './config.js';
import type { UpstreamFailure } from './upstream/forward.js';
import type { GatewayState, RouteTarget } from './gateway-state.js';
import type { GatewayMetrics } from './metrics.js';
import type { PeerAdmission, RevocationCheck } from './peer-admission.js';
import type { PostureGate, PostureVerdict } from './posture-gate.js';
import type { RefusalReason } from './refusal.js';
import type { Admission } from './request/request-admission.js';

export interface PipelineContext {
  config: Readonly<GatewayConfig>;
  /** Read per request, never cached: a reload swaps its parts. */
  state: GatewayState;
  peers: PeerAdmission;
  metrics: GatewayMetrics;
  logger: Logger;
  revocation: RevocationCheck | undefined;
  posture: PostureGate | undefined;
}

export type Admitted = Extract<Admission<RouteTarget>, { ok: true }>;

/** The posture gate's verdict on a rule that requires posture; without a gate (no posture.ca), a 503. */
export function postureOf(
  ctx: PipelineContext,
  spiffeId: string | null,
  posture: { rule: string; requirement: PostureRequirement },
): PostureVerdict | Promise<PostureVerdict> {
  return ctx.posture
    ? ctx.posture.check(spiffeId, posture.requirement, posture.rule)
    : {
        ok: false,
        reason: 'POSTURE_UNAVAILABLE',
        message: `503 Service Unavailable: rule ${posture.rule} requires posture, and this gateway has no CA to ask (posture.ca)`,
      };
}

export function upstreamGiveUpMessage(
  ctx: PipelineContext,
  kind: UpstreamFailure,
  label: string,
  timeoutMs: number,
): [RefusalReason, string] {
  return kind === 'timeout'
    ? ['UPSTREAM_TIMEOUT', `504 Gateway Timeout: the upstream of ${label} did not answer within ${timeoutMs} ms`]
    : kind === 'connect_timeout'
      ? [
          'UPSTREAM_TIMEOUT',
          `504 Gateway Timeout: could not connect to the upstream of ${label} within ${ctx.config.upstream.connectTimeout} ms`,
        ]
      : ['UPSTREAM_UNAVAILABLE', `502 Bad Gateway: the upstream of ${label} is unavailable`];
}
