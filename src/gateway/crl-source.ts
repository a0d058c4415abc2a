/**
 * One CRL source (a file or a URL) and the CRL it last loaded. A refresh that fails for any
 * reason (unreadable, unreachable, malformed, foreign, badly signed, older) keeps the last good
 * CRL in force and records why: a CA outage must not un-revoke anything.
 */
import { isGatehouseError } from '../errors/errors.js';
import type { Logger } from '../log/logger.js';
import { acceptCrl, assertNotOlder, type CrlIssuers, type LoadedCrl } from './crl-acceptance.js';
import { displaySource, fetchCrlBytes, readCrlFile, type FetchLimits } from './crl-fetch.js';

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
  current: LoadedCrl | null = null;
  lastError: string | null = null;
  lastErrorAt: Date | null = null;
  lastSuccessAt: Date | null = null;
  private lastRaw: Buffer | null = null;
  private inFlight: Promise<boolean> | null = null;
  private queued: Promise<boolean> | null = null;

  constructor(readonly location: string, private readonly deps: CrlSourceDeps) {
    this.kind = /^https?:\/\//i.test(location) ? 'url' : 'file';
    this.name = displaySource(location);
  }

  /**
   * Reads and, if acceptable, installs the CRL; false when this attempt failed. Never rejects.
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
      raw = this.kind === 'url' ? await fetchCrlBytes(new URL(this.location), this.deps.limits) : await readCrlFile(this.location, this.deps.limits.maxBytes);
    } catch (err) {
      return this.fail('gateway.crl_unreachable', err);
    }
    if (this.current && this.lastRaw?.equals(raw)) return this.succeed(false);
    let loaded: LoadedCrl;
    try {
      loaded = acceptCrl(raw, this.deps.issuers, this.deps.graceMs);
      assertNotOlder(loaded, this.current);
    } catch (err) {
      return this.fail('gateway.crl_refused', err);
    }
    const previous = this.current;
    this.current = loaded;
    this.lastRaw = raw;
    const { crl } = loaded;
    this.deps.logger.info('gateway.crl_loaded', {
      source: this.name, issuer: loaded.issuerDn, crlNumber: crl.crlNumber, entries: crl.revoked.size,
      thisUpdate: crl.thisUpdate.toISOString(), nextUpdate: crl.nextUpdate?.toISOString() ?? null, replaced: previous?.crl.crlNumber ?? null,
    });
    return this.succeed(true);
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
   * old one); an unreachable source at warn. Either way the CRL in force stays.
   */
  private fail(event: 'gateway.crl_unreachable' | 'gateway.crl_refused', err: unknown): false {
    if (this.deps.limits.signal?.aborted) return false; // closed while fetching
    const reason = err instanceof Error ? err.message : String(err);
    this.lastError = reason;
    this.lastErrorAt = this.deps.now();
    const fields = {
      source: this.name, code: isGatehouseError(err) ? err.code : null, reason,
      kept: this.current ? { issuer: this.current.issuerDn, crlNumber: this.current.crl.crlNumber, nextUpdate: this.current.crl.nextUpdate?.toISOString() } : null,
    };
    if (event === 'gateway.crl_refused') this.deps.logger.error(event, fields);
    else this.deps.logger.warn(event, fields);
    return false;
  }
}
