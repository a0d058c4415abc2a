import { join } from 'node:path';
import { GatehouseError } from '../../errors/errors.js';
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import { isClusterWorker, superviseWorkers } from '../ca-workers.js';
import { untilStopped } from '../stop.js';
import { isKeyType, KEY_TYPES, loadPrivateKey } from '../../pki/keys.js';
import { createLogger } from '../../log/logger.js';
import { flag, str, type CommandSpec, caDirOf } from '../command.js';
import { json, keyValues } from '../output.js';
import { splitHostPort, urlHost } from '../../config/listen.js';

export const caInit: CommandSpec = {
  path: ['ca', 'init'],
  summary: 'Create a CA: a root, an online issuing intermediate, an admin identity (DIR/admin), the config and the database.',
  options: {
    dir: { type: 'string', value: 'DIR', required: true, description: 'New or empty directory for the CA (created 0700)' },
    name: { type: 'string', value: 'ORG', description: 'Organization name, the O= of every certificate (default Gatehouse)' },
    'trust-domain': { type: 'string', value: 'DOMAIN', description: 'SPIFFE trust domain (default gatehouse.internal)' },
    'key-type': { type: 'string', value: 'TYPE', description: `CA key type: ${KEY_TYPES.join(', ')} (default p256)` },
    'root-key-out': { type: 'string', value: 'FILE', description: 'Write the root key here instead of DIR, to keep it offline' },
    'passphrase-file': { type: 'string', value: 'FILE', description: 'Encrypt the CA keys at rest with the passphrase in FILE' },
    listen: { type: 'string', value: 'HOST:PORT', description: 'Address `ca serve` listens on (default 127.0.0.1:8443)' },
    json: { type: 'boolean', description: 'Print what was created as JSON' },
  },
  notes: ['Refuses a directory that is not empty: an existing CA is never overwritten.'],
  async run(ctx) {
    const keyType = str(ctx, 'key-type') ?? 'p256';
    if (!isKeyType(keyType)) throw new GatehouseError('GH_USAGE', `--key-type must be one of ${KEY_TYPES.join(', ')}`);
    const { initCa } = await import('../../ca/init.js');
    const result = await initCa({
      dir: str(ctx, 'dir')!, keyType,
      ...(str(ctx, 'name') ? { org: str(ctx, 'name')! } : {}),
      ...(str(ctx, 'trust-domain') ? { trustDomain: str(ctx, 'trust-domain')! } : {}),
      ...(str(ctx, 'root-key-out') ? { rootKeyOut: str(ctx, 'root-key-out')! } : {}),
      ...(str(ctx, 'passphrase-file') ? { passphraseFile: str(ctx, 'passphrase-file')! } : {}),
      ...(str(ctx, 'listen') ? { listen: str(ctx, 'listen')! } : {}),
    });
    if (flag(ctx, 'json')) {
      return void ctx.out(json({ dir: result.dir, rootFingerprint: result.rootFingerprint, rootKey: result.rootKeyPath, rootKeyOffline: Boolean(str(ctx, 'root-key-out')), adminDir: result.adminDir, config: result.configPath }));
    }
    ctx.out(`Created a CA in ${result.dir}\n\n`);
    ctx.out(keyValues([
      ['root fingerprint (SHA-256)', result.rootFingerprint],
      ['root key', `${result.rootKeyPath}${str(ctx, 'root-key-out') ? '  (offline: keep it away from this machine)' : ''}`],
      ['admin identity', result.adminDir],
      ['config', result.configPath],
    ]));
    ctx.out(`\nNext:\n  gatehouse ca serve --dir ${result.dir}\n  gatehouse token create --dir ${result.dir} --role web\n`);
  },
};

export const caServe: CommandSpec = {
  path: ['ca', 'serve'],
  summary: 'Run the CA HTTPS API: /roots, /enroll, /renew, /crl, /crl/root and the admin API (mTLS, role admin).',
  options: {
    dir: { type: 'string', value: 'DIR', description: 'CA directory (or GATEHOUSE_CA_DIR)' },
    listen: { type: 'string', value: 'HOST:PORT', description: 'Listen address (overrides the config and GATEHOUSE_LISTEN)' },
    'passphrase-file': { type: 'string', value: 'FILE', description: 'Passphrase for encrypted CA keys (or GATEHOUSE_PASSPHRASE_FILE)' },
    workers: { type: 'string', value: 'N', description: 'Worker processes sharing the port and the store (default 1; "auto" = one per core)' },
    'metrics-listen': { type: 'string', value: 'HOST:PORT', description: 'Serve Prometheus /metrics and /healthz over plain HTTP here, e.g. 127.0.0.1:9091 (overrides metrics.listen and GATEHOUSE_METRICS_LISTEN)' },
  },
  notes: [
    'Logs JSON lines to stderr. Stops cleanly on SIGINT or SIGTERM: requests in flight get 5 s to finish, then their connections are cut (ca.drain_timeout); with --workers, a worker still running after 15 s is killed (ca.worker_killed).',
    'Every listener is bound before anything is issued or written: an address in use, a port below 1024 without the privilege or an address not on this machine fails with GH_LISTEN_FAILED (exit 71), leaving the store and the audit trail as they were.',
    'With --workers N and metrics on, the primary serves /metrics with every worker\'s metrics merged, and /healthz while every worker is alive.',
  ],
  async run(ctx) {
    const dir = caDirOf(ctx);
    const workersText = str(ctx, 'workers') ?? '1';
    const workers = workersText === 'auto' ? availableParallelism() : Number(workersText);
    if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new GatehouseError('GH_USAGE', '--workers must be a whole number from 1 to 64, or auto');
    const logger = createLogger();
    const { CA_FILES, loadCaMaterial } = await import('../../ca/ca-dir.js');
    const { startCaServer } = await import('../../ca/server.js');
    const { openSqliteStore } = await import('../../store/sqlite.js');
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
          workers, logger, signal: ctx.signal,
          onListening: (port) => ctx.err(`Gatehouse CA listening on https://${urlHost(splitHostPort(str(ctx, 'listen') ?? material.config.listen).host)}:${port} (${workers} workers)${admin ? `; metrics on ${metricsUrl(admin.port)}` : ''}\n`),
        });
      } finally {
        await admin?.close();
      }
    }
    const store = openSqliteStore(join(dir, CA_FILES.database));
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
      material, store, logger, metrics, metricsListen: isClusterWorker() ? null : metricsListen,
      ...(str(ctx, 'listen') ? { listen: str(ctx, 'listen')! } : {}),
    }).catch(async (err: unknown) => {
      await store.close();
      throw err;
    });
    if (!isClusterWorker()) ctx.err(`Gatehouse CA listening on ${server.url} (root ${server.authority.rootFingerprint})${server.metricsPort ? `; metrics on ${metricsUrl(server.metricsPort)}` : ''}\n`);
    // Also a worker whose primary is gone stops, rather than serving unsupervised.
    await untilStopped(ctx.signal);
    logger.info('ca.stopping', {});
    await server.close();
    await store.close();
  },
};


export const caRootCrl: CommandSpec = {
  path: ['ca', 'root-crl'],
  summary: 'Re-sign the root CRL with the offline root key (needed when the root key is not in the CA directory).',
  options: {
    dir: { type: 'string', value: 'DIR', required: true, description: 'CA directory' },
    'root-key': { type: 'string', value: 'FILE', required: true, description: 'The offline root key' },
    'passphrase-file': { type: 'string', value: 'FILE', description: 'Passphrase for encrypted CA keys' },
    json: { type: 'boolean', description: 'Print the new CRL\'s number and dates as JSON' },
  },
  async run(ctx) {
    const dir = str(ctx, 'dir')!;
    const { CA_FILES, loadCaMaterial, readPassphrase } = await import('../../ca/ca-dir.js');
    const { generateRootCrl } = await import('../../ca/crl-publisher.js');
    const { prepareSigningAuthority } = await import('../../pki/leaf-certificate.js');
    const { openSqliteStore } = await import('../../store/sqlite.js');
    const material = loadCaMaterial(dir, { passphraseFile: str(ctx, 'passphrase-file') });
    const passphrase = readPassphrase(str(ctx, 'passphrase-file') ?? material.config.keys.passphraseFile);
    const rootKey = loadPrivateKey(readFileSync(str(ctx, 'root-key')!, 'utf8'), passphrase, str(ctx, 'root-key'));
    const store = openSqliteStore(join(dir, CA_FILES.database));
    try {
      const crl = await generateRootCrl(store, prepareSigningAuthority(material.rootDer, rootKey), material.config, new Date());
      if (flag(ctx, 'json')) return void ctx.out(json({ number: crl.number.toString(), thisUpdate: crl.thisUpdate.toISOString(), nextUpdate: crl.nextUpdate.toISOString() }));
      ctx.out(`root CRL #${crl.number} valid until ${crl.nextUpdate.toISOString()}; a running CA picks it up when its copy nears nextUpdate (restart it to serve it now)\n`);
    } finally {
      await store.close();
    }
  },
};
