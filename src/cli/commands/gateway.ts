import { availableParallelism } from 'node:os';
import cluster from 'node:cluster';
import { GatehouseError } from '../../errors/errors.js';
import { serverLogger, announce, logLevelOption } from '../server-log.js';
import { str, flag, type CommandSpec } from '../command.js';
import { isClusterWorker, superviseWorkers } from '../ca-workers.js';
import { parseWorkers } from '../workers-option.js';
import { untilStopped } from '../stop.js';
import { splitHostPort, urlHost } from '../../config/listen.js';

const RELOAD_MESSAGE = 'gatehouse:reload';

export const gatewayCommand: CommandSpec = {
  path: ['gateway'],
  summary:
    'Run the mTLS gateway: require a client certificate, decide by identity, forward to the app with identity headers it can trust.',
  options: {
    config: {
      type: 'string',
      value: 'FILE',
      description: 'Gateway config (YAML or JSON; see docs/gateway.md). Replaces the flags below',
    },
    listen: { type: 'string', value: 'HOST:PORT', description: 'Address to listen on, e.g. 127.0.0.1:8443' },
    cert: {
      type: 'string',
      value: 'FILE',
      description: "The gateway's certificate chain (PEM), e.g. an agent's cert.pem",
    },
    key: { type: 'string', value: 'FILE', description: "The gateway's private key (PEM)" },
    'client-ca': {
      type: 'string',
      value: 'FILE',
      description: 'CA bundle client certificates must chain to (e.g. ca.pem plus the intermediate)',
    },
    upstream: {
      type: 'string',
      multiple: true,
      value: 'URL',
      description:
        'The app, e.g. http://127.0.0.1:9000 (loopback unless --unsafe-allow-non-local-upstream); repeat for round-robin',
    },
    policy: {
      type: 'string',
      value: 'FILE',
      description: 'Policy (JSON or YAML). Without it any verified client is allowed, with a warning',
    },
    crl: {
      type: 'string',
      multiple: true,
      value: 'FILE|URL',
      description: "CRL file or URL (e.g. the CA's https://…/crl); repeat for each issuer. Revoked clients are refused",
    },
    'posture-ca': {
      type: 'string',
      value: 'URL',
      description:
        "The CA (https://…) that policy rules with posture: ask for a device's standing, with this gateway's certificate",
    },
    headers: {
      type: 'string',
      value: 'PRESET',
      description: 'Identity headers for the app: default, nginx, envoy, traefik (default default)',
    },
    'admin-listen': {
      type: 'string',
      value: 'HOST:PORT',
      description: 'Serve /metrics and /healthz here, e.g. 127.0.0.1:9090',
    },
    workers: {
      type: 'string',
      value: 'N',
      description: 'Worker processes sharing the port (default: one per core, as "auto"; 1 runs in-process)',
    },
    'unsafe-allow-non-local-upstream': {
      type: 'boolean',
      description: 'Allow an upstream not on loopback (the app must accept connections only from the gateway)',
    },
    'log-level': logLevelOption(),
  },
  notes: [
    'Logs JSON lines to stderr (time, level, msg, fields), one per request (gateway.request); once listening, a gateway.listening line with url and metrics (and a sentence for a person when stderr is a terminal).',
    'Reloads the certificate, key and client CA bundle when their files change (an agent renewal); the policy when its file changes; routes when the config file changes. SIGHUP reloads the certificate, key, bundle and policy at once and fetches every CRL source again. A file that does not load keeps the previous state.',
    'On SIGTERM or SIGINT it stops accepting connections and lets requests in flight finish (limits.drainTimeout, default 30s), then cuts the rest (gateway.drain_timeout).',
    'Every listener (listen, admin.listen) is bound at start: an address in use, a port below 1024 without the privilege or an address not on this machine fails with GH_LISTEN_FAILED (exit 71).',
    'Environment: GATEHOUSE_GATEWAY_LISTEN, GATEHOUSE_GATEWAY_ADMIN_LISTEN, GATEHOUSE_GATEWAY_WORKERS override the config.',
  ],
  async run(ctx) {
    // Workers say which one they are, so a reload or a failure can be traced to a process.
    const logger = serverLogger(ctx, {
      batch: true,
      ...(isClusterWorker() ? { base: { worker: cluster.worker!.id } } : {}),
    });
    const { gatewayConfigFromFlags, loadGatewayConfig } = await import('../../gateway/config.js');
    const configFile = str(ctx, 'config') ?? null;
    const flagNames = [
      'listen',
      'cert',
      'key',
      'client-ca',
      'upstream',
      'policy',
      'crl',
      'posture-ca',
      'headers',
      'admin-listen',
      'unsafe-allow-non-local-upstream',
    ];
    if (configFile && flagNames.some((name) => ctx.values[name] !== undefined)) {
      throw new GatehouseError(
        'GH_USAGE',
        `--config replaces ${flagNames
          .filter((n) => ctx.values[n] !== undefined)
          .map((n) => `--${n}`)
          .join(', ')}: put those settings in the file`,
      );
    }
    const workersText = str(ctx, 'workers');
    const workersFlag = workersText !== undefined ? parseWorkers(workersText, 256) : undefined;
    const config = configFile
      ? loadGatewayConfig(configFile, ctx.env)
      : gatewayConfigFromFlags(
          {
            listen: str(ctx, 'listen'),
            cert: str(ctx, 'cert'),
            key: str(ctx, 'key'),
            clientCa: str(ctx, 'client-ca'),
            upstream: ctx.values.upstream as string[] | undefined,
            policy: str(ctx, 'policy'),
            crl: ctx.values.crl as string[] | undefined,
            ...(str(ctx, 'posture-ca') !== undefined ? { postureCa: str(ctx, 'posture-ca')! } : {}),
            headers: str(ctx, 'headers'),
            adminListen: str(ctx, 'admin-listen'),
            unsafeAllowNonLocalUpstream: flag(ctx, 'unsafe-allow-non-local-upstream'),
          },
          ctx.env,
        );
    // The file's workers is bounded by its schema (1–256).
    const workers = workersFlag ?? config.workers ?? availableParallelism();

    const { runGateway, loadPolicy, assertConfigUsable } = await import('../../gateway/run.js');
    assertConfigUsable(config);
    const host = urlHost(splitHostPort(config.listen).host);

    if (workers > 1 && !isClusterWorker()) {
      // Check everything once in the primary, so a bad file fails here, clearly, and not N times.
      const { loadTlsMaterial } = await import('../../gateway/tls-material.js');
      loadTlsMaterial(config.tls, new Date(), config.listen);
      loadPolicy(config, logger);
      const { serveClusterAdmin } = await import('../cluster-admin.js');
      const admin = config.admin.listen
        ? await serveClusterAdmin(config.admin.listen, logger, workers, 'gateway', config.revocation.grace / 1000)
        : null;
      const forwardReload = () => {
        for (const worker of Object.values(cluster.workers ?? {})) worker?.send(RELOAD_MESSAGE);
      };
      process.on('SIGHUP', forwardReload);
      try {
        return await superviseWorkers({
          workers,
          logger,
          signal: ctx.signal,
          component: 'gateway',
          stopTimeoutMs: config.limits.drainTimeout + 5000,
          onListening: (port) => {
            const url = `https://${host}:${port}`;
            const metrics = admin ? `http://${config.admin.listen!.replace(/:\d+$/, `:${admin.port}`)}/metrics` : null;
            announce(
              ctx,
              logger,
              'gateway.listening',
              { url, metrics, workers },
              `Gatehouse gateway listening on ${url} (${workers} workers)`,
            );
          },
        });
      } finally {
        process.off('SIGHUP', forwardReload);
        await admin?.close();
      }
    }

    const running = await runGateway({ config, configFile, logger, serveAdmin: !isClusterWorker() });
    if (isClusterWorker()) {
      const { AggregatorRegistry } = await import('prom-client');
      // Constructing one installs prom-client's worker-side listener that answers the primary.
      new AggregatorRegistry();
      AggregatorRegistry.setRegistries([running.gateway.metrics.registry]);
      process.on('message', (message) => {
        if (message === RELOAD_MESSAGE) running.reload();
      });
    } else {
      const url = `https://${host}:${running.gateway.port}`;
      const metrics = running.admin
        ? `http://${config.admin.listen!.replace(/:\d+$/, `:${running.admin.port}`)}/metrics`
        : null;
      announce(
        ctx,
        logger,
        'gateway.listening',
        { url, metrics, workers: 1 },
        `Gatehouse gateway listening on ${url}${metrics ? ` (metrics on ${metrics})` : ''}`,
      );
    }
    const onHup = () => running.reload();
    process.on('SIGHUP', onHup);
    await untilStopped(ctx.signal);
    process.off('SIGHUP', onHup);
    logger.info('gateway.stopping', { drainTimeoutMs: config.limits.drainTimeout });
    await running.close();
  },
};
