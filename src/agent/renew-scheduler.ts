/**
 * `gatehouse agent run`: renew at a random point around two-thirds of the lifetime, so a fleet
 * enrolled together does not renew together; retry failures with capped, jittered exponential
 * backoff, waiting at least the CA's Retry-After; check the certificate against the CA's CRL every few minutes; stop only when renewal
 * has become impossible (expired or revoked), saying so.
 *
 * The loop is here; when to renew and how long to back off is renew-timing.ts, what is done about
 * revocation revocation-watch.ts, and the operator's --on-renew hook renew-hook.ts.
 */
import { GatehouseError, isGatehouseError } from '../errors/errors.js';
import type { Logger } from '../log/logger.js';
import { loadIdentity } from './agent-state.js';
import { retryAfterOf } from './ca-client.js';
import { renewOnce } from './renew.js';
import type { CrlFetcher } from './revocation.js';
import { syncSecrets } from './secrets-sync.js';
import { reportPosture } from './posture-report.js';
import { DEFAULT_RETRY_CAP_MS, renewalTime, retryDelayMs } from './renew-timing.js';
import { runHook } from './renew-hook.js';
import { isRevokedRefusal, revocationBehindRefusal, revocationOf, stopRevoked } from './revocation-watch.js';

export const DEFAULT_REVOCATION_CHECK_INTERVAL_MS = 5 * 60_000;
export const DEFAULT_SECRETS_SYNC_INTERVAL_MS = 5 * 60_000;
export const DEFAULT_POSTURE_INTERVAL_MS = 3_600_000;
const MAX_SLEEP_MS = 3_600_000;

export interface RunOptions {
  dir: string;
  caUrl?: string;
  /** Run after each renewal (GATEHOUSE_EVENT=renewed), when the secrets folder changed (secrets-changed) and once on revocation (revoked). */
  onRenew?: string;
  logger: Logger;
  signal?: AbortSignal;
  now?: () => Date;
  random?: () => number;
  retryBaseMs?: number;
  /** The longest wait between two renewal attempts (default DEFAULT_RETRY_CAP_MS, 5 minutes). */
  retryCapMs?: number;
  /** Stop after this many successful renewals (tests, `--once`). */
  maxRenewals?: number;
  /** How often the certificate is checked against the CA's CRL. */
  revocationCheckIntervalMs?: number;
  fetchCrl?: CrlFetcher;
  /** Keep a secrets folder in sync: at start, on this interval and after each renewal. Null: no secrets. */
  secrets?: { dir?: string; intervalMs?: number; linkIdentity?: boolean } | null;
  /**
   * Report the machine's posture (agent/posture-report.ts) at a random point of the first
   * interval, then every interval ± 10 %, and after each renewal. Null: no reports.
   */
  posture?: { intervalMs?: number; root?: string } | null;
}

export async function runAgent(options: RunOptions): Promise<void> {
  const now = options.now ?? (() => new Date());
  const random = options.random ?? Math.random;
  const intervalMs = usableInterval(
    options.revocationCheckIntervalMs ?? DEFAULT_REVOCATION_CHECK_INTERVAL_MS,
    'revocation check interval',
  );
  const { logger } = options;
  let renewals = 0;
  let failures = 0;
  let identity = loadIdentity(options.dir);
  let dueAt = renewalTime(identity.leaf.notBefore, identity.leaf.notAfter, random);
  let revocationCheckAt = now();
  const secrets = options.secrets ?? null;
  const secretsInterval = secrets
    ? usableInterval(secrets.intervalMs ?? DEFAULT_SECRETS_SYNC_INTERVAL_MS, 'secrets sync interval')
    : 0;
  let secretsSyncAt = secrets ? now() : null;
  const posture = options.posture === undefined ? {} : options.posture;
  const postureInterval = posture
    ? usableInterval(posture.intervalMs ?? DEFAULT_POSTURE_INTERVAL_MS, 'posture report interval')
    : 0;
  // Spread over the first interval, so a fleet started together does not report together.
  let postureAt = posture ? new Date(now().getTime() + Math.floor(random() * postureInterval)) : null;
  logger.info('agent.started', {
    name: identity.identity.name,
    role: identity.identity.role,
    serial: identity.leaf.serial,
    notAfter: identity.leaf.notAfter.toISOString(),
    renewAt: dueAt.toISOString(),
    revocationCheckIntervalMs: intervalMs,
  });

  while (!options.signal?.aborted) {
    if (now() >= revocationCheckAt) {
      const revocation = await revocationOf(identity, options, now());
      if (revocation) return stopRevoked(identity, revocation, options);
      revocationCheckAt = new Date(now().getTime() + intervalMs);
      continue;
    }
    if (secretsSyncAt && now() >= secretsSyncAt) {
      await syncSecretsLogged(options);
      secretsSyncAt = new Date(now().getTime() + secretsInterval);
      continue;
    }
    if (postureAt && posture && now() >= postureAt) {
      await reportPostureLogged(options, posture);
      postureAt = new Date(now().getTime() + Math.floor(postureInterval * (0.9 + random() * 0.2)));
      continue;
    }
    const waitMs =
      Math.min(
        dueAt.getTime(),
        revocationCheckAt.getTime(),
        secretsSyncAt?.getTime() ?? Infinity,
        postureAt?.getTime() ?? Infinity,
      ) - now().getTime();
    if (waitMs > 0) {
      await sleep(Math.min(waitMs, MAX_SLEEP_MS), options.signal);
      continue;
    }
    try {
      const { previous, current, bundle } = await renewOnce({
        dir: options.dir,
        ...(options.caUrl ? { caUrl: options.caUrl } : {}),
        now,
      });
      if (bundle.changed) logger.info('agent.trust_bundle_updated', { added: bundle.added, removed: bundle.removed });
      if (bundle.refused.length)
        logger.warn('agent.trust_bundle_refused', { refused: bundle.refused, effect: 'ca.pem keeps the roots it had' });
      failures = 0;
      renewals++;
      identity = loadIdentity(options.dir);
      dueAt = renewalTime(identity.leaf.notBefore, identity.leaf.notAfter, random);
      logger.info('agent.cert_renewed', {
        name: current.name,
        previousSerial: previous.serial,
        serial: current.serial,
        fingerprint: current.fingerprint,
        notAfter: current.notAfter.toISOString(),
        nextRenewalAt: dueAt.toISOString(),
      });
      if (options.onRenew)
        await runHook(
          options.onRenew,
          { GATEHOUSE_DIR: options.dir, GATEHOUSE_SERIAL: current.serial, GATEHOUSE_EVENT: 'renewed' },
          logger,
        );
      // The CA re-applies grants to the renewed identity; a role change shows up now, not at the next interval.
      if (secretsSyncAt) secretsSyncAt = now();
      // A renewal is a change worth reporting on: the CA sees the machine's state with its new certificate.
      if (postureAt) postureAt = now();
      if (options.maxRenewals !== undefined && renewals >= options.maxRenewals) return;
    } catch (err) {
      if (isRevokedRefusal(err))
        return stopRevoked(identity, await revocationBehindRefusal(identity, options, now()), options, err);
      if (isGatehouseError(err, 'GH_AGENT_MUST_REENROLL')) {
        logger.error('agent.must_reenroll', { code: err.code, reason: err.message });
        throw err;
      }
      // Refused for posture (a role that requires it): report now, so a machine fixed since its
      // last report renews at the retry instead of at the next hourly report.
      if (isGatehouseError(err, 'GH_POSTURE_REQUIRED') && postureAt) postureAt = now();
      failures++;
      const remainingMs = identity.leaf.notAfter.getTime() - now().getTime();
      const retryAfterMs = retryAfterOf(err);
      const delay = retryDelayMs(
        failures - 1,
        {
          baseMs: options.retryBaseMs ?? 1000,
          capMs: options.retryCapMs ?? DEFAULT_RETRY_CAP_MS,
          remainingMs,
          retryAfterMs,
        },
        random,
      );
      dueAt = new Date(now().getTime() + delay);
      logger.warn('agent.renew_failed', {
        attempt: failures,
        code: isGatehouseError(err) ? err.code : 'GH_INTERNAL',
        reason: (err as Error).message,
        retryInMs: delay,
        retryAfterMs,
        certExpiresAt: identity.leaf.notAfter.toISOString(),
      });
    }
  }
}

/** One report; a failure is logged and the next interval tries again. */
async function reportPostureLogged(options: RunOptions, posture: { root?: string }): Promise<void> {
  try {
    const { received } = await reportPosture({
      dir: options.dir,
      ...(options.caUrl ? { caUrl: options.caUrl } : {}),
      ...(posture.root ? { root: posture.root } : {}),
    });
    options.logger.info('agent.posture_reported', { score: received?.score ?? null, failing: received?.failing ?? [] });
  } catch (err) {
    options.logger.warn('agent.posture_report_failed', {
      code: isGatehouseError(err) ? err.code : 'GH_INTERNAL',
      reason: (err as Error).message,
      effect: 'tried again at the next interval',
    });
  }
}

/** One sync; a failure keeps the folder as it was and is retried at the next interval. */
async function syncSecretsLogged(options: RunOptions): Promise<void> {
  const { logger } = options;
  try {
    const result = await syncSecrets({
      dir: options.dir,
      ...(options.caUrl ? { caUrl: options.caUrl } : {}),
      ...(options.secrets?.dir ? { secretsDir: options.secrets.dir } : {}),
      linkIdentity: options.secrets?.linkIdentity ?? false,
    });
    if (!result.changed)
      return logger.debug('agent.secrets_synced', {
        secretsDir: result.secretsDir,
        unchanged: result.unchanged.length,
      });
    logger.info('agent.secrets_changed', {
      secretsDir: result.secretsDir,
      written: result.written,
      removed: result.removed,
      unchanged: result.unchanged.length,
    });
    if (options.onRenew) {
      const identity = loadIdentity(options.dir);
      await runHook(
        options.onRenew,
        {
          GATEHOUSE_DIR: options.dir,
          GATEHOUSE_SERIAL: identity.leaf.serial,
          GATEHOUSE_EVENT: 'secrets-changed',
          GATEHOUSE_SECRETS_DIR: result.secretsDir,
        },
        logger,
      );
    }
  } catch (err) {
    logger.warn('agent.secrets_sync_failed', {
      code: isGatehouseError(err) ? err.code : 'GH_INTERNAL',
      reason: (err as Error).message,
      effect: 'the secrets folder stays as it was; retried at the next interval',
    });
  }
}

function usableInterval(value: number, what: string): number {
  // setTimeout fires at once past 2^31 − 1 ms, which would turn the interval into a busy loop.
  if (!Number.isFinite(value) || value <= 0 || value > 2 ** 31 - 1)
    throw new GatehouseError('GH_USAGE', `${what} ${value} ms is not a usable duration`);
  return value;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
