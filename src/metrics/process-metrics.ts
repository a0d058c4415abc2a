/**
 * What every Gatehouse metrics endpoint exposes besides its own metrics: prom-client's default
 * process and Node.js metrics, minus the three that break the Prometheus naming rules, and
 * `gatehouse_build_info`. `promtool check metrics` passes on the result (test/promtool.test.ts).
 */
import { readFileSync } from 'node:fs';
import { Gauge, collectDefaultMetrics, type Registry } from 'prom-client';

/**
 * Gauges that prom-client names `_total`, a suffix reserved for counters (promtool: "non-counter
 * metrics should not have "_total" suffix"). Each is the sum of its sibling without the suffix
 * (`nodejs_active_handles{type}` etc.), so `sum(nodejs_active_handles)` replaces it.
 */
const MISNAMED_DEFAULT_METRICS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

let packageVersion: string | null = null;
/** The version of package.json, as `gatehouse --version` prints it (src/cli/main.ts). */
export function gatehouseVersion(): string {
  if (packageVersion === null) {
    try {
      packageVersion = (
        JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
      ).version;
    } catch {
      packageVersion = 'unknown';
    }
  }
  return packageVersion;
}

/** A `*_timestamp_seconds` value. X.509 and CRL times have whole seconds: a Date kept with milliseconds is floored to what was encoded. */
export function unixSeconds(at: Date): number {
  return Math.floor(at.getTime() / 1000);
}

export function registerProcessMetrics(registry: Registry, component: 'ca' | 'gateway'): void {
  collectDefaultMetrics({ register: registry });
  for (const name of MISNAMED_DEFAULT_METRICS) registry.removeSingleMetric(name);
  new Gauge({
    name: 'gatehouse_build_info',
    help: 'Always 1: the Gatehouse version, the Node.js version running it and the component (ca, gateway) in labels',
    labelNames: ['version', 'node_version', 'component'],
    registers: [registry],
    // Merged over --workers: every worker runs the same build, so one sample, not their sum.
    aggregator: 'first',
    collect() {
      this.set({ version: gatehouseVersion(), node_version: process.version, component }, 1);
    },
  });
}
