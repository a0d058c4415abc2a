/**
 * `gatehouse ca serve`: runs the CA's HTTPS API (with the dashboard mounted), alone or as
 * supervised workers sharing the port, with its optional plain-HTTP metrics listener.
 */
import { parseWorkers } from '../workers-option.js';
import { isClusterWorker, superviseWorkers } from '../ca-workers.js';
import { untilStopped } from '../stop.js';
import { serverLogger, announce, logLevelOption } from '../server-log.js';
import { sha256Hex } from '../../pki/certificate.js';
import { str, type CommandSpec, caDirOf } from '../command.js';
import { splitHostPort, urlHost } from '../../config/listen.js';

export const caServe: CommandSpec = {
  path: ['ca', 'serve'],
  summary: 'Run the CA HTTPS API: /roots, /enroll, /renew, /crl, /crl/root and the admin API (mTLS, role admin).',
  options: {
    dir: { type: 'string', value: 'DIR', description: 'CA directory (or GATEHOUSE_CA_DIR)' },
    listen: {
      type: 'string',
      value: 'HOST:PORT',
      description: 'Listen address (overrides the config and GATEHOUSE_LISTEN)',
    },
    'passphrase-file': {
      type: 'string',
      value: 'FILE',
      description: 'Passphrase for encrypted CA keys (or GATEHOUSE_PASSPHRASE_FILE)',
    },
    workers: {
      type: 'string',
      value: 'N',
      description: 'Worker processes sharing the port and the store (default 1; "auto" = one per core)',
    },
    'metrics-listen': {
      type: 'string',
      value: 'HOST:PORT',
      description:
        'Serve Prometheus /metrics and /healthz over plain HTTP here, e.g. 127.0.0.1:9091 (overrides metrics.listen and GATEHOUSE_METRICS_LISTEN)',
    },
    'log-level': logLevelOption(),
  },
  notes: [
    'Logs JSON lines to stderr (time, level, msg, fields); once every listener is bound, a ca.listening line with url, root and metrics (and a sentence for a person when stderr is a terminal). Stops cleanly on SIGINT or SIGTERM: requests in flight get 5 s to finish, then their connections are cut (ca.drain_timeout); with --workers, a worker still running after 15 s is killed (ca.worker_killed).',
    'Every listener is bound before anything is issued or written: an address in use, a port below 1024 without the privilege or an address not on this machine fails with GH_LISTEN_FAILED (exit 71), leaving the store and the audit trail as they were.',
    "With --workers N and metrics on, the primary serves /metrics with every worker's metrics merged, and /healthz while every worker is alive.",
  ],
  async run(ctx) {
    const logger = serverLogger(ctx);
    const dir = caDirOf(ctx);
    const workers = parseWorkers(str(ctx, 'workers') ?? '1', 64);
    const { loadCaMaterial } = await import('../../ca/ca-dir.js');
    const { startCaServer } = await import('../../ca/server.js');
    const { openCaStore } = await import('../../ca/store-open.js');
    const { dashboardMount } = await import('../../dashboard/router.js');
    // Load and check everything in the primary too, so a bad config or passphrase fails once, clearly.
    const material = loadCaMaterial(dir, { passphraseFile: str(ctx, 'passphrase-file'), env: ctx.env });
    const metricsListen = str(ctx, 'metrics-listen') ?? material.config.metrics.listen;
    if (metricsListen) splitHostPort(metricsListen);
    const metricsUrl = (port: number) => `http://${urlHost(splitHostPort(metricsListen!).host)}:${port}/metrics`;
    if (workers > 1 && !isClusterWorker()) {
      const { serveClusterAdmin } = await import('../cluster-admin.js');
      const admin = metricsListen ? await serveClusterAdmin(metricsListen, logger, workers, 'ca') : null;
      try {
        return await superviseWorkers({
          workers,
          logger,
          signal: ctx.signal,
          onListening: (port) => {
            const url = `https://${urlHost(splitHostPort(str(ctx, 'listen') ?? material.config.listen).host)}:${port}`;
            const metrics = admin ? metricsUrl(admin.port) : null;
            announce(
              ctx,
              logger,
              'ca.listening',
              { url, root: sha256Hex(material.rootDer), metrics, workers },
              `Gatehouse CA listening on ${url} (${workers} workers)${metrics ? `; metrics on ${metrics}` : ''}`,
            );
          },
        });
      } finally {
        await admin?.close();
      }
    }
    const store = await openCaStore(material.dir, material.config);
    let metrics = null;
    if (metricsListen && isClusterWorker()) {
      // Each worker counts into its own registry and answers the primary's aggregation requests:
      // constructing an AggregatorRegistry installs prom-client's worker-side listener.
      const { createCaMetrics } = await import('../../ca/metrics.js');
      const { AggregatorRegistry } = await import('prom-client');
      metrics = createCaMetrics();
      new AggregatorRegistry();
      AggregatorRegistry.setRegistries([metrics.registry]);
    }
    const server = await startCaServer({
      material,
      store,
      logger,
      metrics,
      metricsListen: isClusterWorker() ? null : metricsListen,
      mounts: [dashboardMount],
      ...(str(ctx, 'listen') ? { listen: str(ctx, 'listen')! } : {}),
    }).catch(async (err: unknown) => {
      await store.close();
      throw err;
    });
    if (!isClusterWorker()) {
      const metrics = server.metricsPort ? metricsUrl(server.metricsPort) : null;
      announce(
        ctx,
        logger,
        'ca.listening',
        { url: server.url, root: server.authority.rootFingerprint, metrics, workers: 1 },
        `Gatehouse CA listening on ${server.url} (root ${server.authority.rootFingerprint})${metrics ? `; metrics on ${metrics}` : ''}`,
      );
    }
    // Also a worker whose primary is gone stops, rather than serving unsupervised.
    await untilStopped(ctx.signal);
    logger.info('ca.stopping', {});
    await server.close();
    await store.close();
  },
};
