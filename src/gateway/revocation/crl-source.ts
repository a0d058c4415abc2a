/**
 * One CRL source (a file or a URL) and the CRLs it last loaded: one per issuer, from a single
 * CRL or a bundle of them (crl-set.ts). A refresh that fails for any reason (unreadable,
 * unreachable, malformed, foreign, badly signed, older, one bad CRL among good ones) keeps the
 * whole last good set in force and records why: a CA outage must not un-revoke anything.
 */
import { isGatehouseError } from '../../errors/errors.js';
import type { Logger } from '../../log/logger.js';
import { issuerIdOf, type CrlIssuers, type LoadedCrl } from './crl-acceptance.js';
import { displaySource, fetchCrlBytes, readCrlFile, type FetchLimits } from './crl-fetch.js';
import { acceptCrlSet, CrlSetRefusal, type CrlMark } from './crl-set.js';

export interface CrlSourceDeps {
  issuers: CrlIssuers;
  graceMs: number;
  limits: FetchLimits;
  logger: Logger;
  now: () => Date;
  /** Called after a different CRL was put in force. */
  onChange: () => void;
}

export class CrlSource {
  readonly kind: 'file' | 'url';
  /** The location with any userinfo and query hidden: what logs and status show. */
  readonly name: string;
  /** The CRLs in force, in the order of the source; empty until a fetch was accepted. */
  crls: readonly LoadedCrl[] = [];
  lastError: string | null = null;
  lastErrorAt: Date | null = null;
  lastSuccessAt: Date | null = null;
  private lastRaw: Buffer | null = null;
  /**
   * The newest CRL seen per issuer, also after it was dropped: a later fetch that brings an
   * issuer back must not bring back an older CRL (RFC 5280 §5.2.3). Entries are left out.
   */
  private readonly seen = new Map<string, CrlMark>();
  private inFlight: Promise<boolean> | null = null;
  private queued: Promise<boolean> | null = null;

  constructor(
    readonly location: string,
    private readonly deps: CrlSourceDeps,
  ) {
    this.kind = /^https?:\/\//i.test(location) ? 'url' : 'file';
    this.name = displaySource(location);
  }

  /**
   * Reads and, if acceptable, installs the CRLs; false when this attempt failed. Never rejects.
   * A call during an attempt gets one more attempt after it (shared by all such callers): the
   * running one may have read the file or URL before the change that prompted the call.
   */
  refresh(): Promise<boolean> {
    if (this.inFlight) {
      this.queued ??= this.inFlight.then(() => {
        this.queued = null;
        return this.refresh();
      });
      return this.queued;
    }
    this.inFlight = this.attempt()
      .catch((err: unknown) => this.fail('gateway.crl_refused', err))
      .finally(() => {
        this.inFlight = null;
      });
    return this.inFlight;
  }

  private async attempt(): Promise<boolean> {
    let raw: Buffer;
    try {
      raw =
        this.kind === 'url'
          ? await fetchCrlBytes(new URL(this.location), this.deps.limits)
          : await readCrlFile(this.location, this.deps.limits.maxBytes);
    } catch (err) {
      return this.fail('gateway.crl_unreachable', err);
    }
    if (this.crls.length > 0 && this.lastRaw?.equals(raw)) return this.succeed(false);
    let next: LoadedCrl[];
    try {
      const inForce = new Set(this.crls.map(issuerIdOf));
      next = acceptCrlSet(raw, {
        issuers: this.deps.issuers,
        graceMs: this.deps.graceMs,
        now: this.deps.now(),
        seen: this.seen,
        inForce,
      });
    } catch (err) {
      return this.fail('gateway.crl_refused', err);
    }
    this.install(next);
    this.lastRaw = raw;
    return this.succeed(true);
  }

  /** The next fetch is judged in full even if its bytes are the same (the trust bundle changed). */
  judgeAgain(): void {
    this.lastRaw = null;
  }

  /** Puts `next` in force and logs what changed: each CRL loaded, each issuer no longer in the source. */
  private install(next: LoadedCrl[]): void {
    const previous = new Map(this.crls.map((l) => [issuerIdOf(l), l]));
    this.crls = next;
    for (const loaded of next) {
      const id = issuerIdOf(loaded);
      const { crl } = loaded;
      const mark = { ...crl, der: EMPTY, tbsDer: EMPTY, signature: EMPTY, revoked: new Map() };
      this.seen.set(id, { issuerKey: loaded.issuerKey, issuerKeyId: loaded.issuerKeyId, crl: mark });
      const replaced = previous.get(id);
      previous.delete(id);
      if (replaced?.crl.der.equals(crl.der)) continue; // the same CRL, re-sent in a changed bundle
      this.deps.logger.info('gateway.crl_loaded', {
        source: this.name,
        issuer: loaded.issuerDn,
        crlNumber: crl.crlNumber,
        entries: crl.revoked.size,
        thisUpdate: crl.thisUpdate.toISOString(),
        nextUpdate: crl.nextUpdate?.toISOString() ?? null,
        replaced: replaced?.crl.crlNumber ?? null,
      });
    }
    // A CA that no longer publishes here (a retired intermediate whose leaves all expired):
    // its clients now get CRL_MISSING, which fails closed, so this is news, not an error.
    for (const dropped of previous.values()) {
      this.deps.logger.info('gateway.crl_dropped', {
        source: this.name,
        issuer: dropped.issuerDn,
        crlNumber: dropped.crl.crlNumber,
        effect:
          'the source no longer holds a CRL of this issuer; its certificates are refused (CRL_MISSING) unless another source has one',
      });
    }
  }

  private succeed(changed: boolean): boolean {
    this.lastSuccessAt = this.deps.now();
    this.lastError = null;
    this.lastErrorAt = null;
    if (changed) this.deps.onChange();
    return true;
  }

  /**
   * Refused content is logged at error (someone published a bad or foreign CRL, or replays an
   * old one); an unreachable source at warn. Either way the CRLs in force stay.
   */
  private fail(event: 'gateway.crl_unreachable' | 'gateway.crl_refused', err: unknown): false {
    if (this.deps.limits.signal?.aborted) return false; // closed while fetching
    const reason = err instanceof Error ? err.message : String(err);
    this.lastError = reason;
    this.lastErrorAt = this.deps.now();
    const kept = this.crls.map((l) => ({
      issuer: l.issuerDn,
      crlNumber: l.crl.crlNumber,
      nextUpdate: l.crl.nextUpdate?.toISOString(),
    }));
    const fields = {
      source: this.name,
      code: isGatehouseError(err) ? err.code : null,
      reason,
      // Which CRL of a bundle was refused (its position and issuer), when one was.
      ...(err instanceof CrlSetRefusal && err.crl ? { crl: err.crl.block, issuer: err.crl.issuer } : {}),
      // One object for a one-CRL source, as before bundles; a list for a source of several.
      kept: kept.length === 0 ? null : kept.length === 1 ? kept[0] : kept,
    };
    if (event === 'gateway.crl_refused') this.deps.logger.error(event, fields);
    else this.deps.logger.warn(event, fields);
    return false;
  }
}

const EMPTY = Buffer.alloc(0);
