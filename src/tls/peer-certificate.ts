/**
 * Who is on the other end of a TLS socket, decided from the verified chain and the DER of the
 * peer certificate. Fails closed: an unverified or absent certificate is never an identity.
 */
import type { TLSSocket } from 'node:tls';
import type { X509Certificate } from 'node:crypto';

export type PeerCheck =
  | { ok: true; der: Buffer; /** Leaf first, as the handshake verified it; just the leaf on a resumed session, where Node has no chain. */ chainDer: Buffer[] }
  | { ok: false; reason: 'NO_CERTIFICATE' | 'EXPIRED' | 'NOT_YET_VALID' | 'UNTRUSTED' | 'WRONG_PURPOSE' | 'REVOKED'; detail: string; der: Buffer | null };

const REASONS: Record<string, Exclude<PeerCheck, { ok: true }>['reason']> = {
  CERT_HAS_EXPIRED: 'EXPIRED',
  CERT_NOT_YET_VALID: 'NOT_YET_VALID',
  INVALID_PURPOSE: 'WRONG_PURPOSE',
  CERT_REVOKED: 'REVOKED',
};

/**
 * The handshake's verdict is fixed for the life of a connection once renegotiation is off
 * (see `pinPeerForConnection`), so it is computed once per socket, not once per request.
 */
const verdicts = new WeakMap<TLSSocket, PeerCheck>();

export function checkPeerCertificate(socket: TLSSocket): PeerCheck {
  const cached = verdicts.get(socket);
  if (cached) return cached;
  const verdict = computeVerdict(socket);
  verdicts.set(socket, verdict);
  return verdict;
}

/** Call on 'secureConnection': a TLS 1.2 renegotiation could otherwise swap the client certificate mid-connection. */
export function pinPeerForConnection(socket: TLSSocket): void {
  socket.disableRenegotiation();
}

function computeVerdict(socket: TLSSocket): PeerCheck {
  const peer = socket.getPeerX509Certificate();
  // Node #35317: a resumed TLS 1.3 session can report authorized === true with no peer
  // certificate. Authorization needs both the verified flag and a certificate.
  if (!peer) return { ok: false, reason: 'NO_CERTIFICATE', detail: 'no client certificate was presented', der: null };
  if (!socket.authorized) {
    const code = String((socket.authorizationError as unknown as string | Error | null) ?? 'UNKNOWN');
    return { ok: false, reason: REASONS[code] ?? 'UNTRUSTED', detail: code, der: peer.raw };
  }
  // A resumed session (TLS 1.2 ticket or ID, TLS 1.3 PSK) is not verified again: OpenSSL hands
  // back the verify result stored in the session by the handshake that created it, so a ticket
  // issued while the certificate was valid still says "authorized" after the certificate has
  // expired. The leaf's validity window is therefore checked against the clock here, for every
  // connection (for a full handshake it agrees with what OpenSSL just checked).
  const window = validityWindow(peer);
  if (!window) return { ok: false, reason: 'UNTRUSTED', detail: `unreadable validity dates (${peer.validFrom} to ${peer.validTo})`, der: peer.raw };
  const now = Date.now();
  const resumed = socket.isSessionReused() ? '; the TLS session was resumed from a handshake when it was still valid' : '';
  if (now > window.notAfter) return { ok: false, reason: 'EXPIRED', detail: `CERT_HAS_EXPIRED: expired at ${new Date(window.notAfter).toISOString()}${resumed}`, der: peer.raw };
  if (now < window.notBefore) return { ok: false, reason: 'NOT_YET_VALID', detail: `CERT_NOT_YET_VALID: valid from ${new Date(window.notBefore).toISOString()}${resumed}`, der: peer.raw };
  return { ok: true, der: peer.raw, chainDer: chainOf(socket, peer) };
}

/**
 * The chain as the handshake built it, leaf first, as DER. Only `.raw` is read from Node's
 * detailed certificate objects (their subject strings are never an identity, CVE-2021-44532);
 * X509Certificate.issuerCertificate is not filled in for peer certificates on Node 20.
 */
function chainOf(socket: TLSSocket, leaf: X509Certificate): Buffer[] {
  const chain = [leaf.raw];
  let issuer = socket.getPeerCertificate(true)?.issuerCertificate;
  while (issuer?.raw && chain.length < 8 && !issuer.raw.equals(chain[chain.length - 1]!)) {
    chain.push(issuer.raw);
    issuer = issuer.issuerCertificate;
  }
  return chain;
}

/** notBefore/notAfter in ms; Node 20's X509Certificate has only the text form (`Jan  2 00:00:00 2020 GMT`). */
function validityWindow(cert: X509Certificate): { notBefore: number; notAfter: number } | null {
  const notBefore = Date.parse(cert.validFrom);
  const notAfter = Date.parse(cert.validTo);
  return Number.isFinite(notBefore) && Number.isFinite(notAfter) ? { notBefore, notAfter } : null;
}
