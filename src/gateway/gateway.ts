/**
 * The gateway: terminates mutual TLS, decides by identity, and forwards to the app with the
 * caller's identity in headers the client cannot forge. This module wires the steps together;
 * each lives in its own module:
 *
 *   listener.ts           TLS server, limits, refusals Node makes before any handler
 *   peer-admission.ts     the verified client certificate per connection, rechecked (expiry, CRLs)
 *   request-admission.ts  version, framing, Host, certificate, path, route, policy → the upstream head
 *   forward.ts            the upstream hop through undici, which writes the framing itself
 *   websocket.ts          Upgrade tunnels, rechecked while open
 *
 * What can change while running (TLS material, policy, routes) lives in one `state` object
 * that a reload replaces whole, so a request sees either the old state or the new one.
 */
import { Http2ServerRequest } from 'node:http2';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { GatehouseError } from '../errors/errors.js';
import { listenOn } from '../errors/listen.js';
import type { Logger } from '../log/logger.js';
import type { CertificateInfo } from '../pki/certificate.js';
import type { CompiledPolicy } from '../policy/index.js';
import type { PostureRequirement } from '../posture/requirement.js';
import type { GatewayConfig, RouteConfig } from './config.js';
import { splitHostPort, urlHost } from '../config/listen.js';
import {
  sendRefusal,
  writeRefusalToSocket,
  refusalClosesConnection,
  refusalDecision,
  refusalStatus,
  type RefusalReason,
} from './refusal.js';
import { assertLocalUpstream } from './upstream-guard.js';
import { compileRoutes, type RouteTable } from './routes.js';
import { UpstreamPool } from './upstream-pool.js';
import { forward, type ClientRequest, type ClientResponse, type UpstreamFailure } from './forward.js';
import { forwardUpgrade, Tunnels } from './websocket.js';
import { loadTlsMaterial, type TlsMaterial } from './tls-material.js';
import { createGatewayMetrics, statusClass, type GatewayMetrics } from './metrics.js';
import { createListener, type GatewayServer } from './listener.js';
import { nextRequestId } from './request-id.js';
import { PeerAdmission, type RevocationCheck } from './peer-admission.js';
import { admitRequest, type Admission, type AdmissionSettings, type RequestFacts } from './request-admission.js';
import type { PostureGate, PostureVerdict } from './posture-gate.js';

export type { RevocationCheck } from './peer-admission.js';

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

interface RouteTarget {
  pool: UpstreamPool;
  timeoutMs: number;
}

type Admitted = Extract<Admission<RouteTarget>, { ok: true }>;

interface State {
  tls: TlsMaterial;
  policy: CompiledPolicy;
  routes: RouteTable<RouteTarget>;
}

/** How often open WebSocket tunnels are re-checked (certificate validity, revocation, policy). */
const TUNNEL_RECHECK_MS = 2000;

export async function startGateway(config: Readonly<GatewayConfig>, deps: GatewayDeps): Promise<Gateway> {
  const { logger } = deps;
  const now = deps.now ?? (() => new Date());
  const metrics = deps.metrics ?? createGatewayMetrics();
  const state: State = {
    tls: loadTlsMaterial(config.tls, now(), config.listen),
    policy: deps.policy,
    routes: buildRoutes(config, config.routes, logger),
  };
  const { server, sessions } = createListener(config, state.tls, metrics, logger);
  const peers = new PeerAdmission(deps.revocation, now);
  // Rebuilt only when the gateway's own certificate (its SPIFFE ID) is reloaded, not per request.
  const settingsFor = (tls: TlsMaterial): AdmissionSettings => ({
    headers: config.headers,
    maxHeaderBytes: config.limits.maxHeaderBytes,
    denyMessage: config.denyMessage,
    gatewaySpiffeId: tls.serverSpiffeId,
  });
  let settings = settingsFor(state.tls);
  const postureOf = (
    spiffeId: string | null,
    posture: { rule: string; requirement: PostureRequirement },
  ): PostureVerdict | Promise<PostureVerdict> =>
    deps.posture
      ? deps.posture.check(spiffeId, posture.requirement, posture.rule)
      : {
          ok: false,
          reason: 'POSTURE_UNAVAILABLE',
          message: `503 Service Unavailable: rule ${posture.rule} requires posture, and this gateway has no CA to ask (posture.ca)`,
        };

  const upstreamGiveUpMessage = (kind: UpstreamFailure, label: string, timeoutMs: number): [RefusalReason, string] =>
    kind === 'timeout'
      ? ['UPSTREAM_TIMEOUT', `504 Gateway Timeout: the upstream of ${label} did not answer within ${timeoutMs} ms`]
      : kind === 'connect_timeout'
        ? [
            'UPSTREAM_TIMEOUT',
            `504 Gateway Timeout: could not connect to the upstream of ${label} within ${config.upstream.connectTimeout} ms`,
          ]
        : ['UPSTREAM_UNAVAILABLE', `502 Bad Gateway: the upstream of ${label} is unavailable`];

  // HTTP/1.1 connections a refusal is closing. Node parses pipelined requests ahead of the
  // responses, so one sent behind a request that closes its connection must not be forwarded.
  const closingConnections = new WeakSet<object>();

  const handleRequest = (req: ClientRequest, res: ClientResponse, expectsContinue: boolean) => {
    const requestId = nextRequestId();
    const started = process.hrtime.bigint();
    const logging = logger.enabled('info');
    const log: Record<string, unknown> = { requestId };
    let logged = false;
    const writeLog = (aborted: boolean) => {
      if (logged) return;
      logged = true;
      const decision = (log.decision as string | undefined) ?? 'allowed';
      const status = aborted && !res.headersSent ? 0 : res.statusCode;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.requests.inc({ decision, reason: (log.reason as string | undefined) ?? '', status: String(status) });
      metrics.requestDuration.observe(
        { route: (log.route as string | undefined) ?? 'none', code: statusClass(status) },
        seconds,
      );
      if (logging)
        logger.info('gateway.request', {
          ...log,
          decision,
          status,
          ...(aborted ? { aborted: true } : {}),
          durationMs: seconds * 1000,
        });
    };
    // A response cut short (the client or the upstream went away) is logged too: the app may have acted on it.
    res.once('finish', () => writeLog(false));
    res.once('close', () => writeLog(!res.writableFinished));
    const refuse = (reason: RefusalReason, message: string) => {
      log.decision = refusalDecision(reason);
      log.reason = reason;
      if (refusalClosesConnection(reason) && !(req instanceof Http2ServerRequest)) closingConnections.add(req.socket);
      sendRefusal(req, res, reason, message, requestId);
    };
    try {
      const socket = socketOf(req);
      if (closingConnections.has(socket)) {
        log.decision = 'refused';
        log.reason = 'CONNECTION_CLOSING';
        res.destroy();
        return;
      }
      if (logging)
        Object.assign(log, {
          method: req.method,
          http: req.httpVersion,
          tls: socket.getProtocol?.(),
          resumed: socket.isSessionReused?.(),
        });
      const verdict = peers.check(socket);
      if (verdict.refusal?.reason === 'CRL_MISSING' && deps.revocation?.refreshForMissingCrl) {
        // Asked once more before refusing: the CA may have just begun issuing from a new CA.
        const decide = () => {
          try {
            admitAndForward(peers.check(socket));
          } catch (err) {
            internalError(err);
          }
        };
        deps.revocation.refreshForMissingCrl().then(decide, decide);
        return;
      }
      admitAndForward(verdict);
    } catch (err) {
      internalError(err);
    }

    function admitAndForward(verdict: ReturnType<PeerAdmission['check']>): void {
      const socket = socketOf(req);
      const admission = admitRequest(
        requestFacts(req, socket, false),
        verdict,
        state.policy,
        state.routes,
        settings,
        log,
      );
      if (!admission.ok) return refuse(admission.reason, admission.message);
      if (admission.posture) {
        const judged = postureOf(admission.peer.identity.spiffeId, admission.posture);
        if (judged instanceof Promise) {
          judged.then((v) => (v.ok ? forwardAdmitted(admission) : refuse(v.reason, v.message))).catch(internalError);
          return;
        }
        if (!judged.ok) return refuse(judged.reason, judged.message);
      }
      forwardAdmitted(admission);
    }

    function forwardAdmitted(admission: Admitted): void {
      log.decision = 'allowed';
      const { route } = admission;
      // Only now, with the request allowed, is the client told to send its body (RFC 9110 §10.1.1).
      if (expectsContinue) res.writeContinue();
      forward({
        req,
        res,
        method: req.method ?? 'GET',
        pool: route.target.pool,
        headers: admission.headers,
        framing: admission.framing,
        pathAndQuery: admission.pathAndQuery,
        timeoutMs: route.target.timeoutMs,
        onResponse(target, seconds) {
          log.upstream = target.url;
          log.upstreamMs = seconds * 1000;
          metrics.upstreamLatency.observe({ route: route.label }, seconds);
        },
        onAttemptFailed(target, kind, err) {
          metrics.upstreamFailures.inc({ route: route.label, upstream: target.url, kind });
          logger.warn('gateway.upstream_failed', {
            requestId,
            route: route.label,
            upstream: target.url,
            kind,
            reason: err.message,
            resting: route.target.pool.isResting(target),
          });
        },
        onGiveUp(kind, target) {
          log.upstream = target.url;
          refuse(...upstreamGiveUpMessage(kind, route.label, route.target.timeoutMs));
        },
        onHeadTooLarge(target, headBytes) {
          // Usually a very large client certificate: its identity headers grow the head past the app's limit.
          logger.warn('gateway.upstream_head_too_large', {
            requestId,
            route: route.label,
            upstream: target.url,
            headBytes,
          });
          refuse(
            'UPSTREAM_HEAD_TOO_LARGE',
            `502 Bad Gateway: the app refused the request head (431); with the identity headers it was about ${headBytes} bytes. Raise the app's header size limit (Node: --max-http-header-size) or use a smaller certificate`,
          );
        },
      });
    }

    function internalError(err: unknown): void {
      // Last resort, for a bug: nothing was forwarded, the client gets a 500 and the connection
      // closes, the process lives. The cause is a defect to fix, found from this log line.
      logger.error('gateway.internal_error', { requestId, err });
      try {
        refuse('INTERNAL', '500 Internal Server Error: see the gateway log');
      } catch {
        res.destroy();
      }
    }
  };
  server.on('request', (req: ClientRequest, res: ClientResponse) => handleRequest(req, res, false));
  // With a listener here Node does not answer 100 Continue by itself: the gateway does, once allowed.
  server.on('checkContinue', (req: ClientRequest, res: ClientResponse) => handleRequest(req, res, true));

  const tunnels = new Tunnels(
    TUNNEL_RECHECK_MS,
    (tunnel) => {
      const { peer, refusal } = peers.check(tunnel.socket);
      if (!peer) return { reason: refusal.reason, detail: refusal.detail };
      const decision = state.policy.evaluate(
        {
          name: peer.identity.name,
          role: peer.identity.role,
          spiffeId: peer.identity.spiffeId,
          fingerprint: peer.identity.fingerprint,
        },
        tunnel.method,
        tunnel.path,
      );
      if (!decision.allow) return { reason: 'POLICY_DENIED' };
      if (!decision.posture) return null;
      const judged = deps.posture
        ? deps.posture.peek(peer.identity.spiffeId, decision.posture, decision.rule)
        : { ok: false as const, reason: 'POSTURE_UNAVAILABLE', message: 'no posture.ca' };
      return judged === null || judged.ok ? null : { reason: judged.reason, detail: judged.message };
    },
    (requestId, reason, detail) =>
      logger.info('gateway.tunnel_closed', { requestId, reason, ...(detail ? { detail } : {}) }),
  );

  server.on('upgrade', (req: IncomingMessage, clientSocket: Duplex, head: Buffer) => {
    // The client may vanish at any point from here on; its socket's errors end it, never the process.
    clientSocket.on('error', () => clientSocket.destroy());
    tunnels.track(clientSocket);
    const requestId = nextRequestId();
    const started = process.hrtime.bigint();
    const log: Record<string, unknown> = {
      requestId,
      method: req.method,
      http: req.httpVersion,
      upgrade: req.headers.upgrade,
    };
    const done = (decision: string, status: number, reason?: RefusalReason, aborted = false) => {
      metrics.requests.inc({ decision, reason: reason ?? '', status: String(status) });
      metrics.requestDuration.observe(
        { route: (log.route as string | undefined) ?? 'none', code: statusClass(status) },
        Number(process.hrtime.bigint() - started) / 1e9,
      );
      logger.info('gateway.request', {
        ...log,
        decision,
        status,
        ...(reason ? { reason } : {}),
        ...(aborted ? { aborted: true } : {}),
      });
    };
    try {
      const socket = req.socket as TLSSocket;
      Object.assign(log, { tls: socket.getProtocol?.(), resumed: socket.isSessionReused?.() });
      const admission = admitRequest(
        requestFacts(req, socket, true),
        peers.check(socket),
        state.policy,
        state.routes,
        settings,
        log,
      );
      if (!admission.ok) {
        writeRefusalToSocket(req.headers, clientSocket, admission.reason, admission.message, requestId);
        return done('refused', refusalStatus(admission.reason), admission.reason);
      }
      if (admission.posture) {
        // Judged before the tunnel opens; while it is open the periodic recheck uses the cached standing.
        const refused = (v: PostureVerdict) => {
          if (v.ok) return false;
          writeRefusalToSocket(req.headers, clientSocket, v.reason, v.message, requestId);
          done('refused', refusalStatus(v.reason), v.reason);
          return true;
        };
        const judged = postureOf(admission.peer.identity.spiffeId, admission.posture);
        if (judged instanceof Promise) {
          judged
            .then((v) => {
              if (!refused(v)) openTunnel(admission);
            })
            .catch((err: unknown) => {
              logger.error('gateway.internal_error', { requestId, err });
              clientSocket.destroy();
            });
          return;
        }
        if (refused(judged)) return;
      }
      openTunnel(admission);
    } catch (err) {
      logger.error('gateway.internal_error', { requestId, err });
      writeRefusalToSocket(
        req.headers,
        clientSocket,
        'INTERNAL',
        '500 Internal Server Error: see the gateway log',
        requestId,
      );
      done('failed', 500, 'INTERNAL');
    }

    function openTunnel(admission: Admitted): void {
      const socket = req.socket as TLSSocket;
      const { route } = admission;
      tunnels.admitted(clientSocket, { socket, method: req.method ?? 'GET', path: admission.path, requestId });
      forwardUpgrade({
        req,
        clientSocket,
        clientHead: head,
        pool: route.target.pool,
        headers: admission.headers,
        pathAndQuery: admission.pathAndQuery,
        connectTimeoutMs: config.upstream.connectTimeout,
        onUpgraded(target, status) {
          log.upstream = target.url;
          done('allowed', status);
        },
        onGiveUp(kind, target, err) {
          log.upstream = target.url;
          metrics.upstreamFailures.inc({ route: route.label, upstream: target.url, kind });
          logger.warn('gateway.upstream_failed', {
            requestId,
            route: route.label,
            upstream: target.url,
            kind,
            reason: err.message,
          });
          const [reason, message] = upstreamGiveUpMessage(kind, route.label, config.upstream.connectTimeout);
          writeRefusalToSocket(req.headers, clientSocket, reason, message, requestId);
          done('failed', refusalStatus(reason), reason);
        },
        onClientGone(target) {
          log.upstream = target.url;
          done('allowed', 0, undefined, true);
        },
      });
    }
  });

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
      settings = settingsFor(next);
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

function buildRoutes(
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

/** The TLS socket under a request, for HTTP/1.1 and HTTP/2 alike. An HTTP/1 request line may
 * claim any version (`GET / HTTP/2.0`), so the transport decides, never httpVersionMajor. */
function socketOf(req: ClientRequest): TLSSocket {
  return (req instanceof Http2ServerRequest ? req.stream.session!.socket : req.socket) as TLSSocket;
}

function requestFacts(req: ClientRequest, socket: TLSSocket, upgrade: boolean): RequestFacts {
  const http2 = req instanceof Http2ServerRequest;
  const authority = http2 ? req.headers[':authority'] : undefined;
  return {
    method: req.method ?? 'GET',
    httpVersion: req.httpVersion,
    http2,
    target: req.url ?? '/',
    rawHeaders: req.rawHeaders,
    ...(typeof authority === 'string' ? { authority } : {}),
    ...(http2 ? { endStream: req.stream.endAfterHeaders } : {}),
    upgrade,
    sni: typeof socket.servername === 'string' ? socket.servername : null,
    remoteAddress: socket.remoteAddress ?? '',
  };
}
