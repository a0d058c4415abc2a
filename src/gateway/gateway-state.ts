/**
 * What can change while the gateway runs: the TLS material, the policy and the route table, in
 * one `GatewayState` object. A reload swaps a part whole (a new route table with new upstream
 * pools, new TLS material with the admission settings that derive from it), never edits one in
 * place, so a request sees either the old part or the new one. Kept apart from gateway.ts so the
 * request pipelines can read the state without importing the gateway that starts them.
 */
import { GatehouseError } from '../errors/errors.js';
import type { Logger } from '../log/logger.js';
import type { CompiledPolicy } from '../policy/index.js';
import type { GatewayConfig, RouteConfig } from './config.js';
import { compileRoutes, type RouteTable } from './routes.js';
import type { AdmissionSettings } from './request/request-admission.js';
import type { TlsMaterial } from './tls-material.js';
import { assertLocalUpstream } from './upstream/upstream-guard.js';
import { UpstreamPool } from './upstream/upstream-pool.js';

/** What a route forwards to: its upstream pool and how long an answer may take. */
export interface RouteTarget {
  pool: UpstreamPool;
  timeoutMs: number;
}

export interface GatewayState {
  tls: TlsMaterial;
  /** Derived from `tls`: rebuilt only when the gateway's own certificate (its SPIFFE ID) is reloaded, not per request. */
  settings: AdmissionSettings;
  policy: CompiledPolicy;
  routes: RouteTable<RouteTarget>;
}

export function admissionSettings(config: Readonly<GatewayConfig>, tls: TlsMaterial): AdmissionSettings {
  return {
    headers: config.headers,
    maxHeaderBytes: config.limits.maxHeaderBytes,
    denyMessage: config.denyMessage,
    gatewaySpiffeId: tls.serverSpiffeId,
  };
}

/** Validates the routes (upstreams on loopback unless allowed otherwise) and gives each its own upstream pool. */
export function buildRoutes(
  config: Readonly<GatewayConfig>,
  routes: readonly RouteConfig[],
  logger: Logger,
): RouteTable<RouteTarget> {
  for (const [i, route] of routes.entries()) {
    for (const upstream of route.upstreams) {
      try {
        assertLocalUpstream(new URL(upstream), config.upstream.unsafeAllowNonLocal, logger);
      } catch (err) {
        throw new GatehouseError('GH_CONFIG_INVALID', `routes[${i}].upstreams: ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
  }
  return compileRoutes(routes, (route) => ({
    pool: new UpstreamPool(route.upstreams, {
      maxFails: config.upstream.maxFails,
      failTimeoutMs: config.upstream.failTimeout,
    }),
    timeoutMs: route.timeout ?? config.upstream.timeout,
  }));
}
