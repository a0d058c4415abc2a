/**
 * A refused `/v1/secrets` request, counted and audited: refusals of an identity's read, and of
 * requests refused before any identity was established. Evidence of tampering or a broken key
 * file is always written; refusals anyone can cause go through the per-source rate limit.
 */
import { isGatehouseError } from '../errors/errors.js';
import type { CertRecord } from '../store/store-certificates.js';
import { secretNameProblem } from './names.js';
import type { ReaderContext, SecretContext } from './context.js';
import { RESULT_OF, type RefusalReason } from './read-results.js';

interface Who {
  actor: string;
  serial: string | null;
  fingerprint: string | null;
}

/**
 * A request to /v1/secrets refused before its identity was established (no certificate,
 * untrusted, revoked, expired): counted and audited (rate limited per source) like the others.
 */
export async function refusedUnauthenticated(
  ctx: SecretContext,
  reason: Extract<RefusalReason, 'revoked' | 'expired' | 'untrusted' | 'no-certificate' | 'error'>,
  err: unknown,
  who: Who,
  name: string | null,
  reader: ReaderContext,
): Promise<void> {
  ctx.observer?.read(RESULT_OF[reason]);
  await writeRefusal(
    ctx,
    { actor: who.actor, serial: who.serial, fingerprint: who.fingerprint },
    name,
    null,
    reason,
    err,
    reader,
    true,
  );
}

/** A read by `caller` refused (identity-reads.ts). */
export async function refused(
  ctx: SecretContext,
  caller: CertRecord,
  name: string,
  version: number | null,
  reason: RefusalReason,
  err: unknown,
  reader: ReaderContext,
): Promise<void> {
  ctx.observer?.read(RESULT_OF[reason]);
  // Evidence of tampering or a broken key file is always written; refusals anyone granted
  // nothing can cause are rate limited per source.
  const limited = !['sealed-invalid', 'master-key', 'error'].includes(reason);
  await writeRefusal(
    ctx,
    { actor: caller.spiffeId, serial: caller.serial, fingerprint: caller.fingerprint },
    name,
    version,
    reason,
    err,
    reader,
    limited,
  );
}

async function writeRefusal(
  ctx: SecretContext,
  who: Who,
  name: string | null,
  version: number | null,
  reason: RefusalReason,
  err: unknown,
  reader: ReaderContext,
  limited: boolean,
): Promise<void> {
  const code = isGatehouseError(err) ? err.code : 'GH_INTERNAL';
  // A name outside the safe alphabet is not echoed into the trail.
  const secret = name !== null && secretNameProblem(name) === null ? name : null;
  const event = {
    type: 'ca.secret_read_refused' as const,
    actor: who.actor,
    serial: who.serial,
    fingerprint: who.fingerprint,
    requestId: reader.requestId ?? null,
    details: { secret, version, reason, code },
  };
  // Info, like the CA's other refusals (ca.request_failed): a flood must not become a flood of warnings.
  ctx.logger.info('ca.secret_read_refused', {
    secretName: secret,
    version,
    reason,
    code,
    actor: who.actor,
    serial: who.serial,
    requestId: reader.requestId,
  });
  try {
    if (limited && ctx.auditRefusal) await ctx.auditRefusal(reader.source, event);
    else await ctx.store.appendAudit([{ ...event, time: ctx.now() }]);
  } catch (auditErr) {
    ctx.logger.error('ca.audit_write_failed', { err: auditErr, requestId: reader.requestId });
  }
}
