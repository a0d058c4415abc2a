/**
 * Who is on a TLS connection, and whether they are still let in: the verified client
 * certificate, parsed once per distinct certificate (a device reconnecting presents the same
 * one), and re-checked on every request for what can change while a connection is open — the
 * certificate's expiry and the CRLs.
 */
import type { TLSSocket } from 'node:tls';
import { identityOf, type CertificateInfo, type Identity } from '../pki/certificate.js';
import { checkPeerCertificate } from '../tls/peer-certificate.js';
import type { RefusalReason } from './refusal.js';

/** What the gateway needs of a revocation checker (see revocation/revocation.ts). */
export interface RevocationCheck {
  /** Changes whenever the loaded CRLs change, so cached per-connection verdicts are redone. */
  readonly generation: number;
  /** `chainDer` is leaf first. */
  check(
    chainDer: readonly Buffer[],
  ): { ok: true } | { ok: false; reason: 'REVOKED' | 'CRL_STALE' | 'CRL_MISSING'; detail: string };
  /**
   * Fetches the sources again now, at most once per few seconds however often it is called: a
   * verified client of an issuer with no CRL yet (a CA that just rotated) is refused only after
   * the sources were asked once more.
   */
  refreshForMissingCrl?(): Promise<void>;
  status(): {
    source: string;
    issuer: string | null;
    thisUpdate: Date | null;
    nextUpdate: Date | null;
    stale: boolean | null;
    lastError: string | null;
  }[];
}

export interface Peer {
  cert: CertificateInfo;
  identity: Identity;
  chainDer: Buffer[];
  /** chainDer came from a full handshake (a resumed session has only the leaf). */
  fullChain: boolean;
  /** The identity headers for this peer, built on its first request (they name the gateway too, hence the key). */
  headers?: { gatewaySpiffeId: string | null; list: [string, string][] };
}

export type PeerVerdict =
  { peer: Peer; refusal: null } | { peer: null; refusal: { reason: RefusalReason; detail: string } };

interface Entry {
  peer: Peer | null;
  refusal: { reason: RefusalReason; detail: string } | null;
  revocationGeneration: number;
}

/**
 * Peers seen before, by certificate fingerprint: their parsed form, identity and identity
 * headers are built once, not per handshake. This also keeps the chain of a full handshake for
 * resumed sessions, where Node has none and the intermediate could not otherwise be checked
 * against the root's CRL. Bounded.
 */
const MAX_REMEMBERED_PEERS = 10_000;

export class PeerAdmission {
  private readonly perConnection = new WeakMap<object, Entry>();
  private readonly known = new Map<string, Peer>();

  constructor(
    private readonly revocation: RevocationCheck | undefined,
    private readonly now: () => Date,
  ) {}

  /** The verdict for this connection now. */
  check(socket: TLSSocket): PeerVerdict {
    let entry = this.perConnection.get(socket);
    if (!entry) {
      entry = this.verify(socket);
      this.perConnection.set(socket, entry);
    }
    if (!entry.peer) return { peer: null, refusal: entry.refusal! };
    // A connection can outlive its certificate or its good standing: recheck both. The peer is
    // kept with a revocation refusal, so a CRL that was stale and is fresh again lets it back in.
    if (entry.peer.cert.notAfter <= this.now())
      return {
        peer: null,
        refusal: { reason: 'EXPIRED', detail: `certificate expired at ${entry.peer.cert.notAfter.toISOString()}` },
      };
    const { revocation } = this;
    if (revocation && entry.revocationGeneration !== revocation.generation) {
      const verdict = revocation.check(entry.peer.chainDer);
      entry = {
        peer: entry.peer,
        refusal: verdict.ok ? null : { reason: verdict.reason, detail: verdict.detail },
        revocationGeneration: revocation.generation,
      };
      this.perConnection.set(socket, entry);
    }
    return entry.refusal ? { peer: null, refusal: entry.refusal } : { peer: entry.peer!, refusal: null };
  }

  private verify(socket: TLSSocket): Entry {
    const check = checkPeerCertificate(socket);
    if (!check.ok)
      return { peer: null, refusal: { reason: check.reason, detail: check.detail }, revocationGeneration: 0 };
    let peer = this.known.get(check.fingerprint);
    // The chain costs more to read than the rest of the check together (Node builds an object per
    // certificate), so it is read once per certificate, and again only to replace a leaf-only chain.
    if (!peer || (!peer.fullChain && !check.resumed)) {
      const chainDer = check.resumed ? [check.der] : check.chainDer();
      peer = {
        cert: check.cert,
        identity: peer?.identity ?? identityOf(check.cert),
        chainDer,
        fullChain: !check.resumed,
      };
      if (!this.known.has(check.fingerprint) && this.known.size >= MAX_REMEMBERED_PEERS)
        this.known.delete(this.known.keys().next().value!);
      this.known.set(check.fingerprint, peer);
    }
    return { peer, refusal: null, revocationGeneration: -1 };
  }
}
