/**
 * `gatehouse agent status`: a monitoring check with Nagios/Icinga exit codes
 * (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN), so cron, systemd and monitoring can act on it.
 */
import { isGatehouseError } from '../errors/errors.js';
import { verifyChain } from '../pki/chain.js';
import { decodePem } from '../pki/pem.js';
import type { Identity } from '../pki/certificate.js';
import { loadIdentity } from './agent-state.js';
import { formatRemaining } from '../config/duration.js';

export { formatRemaining };

export type StatusLevel = 'OK' | 'WARNING' | 'CRITICAL' | 'UNKNOWN';
export const STATUS_EXIT: Record<StatusLevel, number> = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 };

export interface StatusReport {
  level: StatusLevel;
  message: string;
  identity: Identity | null;
  remainingMs: number | null;
}

/** `warnWithinMs` defaults to a quarter of the lifetime: the agent renews at about two-thirds. */
export function checkStatus(dir: string, now: Date, warnWithinMs?: number): StatusReport {
  let loaded;
  try {
    loaded = loadIdentity(dir);
  } catch (err) {
    const level: StatusLevel = isGatehouseError(err, 'GH_AGENT_NOT_ENROLLED') ? 'UNKNOWN' : 'CRITICAL';
    return { level, message: (err as Error).message, identity: null, remainingMs: null };
  }
  const { leaf, identity } = loaded;
  const remainingMs = leaf.notAfter.getTime() - now.getTime();
  const lifetimeMs = leaf.notAfter.getTime() - leaf.notBefore.getTime();
  const threshold = warnWithinMs ?? lifetimeMs / 4;
  const [rootDer] = decodePem(loaded.caPem, 'CERTIFICATE');
  if (remainingMs <= 0) return { level: 'CRITICAL', message: `certificate expired at ${leaf.notAfter.toISOString()}; enroll again with a new join token`, identity, remainingMs };
  if (now < leaf.notBefore) return { level: 'CRITICAL', message: `certificate is not valid until ${leaf.notBefore.toISOString()} (clock skew?)`, identity, remainingMs };
  if (!rootDer) return { level: 'CRITICAL', message: 'ca.pem holds no root certificate', identity, remainingMs };
  try {
    verifyChain(loaded.chainDer, rootDer, now);
  } catch (err) {
    return { level: 'CRITICAL', message: (err as Error).message, identity, remainingMs };
  }
  if (remainingMs < threshold) {
    return { level: 'WARNING', message: `certificate expires in ${formatRemaining(remainingMs)} (at ${leaf.notAfter.toISOString()}); renewal is overdue — is \`gatehouse agent run\` running?`, identity, remainingMs };
  }
  return { level: 'OK', message: `certificate valid for ${formatRemaining(remainingMs)} (until ${leaf.notAfter.toISOString()})`, identity, remainingMs };
}
