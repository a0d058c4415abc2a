/**
 * With --workers N (gateway or CA) the primary serves the admin listener: /metrics merges every worker's
 * registry (prom-client asks each worker over the cluster channel), and /healthz is healthy
 * while every worker is alive.
 */
import cluster from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { Logger } from '../log/logger.js';
import { startAdminServer, type AdminServer } from '../metrics/admin-server.js';

export async function serveClusterAdmin(listen: string, logger: Logger, expectedWorkers: number, component: 'gateway' | 'ca'): Promise<AdminServer> {
  const aggregator = new AggregatorRegistry();
  const admin = await startAdminServer({
    listen,
    component,
    logger,
    metrics: async () => ({ contentType: aggregator.contentType, body: await (await aggregator.clusterMetrics()).toString() }),
    health: () => {
      const alive = Object.values(cluster.workers ?? {}).filter((w) => w && !w.isDead()).length;
      return { healthy: alive === expectedWorkers, details: { workers: alive, expectedWorkers } };
    },
  });
  logger.info(`${component}.admin_started`, { listen: listen.replace(/:\d+$/, `:${admin.port}`), paths: ['/metrics', '/healthz'] });
  return admin;
}
