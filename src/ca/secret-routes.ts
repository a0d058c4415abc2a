/**
 * `GET /v1/secrets` and `GET /v1/secrets/NAME[?version=N]`: the secrets granted to the calling
 * identity, over mutual TLS with its current certificate (checked against the inventory as
 * /renew checks it: known, same fingerprint, unrevoked, unexpired). Every refusal is counted
 * and audited (rate limited per source); every delivery is audited (src/secrets/identity-reads.ts).
 */
import type { TLSSocket } from 'node:tls';
import { GatehouseError, isGatehouseError } from '../errors/errors.js';
import { parseCertificate } from '../pki/certificate.js';
import { checkPeerCertificate } from '../tls/peer-certificate.js';
import { secretNameProblem } from '../secrets/names.js';
import type { RefusalReason } from '../secrets/read-results.js';
import type { CertRecord } from '../store/store-certificates.js';
import { sendJson } from './http-util.js';
import { authenticatePeer } from './peer-auth.js';
import type { RequestScope } from './request-scope.js';

export const SECRETS_PATH = '/v1/secrets';

export function isSecretsPath(path: string): boolean {
  return path === SECRETS_PATH || path.startsWith(`${SECRETS_PATH}/`);
}

export async function routeSecretRequest(scope: RequestScope, method: string, url: URL): Promise<void> {
  const { res } = scope;
  const path = url.pathname;
  // The raw path: a name is from a safe alphabet, so nothing in it needs (or gets) decoding.
  const m = /^\/v1\/secrets(?:\/([^/]*))?$/.exec(path);
  if (!m) {
    scope.secrets.countInvalid();
    throw new GatehouseError('GH_NOT_FOUND', `no endpoint ${method} ${path}`);
  }
  if (method !== 'GET') {
    scope.secrets.countInvalid();
    res.setHeader('allow', 'GET');
    throw new GatehouseError('GH_METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}; use GET`);
  }
  const name = m[1] ?? null;
  const ctx = { requestId: scope.requestId, source: scope.req.socket.remoteAddress ?? 'unknown' };
  const caller = await authenticateReader(scope, name, ctx);
  if (name === null) {
    if ([...url.searchParams.keys()].length) {
      scope.secrets.countInvalid();
      throw new GatehouseError('GH_SECRET_INVALID', `${SECRETS_PATH} takes no query parameters`);
    }
    return sendJson(res, 200, { secrets: await scope.secrets.listForIdentity(caller) });
  }
  const versionText = url.searchParams.get('version');
  // NaN for anything but a plain decimal: the service refuses it as invalid (and audits that).
  const version =
    versionText === null ? null : /^[1-9][0-9]{0,9}$/.test(versionText) ? Number(versionText) : Number.NaN;
  const secret = await scope.secrets.readForIdentity(caller, name, version, ctx);
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': secret.value.length,
    // A value must not sit in a proxy's or a browser's cache.
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'gatehouse-secret-version': String(secret.version),
    'gatehouse-secret-checksum': secret.checksum,
  });
  res.end(secret.value);
}

/** The caller's current certificate, or a refusal counted and audited with what is known of the caller. */
async function authenticateReader(
  scope: RequestScope,
  name: string | null,
  ctx: { requestId: string; source: string },
): Promise<CertRecord> {
  try {
    // A gateway's server-profile certificate may read too: the gateway is a consumer of secrets.
    return (await authenticatePeer(scope, { allowServerOnly: true })).record;
  } catch (err) {
    const reason: Extract<RefusalReason, 'revoked' | 'expired' | 'untrusted' | 'no-certificate' | 'error'> =
      isGatehouseError(err, 'GH_CERT_REVOKED')
        ? 'revoked'
        : isGatehouseError(err, 'GH_CERT_EXPIRED')
          ? 'expired'
          : isGatehouseError(err, 'GH_AUTH_REQUIRED')
            ? 'no-certificate'
            : isGatehouseError(err, 'GH_CERT_UNTRUSTED')
              ? 'untrusted'
              : 'error';
    await scope.secrets.refusedUnauthenticated(
      reason,
      err,
      await presented(scope),
      name !== null && secretNameProblem(name) === null ? name : null,
      ctx,
    );
    throw err;
  }
}

/** Who a refused certificate names, as far as the inventory vouches for it (never the certificate's own claims). */
async function presented(
  scope: RequestScope,
): Promise<{ actor: string; serial: string | null; fingerprint: string | null }> {
  const check = checkPeerCertificate(scope.req.socket as TLSSocket);
  const der = check.der;
  if (!der) return { actor: 'anonymous', serial: null, fingerprint: null };
  try {
    const cert = parseCertificate(der);
    const record = await scope.authority.store.getCert(cert.serial);
    const known = record !== null && record.fingerprint === cert.fingerprint;
    return {
      actor: known ? record.spiffeId : 'anonymous',
      serial: known ? record.serial : null,
      fingerprint: cert.fingerprint,
    };
  } catch {
    return { actor: 'anonymous', serial: null, fingerprint: null };
  }
}
