/**
 * The gateway's Prometheus metrics. Label values come from closed sets (reasons, decisions,
 * status codes, route labels), never from client input, so a client cannot grow the series
 * count. With --workers the primary merges the workers' registries (prom-client's cluster
 * aggregation): counters sum; the expiry gauge takes the minimum, the CRL age the maximum.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface GatewayGauges {
  /** Seconds until the gateway's own certificate expires (negative once expired). */
  certificateExpirySeconds(): number | null;
  /** Per CRL: age in seconds and seconds until nextUpdate. */
  crls(): { issuer: string; ageSeconds: number; nextUpdateSeconds: number | null }[];
}

export interface GatewayMetrics {
  registry: Registry;
  handshakes: Counter<'outcome'>;
  handshakeFailures: Counter<'reason'>;
  requests: Counter<'decision' | 'reason' | 'status'>;
  upstreamLatency: Histogram<'route'>;
  upstreamFailures: Counter<'route' | 'upstream' | 'kind'>;
  reloads: Counter<'what' | 'result'>;
  setGauges(gauges: GatewayGauges): void;
}

export function createGatewayMetrics(registry = new Registry()): GatewayMetrics {
  collectDefaultMetrics({ register: registry });
  let gauges: GatewayGauges | null = null;
  new Gauge({
    name: 'gatehouse_gateway_certificate_expiry_seconds',
    help: "Seconds until the gateway's own server certificate expires",
    registers: [registry],
    aggregator: 'min',
    collect() {
      const value = gauges?.certificateExpirySeconds();
      if (value !== null && value !== undefined) this.set(value);
    },
  });
  new Gauge({
    name: 'gatehouse_gateway_crl_age_seconds',
    help: 'Seconds since the thisUpdate of the CRL in use, per issuer',
    labelNames: ['issuer'],
    registers: [registry],
    aggregator: 'max',
    collect() {
      this.reset();
      for (const crl of gauges?.crls() ?? []) this.set({ issuer: crl.issuer }, crl.ageSeconds);
    },
  });
  new Gauge({
    name: 'gatehouse_gateway_crl_next_update_seconds',
    help: 'Seconds until the nextUpdate of the CRL in use, per issuer (negative when overdue)',
    labelNames: ['issuer'],
    registers: [registry],
    aggregator: 'min',
    collect() {
      this.reset();
      for (const crl of gauges?.crls() ?? []) if (crl.nextUpdateSeconds !== null) this.set({ issuer: crl.issuer }, crl.nextUpdateSeconds);
    },
  });
  return {
    registry,
    handshakes: new Counter({ name: 'gatehouse_gateway_handshakes_total', help: 'Completed TLS handshakes by client certificate outcome', labelNames: ['outcome'], registers: [registry] }),
    handshakeFailures: new Counter({ name: 'gatehouse_gateway_handshake_failures_total', help: 'TLS handshakes that failed before completing, by reason', labelNames: ['reason'], registers: [registry] }),
    requests: new Counter({ name: 'gatehouse_gateway_requests_total', help: 'Requests by decision, refusal reason and status', labelNames: ['decision', 'reason', 'status'], registers: [registry] }),
    upstreamLatency: new Histogram({
      name: 'gatehouse_gateway_upstream_latency_seconds',
      help: 'Time from forwarding a request to the upstream response headers',
      labelNames: ['route'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    upstreamFailures: new Counter({ name: 'gatehouse_gateway_upstream_failures_total', help: 'Failed upstream attempts by route, upstream and kind', labelNames: ['route', 'upstream', 'kind'], registers: [registry] }),
    reloads: new Counter({ name: 'gatehouse_gateway_reloads_total', help: 'Reloads of certificates, trust bundle, policy and routes, by result', labelNames: ['what', 'result'], registers: [registry] }),
    setGauges(next) {
      gauges = next;
    },
  };
}
