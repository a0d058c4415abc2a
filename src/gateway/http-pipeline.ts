/**
 * The pipeline of a plain request (HTTP/1.1 or HTTP/2): peer admission, request admission,
 * the posture gate, then the upstream hop (upstream/forward.ts), with one access-log line and
 * the request metrics when the response ends, however it ends. Also answers `100 Continue`, once
 * the request is allowed, and never forwards a pipelined request queued behind a refusal that
 * closes its connection.
 */
import { Http2ServerRequest } from 'node:http2';
import { forward, type ClientRequest, type ClientResponse } from './upstream/forward.js';
import type { GatewayServer } from './listener.js';
import { statusClass } from './metrics.js';
import type { PeerAdmission } from './peer-admission.js';
import { postureOf, upstreamGiveUpMessage, type Admitted, type PipelineContext } from './pipeline.js';
import { refusalClosesConnection, refusalDecision, sendRefusal, type RefusalReason } from './refusal.js';
import { admitRequest } from './request/request-admission.js';
import { nextRequestId } from './request/request-id.js';
import { requestFacts, socketOf } from './request/request-transport.js';

export function attachHttpPipeline(server: GatewayServer, ctx: PipelineContext): void {
  const { state, peers, metrics, logger, revocation } = ctx;

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
      if (verdict.refusal?.reason === 'CRL_MISSING' && revocation?.refreshForMissingCrl) {
        // Asked once more before refusing: the CA may have just begun issuing from a new CA.
        const decide = () => {
          try {
            admitAndForward(peers.check(socket));
          } catch (err) {
            internalError(err);
          }
        };
        revocation.refreshForMissingCrl().then(decide, decide);
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
        state.settings,
        log,
      );
      if (!admission.ok) return refuse(admission.reason, admission.message);
      if (admission.posture) {
        const judged = postureOf(ctx, admission.peer.identity.spiffeId, admission.posture);
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
          refuse(...upstreamGiveUpMessage(ctx, kind, route.label, route.target.timeoutMs));
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
}
