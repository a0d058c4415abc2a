/**
 * A running gateway process (or one worker of it): the gateway, its hot reloads and, when it
 * owns it, the admin listener. Reloads never take the gateway down: a file that does not load
 * leaves the last good state in force, and the reason is logged and counted.
 *
 * - certificate, key, trust bundle: on file change (an agent renewal) and on `reload()` (SIGHUP);
 * - policy: on file change and on `reload()`;
 * - routes: when the config file changes (other keys need a restart, which is logged).
 */
import { GatehouseError } from '../errors/errors.js';
import type { Logger } from '../log/logger.js';
import { allowAllPolicy, loadPolicyFile, type CompiledPolicy } from '../policy/index.js';
import { loadGatewayConfig, type GatewayConfig } from './config.js';
import { startGateway, type Gateway } from './gateway.js';
import type { RevocationCheck } from './peer-admission.js';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.js';
import { watchFiles, type FileWatch } from './file-watch.js';
import { startAdminServer, type AdminServer, type Health } from '../metrics/admin-server.js';
import { RevocationChecker } from './revocation/revocation.js';
import { PostureGate } from './posture-gate.js';
import { readFileSync } from 'node:fs';
import { splitHostPort } from '../config/listen.js';

export interface RunOptions {
  config: Readonly<GatewayConfig>;
  /** The config file, when there is one: its routes and policy path are reloaded on change. */
  configFile: string | null;
  logger: Logger;
  /** Start the admin listener here (false in cluster workers: the primary serves it). */
  serveAdmin: boolean;
  metrics?: GatewayMetrics;
}

export interface RunningGateway {
  gateway: Gateway;
  admin: AdminServer | null;
  /** SIGHUP: reload TLS material and policy now, and fetch every CRL source again. */
  reload(): void;
  close(): Promise<void>;
}

export function loadPolicy(config: Readonly<GatewayConfig>, logger: Logger): CompiledPolicy {
  if (config.policy) {
    const policy = loadPolicyFile(config.policy);
    // Refused at start and at reload (the last good policy stays): every request under such a rule would fail.
    if (policy.postureRules.length > 0 && config.posture.ca === null) {
      throw new GatehouseError(
        'GH_CONFIG_INVALID',
        `${config.policy} has rules that require posture (${policy.postureRules.join(', ')}): set posture.ca in the gateway config (or pass --posture-ca URL) to the CA that holds the reports`,
      );
    }
    return policy;
  }
  logger.warn('gateway.no_policy', {
    effect: 'any client certificate that verifies against the client CA bundle is allowed',
    fix: 'set policy in the config or pass --policy FILE',
  });
  return allowAllPolicy();
}

export async function runGateway(options: RunOptions): Promise<RunningGateway> {
  const { logger } = options;
  let config = options.config;
  const metrics = options.metrics ?? createGatewayMetrics();
  const policy = loadPolicy(config, logger);
  const revocation = await startRevocation(config, logger);
  let gateway: Gateway;
  // posture.trust is read once (a restart key); by default the client CA bundle the gateway holds.
  const postureTrust = config.posture.trust === null ? null : readFileSync(config.posture.trust, 'utf8');
  const posture =
    config.posture.ca === null
      ? null
      : new PostureGate({
          caUrl: config.posture.ca,
          // The material the gateway reloads when its agent renews, not the files again per lookup.
          trust: () => postureTrust ?? gateway.tlsFiles().ca,
          identity: () => gateway.tlsFiles(),
          refreshMs: config.posture.refresh,
          staleForMs: config.posture.staleFor,
          timeoutMs: config.posture.timeout,
          unsafeAllowWhenUnavailable: config.posture.unsafeAllowWhenUnavailable,
          logger,
          onLookup: (result) => metrics.postureLookups.inc({ result }),
        });
  if (config.posture.unsafeAllowWhenUnavailable)
    logger.warn('gateway.posture_unsafe', {
      effect: 'requests under posture rules are allowed when the CA cannot be asked',
      fix: 'unset posture.unsafeAllowWhenUnavailable',
    });
  try {
    gateway = await startGateway(config, {
      logger,
      policy,
      metrics,
      ...(revocation ? { revocation } : {}),
      ...(posture ? { posture } : {}),
    });
  } catch (err) {
    revocation?.close();
    posture?.close();
    throw err;
  }

  const attempt = (what: 'tls' | 'policy' | 'routes', action: () => void) => {
    try {
      action();
      metrics.reloads.inc({ what, result: 'ok' });
      logger.info('gateway.reloaded', { what });
      return true;
    } catch (err) {
      metrics.reloads.inc({ what, result: 'failed' });
      logger.error('gateway.reload_failed', {
        what,
        reason: (err as Error).message,
        effect: 'the previous state stays in force',
      });
      return false;
    }
  };
  let tlsRetry: NodeJS.Timeout | null = null;
  // The client CA bundle also decides which CRLs are believed: it changes with them (root rotation).
  const reloadTlsAndCrlTrust = () => {
    const applyCrlTrust = revocation?.prepareTrustBundle(readFileSync(config.tls.clientCa, 'utf8'));
    gateway.reloadTls();
    applyCrlTrust?.();
  };
  const reloadTls = () => {
    if (attempt('tls', reloadTlsAndCrlTrust)) return;
    // An agent writes cert.pem and key.pem one after the other; the half-written pair fails
    // the key check, so try once more after the writer is done.
    tlsRetry ??= setTimeout(() => {
      tlsRetry = null;
      attempt('tls', reloadTlsAndCrlTrust);
    }, 1000);
    tlsRetry.unref();
  };
  const reloadPolicy = () => attempt('policy', () => gateway.setPolicy(loadPolicy(config, logger)));
  const reloadConfig = () => {
    if (!options.configFile) return;
    attempt('routes', () => {
      const next = loadGatewayConfig(options.configFile!);
      const restartNeeded = (
        [
          'listen',
          'tls',
          'headers',
          'upstream',
          'revocation',
          'posture',
          'limits',
          'admin',
          'http2',
          'workers',
          'denyMessage',
        ] as const
      ).filter((key) => JSON.stringify(next[key]) !== JSON.stringify(config[key]));
      if (restartNeeded.length)
        logger.warn('gateway.restart_needed', {
          keys: restartNeeded,
          effect: 'only routes and policy are reloaded; restart the gateway for the rest',
        });
      gateway.setRoutes(next.routes);
      const policyChanged = next.policy !== config.policy;
      config = { ...config, routes: next.routes, policy: next.policy };
      if (policyChanged) {
        policyWatch?.close();
        policyWatch = config.policy ? watchFiles([config.policy], reloadPolicy) : null;
        reloadPolicy();
      }
    });
  };

  const tlsWatch: FileWatch = watchFiles([config.tls.cert, config.tls.key, config.tls.clientCa], reloadTls);
  let policyWatch: FileWatch | null = config.policy ? watchFiles([config.policy], reloadPolicy) : null;
  const configWatch: FileWatch | null = options.configFile ? watchFiles([options.configFile], reloadConfig) : null;

  let admin: AdminServer | null = null;
  if (options.serveAdmin && config.admin.listen) {
    try {
      admin = await startAdminServer({
        listen: config.admin.listen,
        ...splitHostPort(config.admin.listen),
        component: 'gateway',
        logger,
        metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
        health: () => gatewayHealth(gateway, revocation ?? undefined),
      });
    } catch (err) {
      // GH_LISTEN_FAILED: nothing of this start stays behind, the gateway's own port included.
      tlsWatch.close();
      policyWatch?.close();
      configWatch?.close();
      await gateway.close();
      revocation?.close();
      throw err;
    }
    logger.info('gateway.admin_started', {
      listen: config.admin.listen.replace(/:\d+$/, `:${admin.port}`),
      paths: ['/metrics', '/healthz'],
    });
  }

  return {
    gateway,
    admin,
    reload() {
      reloadTls();
      if (config.policy) reloadPolicy();
      revocation
        ?.refresh()
        .catch((err: unknown) => logger.error('gateway.crl_refresh_failed', { reason: (err as Error).message }));
    },
    async close() {
      tlsWatch.close();
      policyWatch?.close();
      configWatch?.close();
      if (tlsRetry) clearTimeout(tlsRetry);
      await gateway.close();
      revocation?.close();
      posture?.close();
      await admin?.close();
    },
  };
}

/** CRL checking when `revocation.crl` lists sources; their issuers must be in the client CA bundle. */
async function startRevocation(config: Readonly<GatewayConfig>, logger: Logger): Promise<RevocationChecker | null> {
  if (config.revocation.crl.length === 0) {
    logger.warn('gateway.no_revocation', {
      effect: 'revoked client certificates are accepted until they expire',
      fix: 'set revocation.crl or pass --crl FILE|URL',
    });
    return null;
  }
  const trustBundle = readFileSync(config.tls.clientCa, 'utf8');
  const checker = new RevocationChecker({
    sources: [...config.revocation.crl],
    trustBundle,
    ca: trustBundle,
    logger,
    refreshIntervalMs: config.revocation.refreshInterval,
    graceMs: config.revocation.grace,
    unsafeFailOpenOnStaleCrl: config.revocation.unsafeFailOpenOnStaleCrl,
  });
  await checker.start();
  return checker;
}

export function gatewayHealth(gateway: Gateway, revocation: RevocationCheck | undefined, now = new Date()): Health {
  const problems: string[] = [];
  const cert = gateway.serverCertificate();
  if (cert.notAfter <= now) problems.push(`server certificate expired at ${cert.notAfter.toISOString()}`);
  const status = revocation?.status() ?? [];
  const crls = status.map((s) => ({
    source: s.source,
    issuer: s.issuer,
    thisUpdate: s.thisUpdate?.toISOString() ?? null,
    nextUpdate: s.nextUpdate?.toISOString() ?? null,
    stale: s.stale,
    lastError: s.lastError,
  }));
  for (const s of status) {
    if (s.thisUpdate === null) problems.push(`no CRL loaded from ${s.source}${s.lastError ? ` (${s.lastError})` : ''}`);
    else if (s.stale)
      problems.push(`the CRL from ${s.source} is past its nextUpdate plus grace: clients of ${s.issuer} are refused`);
  }
  return {
    healthy: problems.length === 0,
    details: {
      now: now.toISOString(),
      certificate: { serial: cert.serial, notAfter: cert.notAfter.toISOString() },
      crls,
      problems,
    },
  };
}

export function assertConfigUsable(config: Readonly<GatewayConfig>): void {
  if (config.admin.listen && config.admin.listen === config.listen && !config.listen.endsWith(':0')) {
    throw new GatehouseError('GH_CONFIG_INVALID', 'admin.listen must differ from listen');
  }
}
