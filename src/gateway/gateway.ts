/**
 * The gateway: terminates mutual TLS, decides by identity, and forwards to the app with the
 * caller's identity in headers the client cannot forge. This first cut serves one upstream
 * from flags; routes, CRLs, hot reload and metrics build on it.
 *
 * Per request: verified peer (once per connection) → normalized path → policy → strip every
 * identity header the client sent → add ours → forward over a keep-alive pool.
 */
import { createServer, type Server } from 'node:https';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { GatehouseError } from '../errors/errors.js';
import type { Logger } from '../log/logger.js';
import { parseCertificate, identityOf, type CertificateInfo, type Identity } from '../pki/certificate.js';
import { checkPeerCertificate, pinPeerForConnection } from '../tls/peer-certificate.js';
import { encodePathForUpstream, normalizePath, type CompiledPolicy } from '../policy/index.js';
import { identityHeaders, stripIdentityHeaders, type IdentityHeaderPreset as HeaderPreset } from './identity-headers.js';
import { withoutHopByHop } from './hop-by-hop.js';
import { sendRefusal, type RefusalReason } from './refusal.js';
import { assertLocalUpstream } from './upstream-guard.js';

export type { HeaderPreset };

/** TLS 1.2 limited to AEAD suites; TLS 1.3 suites are all AEAD. */
const TLS12_AEAD_CIPHERS = 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305';

export interface GatewayOptions {
  host: string;
  port: number;
  certFile: string;
  keyFile: string;
  clientCaFile: string;
  upstream: string;
  policy: CompiledPolicy;
  headerPreset: HeaderPreset;
  logger: Logger;
  unsafeAllowNonLocalUpstream?: boolean;
  upstreamTimeoutMs?: number;
}

export interface Gateway {
  port: number;
  server: Server;
  close(): Promise<void>;
}

interface Peer {
  cert: CertificateInfo;
  identity: Identity;
}

const PEER_REASONS: Record<string, RefusalReason> = {
  NO_CERTIFICATE: 'NO_CERTIFICATE', EXPIRED: 'EXPIRED', NOT_YET_VALID: 'NOT_YET_VALID', WRONG_PURPOSE: 'WRONG_PURPOSE', REVOKED: 'REVOKED', UNTRUSTED: 'UNTRUSTED',
};

function readFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    throw new GatehouseError('GH_CONFIG_INVALID', `cannot read ${what} ${path}: ${(cause as NodeJS.ErrnoException).code}`, { cause });
  }
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { logger, policy } = options;
  const upstream = new URL(options.upstream);
  if (upstream.protocol !== 'http:') throw new GatehouseError('GH_CONFIG_INVALID', `upstream ${options.upstream}: only http:// upstreams are supported`);
  assertLocalUpstream(upstream, options.unsafeAllowNonLocalUpstream === true, logger);
  const upstreamAgent = new HttpAgent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64 });
  const timeoutMs = options.upstreamTimeoutMs ?? 30_000;
  const peers = new WeakMap<TLSSocket, Peer>();

  const server = createServer({
    key: readFile(options.keyFile, 'server key'),
    cert: readFile(options.certFile, 'server certificate'),
    ca: readFile(options.clientCaFile, 'client CA bundle'),
    minVersion: 'TLSv1.2',
    ciphers: TLS12_AEAD_CIPHERS,
    honorCipherOrder: true,
    requestCert: true,
    // Verification failures are answered in HTTP (400/403 with the reason), as nginx does, so
    // the handshake completes; every request is checked before anything is forwarded.
    rejectUnauthorized: false,
  });
  server.headersTimeout = 15_000;
  server.requestTimeout = 60_000;
  server.on('secureConnection', pinPeerForConnection);

  const peerOf = (socket: TLSSocket): Peer | { refusal: RefusalReason; detail: string } => {
    const cached = peers.get(socket);
    if (cached) return cached;
    const check = checkPeerCertificate(socket);
    if (!check.ok) return { refusal: PEER_REASONS[check.reason] ?? 'UNTRUSTED', detail: check.detail };
    const cert = parseCertificate(check.der);
    const peer = { cert, identity: identityOf(cert) };
    peers.set(socket, peer);
    return peer;
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const requestId = randomBytes(8).toString('hex');
    try {
      handle(req, res, requestId);
    } catch (err) {
      // Fail closed on a bug: nothing was forwarded, the client gets a 500, the process lives.
      logger.error('gateway.internal_error', { requestId, err });
      sendRefusal(req, res, 'INTERNAL', '500 Internal Server Error: see the gateway log', requestId);
    }
  });

  const handle = (req: IncomingMessage, res: ServerResponse, requestId: string) => {
    const started = process.hrtime.bigint();
    const socket = req.socket as TLSSocket;
    const log: Record<string, unknown> = { requestId, method: req.method, tls: socket.getProtocol?.(), resumed: socket.isSessionReused?.() };
    res.on('finish', () => logger.info('gateway.request', { ...log, status: res.statusCode, durationMs: Number(process.hrtime.bigint() - started) / 1e6 }));
    const refuse = (reason: RefusalReason, message: string) => {
      log.decision = 'refused';
      log.reason = reason;
      sendRefusal(req, res, reason, message, requestId);
    };

    const peer = peerOf(socket);
    if ('refusal' in peer) {
      return refuse(peer.refusal, peer.refusal === 'NO_CERTIFICATE' ? '400 Bad Request: client certificate required' : `403 Forbidden: client certificate refused (${peer.detail})`);
    }
    log.identity = peer.identity.spiffeId ?? peer.identity.name;
    log.role = peer.identity.role;
    const [rawPath = '/', query] = splitTarget(req.url ?? '/');
    const normalized = normalizePath(rawPath);
    log.path = normalized.ok ? normalized.path : rawPath.slice(0, 200);
    if (!normalized.ok) return refuse('PATH_AMBIGUOUS', `400 Bad Request: ambiguous path (${normalized.reason})`);

    const decision = policy.evaluate({ name: peer.identity.name, role: peer.identity.role, spiffeId: peer.identity.spiffeId, fingerprint: peer.identity.fingerprint }, req.method ?? 'GET', normalized.path);
    log.rule = decision.rule;
    if (!decision.allow) {
      const who = peer.identity.spiffeId ?? peer.identity.name ?? peer.identity.fingerprint;
      return refuse('POLICY_DENIED', policy.denyMessage ?? `403 Forbidden: ${who} is not allowed ${req.method} ${normalized.path} by policy ${policy.name} (${decision.reason})`);
    }
    log.decision = 'allowed';

    const headers = withoutHopByHop(stripIdentityHeaders(req.rawHeaders));
    const forwarded: string[] = [...headers];
    for (const [name, value] of identityHeaders(options.headerPreset, { cert: peer.cert, identity: peer.identity })) forwarded.push(name, value);
    forwarded.push('X-Forwarded-Proto', 'https', 'X-Forwarded-For', socket.remoteAddress ?? '');
    const upstreamStarted = process.hrtime.bigint();
    const outgoing = httpRequest({
      protocol: 'http:', hostname: upstream.hostname, port: upstream.port || 80, method: req.method,
      path: `${upstream.pathname.replace(/\/$/, '')}${encodePathForUpstream(normalized.path)}${query !== undefined ? `?${query}` : ''}`,
      headers: forwarded, agent: upstreamAgent, timeout: timeoutMs,
    }, (upstreamRes) => {
      log.upstreamMs = Number(process.hrtime.bigint() - upstreamStarted) / 1e6;
      res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, withoutHopByHop(upstreamRes.rawHeaders));
      upstreamRes.pipe(res);
    });
    let timedOut = false;
    outgoing.on('timeout', () => {
      timedOut = true;
      outgoing.destroy(new Error(`no answer within ${timeoutMs} ms`));
    });
    outgoing.on('error', (err) => {
      logger.warn('gateway.upstream_failed', { requestId, reason: err.message });
      refuse(timedOut ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_UNAVAILABLE', timedOut ? `504 Gateway Timeout: the upstream did not answer within ${timeoutMs} ms` : '502 Bad Gateway: the upstream is unavailable');
    });
    req.pipe(outgoing);
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new GatehouseError('GH_USAGE', `cannot listen on ${options.host}:${options.port}: ${err.code}`, { cause: err })));
    server.listen(options.port, options.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  logger.info('gateway.started', { listen: `${options.host}:${port}`, upstream: upstream.origin, policy: policy.name, rules: policy.ruleCount, headers: options.headerPreset });
  return {
    port,
    server,
    close: () => new Promise<void>((resolve) => {
      const timer = setTimeout(() => { server.closeAllConnections(); resolve(); }, 5000);
      timer.unref();
      server.close(() => { clearTimeout(timer); upstreamAgent.destroy(); resolve(); });
      server.closeIdleConnections();
    }),
  };
}

function splitTarget(target: string): [string, string | undefined] {
  const q = target.indexOf('?');
  return q < 0 ? [target, undefined] : [target.slice(0, q), target.slice(q + 1)];
}
