/**
 * Routing for the CA API. Public bootstrap endpoints here; admin endpoints in admin-routes.ts,
 * secrets and posture in their own; then the mounts startCaServer was given (the dashboard).
 */
import { createHash } from 'node:crypto';
import { GatehouseError, isGatehouseError } from '../errors/errors.js';
import { readJsonBody, sendJson, stringField } from './http-util.js';
import type { CaMount, RequestScope } from './request-scope.js';
import { authenticatePeer } from './peer-auth.js';
import type { IssuanceKind, IssuedCertificate } from './authority-context.js';
import type { TrustBundle } from './authority.js';
import { routeAdminRequest } from './admin-routes.js';
import { parseJoinToken } from './join-token.js';
import type { PublishedCrl } from './crl-publisher.js';
import { toPem } from '../pki/pem.js';
import { sourceKey, type LimitKey, type LimitedEndpoint } from './rate-limit.js';
import { isSecretsPath, routeSecretRequest } from './secret-routes.js';
import { POSTURE_PATH, routePostureRequest } from './posture-routes.js';

export async function routeRequest(scope: RequestScope, mounts: readonly CaMount[] = []): Promise<void> {
  const { req, res } = scope;
  const url = new URL(req.url ?? '/', 'https://ca.invalid');
  const path = url.pathname;
  const method = req.method ?? 'GET';
  const only = (allowed: string) => {
    if (method !== allowed) {
      res.setHeader('allow', allowed);
      throw new GatehouseError('GH_METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}; use ${allowed}`);
    }
  };

  switch (path) {
    case '/roots': {
      only('GET');
      // During a root rotation: the root in force first, then the next one, named in a header and
      // in ?format=json (docs/operations.md, "Rotating the root").
      const roots = scope.authority.servedRoots();
      const rotation = scope.authority.rotation?.state;
      const next = rotation?.phase === 'rotating' ? rotation.nextRoot : null;
      if (url.searchParams.get('format') === 'json') {
        return sendJson(res, 200, {
          roots: roots.map((der) => {
            const fingerprint = createHash('sha256').update(der).digest('hex');
            return { fingerprint, status: fingerprint === next ? 'next' : 'current', pem: toPem('CERTIFICATE', der) };
          }),
          rotation: rotation
            ? {
                phase: rotation.phase,
                startedAt: rotation.startedAt,
                finishedAt: rotation.finishedAt,
                abortedAt: rotation.abortedAt,
                previousRoot: rotation.previousRoot,
                nextRoot: rotation.nextRoot,
              }
            : null,
        });
      }
      if (next) res.setHeader('gatehouse-next-root', next);
      return sendPem(
        scope,
        'application/pem-certificate-chain',
        roots.map((der) => toPem('CERTIFICATE', der)).join(''),
      );
    }
    case '/healthz':
    case '/health': // the earlier name, kept for existing users (docs/api.md)
      only('GET');
      return sendJson(res, 200, { status: 'ok' });
    case '/crl':
    case '/crl/root':
      only('GET');
      return sendCrl(scope, scope.crls.current(path === '/crl' ? 'intermediate' : 'root'), url);
    case '/crls': {
      // Every CRL this CA signs, each after its signer's certificate, in one PEM body: one gateway
      // source that stays right across rotations (docs/gateway.md, revocation).
      only('GET');
      const all = scope.crls.all();
      if (all.length === 0)
        throw new GatehouseError(
          'GH_NOT_FOUND',
          "this CA signs no CRL: an external CA signs its certificates and publishes their CRL, and the root's CRL is published by its own PKI",
        );
      const oldest = Math.min(...all.map((e) => e.crl.nextUpdate.getTime()));
      scope.res.setHeader('cache-control', `max-age=${Math.max(0, Math.floor((oldest - Date.now()) / 2000))}`);
      return sendPem(
        scope,
        'application/x-pem-file',
        all.map((e) => toPem('CERTIFICATE', e.issuerDer) + e.crl.pem).join(''),
      );
    }
    case '/enroll': {
      only('POST');
      const request = await beforeAuthority(scope, 'enroll', async () => {
        // Per source before the body is read: refusing costs no more than the TLS connection.
        enforceRateLimit(scope, 'enroll', 'source', sourceKey(req.socket.remoteAddress));
        const body = await readJsonBody(req, scope.maxBodyBytes);
        const request = {
          token: stringField(body, 'token', true),
          csr: stringField(body, 'csr', true),
          nameHint: stringField(body, 'nameHint') ?? null,
        };
        const tokenKey = joinTokenKey(request.token);
        if (tokenKey) enforceRateLimit(scope, 'enroll', 'token', tokenKey);
        return request;
      });
      const issued = await scope.authority.enroll(
        request.token,
        request.csr,
        { actor: 'anonymous', requestId: scope.requestId, source: req.socket.remoteAddress ?? 'unknown' },
        request.nameHint,
      );
      scope.identity = issued.record.spiffeId;
      return sendIssued(scope, issued);
    }
    case '/renew': {
      only('POST');
      const { peer, csr } = await beforeAuthority(scope, 'renew', async () => {
        const source = req.socket.remoteAddress ?? 'unknown';
        enforceRateLimit(scope, 'renew', 'source', sourceKey(source));
        const peer = await authenticatePeer(scope, { allowServerOnly: true }).catch(async (err) => {
          // Bounded and rate limited per source: anyone can send this, certificate or not.
          await scope.authority.auditAnonymousRefusal(source, {
            type: 'ca.cert_refused',
            actor: 'anonymous',
            requestId: scope.requestId,
            details: {
              via: 'renew',
              code: isGatehouseError(err) ? err.code : 'GH_INTERNAL',
              reason: (err as Error).message,
            },
          });
          throw err;
        });
        enforceRateLimit(scope, 'renew', 'certificate', peer.record.serial);
        const body = await readJsonBody(req, scope.maxBodyBytes);
        return { peer, csr: stringField(body, 'csr', true) };
      });
      const issued = await scope.authority.renew(peer.record, csr, {
        actor: peer.record.spiffeId,
        requestId: scope.requestId,
      });
      return sendIssued(scope, issued);
    }
  }
  const issuerCrl = /^\/crl\/([0-9a-f]{16})$/.exec(path);
  if (issuerCrl) {
    only('GET');
    const crl = scope.crls.ofIssuer(issuerCrl[1]!);
    if (!crl)
      throw new GatehouseError(
        'GH_NOT_FOUND',
        `no issuing CA ${issuerCrl[1]} publishes a CRL here (retired ones stop once their last certificate expired)`,
      );
    return sendCrl(scope, crl, url);
  }
  if (isSecretsPath(path)) return routeSecretRequest(scope, method, url);
  if (path === POSTURE_PATH) return routePostureRequest(scope, method, url);
  if (path.startsWith('/admin/')) return routeAdminRequest(scope, method, url);
  const mount = mounts.find((m) => m.owns(path));
  if (mount) return mount.route(scope, method, url);
  throw new GatehouseError('GH_NOT_FOUND', `no endpoint ${method} ${path}`);
}

/**
 * A request refused before it reaches the authority (unreadable body, no or bad client
 * certificate) counts as a refusal too; the authority counts its own.
 */
async function beforeAuthority<T>(scope: RequestScope, kind: IssuanceKind, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    scope.authority.observer?.refused(kind, isGatehouseError(err) ? err.code : 'GH_INTERNAL');
    throw err;
  }
}

/**
 * Takes a token from a rate limit, or refuses with 429 and Retry-After (RFC 6585 §4,
 * RFC 9110 §10.2.3). Counted and logged by the limiter, never audited: a flood must not write.
 */
function enforceRateLimit(scope: RequestScope, endpoint: LimitedEndpoint, key: LimitKey, value: string): void {
  const verdict = scope.rateLimits.take(endpoint, key, value);
  if (verdict.allowed) return;
  const what = { source: 'from this address', token: 'with this join token', certificate: 'for this certificate' }[key];
  scope.res.setHeader('retry-after', String(verdict.retryAfterSeconds));
  throw new GatehouseError(
    'GH_RATE_LIMITED',
    `too many /${endpoint} requests ${what}; retry after ${verdict.retryAfterSeconds} s`,
    { details: { endpoint, limit: key } },
  );
}

/**
 * The per-token key of a join token: its ID and a digest of its secret, so that someone who
 * knows only the ID (it is in the audit trail) cannot use up the bucket of the machine holding
 * the token. A malformed token has none; the authority refuses it.
 */
function joinTokenKey(token: string): string | null {
  try {
    const { id, secret } = parseJoinToken(token);
    return `${id}-${createHash('sha256').update(secret).digest('hex').slice(0, 16)}`;
  } catch {
    return null;
  }
}

function sendIssued(scope: RequestScope, issued: IssuedCertificate): void {
  const r = issued.record;
  sendJson(scope.res, 201, {
    serial: r.serial,
    fingerprint: r.fingerprint,
    name: r.name,
    role: r.role,
    spiffeId: r.spiffeId,
    notBefore: r.notBefore.toISOString(),
    notAfter: r.notAfter.toISOString(),
    certificate: r.certPem,
    chain: issued.chainPem,
    root: issued.rootPem,
    // What an agent may take into its ca.pem (src/agent/trust-bundle.ts).
    ...trustBundleFields(scope.authority.trustBundle()),
  });
}

function trustBundleFields(bundle: TrustBundle): { roots: string; crossCertificates: string; retiredRoots: string[] } {
  return { roots: bundle.rootsPem, crossCertificates: bundle.crossPem, retiredRoots: bundle.retired };
}

function wantsPem(scope: RequestScope, url: URL): boolean {
  const format = url.searchParams.get('format');
  if (format) return format === 'pem';
  return /application\/x-pem-file|text\/plain/.test(scope.req.headers.accept ?? '');
}

function sendCrl(scope: RequestScope, crl: PublishedCrl, url: URL): void {
  const headers = {
    'cache-control': `max-age=${Math.max(0, Math.floor((crl.nextUpdate.getTime() - Date.now()) / 2000))}`,
    'last-modified': crl.thisUpdate.toUTCString(),
  };
  if (wantsPem(scope, url)) {
    scope.res.writeHead(200, { ...headers, 'content-type': 'application/x-pem-file' });
    scope.res.end(crl.pem);
  } else {
    // RFC 5280 §4.2.1.13 and RFC 2585 §4.2: DER, application/pkix-crl.
    scope.res.writeHead(200, { ...headers, 'content-type': 'application/pkix-crl', 'content-length': crl.der.length });
    scope.res.end(crl.der);
  }
}

function sendPem(scope: RequestScope, contentType: string, pem: string): void {
  scope.res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(pem) });
  scope.res.end(pem);
}
