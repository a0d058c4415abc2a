/**
 * `gatehouse ca serve`: the CA's HTTPS API. One listener serves unauthenticated bootstrap
 * endpoints (/roots, /enroll, /crl) and mutual-TLS endpoints (/renew, /admin/*). The TLS layer
 * asks for a client certificate but does not require one; each mTLS endpoint checks the
 * verified peer itself and fails closed.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { listenOn } from '../errors/listen.js';
import type { Logger } from '../log/logger.js';
import { publicUrlOf } from '../config/ca-config.js';
import { generatePrivateKey, privateKeyToPem } from '../pki/keys.js';
import { holdsKey } from '../pki/leaf-certificate.js';
import { externalCaFrom, type ExternalCa } from './external-ca.js';
import { isIpAddress } from '../pki/ip.js';
import { parseCertificate } from '../pki/certificate.js';
import { startAdminServer, type AdminServer } from '../metrics/admin-server.js';
import type { Store } from '../store/store.js';
import { Authority } from './authority.js';
import type { CaMaterial } from './ca-dir.js';
import { watchCaDir } from './ca-dir-reload.js';
import { loadRootRotation } from './root-rotation.js';
import { caHealth, withStoreHealth } from './server-health.js';
import { postureScores } from './posture-views.js';
import { CA_SERVER_ROLE } from './active-identities.js';
import { toPem } from '../pki/pem.js';
import { CrlPublisher } from './crl-publisher.js';
import { newRequestId, sendError } from './http-util.js';
import { routeRequest } from './routes.js';
import type { CaMount, RequestScope } from './request-scope.js';
import { createCaMetrics, type CaMetrics } from './metrics.js';
import { RequestRateLimits } from './rate-limit.js';
import { pinPeerForConnection } from '../tls/peer-certificate.js';
import { isLoopbackHost, splitHostPort } from '../config/listen.js';
import { MasterKeyRing } from '../secrets/master-key.js';
import { SecretService } from '../secrets/service.js';
import { TLS12_AEAD_CIPHERS } from '../tls/ciphers.js';

const SERVER_CERT_LIFETIME_MS = 24 * 3_600_000;
const DRAIN_MS = 5000;
/** How often `ca serve` deletes secret versions whose rotation overlap ended (reads never serve them meanwhile). */
const SECRET_PURGE_INTERVAL_MS = 30_000;
const ISSUER_CHECK_INTERVAL_MS = 2000;

export interface CaServerOptions {
  material: CaMaterial;
  store: Store;
  logger: Logger;
  listen?: string;
  now?: () => Date;
  crlCheckIntervalMs?: number;
  /** Count into these metrics (a cluster worker passes its own; the primary serves them). */
  metrics?: CaMetrics | null;
  /** Serve /metrics and /healthz on this address, plain HTTP (metrics.listen, --metrics-listen). */
  metricsListen?: string | null;
  /** Benchmarks only, never from config or the CLI: see AuthorityDeps.unsafeRenewWithoutLineage. */
  unsafeRenewWithoutLineage?: boolean;
  /** The external signer, instead of the one config.externalCa describes (tests wrap it to misbehave). */
  externalCa?: ExternalCa | null;
  /** How often the CA directory is checked for a rotated issuing CA (default 2 s). */
  issuerCheckIntervalMs?: number;
  /** How often expired secret versions are deleted (default 30 s). */
  secretPurgeIntervalMs?: number;
  /**
   * Served on the same listener after the CA's own endpoints: `gatehouse ca serve` mounts the
   * dashboard (dashboardMount), which ca/ does not import. Default: none.
   */
  mounts?: readonly CaMount[];
}

export interface CaServer {
  url: string;
  port: number;
  authority: Authority;
  secrets: SecretService;
  crls: CrlPublisher;
  server: Server;
  metrics: CaMetrics | null;
  /** The admin listener's port, when this process serves one. */
  metricsPort: number | null;
  close(): Promise<void>;
}

export async function startCaServer(options: CaServerOptions): Promise<CaServer> {
  const { material, store, logger } = options;
  const mounts = options.mounts ?? [];
  const now = options.now ?? (() => new Date());
  const { config } = material;
  const listen = options.listen ?? config.listen;
  const { host, port } = splitHostPort(listen);
  const metrics = options.metrics ?? (options.metricsListen ? createCaMetrics() : null);
  const authority = new Authority({
    config,
    store,
    rootDer: material.rootDer,
    intermediateDer: material.intermediateDer,
    intermediateKey: material.intermediateKey,
    retired: material.retired,
    logger,
    now,
    externalCa: options.externalCa !== undefined ? options.externalCa : externalCaFrom(config, material.dir),
    rotation: loadRootRotation(material.dir),
    ...(metrics ? { observer: metrics.observer } : {}),
    ...(options.unsafeRenewWithoutLineage ? { unsafeRenewWithoutLineage: true } : {}),
  });
  const secrets = new SecretService({
    store,
    config,
    logger,
    now,
    keys: new MasterKeyRing(material.dir, material.passphrase),
    ...(metrics ? { observer: metrics.secrets } : {}),
    auditRefusal: (source, event) => authority.auditAnonymousRefusal(source, event),
  });
  // Per process: with --workers N each worker keeps its own buckets (docs/config.md).
  const rateLimits = new RequestRateLimits(config.limits, {
    logger,
    ...(metrics ? { onLimited: (endpoint, key) => metrics.rateLimited(endpoint, key) } : {}),
  });
  const crls = new CrlPublisher({
    config,
    store,
    issuers: () => ({
      current: holdsKey(authority.issuer) ? authority.issuer : null,
      retired: authority.retiredIssuers,
    }),
    rootDer: material.rootDer,
    rootKey: material.rootKey,
    logger,
    now,
  });

  const names = serverNames(host, config.serverNames, config.publicUrl);
  const issueServerCredentials = async () => {
    const key = generatePrivateKey('p256');
    const issued = await authority.issueInternal(
      {
        role: CA_SERVER_ROLE,
        name: 'gatehouse-ca',
        profile: 'server',
        lifetimeMs: SERVER_CERT_LIFETIME_MS,
        dns: names.dns,
        ip: names.ip,
      },
      key,
      { actor: 'ca:self' },
    );
    return { key: privateKeyToPem(key), cert: issued.chainPem, notAfter: issued.record.notAfter };
  };
  // Set once every listener is bound (below); until then the server holds no certificate.
  let credentials!: Awaited<ReturnType<typeof issueServerCredentials>>;
  const tlsOptions = () => ({
    minVersion: 'TLSv1.2' as const,
    ciphers: TLS12_AEAD_CIPHERS,
    honorCipherOrder: true,
    requestCert: true,
    rejectUnauthorized: false,
    // Trust anchors for client certificates: only this CA. The intermediate is listed so that
    // clients sending just their leaf still verify; chains must still end at the root.
    // During a root rotation both roots (root-rotation.ts): chains run to either.
    ca: [
      ...authority.trustedRoots().map((der) => toPem('CERTIFICATE', der)),
      authority.intermediatePem,
      ...authority.retiredIssuers.map((r) => toPem('CERTIFICATE', r.certDer)),
    ].filter((pem) => pem !== ''),
  });
  // No key and no certificate yet: until setSecureContext below, OpenSSL has nothing to sign a
  // handshake with, so every TLS connection fails at the handshake and no request can be served.
  const server = createServer({ ...tlsOptions(), handshakeTimeout: 10_000 });
  // Bounded waits so slow or stalled clients cannot hold connections open (slowloris).
  server.headersTimeout = 15_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 30_000;

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const scope: RequestScope = {
      req,
      res,
      requestId: newRequestId(),
      authority,
      secrets,
      crls,
      logger,
      maxBodyBytes: config.limits.maxBodyBytes,
      rateLimits,
      material,
    };
    const started = process.hrtime.bigint();
    // Read the socket now: after an aborted body it is already detached when 'finish' fires.
    const socket = req.socket as TLSSocket;
    const remote = socket.remoteAddress;
    const tlsVersion = socket.getProtocol?.();
    res.setHeader('x-request-id', scope.requestId);
    res.on('finish', () => {
      const path = (req.url ?? '').split('?')[0]!;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics?.requestFinished(req.method, path, res.statusCode, seconds);
      logger.info('ca.request', {
        requestId: scope.requestId,
        method: req.method,
        path,
        status: res.statusCode,
        identity: scope.identity ?? null,
        remote,
        tls: tlsVersion,
        durationMs: seconds * 1000,
      });
    });
    routeRequest(scope, mounts).catch((err) => sendError(res, err, scope.requestId, logger));
  });
  server.on('secureConnection', pinPeerForConnection);
  server.on('tlsClientError', (err, socket) => logger.debug('ca.tls_error', { err, remote: socket.remoteAddress }));

  // Every listener is bound first, so a port in use or an address not on this machine fails here
  // (GH_LISTEN_FAILED) before anything is recorded: the CRLs signed below and the server
  // certificate (issueInternal) each go to the store and the audit trail.
  await listenOn(server, { listen, host, port, what: "the CA's HTTPS API" });
  let admin: AdminServer | null = null;
  try {
    if (options.metricsListen && metrics) {
      admin = await startAdminServer({
        listen: options.metricsListen,
        ...splitHostPort(options.metricsListen),
        component: 'ca',
        logger,
        metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
        health: async () =>
          withStoreHealth(
            options.store,
            credentials
              ? caHealth(crls, credentials.notAfter, now())
              : { healthy: false, details: { problem: 'starting' } },
          ),
      });
    }
    await crls.refresh(true);
    credentials = await issueServerCredentials();
    server.setSecureContext({ ...tlsOptions(), key: credentials.key, cert: credentials.cert });
  } catch (err) {
    await admin?.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw err;
  }
  const actualPort = (server.address() as AddressInfo).port;
  crls.start(options.crlCheckIntervalMs);

  // The server certificate is short-lived too: reissue at two-thirds of its life, swapped in
  // with setSecureContext so open connections are not dropped.
  const rotateTimer = setInterval(async () => {
    const remaining = credentials.notAfter.getTime() - now().getTime();
    if (remaining > SERVER_CERT_LIFETIME_MS / 3) return;
    try {
      credentials = await issueServerCredentials();
      server.setSecureContext({ ...tlsOptions(), key: credentials.key, cert: credentials.cert });
      logger.info('ca.server_cert_rotated', { notAfter: credentials.notAfter.toISOString() });
    } catch (err) {
      logger.error('ca.server_cert_rotation_failed', { err });
    }
  }, 60_000);
  rotateTimer.unref();
  // A rotation made on the CA directory by another process (`ca rotate intermediate`, `ca rotate
  // root|finish|abort`) is put in force here within seconds (ca-dir-reload.ts): new
  // certificates, this server's own included, come from the new issuing CA, and the retired one
  // keeps signing its CRL; the issuing CA's certificate changes with the root at the finish.
  const issuerTimer = watchCaDir({
    material,
    authority,
    crls,
    logger,
    now,
    intervalMs: options.issuerCheckIntervalMs ?? ISSUER_CHECK_INTERVAL_MS,
    refreshTls: async (caChanged) => {
      if (caChanged) credentials = await issueServerCredentials();
      server.setSecureContext({ ...tlsOptions(), key: credentials.key, cert: credentials.cert });
    },
  });
  // Old secret versions past their rotation overlap are deleted (and audited) here too, not only
  // at the next read or change. With --workers N every worker runs it; the store deletes each once.
  const purgeTimer = setInterval(() => {
    secrets.purgeExpired().catch((err: unknown) => logger.error('ca.secret_purge_failed', { err }));
  }, options.secretPurgeIntervalMs ?? SECRET_PURGE_INTERVAL_MS);
  purgeTimer.unref();
  warnAboutSecretsKey(secrets, logger);

  const rootNotAfter = parseCertificate(material.rootDer).notAfter;
  metrics?.setSources({
    certificatesByState: () => store.countCertsByState(now()),
    posture: () => postureScores(store, now()),
    certificateNotAfter: () => [
      { certificate: 'root', notAfter: rootNotAfter },
      { certificate: 'intermediate', notAfter: authority.issuer.notAfter },
      { certificate: 'server', notAfter: credentials.notAfter },
    ],
    crlNextUpdate: () => crls.scopes().map((crl) => ({ crl, nextUpdate: crls.current(crl).nextUpdate })),
  });
  if (options.metricsListen && admin) {
    if (!isLoopbackHost(splitHostPort(options.metricsListen).host))
      logger.warn('ca.metrics_not_loopback', {
        listen: options.metricsListen,
        note: 'plain HTTP without authentication: keep it on a private network',
      });
    logger.info('ca.admin_started', {
      listen: options.metricsListen.replace(/:\d+$/, `:${admin.port}`),
      paths: ['/metrics', '/healthz'],
    });
  }

  const url =
    config.publicUrl && !options.listen
      ? publicUrlOf(config)
      : `https://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;
  logger.info('ca.started', {
    listen: `${host}:${actualPort}`,
    url,
    rootFingerprint: authority.rootFingerprint,
    rootKeyOnline: material.rootKey !== null,
  });
  return {
    url,
    port: actualPort,
    authority,
    secrets,
    crls,
    server,
    metrics,
    metricsPort: admin?.port ?? null,
    close: async () => {
      clearInterval(rotateTimer);
      clearInterval(issuerTimer);
      clearInterval(purgeTimer);
      crls.stop();
      await admin?.close();
      await new Promise<void>((resolve) => {
        // Stop accepting, let in-flight requests finish (their certificates are already being
        // recorded), drop idle keep-alive connections, and cut what remains after the drain time.
        // The bound also covers a cluster worker whose primary is gone, where close() never calls back.
        const timer = setTimeout(() => {
          logger.warn('ca.drain_timeout', { afterMs: DRAIN_MS, effect: 'the connections still open were closed' });
          server.closeAllConnections();
          resolve();
        }, DRAIN_MS);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}

/** Says at start what an operator should know about the secrets master key; never stops the CA (secrets are one feature of it). */
function warnAboutSecretsKey(secrets: SecretService, logger: Logger): void {
  try {
    const file = secrets.keys.file();
    if (!file) return;
    if (secrets.keys.hasPassphrase && !file.encrypted)
      logger.warn('ca.secrets_master_key_unencrypted', {
        fix: 'run `gatehouse secret rekey --dir DIR --passphrase-file FILE` to store it encrypted with the CA passphrase',
      });
    if (file.keys.length > 1)
      logger.warn('ca.secrets_rekey_unfinished', {
        keyIds: file.keys.map((k) => k.id),
        fix: 'run `gatehouse secret rekey --dir DIR` again: it finishes with one key',
      });
  } catch (err) {
    logger.error('ca.secrets_master_key_unreadable', {
      err,
      effect: 'secrets cannot be read or written until the key file is fixed',
    });
  }
}

function serverNames(
  listenHost: string,
  extra: readonly string[],
  publicUrl: string | undefined,
): { dns: string[]; ip: string[] } {
  const all = new Set(['localhost', '127.0.0.1', ...extra]);
  if (listenHost !== '0.0.0.0' && listenHost !== '::') all.add(listenHost);
  if (publicUrl) all.add(new URL(publicUrl).hostname.replace(/^\[|\]$/g, ''));
  const values = [...all];
  return { dns: values.filter((v) => !isIpAddress(v)), ip: values.filter(isIpAddress) };
}
