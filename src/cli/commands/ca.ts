import { GatehouseError } from '../../errors/errors.js';
import { parseWorkers } from '../workers-option.js';
import { readFileSync } from 'node:fs';
import { isClusterWorker, superviseWorkers } from '../ca-workers.js';
import { untilStopped } from '../stop.js';
import { isKeyType, KEY_TYPES, loadPrivateKey } from '../../pki/keys.js';
import { serverLogger, announce, logLevelOption } from '../server-log.js';
import { sha256Hex } from '../../pki/certificate.js';
import { flag, list, str, type CommandSpec, caDirOf } from '../command.js';
import { json, keyValues } from '../output.js';
import { localActor } from '../local-actor.js';
import { splitHostPort, urlHost } from '../../config/listen.js';
import type { ExternalCaOptions } from '../../ca/init.js';

export const caInit: CommandSpec = {
  path: ['ca', 'init'],
  summary:
    'Create a CA: a root, an online issuing intermediate, an admin identity (DIR/admin), the config and the database.',
  options: {
    dir: {
      type: 'string',
      value: 'DIR',
      required: true,
      description: 'New or empty directory for the CA (created 0700)',
    },
    name: {
      type: 'string',
      value: 'ORG',
      description: 'Organization name, the O= of every certificate (default Gatehouse)',
    },
    'trust-domain': {
      type: 'string',
      value: 'DOMAIN',
      description: 'SPIFFE trust domain (default gatehouse.internal)',
    },
    'key-type': { type: 'string', value: 'TYPE', description: `CA key type: ${KEY_TYPES.join(', ')} (default p256)` },
    'root-key-out': {
      type: 'string',
      value: 'FILE',
      description: 'Write the root key here instead of DIR, to keep it offline',
    },
    'passphrase-file': {
      type: 'string',
      value: 'FILE',
      description: 'Encrypt the CA keys at rest with the passphrase in FILE',
    },
    listen: {
      type: 'string',
      value: 'HOST:PORT',
      description: 'Address `ca serve` listens on (default 127.0.0.1:8443)',
    },
    'store-url': {
      type: 'string',
      value: 'URL',
      description:
        'Keep the state in PostgreSQL (postgres://user@host:port/db; default GATEHOUSE_STORE_URL, else SQLite in DIR); the password goes in PGPASSWORD or ~/.pgpass, never in gatehouse.yaml',
    },
    'import-root': {
      type: 'string',
      value: 'FILE',
      description: 'Use this existing root certificate (PEM) instead of making one',
    },
    'import-root-key': {
      type: 'string',
      value: 'FILE',
      description: 'Its key: used once to sign the issuing CA and the first root CRL, never copied',
    },
    'import-intermediate': {
      type: 'string',
      value: 'FILE',
      description: 'Use this existing issuing CA certificate (PEM), signed by the imported root',
    },
    'import-intermediate-key': {
      type: 'string',
      value: 'FILE',
      description: 'Its key, stored in DIR (encrypted with --passphrase-file when given)',
    },
    'external-ca': {
      type: 'string',
      value: 'URL',
      description:
        'Registration-authority mode: a cfssl-compatible signer at URL signs every certificate (needs --import-root)',
    },
    'external-ca-auth-key': {
      type: 'string',
      value: 'FILE',
      description: 'Hex HMAC key shared with the signer (0600): requests go to /api/v1/cfssl/authsign',
    },
    'external-ca-tls-ca': {
      type: 'string',
      value: 'FILE',
      description: "CA certificate (PEM) of the signer's HTTPS certificate",
    },
    'external-ca-tls-cert': {
      type: 'string',
      value: 'FILE',
      description: 'Client certificate (PEM) for mutual TLS to the signer',
    },
    'external-ca-tls-key': { type: 'string', value: 'FILE', description: 'Its key (0600)' },
    'external-ca-profile': {
      type: 'string',
      multiple: true,
      value: 'ROLE=PROFILE',
      description:
        "The signer profile for a role (default: the role's profile name); ca-server is the CA's own HTTPS certificate",
    },
    json: { type: 'boolean', description: 'Print what was created as JSON' },
  },
  notes: [
    'Refuses a directory that is not empty: an existing CA is never overwritten.',
    'Importing (docs/operations.md, "Bringing your own CA"): --import-root with --import-root-key makes a new issuing CA under that root; --import-root with --import-intermediate and --import-intermediate-key uses both as they are. Everything is checked first (chain, CA flags, key usages, path length, extended key usage, keys, lifetimes against the roles); a problem exits 65 (GH_CA_IMPORT_INVALID) and creates nothing. Encrypted imported keys are read with --passphrase-file. Without --import-root-key, the root CRL is left to the root\'s own PKI (crl.rootCrl: external).',
    'External signer (docs/operations.md, "External signer"): --external-ca URL --import-root ROOT [--import-intermediate CERT] keeps enrollment, names, inventory, revocation and audit here and sends each prepared request to the signer; every certificate it returns is checked (key, subject, SANs, EKU, CA:FALSE, lifetime, chain) before it is recorded. The admin certificate is signed by it during init, so an unreachable signer exits 69 and creates nothing. Its file paths are written to gatehouse.yaml as absolute paths.',
  ],
  async run(ctx) {
    const keyType = str(ctx, 'key-type') ?? 'p256';
    if (!isKeyType(keyType)) throw new GatehouseError('GH_USAGE', `--key-type must be one of ${KEY_TYPES.join(', ')}`);
    const { initCa } = await import('../../ca/init.js');
    const result = await initCa({
      dir: str(ctx, 'dir')!,
      keyType,
      ...(str(ctx, 'name') ? { org: str(ctx, 'name')! } : {}),
      ...(str(ctx, 'trust-domain') ? { trustDomain: str(ctx, 'trust-domain')! } : {}),
      ...(str(ctx, 'root-key-out') ? { rootKeyOut: str(ctx, 'root-key-out')! } : {}),
      ...(str(ctx, 'passphrase-file') ? { passphraseFile: str(ctx, 'passphrase-file')! } : {}),
      ...(str(ctx, 'listen') ? { listen: str(ctx, 'listen')! } : {}),
      ...((str(ctx, 'store-url') ?? ctx.env.GATEHOUSE_STORE_URL)
        ? { storeUrl: (str(ctx, 'store-url') ?? ctx.env.GATEHOUSE_STORE_URL)! }
        : {}),
      ...(str(ctx, 'import-root') ||
      str(ctx, 'import-intermediate') ||
      str(ctx, 'import-root-key') ||
      str(ctx, 'import-intermediate-key')
        ? { importPaths: importPathsOf(ctx) }
        : {}),
      ...externalCaOf(ctx),
    });
    if (flag(ctx, 'json')) {
      return void ctx.out(
        json({
          dir: result.dir,
          rootFingerprint: result.rootFingerprint,
          rootKey: result.rootKeyPath,
          rootKeyOffline: result.rootKeyPath === null || Boolean(str(ctx, 'root-key-out')),
          imported: result.imported,
          externalCa: result.externalCa,
          adminDir: result.adminDir,
          config: result.configPath,
        }),
      );
    }
    ctx.out(
      `Created a CA in ${result.dir}${result.imported.root ? ` with the imported root${result.imported.intermediate ? ' and issuing CA' : ''}` : ''}\n\n`,
    );
    const rootKeyLine =
      result.rootKeyPath === null
        ? str(ctx, 'import-root-key')
          ? `${str(ctx, 'import-root-key')}  (used once, not copied: keep it offline)`
          : 'not held by this CA (its own PKI publishes the root CRL)'
        : `${result.rootKeyPath}${str(ctx, 'root-key-out') ? '  (offline: keep it away from this machine)' : ''}`;
    ctx.out(
      keyValues([
        ['root fingerprint (SHA-256)', result.rootFingerprint],
        ['root key', rootKeyLine],
        ...(result.externalCa
          ? [
              [
                'signer',
                `${result.externalCa}  (external CA: it signs every certificate, Gatehouse checks each one)`,
              ] as [string, string],
            ]
          : []),
        ['admin identity', result.adminDir],
        ['config', result.configPath],
      ]),
    );
    ctx.out(
      `\nNext:\n  gatehouse ca serve --dir ${result.dir}\n  gatehouse token create --dir ${result.dir} --role web\n`,
    );
  },
};

function externalCaOf(ctx: Parameters<CommandSpec['run']>[0]): { externalCa?: ExternalCaOptions } {
  const url = str(ctx, 'external-ca');
  const files = {
    authKeyFile: str(ctx, 'external-ca-auth-key'),
    tlsCa: str(ctx, 'external-ca-tls-ca'),
    tlsCert: str(ctx, 'external-ca-tls-cert'),
    tlsKey: str(ctx, 'external-ca-tls-key'),
  };
  const profileArgs = list(ctx, 'external-ca-profile');
  if (!url) {
    if (Object.values(files).some(Boolean) || profileArgs.length)
      throw new GatehouseError('GH_USAGE', 'the --external-ca-* options need --external-ca URL');
    return {};
  }
  const profiles: Record<string, string> = {};
  for (const arg of profileArgs) {
    const m = /^([a-z0-9-]+)=([A-Za-z0-9_.-]{1,64})$/.exec(arg);
    if (!m)
      throw new GatehouseError(
        'GH_USAGE',
        `--external-ca-profile ${JSON.stringify(arg)}: write ROLE=PROFILE, e.g. web=corp-client`,
      );
    profiles[m[1]!] = m[2]!;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new GatehouseError(
      'GH_USAGE',
      `--external-ca ${JSON.stringify(url)} is not a URL; give the signer's base URL, e.g. https://signer.example.internal:8888`,
    );
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
    throw new GatehouseError('GH_USAGE', `--external-ca must be an http:// or https:// URL, not ${parsed.protocol}`);
  return {
    externalCa: {
      url,
      ...Object.fromEntries(Object.entries(files).filter(([, v]) => v)),
      ...(profileArgs.length ? { profiles } : {}),
    },
  };
}

function importPathsOf(ctx: Parameters<CommandSpec['run']>[0]): {
  root: string;
  rootKey?: string;
  intermediate?: string;
  intermediateKey?: string;
} {
  const root = str(ctx, 'import-root');
  if (!root)
    throw new GatehouseError(
      'GH_USAGE',
      '--import-root FILE is needed with the other --import-* options: the root the imported PKI chains to',
    );
  return {
    root,
    ...(str(ctx, 'import-root-key') ? { rootKey: str(ctx, 'import-root-key')! } : {}),
    ...(str(ctx, 'import-intermediate') ? { intermediate: str(ctx, 'import-intermediate')! } : {}),
    ...(str(ctx, 'import-intermediate-key') ? { intermediateKey: str(ctx, 'import-intermediate-key')! } : {}),
  };
}

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

export const caRootCrl: CommandSpec = {
  path: ['ca', 'root-crl'],
  summary: 'Re-sign the root CRL with the offline root key (needed when the root key is not in the CA directory).',
  options: {
    dir: { type: 'string', value: 'DIR', required: true, description: 'CA directory' },
    'root-key': { type: 'string', value: 'FILE', required: true, description: 'The offline root key' },
    'passphrase-file': { type: 'string', value: 'FILE', description: 'Passphrase for encrypted CA keys' },
    json: { type: 'boolean', description: "Print the new CRL's number and dates as JSON" },
  },
  async run(ctx) {
    const dir = str(ctx, 'dir')!;
    const { loadCaMaterial, readPassphrase } = await import('../../ca/ca-dir.js');
    const { generateRootCrl } = await import('../../ca/crl-publisher.js');
    const { prepareSigningAuthority } = await import('../../pki/leaf-certificate.js');
    const { openCaStore } = await import('../../ca/store-open.js');
    const material = loadCaMaterial(dir, { passphraseFile: str(ctx, 'passphrase-file') });
    if (material.config.crl.rootCrl === 'external') {
      throw new GatehouseError(
        'GH_USAGE',
        "this CA does not publish the root's CRL (crl.rootCrl: external in gatehouse.yaml): the imported root's own PKI does; a CRL signed here would never be served",
      );
    }
    const passphrase = readPassphrase(str(ctx, 'passphrase-file') ?? material.config.keys.passphraseFile);
    const rootKey = loadPrivateKey(readFileSync(str(ctx, 'root-key')!, 'utf8'), passphrase, str(ctx, 'root-key'));
    const store = await openCaStore(material.dir, material.config);
    try {
      const crl = await generateRootCrl(
        store,
        prepareSigningAuthority(material.rootDer, rootKey),
        material.config,
        new Date(),
      );
      if (flag(ctx, 'json'))
        return void ctx.out(
          json({
            number: crl.number.toString(),
            thisUpdate: crl.thisUpdate.toISOString(),
            nextUpdate: crl.nextUpdate.toISOString(),
          }),
        );
      ctx.out(
        `root CRL #${crl.number} valid until ${crl.nextUpdate.toISOString()}; a running CA picks it up when its copy nears nextUpdate (restart it to serve it now)\n`,
      );
    } finally {
      await store.close();
    }
  },
};

export const caBackup: CommandSpec = {
  path: ['ca', 'backup'],
  summary:
    'Copy a CA directory, running or not, into a new backup directory: one consistent snapshot of the database, the keys as they are (still encrypted), certificates, config and the admin identity, with a manifest of checksums.',
  options: {
    dir: { type: 'string', value: 'DIR', description: 'CA directory (or GATEHOUSE_CA_DIR)' },
    out: {
      type: 'string',
      value: 'PATH',
      required: true,
      description: 'New directory for the backup; must not exist (created 0700, its files 0600)',
    },
    json: { type: 'boolean', description: "Print the manifest and the backup's path as JSON" },
  },
  notes: [
    'Safe while `ca serve` runs: the database is read from one consistent snapshot (SQLite VACUUM INTO), never copied as a file. Needs no passphrase and prints no key material.',
    "Left out, and listed in manifest.json with the reason: the database's -wal and -shm files (their content is in the snapshot), unfinished writes, the passphrase file, symbolic links. A root key kept offline is not in DIR, so not in the backup.",
    'PATH appears complete or not at all. Records ca.backup_created in the audit trail. Exit 73 (GH_BACKUP_EXISTS) when PATH exists; 65 (GH_AUDIT_BROKEN) when the audit trail in the backup does not verify (the backup is kept, as evidence; `ca restore` refuses it).',
  ],
  async run(ctx) {
    const dir = caDirOf(ctx);
    const { createCaBackup } = await import('../../ca/backup.js');
    const result = await createCaBackup({ dir, out: str(ctx, 'out')!, actor: localActor(), env: ctx.env });
    const m = result.manifest;
    const broken = !m.audit.intact
      ? new GatehouseError(
          'GH_AUDIT_BROKEN',
          `backup written to ${result.path}, but the audit trail in it does not verify: ${m.audit.problem}; keep it as evidence (\`ca restore\` refuses it)`,
        )
      : null;
    if (flag(ctx, 'json')) {
      if (broken) throw broken;
      return void ctx.out(
        json({
          path: result.path,
          manifestSha256: result.manifestSha256,
          bytes: result.bytes,
          durationMs: Math.round(result.durationMs),
          manifest: m,
        }),
      );
    }
    ctx.out(`Backed up the CA in ${m.source} to ${result.path}\n\n`);
    ctx.out(
      keyValues([
        ['root fingerprint (SHA-256)', m.rootFingerprint],
        ['audit head', `${m.audit.head ?? '-'} (${m.audit.events} events${m.audit.intact ? ', intact' : ', BROKEN'})`],
        ['certificates, tokens', `${m.rows.certificates}, ${m.rows.tokens}`],
        ['schema version', m.schemaVersion],
        ['files', `${m.files.length} (${result.bytes} bytes) in ${Math.round(result.durationMs)} ms`],
        [
          'keys',
          `${m.keys.encrypted ? 'encrypted (the passphrase is not in the backup)' : 'not encrypted'}; root key ${m.keys.rootKeyIncluded ? 'included' : 'not included (kept offline)'}`,
        ],
        ['manifest SHA-256', result.manifestSha256],
      ]),
    );
    if (m.excluded.length) ctx.out(`\nLeft out:\n${m.excluded.map((e) => `  ${e.path}: ${e.reason}`).join('\n')}\n`);
    ctx.out(
      `\nThe backup holds the CA's private keys: store it like them. Check it with\n  gatehouse ca restore --from ${result.path} --dir NEW_DIR\n`,
    );
    if (broken) throw broken;
  },
};

export const caRestore: CommandSpec = {
  path: ['ca', 'restore'],
  summary:
    "Restore a backup made by `ca backup` into a new CA directory, after checking every file against the manifest, and the database's integrity and audit trail.",
  options: {
    from: {
      type: 'string',
      value: 'BACKUP',
      required: true,
      description: 'The backup directory (made by `gatehouse ca backup --out`)',
    },
    dir: {
      type: 'string',
      value: 'NEW_DIR',
      required: true,
      description: 'New or empty directory for the restored CA (created 0700, its files 0600)',
    },
    json: { type: 'boolean', description: 'Print what was restored as JSON' },
  },
  notes: [
    "Refuses, writing nothing: a backup with a changed, missing or added file, the manifest included (GH_BACKUP_CORRUPT, exit 65, naming the file); a database that fails SQLite's integrity check or whose audit trail does not verify (GH_AUDIT_BROKEN, 65); a NEW_DIR that is not empty (GH_CA_EXISTS, 73).",
    "Applies this Gatehouse's schema migrations, as `ca serve` would, and raises the CRL numbers to the current Unix time in seconds, so relying parties that saw newer CRLs from the lost CA accept the restored CA's. Certificates, revocations and tokens made after the backup are not in it (docs/operations.md).",
  ],
  async run(ctx) {
    const { restoreCaBackup } = await import('../../ca/backup-restore.js');
    const r = await restoreCaBackup({ from: str(ctx, 'from')!, dir: str(ctx, 'dir')! });
    if (flag(ctx, 'json')) {
      return void ctx.out(
        json({
          dir: r.dir,
          from: r.from,
          rootFingerprint: r.rootFingerprint,
          backupCreatedAt: r.manifest.createdAt,
          backupGatehouseVersion: r.manifest.gatehouseVersion,
          manifestSha256: r.manifestSha256,
          schemaVersion: r.schemaVersion,
          auditHead: r.auditHead,
          auditEvents: r.auditEvents,
          certificates: r.certificates,
          tokens: r.tokens,
          names: r.names,
          files: r.files,
          bytes: r.bytes,
          crlNumberFloor: r.crlNumberFloor,
          rootKeyIncluded: r.manifest.keys.rootKeyIncluded,
          keysEncrypted: r.manifest.keys.encrypted,
          passphraseFile: r.passphraseFile,
        }),
      );
    }
    ctx.out(
      `Restored the backup ${r.from} (made ${r.manifest.createdAt} by Gatehouse ${r.manifest.gatehouseVersion}) into ${r.dir}\n\n`,
    );
    ctx.out(
      keyValues([
        ['root fingerprint (SHA-256)', r.rootFingerprint],
        ['audit head', `${r.auditHead ?? '-'} (${r.auditEvents} events, intact)`],
        [
          'certificates',
          `${r.certificates.active} active, ${r.certificates.expired} expired, ${r.certificates.revoked} revoked`,
        ],
        ['tokens, reserved names', `${r.tokens}, ${r.names}`],
        ['files', `${r.files} (${r.bytes} bytes), every checksum matched`],
        ['manifest SHA-256', r.manifestSha256],
        ['CRL numbers', `continue above ${r.crlNumberFloor}`],
        [
          'root key',
          r.manifest.keys.rootKeyIncluded
            ? 'included'
            : 'not included (kept offline): `ca root-crl --root-key FILE` re-signs the root CRL',
        ],
        [
          'keys',
          r.passphraseFile
            ? `encrypted; passphrase file ${r.passphraseFile.path} ${r.passphraseFile.present ? 'is present' : 'is NOT on this machine: put it there, or pass --passphrase-file to ca serve'}`
            : 'not encrypted',
        ],
      ]),
    );
    ctx.out(
      `\nNext:\n  gatehouse audit verify --dir ${r.dir} --anchor ${r.auditHead ?? 'SEQ:HASH'}\n  gatehouse ca serve --dir ${r.dir}\n`,
    );
  },
};
