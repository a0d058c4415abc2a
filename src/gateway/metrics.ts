/**
 * The gateway's Prometheus metrics. Label values come from closed sets (reasons, decisions,
 * status codes, route labels), never from client input, so a client cannot grow the series
 * count. With --workers the primary merges the workers' registries (prom-client's cluster
 * aggregation): counters and histograms sum; the timestamps take the minimum (the soonest
 * expiry and nextUpdate, the oldest thisUpdate). Times are Unix timestamps, `*_timestamp_seconds`,
 * as Prometheus advises: `… - time()` is how far off they are.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { registerProcessMetrics, unixSeconds } from '../metrics/process-metrics.js';

export interface GatewayGauges {
  /** notAfter of the gateway's own server certificate. */
  certificateNotAfter(): Date | null;
  /** Per CRL in use: its thisUpdate and nextUpdate. */
  crls(): { issuer: string; thisUpdate: Date; nextUpdate: Date | null }[];
}

/** The `code` label of the request histogram: the status class, `aborted` when no response was sent. */
export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'aborted';
}

export interface GatewayMetrics {
  registry: Registry;
  handshakes: Counter<'outcome'>;
  handshakeFailures: Counter<'reason'>;
  requests: Counter<'decision' | 'reason' | 'status'>;
  /** Request to response finished (or, for an upgrade, to the upstream's answer), by route (`none` when refused before routing) and status class. */
  requestDuration: Histogram<'route' | 'code'>;
  upstreamLatency: Histogram<'route'>;
  upstreamFailures: Counter<'route' | 'upstream' | 'kind'>;
  postureLookups: Counter<'result'>;
  reloads: Counter<'what' | 'result'>;
  setGauges(gauges: GatewayGauges): void;
}

export function createGatewayMetrics(registry = new Registry()): GatewayMetrics {
  registerProcessMetrics(registry, 'gateway');
  let gauges: GatewayGauges | null = null;
  new Gauge({
    name: 'gatehouse_gateway_certificate_expiry_timestamp_seconds',
    help: "Unix time of the notAfter of the gateway's own server certificate",
    registers: [registry],
    aggregator: 'min',
    collect() {
      const notAfter = gauges?.certificateNotAfter();
      if (notAfter) this.set(unixSeconds(notAfter));
    },
  });
  new Gauge({
    name: 'gatehouse_gateway_crl_this_update_timestamp_seconds',
    help: 'Unix time of the thisUpdate of the CRL in use, per issuer',
    labelNames: ['issuer'],
    registers: [registry],
    aggregator: 'min',
    collect() {
      this.reset();
      for (const crl of gauges?.crls() ?? []) this.set({ issuer: crl.issuer }, unixSeconds(crl.thisUpdate));
    },
  });
  new Gauge({
    name: 'gatehouse_gateway_crl_next_update_timestamp_seconds',
    help: 'Unix time of the nextUpdate of the CRL in use, per issuer',
    labelNames: ['issuer'],
    registers: [registry],
    aggregator: 'min',
    collect() {
      this.reset();
      for (const crl of gauges?.crls() ?? [])
        if (crl.nextUpdate !== null) this.set({ issuer: crl.issuer }, unixSeconds(crl.nextUpdate));
    },
  });
  return {
    registry,
    handshakes: new Counter({
      name: 'gatehouse_gateway_handshakes_total',
      help: 'Completed TLS handshakes by client certificate outcome',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    handshakeFailures: new Counter({
      name: 'gatehouse_gateway_handshake_failures_total',
      help: 'TLS handshakes that failed before completing, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    requests: new Counter({
      name: 'gatehouse_gateway_requests_total',
      help: 'Requests by decision, refusal reason and status',
      labelNames: ['decision', 'reason', 'status'],
      registers: [registry],
    }),
    requestDuration: new Histogram({
      name: 'gatehouse_gateway_request_duration_seconds',
      help: 'Time from a request arriving to its response finished (for an upgrade: to the upstream answering it), by route (none when refused before routing) and status class (2xx to 5xx, aborted)',
      labelNames: ['route', 'code'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    upstreamLatency: new Histogram({
      name: 'gatehouse_gateway_upstream_latency_seconds',
      help: 'Time from forwarding a request to the upstream response headers',
      labelNames: ['route'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    upstreamFailures: new Counter({
      name: 'gatehouse_gateway_upstream_failures_total',
      help: 'Failed upstream attempts by route, upstream and kind',
      labelNames: ['route', 'upstream', 'kind'],
      registers: [registry],
    }),
    postureLookups: new Counter({
      name: 'gatehouse_gateway_posture_lookups_total',
      help: 'Posture standings looked up for rules that require posture, by result (cached, fetched, stale, unavailable, allowed_unsafe)',
      labelNames: ['result'],
      registers: [registry],
    }),
    reloads: new Counter({
      name: 'gatehouse_gateway_reloads_total',
      help: 'Reloads of certificates, trust bundle, policy and routes, by result',
      labelNames: ['what', 'result'],
      registers: [registry],
    }),
    setGauges(next) {
      gauges = next;
    },
  };
}
