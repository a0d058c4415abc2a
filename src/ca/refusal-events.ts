/**
 * Writes the audit events of refused issuances and token checks. A refusal is logged and audited
 * with its code and reason, never with the token or key; the fields are bounded and, for
 * refusals anyone could make up, rate limited per source (refusal-audit.ts has the limits).
 * Writing one never throws: a refusal already failed the request, the audit must not mask why.
 */
import { isGatehouseError } from '../errors/errors.js';
import type { AuditInput } from '../store/store-audit.js';
import type { AuthorityContext, RequestContext } from './authority-context.js';
import { MAX_REFUSAL_FIELD_CHARS, boundedDetails } from './refusal-audit.js';

/** Writes a refusal's audit event with bounded fields; with `limitSource`, only within that source's rate limit. Never throws. */
export async function writeRefusalAudit(
  ca: AuthorityContext,
  event: Omit<AuditInput, 'details'>,
  details: Record<string, string | number | boolean | null | undefined>,
  limitSource: string | null,
): Promise<void> {
  if (limitSource !== null && !ca.refusalLimiter.allow(limitSource)) {
    ca.authority.observer?.auditSuppressed?.(event.type);
    return;
  }
  try {
    await ca.authority.store.appendAudit([{ ...event, details: boundedDetails(details) }]);
  } catch (auditErr) {
    ca.logger.error('ca.audit_write_failed', { err: auditErr, requestId: event.requestId });
  }
}

export async function auditRefusal(
  ca: AuthorityContext,
  type: 'ca.cert_refused' | 'ca.token_refused',
  err: unknown,
  ctx: RequestContext,
  now: Date,
  fields: { tokenId?: string | null; serial?: string; fingerprint?: string; role?: string; via?: string },
): Promise<void> {
  const code = isGatehouseError(err) ? err.code : 'GH_INTERNAL';
  const reason = isGatehouseError(err) ? err.message : 'internal error';
  ca.logger.warn(type, {
    code,
    reason: reason.slice(0, MAX_REFUSAL_FIELD_CHARS),
    tokenId: fields.tokenId,
    serial: fields.serial,
    actor: ctx.actor,
    requestId: ctx.requestId,
  });
  // Only refusals that prove nothing are rate limited (a token that is malformed, unknown, of
  // another CA or with a wrong secret: anyone can make those up). A refusal that names a real
  // token (revoked, expired, used up) needed its secret, so it is always written: it says a
  // token leaked.
  const limitSource = ctx.source !== undefined && code === 'GH_TOKEN_INVALID' ? ctx.source : null;
  await writeRefusalAudit(
    ca,
    {
      time: now,
      type,
      actor: ctx.actor,
      tokenId: fields.tokenId ?? null,
      serial: fields.serial ?? null,
      fingerprint: fields.fingerprint ?? null,
      requestId: ctx.requestId ?? null,
    },
    { code, reason, role: fields.role, via: fields.via },
    limitSource,
  );
}
