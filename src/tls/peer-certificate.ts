/**
 * Who is on the other end of a TLS socket, decided from the verified chain and the DER of the
 * peer certificate. Fails closed: an unverified or absent certificate is never an identity.
 */
import type { TLSSocket } from 'node:tls';

export type PeerCheck =
  | { ok: true; der: Buffer }
  | { ok: false; reason: 'NO_CERTIFICATE' | 'EXPIRED' | 'NOT_YET_VALID' | 'UNTRUSTED' | 'WRONG_PURPOSE' | 'REVOKED'; detail: string };

const REASONS: Record<string, Exclude<PeerCheck, { ok: true }>['reason']> = {
  CERT_HAS_EXPIRED: 'EXPIRED',
  CERT_NOT_YET_VALID: 'NOT_YET_VALID',
  INVALID_PURPOSE: 'WRONG_PURPOSE',
  CERT_REVOKED: 'REVOKED',
};

export function checkPeerCertificate(socket: TLSSocket): PeerCheck {
  const peer = socket.getPeerX509Certificate();
  // Node #35317: a resumed TLS 1.3 session can report authorized === true with no peer
  // certificate. Authorization needs both the verified flag and a certificate.
  if (!peer) return { ok: false, reason: 'NO_CERTIFICATE', detail: 'no client certificate was presented' };
  if (!socket.authorized) {
    const code = String((socket.authorizationError as unknown as string | Error | null) ?? 'UNKNOWN');
    return { ok: false, reason: REASONS[code] ?? 'UNTRUSTED', detail: code };
  }
  return { ok: true, der: peer.raw };
}
