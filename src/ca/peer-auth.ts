/**
 * Who is on the other end of a CA request: the client certificate, checked against this CA and
 * the inventory, and the admin check on top of it. The CA API's mTLS endpoints, the admin API and
 * the dashboard all authenticate here, so they refuse the same certificates for the same reasons.
 */
import type { TLSSocket } from 'node:tls';
import { GatehouseError, isGatehouseError } from '../errors/errors.js';
import { checkPeerCertificate } from '../tls/peer-certificate.js';
import { parseCertificate } from '../pki/certificate.js';
import { verifyChainToOneOf } from '../pki/chain.js';
import type { CertRecord } from '../store/store-certificates.js';
import { ADMIN_ROLE } from './active-identities.js';
import type { RequestScope } from './request-scope.js';

/**
 * The presented client certificate, verified by TLS against this CA's root and then checked
 * against the inventory (known, unrevoked, unexpired). Anything else fails closed.
 */
export async function authenticatePeer(
  scope: RequestScope,
  options: { allowServerOnly?: boolean } = {},
): Promise<{ record: CertRecord; der: Buffer }> {
  const socket = scope.req.socket as TLSSocket;
  const check = checkPeerCertificate(socket);
  if (!check.ok && check.reason === 'WRONG_PURPOSE' && options.allowServerOnly && check.der) {
    // A server-profile certificate (serverAuth only) fails OpenSSL's client purpose check, yet a
    // gateway must renew with it. The handshake already proved possession of its key; here the
    // chain is verified against this CA's root, and below the exact certificate must be in the
    // inventory, unrevoked and unexpired.
    try {
      const issuer = scope.authority.issuerOf(parseCertificate(check.der));
      verifyChainToOneOf([check.der, (issuer ?? scope.authority.issuer).certDer], scope.authority.trustedRoots());
    } catch (cause) {
      throw new GatehouseError(
        'GH_CERT_UNTRUSTED',
        `the client certificate does not verify against this CA (${(cause as Error).message})`,
        { cause },
      );
    }
    const record = await scope.authority.requireCurrentCertificate(parseCertificate(check.der));
    scope.identity = record.spiffeId;
    return { record, der: check.der };
  }
  if (!check.ok) {
    switch (check.reason) {
      case 'NO_CERTIFICATE':
        throw new GatehouseError(
          'GH_AUTH_REQUIRED',
          'this endpoint needs mutual TLS: connect with your current certificate and key',
        );
      case 'EXPIRED':
        throw new GatehouseError(
          'GH_CERT_EXPIRED',
          'the client certificate has expired; it cannot be renewed: enroll again with a new join token',
        );
      case 'WRONG_PURPOSE':
        throw new GatehouseError('GH_CERT_UNTRUSTED', 'the client certificate is not valid for client authentication');
      default:
        throw new GatehouseError(
          'GH_CERT_UNTRUSTED',
          `the client certificate does not verify against this CA (${check.detail})`,
        );
    }
  }
  const record = await scope.authority.requireCurrentCertificate(parseCertificate(check.der));
  scope.identity = record.spiffeId;
  return { record, der: check.der };
}

/**
 * The peer must present a certificate this CA issued, current in the inventory (so a revoked or
 * superseded-and-revoked admin certificate is refused on its next request), of role admin.
 * Refusals are audited as `ca.admin_refused`; the dashboard uses the same check.
 */
export async function requireAdmin(
  scope: RequestScope,
  method: string,
  path: string,
  what = 'the admin API',
): Promise<{ actor: string; record: CertRecord }> {
  const { authority } = scope;
  let actor = 'anonymous';
  try {
    const peer = await authenticatePeer(scope);
    actor = peer.record.spiffeId;
    if (peer.record.role !== ADMIN_ROLE) {
      throw new GatehouseError(
        'GH_AUTH_FORBIDDEN',
        `identity ${peer.record.spiffeId} has role ${peer.record.role}; ${what} needs role ${ADMIN_ROLE}`,
      );
    }
    return { actor, record: peer.record };
  } catch (err) {
    // Bounded and rate limited per source: anyone can send these, certificate or not.
    await authority.auditAnonymousRefusal(scope.req.socket.remoteAddress ?? 'unknown', {
      type: 'ca.admin_refused',
      actor,
      requestId: scope.requestId,
      details: { method, path, code: isGatehouseError(err) ? err.code : 'GH_INTERNAL' },
    });
    throw err;
  }
}
