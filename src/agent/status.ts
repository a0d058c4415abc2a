/**
 * `gatehouse agent status`: a monitoring check with Nagios/Icinga exit codes
 * (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN), so cron, systemd and monitoring can act on it.
 *
 * Revocation: a verified CRL that lists the certificate is CRITICAL, whether the CA handed it
 * over now or it is the stored one. Not being able to ask the CA keeps the expiry-based level
 * while the last CRL believed is within its nextUpdate (the CA's own promise of how long it
 * holds), and is WARNING once no such CRL is at hand: gateways refuse soon after that too.
 */
import { isGatehouseError } from '../errors/errors.js';
import { verifyChainToOneOf } from '../pki/chain.js';
import { decodePem } from '../pki/pem.js';
import type { Identity } from '../pki/certificate.js';
import { loadIdentity, type LoadedIdentity } from './agent-state.js';
import { checkRevocation, type CrlFetcher, type RevocationCheck } from './revocation.js';
import { formatRemaining } from '../config/duration.js';

export { formatRemaining };

export type StatusLevel = 'OK' | 'WARNING' | 'CRITICAL' | 'UNKNOWN';
export const STATUS_EXIT: Record<StatusLevel, number> = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 };

export interface StatusReport {
  level: StatusLevel;
  message: string;
  identity: Identity | null;
  remainingMs: number | null;
  /** Absent when revocation was not looked at (checkStatus, or the files alone are already CRITICAL). */
  revocation?: RevocationCheck;
}

/** What the files alone say: expiry, key and chain. `warnWithinMs` defaults to a quarter of the lifetime: the agent renews at about two-thirds. */
export function checkStatus(dir: string, now: Date, warnWithinMs?: number): StatusReport {
  return checkFiles(dir, now, warnWithinMs).report;
}

export interface StatusOptions {
  now: Date;
  warnWithinMs?: number;
  caUrl?: string;
  offline?: boolean;
  fetchCrl?: CrlFetcher;
}

/** checkStatus, then the certificate against the CA's current CRL (or the stored one). */
export async function checkStatusWithRevocation(dir: string, options: StatusOptions): Promise<StatusReport> {
  const { report, loaded } = checkFiles(dir, options.now, options.warnWithinMs);
  if (!loaded || report.level === 'CRITICAL' || report.level === 'UNKNOWN') return report;
  const revocation = await checkRevocation(loaded, {
    now: options.now,
    ...(options.caUrl ? { caUrl: options.caUrl } : {}),
    ...(options.offline ? { offline: true } : {}),
    ...(options.fetchCrl ? { fetchCrl: options.fetchCrl } : {}),
  });
  return { ...withRevocation(report, revocation), revocation };
}

function withRevocation(report: StatusReport, check: RevocationCheck): StatusReport {
  if (check.revoked) {
    const basis =
      check.source === 'stored'
        ? `${caNote(check)}, per the CRL last checked at ${check.lastCheckedAt!.toISOString()}`
        : null;
    const notes = [basis, check.refused, check.storeProblem]
      .filter(Boolean)
      .map((n) => `; ${n}`)
      .join('');
    return {
      ...report,
      level: 'CRITICAL',
      message: `certificate revoked at ${check.revokedAt!.toISOString()} (reason ${check.reason})${notes}`,
    };
  }
  const notes = [revocationNote(check), check.refused, check.storeProblem].filter(Boolean).join('; ');
  const unsure = check.source === 'none' || check.crlStale;
  return {
    ...report,
    level: unsure && report.level === 'OK' ? 'WARNING' : report.level,
    message: `${report.message}; ${notes}`,
  };
}

function revocationNote(check: RevocationCheck): string {
  const stale = check.crlStale ? `, but that CRL passed its nextUpdate ${check.crlNextUpdate!.toISOString()}` : '';
  if (check.source === 'ca')
    return `not revoked (CRL #${check.crlNumber ?? '?'} of ${check.crlThisUpdate!.toISOString()})${stale}`;
  if (check.source === 'stored')
    return `${caNote(check)}; last CRL checked at ${check.lastCheckedAt!.toISOString()}, certificate not listed${stale}`;
  return `${caNote(check)}; no verified CRL stored, revocation unknown`;
}

function caNote(check: RevocationCheck): string {
  if (check.offline) return 'offline (--offline)';
  return check.caProblem ? `CA unreachable (${check.caProblem})` : "the CA's CRL was refused";
}

function checkFiles(
  dir: string,
  now: Date,
  warnWithinMs?: number,
): { report: StatusReport; loaded: LoadedIdentity | null } {
  let loaded: LoadedIdentity;
  try {
    loaded = loadIdentity(dir);
  } catch (err) {
    const level: StatusLevel = isGatehouseError(err, 'GH_AGENT_NOT_ENROLLED') ? 'UNKNOWN' : 'CRITICAL';
    return { report: { level, message: (err as Error).message, identity: null, remainingMs: null }, loaded: null };
  }
  return { report: expiryReport(loaded, now, warnWithinMs), loaded };
}

function expiryReport(loaded: LoadedIdentity, now: Date, warnWithinMs?: number): StatusReport {
  const { leaf, identity } = loaded;
  const remainingMs = leaf.notAfter.getTime() - now.getTime();
  const lifetimeMs = leaf.notAfter.getTime() - leaf.notBefore.getTime();
  const threshold = warnWithinMs ?? lifetimeMs / 4;
  // Every root of ca.pem: during a root rotation it holds two and the chain may run to either.
  const roots = decodePem(loaded.caPem, 'CERTIFICATE');
  if (remainingMs <= 0)
    return {
      level: 'CRITICAL',
      message: `certificate expired at ${leaf.notAfter.toISOString()}; enroll again with a new join token`,
      identity,
      remainingMs,
    };
  if (now < leaf.notBefore)
    return {
      level: 'CRITICAL',
      message: `certificate is not valid until ${leaf.notBefore.toISOString()} (clock skew?)`,
      identity,
      remainingMs,
    };
  if (roots.length === 0)
    return { level: 'CRITICAL', message: 'ca.pem holds no root certificate', identity, remainingMs };
  try {
    verifyChainToOneOf(loaded.chainDer, roots, now);
  } catch (err) {
    return { level: 'CRITICAL', message: (err as Error).message, identity, remainingMs };
  }
  if (remainingMs < threshold) {
    return {
      level: 'WARNING',
      message: `certificate expires in ${formatRemaining(remainingMs)} (at ${leaf.notAfter.toISOString()}); renewal is overdue — is \`gatehouse agent run\` running?`,
      identity,
      remainingMs,
    };
  }
  return {
    level: 'OK',
    message: `certificate valid for ${formatRemaining(remainingMs)} (until ${leaf.notAfter.toISOString()})`,
    identity,
    remainingMs,
  };
}
