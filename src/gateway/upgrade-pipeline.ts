/**
 * The pipeline of an HTTP/1.1 Upgrade (WebSocket): the same admission and posture gate as a
 * plain request, answered on the raw socket, then a tunnel to the upstream (upstream/websocket.ts).
 * Open tunnels are rechecked every TUNNEL_RECHECK_MS (certificate validity, revocation,
 * policy, cached posture standing) and closed when the caller no longer passes.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { GatewayServer } from './listener.js';
import { statusClass } from './metrics.js';
import { postureOf, upstreamGiveUpMessage, type Admitted, type PipelineContext } from './pipeline.js';
import type { PostureVerdict } from './posture-gate.js';
import { refusalStatus, writeRefusalToSocket, type RefusalReason } from './refusal.js';
import { admitRequest } from './request/request-admission.js';
import { nextRequestId } from './request/request-id.js';
import { requestFacts } from './request/request-transport.js';
import { forwardUpgrade, Tunnels } from './upstream/websocket.js';

/** How often open WebSocket tunnels are re-checked (certificate validity, revocation, policy). */
const TUNNEL_RECHECK_MS = 2000;

/** Listens for Upgrade requests; the tunnels it returns are closed by the gateway's drain. */
export function attachUpgradePipeline(server: GatewayServer, ctx: PipelineContext): Tunnels {
  const { config, state, peers, metrics, logger } = ctx;

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
      const judged = ctx.posture
        ? ctx.posture.peek(peer.identity.spiffeId, decision.posture, decision.rule)
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
        state.settings,
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
        const judged = postureOf(ctx, admission.peer.identity.spiffeId, admission.posture);
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
          const [reason, message] = upstreamGiveUpMessage(ctx, kind, route.label, config.upstream.connectTimeout);
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

  return tunnels;
}
