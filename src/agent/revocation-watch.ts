/**
 * What the renewal loop (renew-scheduler.ts) does about revocation: the periodic check of its
 * certificate against the CA's CRL (revocation.ts does the check itself), the revocation behind
 * a renewal the CA refused, and the stop once revoked: logged, the hook run, exit 75.
 */
import { GatehouseError, isGatehouseError } from '../errors/errors.js';
import type { Logger } from '../log/logger.js';
import type { LoadedIdentity } from './agent-state.js';
import { checkRevocation, type CrlFetcher, type RevocationCheck } from './revocation.js';
import { runHook } from './renew-hook.js';

/** The part of the agent's RunOptions these need. */
export interface RevocationWatchOptions {
  dir: string;
  caUrl?: string;
  onRenew?: string;
  logger: Logger;
  fetchCrl?: CrlFetcher;
}

export interface Revocation {
  revokedAt: Date | null;
  reason: string | null;
  /** What told us: a CRL (fetched or stored), or the CA refusing a renewal. */
  source: string;
}
/** One check against the CA's CRL. Anything short of a verified listing is logged and retried at the next interval. */
export async function revocationOf(
  identity: LoadedIdentity,
  options: RevocationWatchOptions,
  now: Date,
): Promise<Revocation | null> {
  const { logger } = options;
  let check: RevocationCheck;
  try {
    check = await checkRevocation(identity, {
      now,
      ...(options.caUrl ? { caUrl: options.caUrl } : {}),
      ...(options.fetchCrl ? { fetchCrl: options.fetchCrl } : {}),
    });
  } catch (err) {
    logger.warn('agent.revocation_check_failed', { reason: (err as Error).message });
    return null;
  }
  if (check.revoked)
    return { revokedAt: check.revokedAt, reason: check.reason, source: check.source === 'ca' ? 'crl' : 'stored-crl' };
  logCheck(check, logger);
  return null;
}

function logCheck(check: RevocationCheck, logger: Logger): void {
  const lastCheckedAt = check.lastCheckedAt?.toISOString() ?? null;
  if (check.refused)
    logger.warn('agent.crl_refused', { reason: check.refused, effect: 'the CRL is not believed and not stored' });
  if (check.caProblem)
    logger.warn('agent.revocation_check_failed', {
      reason: check.caProblem,
      lastCheckedAt,
      effect: 'retried at the next interval',
    });
  if (check.storeProblem) logger.warn('agent.crl_store_failed', { reason: check.storeProblem });
  if (check.crlStale)
    logger.warn('agent.crl_stale', { crlNumber: check.crlNumber, nextUpdate: check.crlNextUpdate?.toISOString() });
  if (check.source === 'ca')
    logger.debug('agent.revocation_checked', {
      crlNumber: check.crlNumber,
      thisUpdate: check.crlThisUpdate?.toISOString(),
      revoked: false,
    });
}

/**
 * renew.ts turns the CA's refusal into GH_AGENT_MUST_REENROLL, keeping it as the cause. A
 * detected copy (GH_CERT_REUSED) revoked the whole lineage, this certificate included.
 */
export function isRevokedRefusal(err: unknown): err is GatehouseError {
  return (
    isGatehouseError(err, 'GH_AGENT_MUST_REENROLL') &&
    (isGatehouseError(err.cause, 'GH_CERT_REVOKED') || isGatehouseError(err.cause, 'GH_CERT_REUSED'))
  );
}

/** The CA's refusal carries no dates we can verify; its CRL may already say when and why. */
export async function revocationBehindRefusal(
  identity: LoadedIdentity,
  options: RevocationWatchOptions,
  now: Date,
): Promise<Revocation> {
  const listed = await revocationOf(
    identity,
    { ...options, logger: options.logger.child({ during: 'revoked-renewal' }) },
    now,
  );
  return listed ?? { revokedAt: null, reason: null, source: 'renewal-refused' };
}

/** Logs, runs the hook with GATEHOUSE_EVENT=revoked, and stops with exit 75: no restart can help. */
export async function stopRevoked(
  identity: LoadedIdentity,
  revocation: Revocation,
  options: RevocationWatchOptions,
  refusal?: GatehouseError,
): Promise<never> {
  const serial = identity.leaf.serial;
  const revokedAt = revocation.revokedAt?.toISOString() ?? null;
  options.logger.error('agent.cert_revoked', {
    serial,
    name: identity.identity.name,
    revokedAt,
    reason: revocation.reason,
    source: revocation.source,
    code: 'GH_AGENT_MUST_REENROLL',
  });
  if (options.onRenew) {
    await runHook(
      options.onRenew,
      {
        GATEHOUSE_DIR: options.dir,
        GATEHOUSE_SERIAL: serial,
        GATEHOUSE_EVENT: 'revoked',
        GATEHOUSE_REVOKED_AT: revokedAt ?? '',
        GATEHOUSE_REVOCATION_REASON: revocation.reason ?? '',
      },
      options.logger,
    );
  }
  // The CA's refusal already says what happened and to enroll again.
  if (!revokedAt && refusal) throw refusal;
  throw new GatehouseError(
    'GH_AGENT_MUST_REENROLL',
    `certificate ${serial} was revoked at ${revokedAt} (reason ${revocation.reason}); a revoked certificate cannot be renewed. Enroll this machine again with a new join token: gatehouse agent enroll --ca <URL> --token <TOKEN> --dir ${options.dir}`,
    { ...(refusal ? { cause: refusal } : {}) },
  );
}
