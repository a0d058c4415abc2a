/**
 * Who is on the other end of a TLS socket, decided from the verified chain and the DER of the
 * peer certificate. Fails closed: an unverified or absent certificate is never an identity.
 */
import type { TLSSocket } from 'node:tls';

export type PeerCheck =
  | { ok: true; der: Buffer }
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
  return { ok: true, der: peer.raw };
}
