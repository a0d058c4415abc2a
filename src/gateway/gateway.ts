/**
 * The gateway: terminates mutual TLS, decides by identity, and forwards to the app with the
 * caller's identity in headers the client cannot forge. This module starts it, owns its
 * lifecycle (reloads, the graceful drain on close) and wires the steps together; each lives in
 * its own module:
 *
 *   listener.ts                   TLS server, limits, refusals Node makes before any handler
 *   http-pipeline.ts              a plain request, HTTP/1.1 or HTTP/2, from admission to the upstream
 *   upgrade-pipeline.ts           an Upgrade request and the tunnel it opens
 *   peer-admission.ts             the verified client certificate per connection, rechecked (expiry, CRLs)
 *   request/request-admission.ts  version, framing, Host, certificate, path, route, policy → upstream head
 *   upstream/forward.ts           the upstream hop through undici, which writes the framing itself
 *   upstream/websocket.ts         Upgrade tunnels, rechecked while open
 *
 * What can change while running (TLS material, policy, routes) lives in one `state` object
 * (gateway-state.ts) whose parts a reload replaces whole, so a request sees either the old
 * state or the new one.
 */
import type { AddressInfo } from 'node:net';
import { listenOn } from '../errors/listen.js';
import type { Logger } from '../log/logger.js';
import type { CertificateInfo } from '../pki/certificate.js';
import type { CompiledPolicy } from '../policy/index.js';
import type { GatewayConfig, RouteConfig } from './config.js';
import { splitHostPort, urlHost } from '../config/listen.js';
import { admissionSettings, buildRoutes, type GatewayState } from './gateway-state.js';
import { attachHttpPipeline } from './http-pipeline.js';
import { loadTlsMaterial } from './tls-material.js';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.js';
import { createListener, type GatewayServer } from './listener.js';
import { PeerAdmission, type RevocationCheck } from './peer-admission.js';
import type { PipelineContext } from './pipeline.js';
import type { PostureGate } from './posture-gate.js';
import { attachUpgradePipeline } from './upgrade-pipeline.js';

export interface GatewayDeps {
  logger: Logger;
  policy: CompiledPolicy;
  metrics?: GatewayMetrics;
  revocation?: RevocationCheck;
  /** Judges rules that require posture; the policy is refused at load when it has such rules and this is missing. */
  posture?: PostureGate;
  now?: () => Date;
}

export interface Gateway {
  port: number;
  server: GatewayServer;
  metrics: GatewayMetrics;
  /** The server certificate in use now. */
  serverCertificate(): CertificateInfo;
  /** The certificate chain, key and client CA bundle in force (PEM): what the gateway presents when it calls the CA. */
  tlsFiles(): { cert: string; key: string; ca: string };
  /** Re-reads the certificate, key and trust bundle; throws (keeping the old ones) when they are unusable. */
  reloadTls(): void;
  setPolicy(policy: CompiledPolicy): void;
  /** Validates and swaps the route table; throws (keeping the old one) when a route is unusable. */
  setRoutes(routes: readonly RouteConfig[]): void;
  /** Stops accepting, lets in-flight requests finish (up to the drain timeout), then closes. */
  close(): Promise<void>;
}

export async function startGateway(config: Readonly<GatewayConfig>, deps: GatewayDeps): Promise<Gateway> {
  const { logger } = deps;
  const now = deps.now ?? (() => new Date());
  const metrics = deps.metrics ?? createGatewayMetrics();
  const tls = loadTlsMaterial(config.tls, now(), config.listen);
  const state: GatewayState = {
    tls,
    settings: admissionSettings(config, tls),
    policy: deps.policy,
    routes: buildRoutes(config, config.routes, logger),
  };
  const { server, sessions } = createListener(config, state.tls, metrics, logger);
  const peers = new PeerAdmission(deps.revocation, now);
  const pipeline: PipelineContext = {
    config,
    state,
    peers,
    metrics,
    logger,
    revocation: deps.revocation,
    posture: deps.posture,
  };
  attachHttpPipeline(server, pipeline);
  const tunnels = attachUpgradePipeline(server, pipeline);

  metrics.setGauges({
    certificateNotAfter: () => state.tls.serverCert.notAfter,
    crls: () =>
      (deps.revocation?.status() ?? [])
        .filter((s) => s.thisUpdate !== null)
        .map((s) => ({
          issuer: s.issuer ?? s.source,
          thisUpdate: s.thisUpdate!,
          nextUpdate: s.nextUpdate,
        })),
  });

  await listenOn(server, { listen: config.listen, ...splitHostPort(config.listen), what: 'the gateway' });
  const port = (server.address() as AddressInfo).port;
  logger.info('gateway.started', {
    listen: `${urlHost(splitHostPort(config.listen).host)}:${port}`,
    routes: state.routes.routes.map(
      (r) => `${r.host}${r.pathPrefix || '/'} → ${r.target.pool.targets.map((t) => t.url).join(',')}`,
    ),
    policy: state.policy.name,
    rules: state.policy.ruleCount,
    headers: config.headers,
    certificate: state.tls.serverCert.serial,
    expires: state.tls.serverCert.notAfter.toISOString(),
  });

  let closing: Promise<void> | null = null;
  return {
    port,
    server,
    metrics,
    serverCertificate: () => state.tls.serverCert,
    tlsFiles: () => ({
      cert: String(state.tls.context.cert),
      key: String(state.tls.context.key),
      ca: String(state.tls.context.ca),
    }),
    reloadTls() {
      const next = loadTlsMaterial(config.tls, now(), config.listen);
      server.setSecureContext(next.context);
      state.tls = next;
      state.settings = admissionSettings(config, next);
    },
    setPolicy(policy) {
      state.policy = policy;
    },
    setRoutes(routes) {
      const next = buildRoutes(config, routes, logger);
      const old = state.routes;
      state.routes = next;
      // In-flight requests on the old pools finish; idle sockets go.
      setTimeout(() => {
        for (const r of old.routes) r.target.pool.close();
      }, config.limits.drainTimeout).unref();
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        const finish = () => {
          for (const r of state.routes.routes) r.target.pool.close();
          resolve();
        };
        const timer = setTimeout(() => {
          // Past the drain timeout: cut what is left.
          logger.warn('gateway.drain_timeout', {
            afterMs: config.limits.drainTimeout,
            effect: 'the requests and connections still open were cut',
          });
          for (const session of sessions) session.destroy();
          tunnels.destroyAll();
          (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
          finish();
        }, config.limits.drainTimeout);
        timer.unref();
        tunnels.stop();
        server.close(() => {
          clearTimeout(timer);
          finish();
        });
        // HTTP/2: GOAWAY lets streams in flight finish; HTTP/1.1: idle keep-alive sockets close
        // now, busy ones after their response (Node marks them to close).
        for (const session of sessions) session.close();
        (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      });
      return closing;
    },
  };
}
