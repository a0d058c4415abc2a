/**
 * With --workers N (gateway or CA) the primary serves the admin listener: /metrics merges every worker's
 * registry (prom-client asks each worker over the cluster channel), and /healthz is healthy
 * while every worker is alive and the merged metrics show no expired certificate and no CRL past
 * its limit (the primary holds neither, the workers do).
 */
import cluster from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { Logger } from '../log/logger.js';
import { startAdminServer, type AdminServer } from '../metrics/admin-server.js';
import { splitHostPort } from '../config/listen.js';

/**
 * What the merged metrics say is wrong; `crlGraceSeconds` is how far past nextUpdate a CRL may be.
 * The gauges are Unix timestamps, the minimum over the workers (the soonest).
 */
export function problemsInMetrics(
  text: string,
  component: 'gateway' | 'ca',
  crlGraceSeconds: number,
  nowSeconds = Date.now() / 1000,
): string[] {
  const problems: string[] = [];
  const values = (name: string) =>
    [...text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`, 'gm'))].map((m) => ({
      labels: m[1] ?? '',
      value: Number(m[2]),
    }));
  for (const { labels, value } of values(`gatehouse_${component}_certificate_expiry_timestamp_seconds`)) {
    if (value <= nowSeconds)
      problems.push(`certificate ${labels || ''} expired ${Math.round(nowSeconds - value)} s ago`.replace('  ', ' '));
  }
  for (const { labels, value } of values(`gatehouse_${component}_crl_next_update_timestamp_seconds`)) {
    if (value < nowSeconds - crlGraceSeconds)
      problems.push(`CRL ${labels} is ${Math.round(nowSeconds - value)} s past its nextUpdate`);
  }
  return problems;
}

export async function serveClusterAdmin(
  listen: string,
  logger: Logger,
  expectedWorkers: number,
  component: 'gateway' | 'ca',
  crlGraceSeconds = 0,
): Promise<AdminServer> {
  const aggregator = new AggregatorRegistry();
  const admin = await startAdminServer({
    listen,
    ...splitHostPort(listen),
    component,
    logger,
    metrics: async () => ({ contentType: aggregator.contentType, body: await aggregator.clusterMetrics() }),
    health: async () => {
      const alive = Object.values(cluster.workers ?? {}).filter((w) => w && !w.isDead()).length;
      const problems = problemsInMetrics(await aggregator.clusterMetrics(), component, crlGraceSeconds);
      if (alive !== expectedWorkers) problems.push(`${alive} of ${expectedWorkers} workers alive`);
      return { healthy: problems.length === 0, details: { workers: alive, expectedWorkers, problems } };
    },
  });
  logger.info(`${component}.admin_started`, {
    listen: listen.replace(/:\d+$/, `:${admin.port}`),
    paths: ['/metrics', '/healthz'],
  });
  return admin;
}
