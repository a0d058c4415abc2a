/**
 * Who is on the other end of a TLS socket, decided from the verified chain and the DER of the
 * peer certificate. Fails closed: an unverified or absent certificate is never an identity.
 */
import type { TLSSocket } from 'node:tls';
import { createHash } from 'node:crypto';
import { parseCertificate, type CertificateInfo } from '../pki/certificate.js';
import { readHeader, type DerHeader } from '../pki/der.js';

export type PeerCheck =
  | {
      ok: true;
      der: Buffer;
      /** SHA-256 of the DER, lowercase hex. */ fingerprint: string;
      /** The leaf, parsed once per distinct certificate. */ cert: CertificateInfo;
      /** Leaf first, as the handshake verified it; just the leaf on a resumed session, where Node has none. Costly: call it once per certificate, not per connection. */
      chainDer(): Buffer[];
      resumed: boolean;
    }
  | {
      ok: false;
      reason: 'NO_CERTIFICATE' | 'EXPIRED' | 'NOT_YET_VALID' | 'UNTRUSTED' | 'WRONG_PURPOSE' | 'REVOKED';
      detail: string;
      der: Buffer | null;
    };

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
  const der = peerCertificateDer(socket);
  // Node #35317: a resumed TLS 1.3 session can report authorized === true with no peer
  // certificate. Authorization needs both the verified flag and a certificate.
  if (!der) return { ok: false, reason: 'NO_CERTIFICATE', detail: 'no client certificate was presented', der: null };
  if (!socket.authorized) {
    const code = String((socket.authorizationError as unknown as string | Error | null) ?? 'UNKNOWN');
    return { ok: false, reason: REASONS[code] ?? 'UNTRUSTED', detail: code, der };
  }
  // A resumed session (TLS 1.2 ticket or ID, TLS 1.3 PSK) is not verified again: OpenSSL hands
  // back the verify result stored in the session by the handshake that created it, so a ticket
  // issued while the certificate was valid still says "authorized" after the certificate has
  // expired. The leaf's validity window is therefore checked against the clock here, for every
  // connection (for a full handshake it agrees with what OpenSSL just checked).
  const fingerprint = createHash('sha256').update(der).digest('hex');
  const cert = parsedCertificate(fingerprint, der);
  if (!cert) return { ok: false, reason: 'UNTRUSTED', detail: 'the client certificate cannot be parsed', der };
  const window = { notBefore: cert.notBefore.getTime(), notAfter: cert.notAfter.getTime() };
  const now = Date.now();
  const resumed = socket.isSessionReused();
  const because = resumed ? '; the TLS session was resumed from a handshake when it was still valid' : '';
  if (now > window.notAfter)
    return {
      ok: false,
      reason: 'EXPIRED',
      detail: `CERT_HAS_EXPIRED: expired at ${new Date(window.notAfter).toISOString()}${because}`,
      der,
    };
  if (now < window.notBefore)
    return {
      ok: false,
      reason: 'NOT_YET_VALID',
      detail: `CERT_NOT_YET_VALID: valid from ${new Date(window.notBefore).toISOString()}${because}`,
      der,
    };
  return { ok: true, der, fingerprint, cert, resumed, chainDer: () => chainOf(socket, der) };
}

/**
 * The peer certificate's DER, cheaply. Node's own accessors build objects the gateway does not
 * need: on Node 20 `getPeerX509Certificate()` costs ~0.3-0.4 ms per connection and
 * `getPeerCertificate()` ~0.15 ms (scratch measurement in docs/benchmarks.md), against ~25 µs
 * for `getSession()`, the DER of the SSL_SESSION, which carries the peer certificate as
 * OpenSSL stores it (`peer [3] EXPLICIT Certificate`, ssl/ssl_asn1.c) — the same certificate
 * `getPeerCertificate()` reads (SSL_get_peer_certificate reads the session's). The session also
 * holds the master secret, so the buffer is read here and never kept or logged. Any layout this
 * reader does not expect falls back to the public accessor; test/tls-peer-certificate.test.ts
 * cross-checks both on full and resumed TLS 1.2 and 1.3 handshakes.
 */
export function peerCertificateDer(socket: TLSSocket): Buffer | null {
  const session = socket.getSession?.();
  if (session) {
    const fromSession = peerFromSession(session);
    if (fromSession !== undefined) return fromSession;
  }
  const raw = socket.getPeerCertificate()?.raw;
  return raw && raw.length > 0 ? raw : null;
}

const SEQUENCE: number = 0x30;
const PEER_TAG: number = 0xa3; // [3] EXPLICIT, constructed

/** The peer certificate in an SSL_SESSION DER, null when it has none, undefined when the layout is not the expected one. */
export function peerFromSession(session: Buffer): Buffer | null | undefined {
  try {
    const h: DerHeader = { tag: 0, contentStart: 0, end: 0 };
    readHeader(session, 0, h);
    if (h.tag !== SEQUENCE || h.end !== session.length) return undefined;
    let offset = h.contentStart;
    const end = h.end;
    // version, ssl_version, cipher, session_id, master_key come first; then optional tagged fields.
    while (offset < end) {
      readHeader(session, offset, h);
      if (h.tag === PEER_TAG) {
        const certStart = h.contentStart;
        const outer = h.end;
        readHeader(session, certStart, h);
        if (h.tag !== SEQUENCE || h.end !== outer) return undefined;
        return Buffer.from(session.subarray(certStart, outer));
      }
      // Tagged fields come in ascending order, so one past [3] means there is no peer.
      if ((h.tag & 0xe0) === 0xa0 && (h.tag & 0x1f) > 3) return null;
      offset = h.end;
    }
    return null;
  } catch {
    return undefined;
  }
}

// Parsed certificates by fingerprint: a device reconnecting presents the same certificate.
const parsed = new Map<string, CertificateInfo | null>();
const MAX_REMEMBERED_CERTIFICATES = 10_000;

function parsedCertificate(fingerprint: string, der: Buffer): CertificateInfo | null {
  let cert = parsed.get(fingerprint);
  if (cert === undefined) {
    try {
      cert = parseCertificate(der);
    } catch {
      cert = null;
    }
    if (parsed.size >= MAX_REMEMBERED_CERTIFICATES) parsed.delete(parsed.keys().next().value!);
    parsed.set(fingerprint, cert);
  }
  return cert;
}

/**
 * The chain as the handshake built it, leaf first, as DER. Only `.raw` is read from Node's
 * detailed certificate objects (their subject strings are never an identity, CVE-2021-44532);
 * X509Certificate.issuerCertificate is not filled in for peer certificates on Node 20.
 */
function chainOf(socket: TLSSocket, leaf: Buffer): Buffer[] {
  const chain = [leaf];
  let issuer = socket.getPeerCertificate(true)?.issuerCertificate;
  while (issuer?.raw && chain.length < 8 && !issuer.raw.equals(chain[chain.length - 1]!)) {
    chain.push(issuer.raw);
    issuer = issuer.issuerCertificate;
  }
  return chain;
}
