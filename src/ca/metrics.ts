/**
 * The CA's Prometheus metrics. Label values come from closed sets: kind (enroll, renew, sign,
 * internal), the roles of the config plus the CA's own (ca-server, admin), error codes of the
 * registry, certificate states; never from request input, so a client cannot grow the series
 * count. With --workers the primary merges every worker's registry (prom-client's cluster
 * aggregation): counters and histograms sum; the store counts, which every worker reads from
 * the same database, take the maximum; the expiry timestamps take the minimum (the soonest).
 * Times to come (expiry, nextUpdate) are Unix timestamps, `*_timestamp_seconds`, as Prometheus
 * advises: `… - time()` is how far off they are, and a stalled scrape cannot make them look fresh.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { registerProcessMetrics, unixSeconds } from '../metrics/process-metrics.js';
import type { CertState } from '../store/store-certificates.js';
import type { IssuanceKind, IssuanceObserver } from './authority-context.js';
import { isStale, POSTURE_BANDS, POSTURE_STALE_MS, postureBand } from './posture-views.js';
import type { LimitKey, LimitedEndpoint } from './rate-limit.js';
import { SECRET_READ_RESULTS, type SecretObserver } from '../secrets/read-results.js';

export interface CaGaugeSources {
  certificatesByState(): Promise<Record<CertState, number>>;
  /** notAfter of the root, the intermediate and this process's HTTPS certificate. */
  certificateNotAfter(): Array<{ certificate: 'root' | 'intermediate' | 'server'; notAfter: Date }>;
  /** nextUpdate of the CRLs this process serves. */
  crlNextUpdate(): Array<{ crl: 'intermediate' | 'root'; nextUpdate: Date }>;
  /** Active identities' latest posture scores (null: no score or never reported) and report times. */
  posture?(): Promise<Array<{ score: number | null; reportedAt: string | null }>>;
}

/**
 * The `route` label of the request histogram: a closed set, never the raw path (a client
 * choosing paths would otherwise choose the series count).
 */
export type CaRoute = 'enroll' | 'renew' | 'roots' | 'crl' | 'secrets' | 'admin' | 'dashboard' | 'health' | 'other';
export function caRouteOf(path: string): CaRoute {
  switch (path) {
    case '/enroll':
      return 'enroll';
    case '/renew':
      return 'renew';
    case '/roots':
      return 'roots';
    case '/crl':
    case '/crl/root':
      return 'crl';
    case '/healthz':
    case '/health':
      return 'health';
  }
  if (path === '/v1/secrets' || path.startsWith('/v1/secrets/')) return 'secrets';
  if (path.startsWith('/admin/')) return 'admin';
  // DASHBOARD_PREFIX of src/dashboard/router.ts, which only routes.ts may import (test/architecture.test.ts).
  if (path === '/dashboard' || path.startsWith('/dashboard/')) return 'dashboard';
  return 'other';
}
/** The `method` label: the methods the API answers, the rest (Node's parser accepts some 30) as `other`. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export interface CaMetrics {
  registry: Registry;
  observer: IssuanceObserver;
  /** Told about every `/v1/secrets` request by its outcome (`gatehouse_ca_secret_reads_total{result}`). */
  secrets: SecretObserver;
  /** A request answered 429 by the rate limit of `endpoint` keyed by `key` (rate-limit.ts). */
  rateLimited(endpoint: LimitedEndpoint, key: LimitKey): void;
  /** A response of the HTTPS API finished: `path` without the query, `seconds` since the request arrived. */
  requestFinished(method: string | undefined, path: string, status: number, seconds: number): void;
  setSources(sources: CaGaugeSources): void;
}

/** Counting the inventory reads indexes only, but a scrape from several Prometheus servers should not repeat it. */
const STATE_CACHE_MS = 5000;

export function createCaMetrics(registry = new Registry()): CaMetrics {
  registerProcessMetrics(registry, 'ca');
  let sources: CaGaugeSources | null = null;
  let stateCache: { at: number; value: Promise<Record<CertState, number>> } | null = null;

  const issued = new Counter({
    name: 'gatehouse_ca_certificates_issued_total',
    help: 'Certificates issued, by kind (enroll, renew, sign, internal) and role',
    labelNames: ['kind', 'role'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'gatehouse_ca_issuance_duration_seconds',
    help: 'Time from a request reaching the authority to its certificate being on disk, by kind',
    labelNames: ['kind'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const requests = new Histogram({
    name: 'gatehouse_ca_http_request_duration_seconds',
    help: 'Time from a request of the HTTPS API arriving to its response finished, by method, route (enroll, renew, roots, crl, secrets, admin, dashboard, health, other) and status code',
    labelNames: ['method', 'route', 'code'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const suppressed = new Counter({
    name: 'gatehouse_ca_audit_events_suppressed_total',
    help: 'Audit events of refused requests not written because their source (or all sources) passed the rate limit, by event type',
    labelNames: ['type'],
    registers: [registry],
  });
  const rateLimited = new Counter({
    name: 'gatehouse_ca_rate_limited_total',
    help: 'Requests answered 429 by a rate limit, by endpoint (enroll, renew) and what the bucket is keyed by (source, token, certificate)',
    labelNames: ['endpoint', 'key'],
    registers: [registry],
  });
  const reuse = new Counter({
    name: 'gatehouse_ca_renewal_reuse_detected_total',
    help: 'Renewals that presented an already renewed certificate with another key (a copied identity), after which its whole lineage was revoked, by role',
    labelNames: ['role'],
    registers: [registry],
  });
  const secretReads = new Counter({
    name: 'gatehouse_ca_secret_reads_total',
    help: 'Requests of identities to /v1/secrets, by result: delivered, listed, or why refused (not_granted, unknown, version_gone, invalid, revoked, expired, untrusted, sealed_invalid, error)',
    labelNames: ['result'],
    registers: [registry],
  });
  const refused = new Counter({
    name: 'gatehouse_ca_refusals_total',
    help: 'Enroll, renew and sign requests answered with an error, by kind and error code',
    labelNames: ['kind', 'code'],
    registers: [registry],
  });
  new Gauge({
    name: 'gatehouse_ca_certificates',
    help: 'Certificates in the inventory by state (active, expired, revoked), counted from the store',
    labelNames: ['state'],
    registers: [registry],
    aggregator: 'max',
    async collect() {
      if (!sources) return;
      const now = Date.now();
      if (!stateCache || now - stateCache.at > STATE_CACHE_MS)
        stateCache = { at: now, value: sources.certificatesByState() };
      const counts = await stateCache.value.catch(() => null);
      if (!counts) {
        stateCache = null;
        return;
      }
      for (const [state, count] of Object.entries(counts)) this.set({ state }, count);
    },
  });
  let postureCache: { at: number; value: Promise<Array<{ score: number | null; reportedAt: string | null }>> } | null =
    null;
  const postureNow = () => {
    const now = Date.now();
    if (!postureCache || now - postureCache.at > STATE_CACHE_MS)
      postureCache = { at: now, value: sources?.posture?.() ?? Promise.resolve([]) };
    return postureCache.value.catch(() => {
      postureCache = null;
      return null;
    });
  };
  new Gauge({
    name: 'gatehouse_ca_posture_identities',
    help: `Active identities by the score band of their latest posture report (${POSTURE_BANDS.map((b) => b.band)
      .reverse()
      .join(', ')}), or none (never reported, or nothing decided)`,
    labelNames: ['band'],
    registers: [registry],
    aggregator: 'max',
    async collect() {
      const rows = await postureNow();
      if (!rows) return;
      for (const { band } of POSTURE_BANDS)
        this.set({ band }, rows.filter((r) => postureBand(r.score)?.band === band).length);
      this.set({ band: 'none' }, rows.filter((r) => postureBand(r.score) === null).length);
    },
  });
  new Gauge({
    name: 'gatehouse_ca_posture_stale_identities',
    help: 'Active identities whose latest posture report is older than 2 h, or that never reported',
    registers: [registry],
    aggregator: 'max',
    async collect() {
      const rows = await postureNow();
      if (!rows) return;
      const now = new Date();
      this.set(rows.filter((r) => isStale(r.reportedAt, POSTURE_STALE_MS, now)).length);
    },
  });
  new Gauge({
    name: 'gatehouse_ca_certificate_expiry_timestamp_seconds',
    help: 'Unix time of the notAfter of the CA certificates: root, intermediate, and the CA server HTTPS certificate',
    labelNames: ['certificate'],
    registers: [registry],
    // Merged over --workers: the soonest, i.e. the worker whose server certificate expires first.
    aggregator: 'min',
    collect() {
      for (const { certificate, notAfter } of sources?.certificateNotAfter() ?? [])
        this.set({ certificate }, unixSeconds(notAfter));
    },
  });
  new Gauge({
    name: 'gatehouse_ca_crl_next_update_timestamp_seconds',
    help: 'Unix time of the nextUpdate of each CRL the CA serves',
    labelNames: ['crl'],
    registers: [registry],
    aggregator: 'min',
    collect() {
      for (const { crl, nextUpdate } of sources?.crlNextUpdate() ?? []) this.set({ crl }, unixSeconds(nextUpdate));
    },
  });

  return {
    registry,
    observer: {
      issued(kind: IssuanceKind, role: string, seconds: number) {
        issued.inc({ kind, role });
        duration.observe({ kind }, seconds);
      },
      refused(kind: IssuanceKind, code: string) {
        refused.inc({ kind, code });
      },
      auditSuppressed(type) {
        suppressed.inc({ type });
      },
      reuseDetected(role) {
        reuse.inc({ role });
      },
    },
    secrets: {
      read(result) {
        // A closed set: anything else is a bug, counted as an error rather than as a new series.
        secretReads.inc({ result: (SECRET_READ_RESULTS as readonly string[]).includes(result) ? result : 'error' });
      },
    },
    rateLimited(endpoint, key) {
      rateLimited.inc({ endpoint, key });
    },
    requestFinished(method, path, status, seconds) {
      requests.observe(
        { method: method && METHODS.has(method) ? method : 'other', route: caRouteOf(path), code: String(status) },
        seconds,
      );
    },
    setSources(next) {
      sources = next;
    },
  };
}
