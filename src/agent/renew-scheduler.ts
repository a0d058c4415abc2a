/**
 * `gatehouse agent run`: renew at a random point around two-thirds of the lifetime, so a fleet
 * enrolled together does not renew together; retry failures with capped, jittered exponential
 * backoff; stop only when renewal has become impossible (expired or revoked), saying so.
 */
import { spawn } from 'node:child_process';
import { isGatehouseError } from '../errors/errors.js';
import type { Logger } from '../log/logger.js';
import { loadIdentity } from './agent-state.js';
import { renewOnce } from './renew.js';

/** Renew between 60 % and 73 % of the lifetime (2/3 ± 1/15). */
export function renewalTime(notBefore: Date, notAfter: Date, random: () => number = Math.random): Date {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  const fraction = 2 / 3 + (random() * 2 - 1) / 15;
  return new Date(notBefore.getTime() + lifetime * fraction);
}

/** Full-jitter exponential backoff (AWS architecture blog), capped. */
export function backoffMs(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.max(baseMs, Math.floor(ceiling * random()));
}

export interface RunOptions {
  dir: string;
  caUrl?: string;
  onRenew?: string;
  logger: Logger;
  signal?: AbortSignal;
  now?: () => Date;
  random?: () => number;
  retryBaseMs?: number;
  retryCapMs?: number;
  /** Stop after this many successful renewals (tests, `--once`). */
  maxRenewals?: number;
}

export async function runAgent(options: RunOptions): Promise<void> {
  const now = options.now ?? (() => new Date());
  const random = options.random ?? Math.random;
  const { logger } = options;
  let renewals = 0;
  let failures = 0;
  let identity = loadIdentity(options.dir);
  let dueAt = renewalTime(identity.leaf.notBefore, identity.leaf.notAfter, random);
  logger.info('agent.started', { name: identity.identity.name, role: identity.identity.role, serial: identity.leaf.serial, notAfter: identity.leaf.notAfter.toISOString(), renewAt: dueAt.toISOString() });

  while (!options.signal?.aborted) {
    const waitMs = dueAt.getTime() - now().getTime();
    if (waitMs > 0) {
      await sleep(Math.min(waitMs, 3_600_000), options.signal);
      continue;
    }
    try {
      const { previous, current } = await renewOnce({ dir: options.dir, ...(options.caUrl ? { caUrl: options.caUrl } : {}), now });
      failures = 0;
      renewals++;
      identity = loadIdentity(options.dir);
      dueAt = renewalTime(identity.leaf.notBefore, identity.leaf.notAfter, random);
      logger.info('agent.cert_renewed', { name: current.name, previousSerial: previous.serial, serial: current.serial, fingerprint: current.fingerprint, notAfter: current.notAfter.toISOString(), nextRenewalAt: dueAt.toISOString() });
      if (options.onRenew) await runHook(options.onRenew, options.dir, current.serial, logger);
      if (options.maxRenewals !== undefined && renewals >= options.maxRenewals) return;
    } catch (err) {
      if (isGatehouseError(err, 'GH_AGENT_MUST_REENROLL')) {
        logger.error('agent.must_reenroll', { code: err.code, reason: err.message });
        throw err;
      }
      failures++;
      const remainingMs = identity.leaf.notAfter.getTime() - now().getTime();
      const delay = backoffMs(failures - 1, options.retryBaseMs ?? 1000, Math.min(options.retryCapMs ?? 300_000, Math.max(1000, remainingMs / 4)), random);
      dueAt = new Date(now().getTime() + delay);
      logger.warn('agent.renew_failed', { attempt: failures, code: isGatehouseError(err) ? err.code : 'GH_INTERNAL', reason: (err as Error).message, retryInMs: delay, certExpiresAt: identity.leaf.notAfter.toISOString() });
    }
  }
}

/** Runs the operator's hook through the shell, as certbot's --deploy-hook does. A failing hook is logged, not fatal. */
function runHook(command: string, dir: string, serial: string, logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(command, { shell: true, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, GATEHOUSE_DIR: dir, GATEHOUSE_SERIAL: serial } });
    child.on('error', (err) => {
      logger.error('agent.hook_failed', { command, reason: err.message });
      resolve();
    });
    child.on('exit', (code, sig) => {
      if (code === 0) logger.info('agent.hook_ran', { command });
      else logger.error('agent.hook_failed', { command, exitCode: code, signal: sig });
      resolve();
    });
  });
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

