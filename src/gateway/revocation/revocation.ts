/**
 * The gateway's revocation checker: CRLs from files and URLs (a source may bundle several, with
 * their signer certificates: crl-set.ts), each verified against the client CA bundle, refreshed on an interval and when files change, and looked up in O(1) per
 * certificate (issuer Name → CRL → serial in a Map), however long the CRLs are.
 *
 * Fails closed: once any source is configured, a leaf whose issuer has no CRL loaded is refused
 * (CRL_MISSING), and so is a certificate whose issuer's CRL is past nextUpdate + grace
 * (CRL_STALE) unless `unsafeFailOpenOnStaleCrl` is set. A refresh that fails keeps the last good
 * CRL. At start, an unusable file source is a configuration error (as nginx refuses to start
 * with a bad ssl_crl); an unusable URL source is retried in the background meanwhile.
 *
 * `generation` changes whenever the CRLs in force change or one of them goes stale, so the
 * gateway can cache a verdict per connection and recheck an open connection after a revocation.
 *
 * The rest of revocation/ are the checker's parts: crl-source.ts (one source and its last good
 * CRLs), crl-fetch.ts (reading a source's bytes), crl-set.ts (one fetch, accepted whole),
 * crl-acceptance.ts and crl-signers.ts (whether a CRL and its signers may be used) and
 * crl-schedule.ts (when each source is refreshed).
 */
import { resolve } from 'node:path';
import { GatehouseError } from '../../errors/errors.js';
import { silentLogger, type Logger } from '../../log/logger.js';
import { formatDn, parseCertificate, type CertificateInfo } from '../../pki/certificate.js';
import { CrlIssuers, type LoadedCrl, type TrustBundleInput } from './crl-acceptance.js';
import { CrlSource, type CrlSourceDeps } from './crl-source.js';
import { CrlRefreshSchedule } from './crl-schedule.js';

export interface RevocationOptions {
  /** File paths and http(s):// URLs: one CRL (DER or PEM), or PEM with several CRLs and their signer certificates (crl-set.ts). */
  sources: readonly string[];
  /** The CA certificates that verify client certificates (PEM text, or DER each); CRLs must be signed by one or by a signer certificate it signed. */
  trustBundle: TrustBundleInput;
  /** Trust anchors (PEM) for https:// sources, such as the Gatehouse root; Node's default CAs otherwise. */
  ca?: string;
  refreshIntervalMs?: number;
  /** How long past nextUpdate a CRL is still used (RFC 5280 §5.1.2.5: nextUpdate is a promise, issuers can be late). */
  graceMs?: number;
  /** Allow certificates whose issuer's CRL is stale (logged at warn). Dangerous: an attacker who blocks CRL updates un-revokes. */
  unsafeFailOpenOnStaleCrl?: boolean;
  fetchTimeoutMs?: number;
  maxCrlBytes?: number;
  /** Watch file sources' directories for changes (the interval is the backstop). */
  watchFiles?: boolean;
  now?: () => Date;
  logger?: Logger;
}

export type RevocationReason = 'REVOKED' | 'CRL_STALE' | 'CRL_MISSING';
export type RevocationVerdict = { ok: true } | { ok: false; reason: RevocationReason; detail: string };

export interface RevocationSourceStatus {
  source: string;
  kind: 'file' | 'url';
  issuer: string | null;
  crlNumber: string | null;
  thisUpdate: Date | null;
  nextUpdate: Date | null;
  ageSeconds: number | null;
  stale: boolean | null;
  entries: number;
  lastError: string | null;
  lastErrorAt: Date | null;
  lastSuccessAt: Date | null;
}

export const REVOCATION_DEFAULTS = {
  refreshIntervalMs: 60_000,
  graceMs: 3_600_000,
  fetchTimeoutMs: 10_000,
  maxCrlBytes: 64 * 1024 * 1024,
} as const;

const OK: RevocationVerdict = Object.freeze({ ok: true });
/** The least time between two on-demand refreshes (refreshForMissingCrl). */
const ON_DEMAND_MIN_INTERVAL_MS = 5_000;
const MAX_TIMER_MS = 2 ** 31 - 1;

export class RevocationChecker {
  private readonly sources: CrlSource[];
  private readonly schedule: CrlRefreshSchedule;
  private readonly now: () => Date;
  private readonly logger: Logger;
  private readonly failOpen: boolean;
  private readonly graceMs: number;
  private byIssuer = new Map<string, LoadedCrl[]>();
  private generationCount = 0;
  /** The earliest staleAtMs among CRLs not yet stale; passing it bumps the generation. */
  private nextStaleAtMs = Infinity;
  private readonly reportedStale = new WeakSet<LoadedCrl>();
  private started = false;
  private readonly deps: CrlSourceDeps;
  private readonly httpsTrustFollowsBundle: boolean;
  private onDemand: Promise<void> | null = null;
  private lastOnDemandMs = -Infinity;
  /** Cancels in-flight fetches on close(). */
  private readonly abort = new AbortController();

  constructor(options: RevocationOptions) {
    const settings = { ...REVOCATION_DEFAULTS, ...definedOnly(options) };
    for (const key of ['refreshIntervalMs', 'fetchTimeoutMs', 'maxCrlBytes', 'graceMs'] as const) {
      const value = settings[key];
      // setTimeout fires at once past 2^31 − 1 ms, which would turn the interval into a busy loop.
      const tooLong = (key === 'refreshIntervalMs' || key === 'fetchTimeoutMs') && value > MAX_TIMER_MS;
      if (!Number.isFinite(value) || value < 0 || tooLong || (key !== 'graceMs' && value === 0))
        throw new GatehouseError(
          'GH_CONFIG_INVALID',
          `revocation ${key}: ${value} is not a valid ${key === 'maxCrlBytes' ? 'size' : 'duration'}`,
        );
    }
    this.now = options.now ?? (() => new Date());
    this.logger = options.logger ?? silentLogger;
    this.failOpen = options.unsafeFailOpenOnStaleCrl === true;
    this.graceMs = settings.graceMs;
    let issuers: CrlIssuers;
    try {
      issuers = new CrlIssuers(options.trustBundle);
    } catch (cause) {
      throw new GatehouseError('GH_CONFIG_INVALID', `revocation trust bundle: ${(cause as Error).message}`, { cause });
    }
    // Shared by every source: useTrustBundle replaces the issuers and the https:// trust for all at once.
    this.deps = {
      issuers,
      graceMs: this.graceMs,
      logger: this.logger,
      now: this.now,
      onChange: () => this.reindex(),
      limits: {
        ...(options.ca ? { ca: options.ca } : {}),
        timeoutMs: settings.fetchTimeoutMs,
        maxBytes: settings.maxCrlBytes,
        signal: this.abort.signal,
      },
    };
    this.httpsTrustFollowsBundle = options.ca !== undefined && options.ca === options.trustBundle;
    this.sources = validateSources(options.sources).map((location) => new CrlSource(location, this.deps));
    this.schedule = new CrlRefreshSchedule(this.sources, {
      intervalMs: settings.refreshIntervalMs,
      watchFiles: options.watchFiles !== false,
      logger: this.logger,
    });
  }

  /** Loads every source once, then refreshes them in the background. See the module comment for failures. */
  async start(): Promise<void> {
    if (this.started) throw new GatehouseError('GH_INTERNAL', 'the revocation checker was already started');
    this.started = true;
    if (this.failOpen)
      this.logger.warn('gateway.unsafe_fail_open_on_stale_crl', {
        effect: "certificates are allowed when their issuer's CRL is stale; blocking CRL updates would un-revoke them",
      });
    const loaded = await Promise.all(this.sources.map((s) => s.refresh()));
    const badFiles = this.sources.filter((s, i) => !loaded[i] && s.kind === 'file');
    if (badFiles.length > 0) {
      this.close();
      const more = badFiles.length > 1 ? ` (and ${badFiles.length - 1} more, see the log)` : '';
      throw new GatehouseError(
        'GH_CONFIG_INVALID',
        `CRL source ${badFiles[0]!.name} cannot be used: ${badFiles[0]!.lastError}${more}`,
      );
    }
    for (const source of this.sources.filter((_source, i) => !loaded[i])) {
      this.logger.warn('gateway.crl_pending', {
        source: source.name,
        reason: source.lastError,
        effect: 'retrying in the background; clients of an issuer without a CRL are refused (CRL_MISSING) meanwhile',
      });
    }
    this.schedule.start();
  }

  /**
   * A verified client of an issuer with no CRL loaded: the CA may have just rotated its issuing
   * CA or root, and the next scheduled refresh may be a minute away. Fetches every source now,
   * shared by all callers meanwhile and at most once per ON_DEMAND_MIN_INTERVAL_MS, so only holders
   * of certificates the trust bundle verified can ask, and they cannot make the gateway hammer a CA.
   */
  refreshForMissingCrl(): Promise<void> {
    if (this.onDemand) return this.onDemand;
    const nowMs = this.now().getTime();
    if (nowMs - this.lastOnDemandMs < ON_DEMAND_MIN_INTERVAL_MS) return Promise.resolve();
    this.lastOnDemandMs = nowMs;
    this.logger.info('gateway.crl_refresh_on_demand', { reason: "a client certificate's issuer has no CRL loaded" });
    this.onDemand = this.refresh().finally(() => {
      this.onDemand = null;
    });
    return this.onDemand;
  }

  /**
   * A changed tls.clientCa (an agent wrote a new trust bundle: a root rotation). Checked first;
   * the returned function puts it in force, so the caller can apply it together with the TLS
   * reload. Every source is then judged again against it: CRLs a root no longer in the bundle
   * vouched for are dropped, and those of a new root's CAs are accepted.
   */
  prepareTrustBundle(pem: string): () => void {
    let issuers: CrlIssuers;
    try {
      issuers = new CrlIssuers(pem);
    } catch (cause) {
      throw new GatehouseError('GH_CONFIG_INVALID', `revocation trust bundle: ${(cause as Error).message}`, { cause });
    }
    return () => {
      if (
        issuers.bundle.length === this.deps.issuers.bundle.length &&
        issuers.bundle.every((c, i) => c.fingerprint === this.deps.issuers.bundle[i]!.fingerprint)
      )
        return;
      this.deps.issuers = issuers;
      if (this.httpsTrustFollowsBundle) this.deps.limits.ca = pem;
      for (const source of this.sources) source.judgeAgain();
      this.logger.info('gateway.crl_trust_reloaded', { cas: issuers.bundle.length });
      void this.refresh();
    };
  }

  /** Refreshes every source now (a reload signal, tests). */
  async refresh(): Promise<void> {
    await Promise.all(this.sources.map((s) => s.refresh()));
  }

  /** Stops timers, watchers and fetches in flight. The CRLs in force stay readable. */
  close(): void {
    this.schedule.close();
    this.abort.abort();
  }

  /** Changes when the CRLs in force change or one goes stale: a cached verdict older than this must be rechecked. */
  get generation(): number {
    this.noticeStaleness(this.now().getTime());
    return this.generationCount;
  }

  /**
   * `chain` is the verified client chain, leaf first, as DER or parsed certificates. The leaf's
   * issuer must have a CRL; CA certificates above it are checked when their issuer's CRL is loaded.
   */
  check(chain: ReadonlyArray<Buffer | CertificateInfo>): RevocationVerdict {
    if (chain.length === 0)
      throw new GatehouseError('GH_INTERNAL', 'revocation check needs at least the leaf certificate');
    if (this.sources.length === 0) return OK;
    const nowMs = this.now().getTime();
    this.noticeStaleness(nowMs);
    for (let i = 0; i < chain.length; i++) {
      const item = chain[i]!;
      const cert = Buffer.isBuffer(item) ? parseCertificate(item) : item;
      // A self-issued CA above the leaf is the trust anchor: it is trusted, not checked (RFC 5280 §6.1).
      if (i > 0 && cert.issuerNameDer.equals(cert.subjectNameDer)) break;
      const label = i === 0 ? 'client certificate' : `CA certificate "${formatDn(cert.subject)}"`;
      const crls = this.crlsFor(cert);
      if (crls.length === 0) {
        if (i === 0)
          return {
            ok: false,
            reason: 'CRL_MISSING',
            detail: `no CRL is loaded for "${formatDn(cert.issuer)}", the issuer of the ${label} (serial ${cert.serial})`,
          };
        continue;
      }
      for (const loaded of crls) {
        const entry = loaded.crl.revoked.get(cert.serial);
        if (entry)
          return {
            ok: false,
            reason: 'REVOKED',
            detail: `${label} serial ${cert.serial} was revoked at ${entry.revokedAt.toISOString()} (${entry.reason}) by "${loaded.issuerDn}"`,
          };
      }
      // Several sources may carry the same issuer's CRL: any fresh one is enough.
      if (!this.failOpen && crls.every((l) => nowMs > l.staleAtMs)) {
        const freshest = crls.reduce((a, b) => (a.staleAtMs >= b.staleAtMs ? a : b));
        return {
          ok: false,
          reason: 'CRL_STALE',
          detail: `the CRL of "${freshest.issuerDn}" passed its nextUpdate ${freshest.crl.nextUpdate!.toISOString()} more than ${Math.round(this.graceMs / 1000)} s ago`,
        };
      }
    }
    return OK;
  }

  /** One row per CRL in force, with its source; a source with none yet has one row without a CRL. */
  status(): RevocationSourceStatus[] {
    const nowMs = this.now().getTime();
    return this.sources.flatMap((s) =>
      (s.crls.length > 0 ? s.crls : [null]).map((c) => {
        return {
          source: s.name,
          kind: s.kind,
          issuer: c?.issuerDn ?? null,
          crlNumber: c?.crl.crlNumber?.toString() ?? null,
          thisUpdate: c?.crl.thisUpdate ?? null,
          nextUpdate: c?.crl.nextUpdate ?? null,
          ageSeconds: c ? Math.floor((nowMs - c.crl.thisUpdate.getTime()) / 1000) : null,
          stale: c ? nowMs > c.staleAtMs : null,
          entries: c?.crl.revoked.size ?? 0,
          lastError: s.lastError,
          lastErrorAt: s.lastErrorAt,
          lastSuccessAt: s.lastSuccessAt,
        };
      }),
    );
  }

  /** CRLs of the certificate's issuer: same Name bytes, and the same key when both identify it (RFC 5280 §4.2.1.1). */
  private crlsFor(cert: CertificateInfo): LoadedCrl[] {
    const crls = this.byIssuer.get(cert.issuerNameDer.toString('hex'));
    if (!crls) return [];
    const aki = cert.authorityKeyId;
    return aki ? crls.filter((l) => !l.issuerKeyId || l.issuerKeyId.equals(aki)) : crls;
  }

  private reindex(): void {
    const byIssuer = new Map<string, LoadedCrl[]>();
    for (const { crls } of this.sources)
      for (const loaded of crls) byIssuer.set(loaded.issuerKey, [...(byIssuer.get(loaded.issuerKey) ?? []), loaded]);
    this.byIssuer = byIssuer;
    this.generationCount++;
    this.scanStaleness(this.now().getTime());
  }

  /** O(1) unless a CRL just crossed nextUpdate + grace: then the generation moves. */
  private noticeStaleness(nowMs: number): void {
    if (nowMs <= this.nextStaleAtMs) return;
    this.generationCount++;
    this.scanStaleness(nowMs);
  }

  /** Logs each CRL once when it is found stale, and finds the next one to go stale. */
  private scanStaleness(nowMs: number): void {
    let next = Infinity;
    for (const { crls, name } of this.sources)
      for (const loaded of crls) {
        if (nowMs <= loaded.staleAtMs) {
          next = Math.min(next, loaded.staleAtMs);
        } else if (!this.reportedStale.has(loaded)) {
          this.reportedStale.add(loaded);
          this.logger.warn('gateway.crl_stale', {
            source: name,
            issuer: loaded.issuerDn,
            nextUpdate: loaded.crl.nextUpdate?.toISOString(),
            graceMs: this.graceMs,
            effect: this.failOpen
              ? 'allowed anyway (unsafeFailOpenOnStaleCrl)'
              : 'certificates of this issuer are refused (CRL_STALE)',
          });
        }
      }
    this.nextStaleAtMs = next;
  }
}

function validateSources(sources: readonly string[]): string[] {
  const seen = new Set<string>();
  return sources.map((source, i) => {
    if (typeof source !== 'string' || source.trim() === '')
      throw new GatehouseError('GH_CONFIG_INVALID', `revocation sources[${i}]: empty`);
    let location = source;
    if (/^https?:\/\//i.test(source)) {
      if (!URL.canParse(source)) throw new GatehouseError('GH_CONFIG_INVALID', `revocation sources[${i}]: invalid URL`);
    } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) {
      throw new GatehouseError(
        'GH_CONFIG_INVALID',
        `revocation sources[${i}]: only file paths and http(s):// URLs are supported`,
      );
    } else {
      location = resolve(source);
    }
    if (seen.has(location)) throw new GatehouseError('GH_CONFIG_INVALID', `revocation sources[${i}]: listed twice`);
    seen.add(location);
    return location;
  });
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
