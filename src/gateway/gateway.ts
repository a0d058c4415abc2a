/**
 * The gateway: terminates mutual TLS, decides by identity, and forwards to the app with the
 * caller's identity in headers the client cannot forge.
 *
 * Per request: verified peer (cached per connection, rechecked when the CRLs change or the
 * certificate expires) → SNI/Host check → normalized path → route → policy → strip every
 * identity header the client sent → add ours → forward over a keep-alive pool.
 *
 * What can change while running (TLS material, policy, routes) lives in one `state` object
 * that a reload replaces whole, so a request sees either the old state or the new one.
 */
import { createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2Session } from 'node:http2';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import { GatehouseError } from '../errors/errors.js';
import type { Logger } from '../log/logger.js';
import { parseCertificate, identityOf, type CertificateInfo, type Identity } from '../pki/certificate.js';
import { checkPeerCertificate, pinPeerForConnection } from '../tls/peer-certificate.js';
import { encodePathForUpstream, normalizePath, type CompiledPolicy } from '../policy/index.js';
import type { GatewayConfig, RouteConfig } from './config.js';
import { splitHostPort, urlHost } from '../config/listen.js';
import { identityHeaders, stripIdentityHeaders } from './identity-headers.js';
import { withoutHopByHop } from './hop-by-hop.js';
import { sendRefusal, writeRefusalToSocket, refusalStatus, type RefusalReason } from './refusal.js';
import { assertLocalUpstream } from './upstream-guard.js';
import { compileRoutes, hostWithoutPort, type RouteTable } from './routes.js';
import { UpstreamPool } from './upstream-pool.js';
import { forward, type ClientRequest, type ClientResponse, type UpstreamFailure } from './proxy.js';
import { forwardUpgrade } from './websocket.js';
import { loadTlsMaterial, type TlsMaterial } from './tls-material.js';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.js';

/** What the gateway needs of a revocation checker (see revocation.ts). */
export interface RevocationCheck {
  /** Changes whenever the loaded CRLs change, so cached per-connection verdicts are redone. */
  readonly generation: number;
  /** `chainDer` is leaf first. */
  check(chainDer: readonly Buffer[]): { ok: true } | { ok: false; reason: 'REVOKED' | 'CRL_STALE' | 'CRL_MISSING'; detail: string };
  status(): { source: string; issuer: string | null; thisUpdate: Date | null; nextUpdate: Date | null; stale: boolean | null; lastError: string | null }[];
}

export interface GatewayDeps {
  logger: Logger;
  policy: CompiledPolicy;
  metrics?: GatewayMetrics;
  revocation?: RevocationCheck;
  now?: () => Date;
}

type GatewayServer = Http2SecureServer | HttpsServer;

export interface Gateway {
  port: number;
  server: GatewayServer;
  metrics: GatewayMetrics;
  /** The server certificate in use now. */
  serverCertificate(): CertificateInfo;
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

interface State {
  tls: TlsMaterial;
  policy: CompiledPolicy;
  routes: RouteTable<RouteTarget>;
}

interface Peer {
  cert: CertificateInfo;
  identity: Identity;
  chainDer: Buffer[];
  /** The identity headers for this peer, built on its first request (they name the gateway too, hence the key). */
  headers?: { gatewaySpiffeId: string | null; list: [string, string][] };
}

interface PeerState {
  peer: Peer | null;
  refusal: { reason: RefusalReason; detail: string } | null;
  revocationGeneration: number;
}

type Admission =
  | { ok: true; peer: Peer; route: { label: string; target: RouteTarget }; headers: string[]; pathAndQuery: string }
  | { ok: false; reason: RefusalReason; message: string };

const NO_CERT_MESSAGE = '400 Bad Request: client certificate required';
/** How often open WebSocket tunnels are re-checked (certificate validity, revocation, policy). */
const TUNNEL_RECHECK_MS = 2000;

export async function startGateway(config: Readonly<GatewayConfig>, deps: GatewayDeps): Promise<Gateway> {
  const { logger, revocation } = deps;
  const now = deps.now ?? (() => new Date());
  const metrics = deps.metrics ?? createGatewayMetrics();
  const state: State = {
    tls: loadTlsMaterial(config.tls, now()),
    policy: deps.policy,
    routes: buildRoutes(config, config.routes, logger),
  };

  const tlsOptions = {
    ...state.tls.context,
    requestCert: true,
    // Verification failures are answered in HTTP (400/403 with the reason), as nginx does, so
    // the handshake completes; every request is checked before anything is forwarded.
    rejectUnauthorized: false,
  };
  const httpOptions = {
    headersTimeout: config.limits.headersTimeout,
    requestTimeout: config.limits.requestTimeout,
    keepAliveTimeout: config.limits.keepAliveTimeout,
    maxHeaderSize: config.limits.maxHeaderBytes,
    // Node checks those timeouts on this period (default 30 s), so a slowloris would hold its
    // socket up to 30 s past headersTimeout; checking every second keeps the limit meaningful.
    connectionsCheckingInterval: 1000,
  };
  // HTTP/2 is offered through ALPN next to HTTP/1.1; with `http2: false` only HTTP/1.1 is.
  const server: GatewayServer = config.http2
    ? createSecureServer({ ...tlsOptions, allowHTTP1: true, settings: { maxHeaderListSize: config.limits.maxHeaderBytes }, maxSessionMemory: 10 })
    : createHttpsServer({ ...tlsOptions, ...httpOptions });
  // The HTTP/1.1 side of an HTTP/2 server (allowHTTP1) reads these just as an http.Server does.
  if (config.http2) Object.assign(server, httpOptions);

  // HTTP/2 sessions: closed when idle for keepAliveTimeout, never while a stream waits for the
  // upstream (a socket-level timeout would cut slow requests before their route timeout).
  const sessions = new Set<Http2Session>();
  server.on('session', (session: Http2Session) => {
    sessions.add(session);
    let openStreams = 0;
    session.on('stream', (stream) => {
      openStreams++;
      stream.once('close', () => openStreams--);
    });
    session.setTimeout(config.limits.keepAliveTimeout, () => { if (openStreams === 0) session.close(); });
    session.once('close', () => sessions.delete(session));
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    pinPeerForConnection(socket);
    const check = checkPeerCertificate(socket);
    metrics.handshakes.inc({ outcome: check.ok ? 'verified' : check.reason.toLowerCase() });
  });
  server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
    metrics.handshakeFailures.inc({ reason: handshakeFailureReason(err) });
  });
  // HTTP/1.1 requests Node refuses before any handler sees them (a head over the size limit,
  // a head that never completes, a malformed request): answered with a readable reason and
  // logged like every other refusal, instead of Node's bare status line.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const [status, text] = err.code === 'HPE_HEADER_OVERFLOW' ? [431, `431 Request Header Fields Too Large: the request head is over ${config.limits.maxHeaderBytes} bytes`]
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, `408 Request Timeout: the request head did not arrive within ${config.limits.headersTimeout} ms`]
        : [400, '400 Bad Request: malformed HTTP request'];
    const reason = status === 431 ? 'HEADERS_TOO_LARGE' : status === 408 ? 'REQUEST_TIMEOUT' : 'MALFORMED_REQUEST';
    metrics.requests.inc({ decision: 'refused', reason, status: String(status) });
    logger.info('gateway.request', { decision: 'refused', reason, status, detail: err.code });
    if (!socket.writable || (socket as unknown as { _httpMessage?: unknown })._httpMessage) {
      socket.destroy();
      return;
    }
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${text.length + 1}\r\nconnection: close\r\n\r\n${text}\n`);
    // Lingering close, as nginx does: read and drop what the client is still sending, so the
    // kernel does not answer unread data with a reset that would hide the status from it.
    socket.on('data', () => undefined);
    socket.resume();
    setTimeout(() => socket.destroy(), 2000).unref();
  });

  const peerStates = new WeakMap<object, PeerState>();
  const knownPeers = new Map<string, Peer>();
  const peerOf = (socket: TLSSocket): PeerState => {
    let entry = peerStates.get(socket);
    if (!entry) {
      entry = verifyPeer(socket, knownPeers);
      peerStates.set(socket, entry);
    }
    if (!entry.peer) return entry;
    // A connection can outlive its certificate or its good standing: recheck both. The peer is
    // kept with a revocation refusal, so a CRL that was stale and is fresh again lets it back in.
    if (entry.peer.cert.notAfter <= now()) return { peer: null, refusal: { reason: 'EXPIRED', detail: `certificate expired at ${entry.peer.cert.notAfter.toISOString()}` }, revocationGeneration: 0 };
    if (revocation && entry.revocationGeneration !== revocation.generation) {
      const verdict = revocation.check(entry.peer.chainDer);
      entry = { peer: entry.peer, refusal: verdict.ok ? null : { reason: verdict.reason, detail: verdict.detail }, revocationGeneration: revocation.generation };
      peerStates.set(socket, entry);
    }
    return entry.refusal ? { ...entry, peer: null } : entry;
  };

  const admit = (req: ClientRequest, socket: TLSSocket, log: Record<string, unknown>): Admission => {
    const { peer, refusal } = peerOf(socket);
    if (!peer) {
      const reason = refusal!.reason;
      return { ok: false, reason, message: reason === 'NO_CERTIFICATE' ? NO_CERT_MESSAGE : `403 Forbidden: client certificate refused (${refusal!.detail})` };
    }
    log.identity = peer.identity.spiffeId ?? peer.identity.name;
    log.role = peer.identity.role;
    log.serial = peer.identity.serial;

    const authority = requestAuthority(req);
    const sni = socket.servername;
    // RFC 9110 §7.4: a request for a name this connection was not set up for is misdirected;
    // without this a certificate checked for one virtual host could reach another.
    if (typeof sni === 'string' && sni !== '' && authority !== null && hostWithoutPort(authority).toLowerCase() !== sni.toLowerCase()) {
      return { ok: false, reason: 'MISDIRECTED', message: `421 Misdirected Request: TLS server name "${sni}" does not match Host "${hostWithoutPort(authority)}"` };
    }

    const [rawPath = '/', query] = splitTarget(req.url ?? '/');
    const normalized = normalizePath(rawPath);
    log.path = normalized.ok ? normalized.path : rawPath.slice(0, 200);
    if (!normalized.ok) return { ok: false, reason: 'PATH_AMBIGUOUS', message: `400 Bad Request: ambiguous path (${normalized.reason})` };

    const { policy, routes } = state;
    const route = routes.match(authority, normalized.path);
    if (!route) return { ok: false, reason: 'NO_ROUTE', message: `404 Not Found: no route for host ${authority === null ? '(none)' : hostWithoutPort(authority)} and path ${normalized.path}` };
    log.route = route.label;

    const method = req.method ?? 'GET';
    const decision = policy.evaluate({ name: peer.identity.name, role: peer.identity.role, spiffeId: peer.identity.spiffeId, fingerprint: peer.identity.fingerprint }, method, normalized.path);
    log.rule = decision.rule;
    if (!decision.allow) {
      const who = peer.identity.spiffeId ?? peer.identity.name ?? peer.identity.fingerprint;
      const message = config.denyMessage ?? policy.denyMessage ?? `403 Forbidden: ${who} is not allowed ${method} ${normalized.path} by policy ${policy.name} (${decision.reason})`;
      return { ok: false, reason: 'POLICY_DENIED', message };
    }

    const isHttp2 = req.httpVersionMajor === 2;
    // HTTP/1.1 heads over the limit never get here (Node refuses them, see 'clientError');
    // HTTP/2 heads are only bounded by nghttp2's own limit, so the same limit is applied here.
    if (isHttp2 && headBytes(req.rawHeaders) > config.limits.maxHeaderBytes) {
      return { ok: false, reason: 'HEADERS_TOO_LARGE', message: `431 Request Header Fields Too Large: the request head is over ${config.limits.maxHeaderBytes} bytes` };
    }
    // The gateway states the scheme and the peer address itself; over HTTP/2 the checked
    // :authority is the only Host the app sees (a client's own host field could differ).
    const headers = withoutNames(withoutHopByHop(stripIdentityHeaders(withoutPseudoHeaders(req.rawHeaders))), isHttp2 ? REPLACED_HEADERS_H2 : REPLACED_HEADERS);
    if (isHttp2 && authority !== null) headers.push('Host', authority);
    const gatewaySpiffeId = state.tls.serverSpiffeId;
    if (peer.headers?.gatewaySpiffeId !== gatewaySpiffeId) peer.headers = { gatewaySpiffeId, list: identityHeaders(config.headers, peer, { spiffeId: gatewaySpiffeId }) };
    for (const [name, value] of peer.headers.list) headers.push(name, value);
    headers.push('X-Forwarded-Proto', 'https', 'X-Real-IP', socket.remoteAddress ?? '', 'X-Forwarded-For', socket.remoteAddress ?? '');
    return { ok: true, peer, route, headers, pathAndQuery: `${encodePathForUpstream(normalized.path)}${query !== undefined ? `?${query}` : ''}` };
  };

  const upstreamGiveUpMessage = (kind: UpstreamFailure, label: string, timeoutMs: number): [RefusalReason, string] =>
    kind === 'timeout' ? ['UPSTREAM_TIMEOUT', `504 Gateway Timeout: the upstream of ${label} did not answer within ${timeoutMs} ms`]
      : kind === 'connect_timeout' ? ['UPSTREAM_TIMEOUT', `504 Gateway Timeout: could not connect to the upstream of ${label} within ${config.upstream.connectTimeout} ms`]
        : ['UPSTREAM_UNAVAILABLE', `502 Bad Gateway: the upstream of ${label} is unavailable`];

  server.on('request', (req: ClientRequest, res: ClientResponse) => {
    const requestId = nextRequestId();
    const started = process.hrtime.bigint();
    const socket = socketOf(req);
    const logging = logger.enabled('info');
    const log: Record<string, unknown> = logging ? { requestId, method: req.method, http: req.httpVersion, tls: socket.getProtocol?.(), resumed: socket.isSessionReused?.() } : { requestId };
    res.on('finish', () => {
      const decision = (log.decision as string | undefined) ?? 'allowed';
      metrics.requests.inc({ decision, reason: (log.reason as string | undefined) ?? '', status: String(res.statusCode) });
      if (logging) logger.info('gateway.request', { ...log, decision, status: res.statusCode, durationMs: Number(process.hrtime.bigint() - started) / 1e6 });
    });
    const refuse = (reason: RefusalReason, message: string) => {
      log.decision = refusalStatus(reason) >= 500 ? 'failed' : 'refused';
      log.reason = reason;
      sendRefusal(req, res, reason, message, requestId);
    };
    try {
      const admission = admit(req, socket, log);
      if (!admission.ok) return refuse(admission.reason, admission.message);
      log.decision = 'allowed';
      const { route } = admission;
      forward({
        req, res, pool: route.target.pool, headers: admission.headers, pathAndQuery: admission.pathAndQuery,
        timeoutMs: route.target.timeoutMs, connectTimeoutMs: config.upstream.connectTimeout,
        onResponse(target, seconds) {
          log.upstream = target.url;
          log.upstreamMs = seconds * 1000;
          metrics.upstreamLatency.observe({ route: route.label }, seconds);
        },
        onAttemptFailed(target, kind, err) {
          metrics.upstreamFailures.inc({ route: route.label, upstream: target.url, kind });
          logger.warn('gateway.upstream_failed', { requestId, route: route.label, upstream: target.url, kind, reason: err.message, resting: route.target.pool.isResting(target) });
        },
        onGiveUp(kind, target) {
          log.upstream = target.url;
          refuse(...upstreamGiveUpMessage(kind, route.label, route.target.timeoutMs));
        },
        onHeadTooLarge(target, headBytes) {
          // Usually a very large client certificate: its identity headers grow the head past the app's limit.
          logger.warn('gateway.upstream_head_too_large', { requestId, route: route.label, upstream: target.url, headBytes });
          refuse('UPSTREAM_HEAD_TOO_LARGE', `502 Bad Gateway: the app refused the request head (431); with the identity headers it was about ${headBytes} bytes. Raise the app's header size limit (Node: --max-http-header-size) or use a smaller certificate`);
        },
      });
    } catch (err) {
      // Fail closed on a bug: nothing was forwarded, the client gets a 500, the process lives.
      logger.error('gateway.internal_error', { requestId, err });
      refuse('INTERNAL', '500 Internal Server Error: see the gateway log');
    }
  });

  // Open WebSocket tunnels and what admitted them. A tunnel lives as long as its client wants,
  // so it is re-checked like a request would be: a certificate that expires or is revoked, or a
  // policy that no longer allows it, closes the tunnel within TUNNEL_RECHECK_MS.
  const tunnels = new Map<Duplex, { socket: TLSSocket; method: string; path: string; requestId: string } | null>();
  const recheckTunnels = () => {
    for (const [clientSocket, tunnel] of tunnels) {
      if (!tunnel) continue;
      const { peer, refusal } = peerOf(tunnel.socket);
      let reason: string | null = refusal?.reason ?? null;
      if (peer) {
        const decision = state.policy.evaluate({ name: peer.identity.name, role: peer.identity.role, spiffeId: peer.identity.spiffeId, fingerprint: peer.identity.fingerprint }, tunnel.method, tunnel.path);
        if (!decision.allow) reason = 'POLICY_DENIED';
      }
      if (reason) {
        logger.info('gateway.tunnel_closed', { requestId: tunnel.requestId, reason, ...(refusal ? { detail: refusal.detail } : {}) });
        clientSocket.destroy();
      }
    }
  };
  const tunnelTimer = setInterval(recheckTunnels, TUNNEL_RECHECK_MS);
  tunnelTimer.unref();
  server.on('upgrade', (req: IncomingMessage, clientSocket: Duplex, head: Buffer) => {
    tunnels.set(clientSocket, null);
    clientSocket.once('close', () => tunnels.delete(clientSocket));
    const requestId = nextRequestId();
    const socket = req.socket as TLSSocket;
    const log: Record<string, unknown> = { requestId, method: req.method, http: req.httpVersion, upgrade: req.headers.upgrade, tls: socket.getProtocol?.(), resumed: socket.isSessionReused?.() };
    const done = (decision: string, status: number, reason?: RefusalReason) => {
      metrics.requests.inc({ decision, reason: reason ?? '', status: String(status) });
      logger.info('gateway.request', { ...log, decision, status, ...(reason ? { reason } : {}) });
    };
    try {
      const admission = admit(req, socket, log);
      if (!admission.ok) {
        writeRefusalToSocket(req.headers, clientSocket, admission.reason, admission.message, requestId);
        return done('refused', refusalStatus(admission.reason), admission.reason);
      }
      const { route } = admission;
      tunnels.set(clientSocket, { socket, method: req.method ?? 'GET', path: String(log.path), requestId });
      forwardUpgrade({
        req, clientSocket, clientHead: head, pool: route.target.pool, headers: admission.headers, pathAndQuery: admission.pathAndQuery,
        connectTimeoutMs: config.upstream.connectTimeout,
        onUpgraded(target, status) {
          log.upstream = target.url;
          done('allowed', status);
        },
        onGiveUp(kind, target, err) {
          log.upstream = target.url;
          metrics.upstreamFailures.inc({ route: route.label, upstream: target.url, kind });
          logger.warn('gateway.upstream_failed', { requestId, route: route.label, upstream: target.url, kind, reason: err.message });
          const [reason, message] = upstreamGiveUpMessage(kind, route.label, config.upstream.connectTimeout);
          writeRefusalToSocket(req.headers, clientSocket, reason, message, requestId);
          done('failed', refusalStatus(reason), reason);
        },
      });
    } catch (err) {
      logger.error('gateway.internal_error', { requestId, err });
      writeRefusalToSocket(req.headers, clientSocket, 'INTERNAL', '500 Internal Server Error: see the gateway log', requestId);
      done('failed', 500, 'INTERNAL');
    }
  });

  metrics.setGauges({
    certificateExpirySeconds: () => (state.tls.serverCert.notAfter.getTime() - now().getTime()) / 1000,
    crls: () => (revocation?.status() ?? []).filter((s) => s.thisUpdate !== null).map((s) => ({
      issuer: s.issuer ?? s.source,
      ageSeconds: (now().getTime() - s.thisUpdate!.getTime()) / 1000,
      nextUpdateSeconds: s.nextUpdate === null ? null : (s.nextUpdate.getTime() - now().getTime()) / 1000,
    })),
  });

  await new Promise<void>((resolve, reject) => {
    const { host, port } = splitHostPort(config.listen);
    server.once('error', (err: NodeJS.ErrnoException) => reject(new GatehouseError('GH_USAGE', `cannot listen on ${config.listen}: ${err.code}`, { cause: err })));
    server.listen(port, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  logger.info('gateway.started', {
    listen: `${urlHost(splitHostPort(config.listen).host)}:${port}`, routes: state.routes.routes.map((r) => `${r.host}${r.pathPrefix || '/'} → ${r.target.pool.targets.map((t) => t.url).join(',')}`),
    policy: state.policy.name, rules: state.policy.ruleCount, headers: config.headers, certificate: state.tls.serverCert.serial, expires: state.tls.serverCert.notAfter.toISOString(),
  });

  let closing: Promise<void> | null = null;
  return {
    port,
    server,
    metrics,
    serverCertificate: () => state.tls.serverCert,
    reloadTls() {
      const next = loadTlsMaterial(config.tls, now());
      server.setSecureContext(next.context);
      state.tls = next;
    },
    setPolicy(policy) {
      state.policy = policy;
    },
    setRoutes(routes) {
      const next = buildRoutes(config, routes, logger);
      const old = state.routes;
      state.routes = next;
      // In-flight requests on the old pools finish; idle sockets go.
      setTimeout(() => { for (const r of old.routes) r.target.pool.close(); }, config.limits.drainTimeout).unref();
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        const finish = () => {
          for (const r of state.routes.routes) r.target.pool.close();
          resolve();
        };
        const timer = setTimeout(() => {
          // Past the drain timeout: cut what is left.
          for (const session of sessions) session.destroy();
          for (const tunnel of tunnels.keys()) tunnel.destroy();
          (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
          finish();
        }, config.limits.drainTimeout);
        timer.unref();
        clearInterval(tunnelTimer);
        server.close(() => { clearTimeout(timer); finish(); });
        // HTTP/2: GOAWAY lets streams in flight finish; HTTP/1.1: idle keep-alive sockets close
        // now, busy ones after their response (Node marks them to close).
        for (const session of sessions) session.close();
        (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      });
      return closing;
    },
  };
}

function buildRoutes(config: Readonly<GatewayConfig>, routes: readonly RouteConfig[], logger: Logger): RouteTable<RouteTarget> {
  for (const [i, route] of routes.entries()) {
    for (const upstream of route.upstreams) {
      try {
        assertLocalUpstream(new URL(upstream), config.upstream.unsafeAllowNonLocal, logger);
      } catch (err) {
        throw new GatehouseError('GH_CONFIG_INVALID', `routes[${i}].upstreams: ${(err as Error).message}`, { cause: err });
      }
    }
  }
  return compileRoutes(routes, (route) => ({
    pool: new UpstreamPool(route.upstreams, { maxFails: config.upstream.maxFails, failTimeoutMs: config.upstream.failTimeout }),
    timeoutMs: route.timeout ?? config.upstream.timeout,
  }));
}

/** Unique across processes (random prefix) without a random draw per request. */
const REQUEST_ID_PREFIX = randomBytes(4).toString('hex');
let requestCounter = 0;
function nextRequestId(): string {
  requestCounter = (requestCounter + 1) % 0x1_0000_0000;
  return `${REQUEST_ID_PREFIX}${requestCounter.toString(16).padStart(8, '0')}`;
}

/**
 * Peers seen before, by certificate fingerprint: a device reconnecting presents the same
 * certificate, so its parsed form, identity and identity headers are built once, not per
 * handshake. This also keeps the chain of a full handshake for resumed sessions, where Node has
 * none and the intermediate could not otherwise be checked against the root's CRL. Bounded.
 */
const MAX_REMEMBERED_PEERS = 10_000;

function verifyPeer(socket: TLSSocket, known: Map<string, Peer>): PeerState {
  const check = checkPeerCertificate(socket);
  if (!check.ok) return { peer: null, refusal: { reason: check.reason, detail: check.detail }, revocationGeneration: 0 };
  const fingerprint = createHash('sha256').update(check.der).digest('hex');
  let peer = known.get(fingerprint);
  if (!peer || check.chainDer.length > peer.chainDer.length) {
    const cert = parseCertificate(check.der);
    peer = { cert, identity: identityOf(cert), chainDer: check.chainDer.length > (peer?.chainDer.length ?? 0) ? check.chainDer : peer!.chainDer };
    if (!known.has(fingerprint) && known.size >= MAX_REMEMBERED_PEERS) known.delete(known.keys().next().value!);
    known.set(fingerprint, peer);
  }
  return { peer, refusal: null, revocationGeneration: -1 };
}

/** The TLS socket under a request, for HTTP/1.1 and HTTP/2 alike. */
function socketOf(req: ClientRequest): TLSSocket {
  return (req.httpVersionMajor === 2 ? (req as Http2ServerRequest).stream.session!.socket : req.socket) as TLSSocket;
}

function requestAuthority(req: ClientRequest): string | null {
  const value = req.httpVersionMajor === 2 ? (req.headers[':authority'] ?? req.headers.host) : req.headers.host;
  return typeof value === 'string' && value !== '' ? value : null;
}

/** Fields the gateway sets itself; a client's copies are dropped. X-Forwarded-For is appended to, as proxies do. */
const REPLACED_HEADERS = new Set(['x-forwarded-proto', 'x-real-ip']);
const REPLACED_HEADERS_H2 = new Set([...REPLACED_HEADERS, 'host']);

function withoutNames(rawHeaders: string[], names: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) if (!names.has(rawHeaders[i]!.toLowerCase())) out.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  return out;
}

function headBytes(rawHeaders: readonly string[]): number {
  let total = 0;
  for (const part of rawHeaders) total += part.length + 2;
  return total;
}

function withoutPseudoHeaders(rawHeaders: string[]): string[] {
  if (!rawHeaders.some((h, i) => i % 2 === 0 && h.startsWith(':'))) return rawHeaders;
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) if (!rawHeaders[i]!.startsWith(':')) out.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  return out;
}

function splitTarget(target: string): [string, string | undefined] {
  const q = target.indexOf('?');
  return q < 0 ? [target, undefined] : [target.slice(0, q), target.slice(q + 1)];
}


/** A closed set of label values: OpenSSL reason codes are many, so only the common ones are named. */
function handshakeFailureReason(err: NodeJS.ErrnoException): string {
  const code = err.code ?? '';
  if (/UNSUPPORTED_PROTOCOL|VERSION/.test(code)) return 'protocol_version';
  if (/NO_SHARED_CIPHER|NO_CIPHERS/.test(code)) return 'no_shared_cipher';
  if (/ECONNRESET|EPIPE/.test(code)) return 'connection_reset';
  if (/TIMEOUT/i.test(code) || /timeout/i.test(err.message)) return 'timeout';
  if (/ALERT/.test(code)) return 'client_alert';
  return 'other';
}
