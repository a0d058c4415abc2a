/**
 * Who may read a secret: granting and ungranting subjects (roles, SPIFFE IDs), each change
 * committed with its audit event, and the parsing of subjects against the CA's trust domain
 * and roles that creating a secret uses too.
 */
import { GatehouseError } from '../errors/errors.js';
import { MAX_GRANTS_PER_SECRET, assertSecretName, parseSubject, type GrantSubject } from './names.js';
import { notFound, type ActorContext, type SecretContext } from './context.js';
import { showSecret, type SecretView } from './views.js';

export async function grantSecret(
  ctx: SecretContext,
  name: string,
  subjects: readonly string[],
  actor: ActorContext,
): Promise<SecretView> {
  assertSecretName(name);
  const parsed = parseSubjects(ctx, subjects, true);
  if (parsed.length === 0) throw new GatehouseError('GH_SECRET_INVALID', 'name at least one subject to grant');
  const now = ctx.now();
  const outcome = await ctx.store.grantSecret(
    name,
    parsed.map((s) => s.text),
    now,
    MAX_GRANTS_PER_SECRET,
    (changed) => [
      {
        time: now,
        type: 'ca.secret_granted',
        actor: actor.actor,
        requestId: actor.requestId ?? null,
        details: { secret: name, subjects: changed },
      },
    ],
  );
  if (!outcome.ok) {
    if (outcome.reason === 'NOT_FOUND') throw notFound(name);
    if (outcome.reason === 'TOO_MANY_GRANTS')
      throw new GatehouseError(
        'GH_SECRET_INVALID',
        `secret ${name} may be granted to at most ${outcome.limit} subjects; nothing was changed`,
      );
    throw new GatehouseError('GH_INTERNAL', `unexpected grant outcome ${outcome.reason}`);
  }
  if (outcome.changed.length)
    ctx.logger.info('ca.secret_granted', {
      secretName: name,
      subjects: outcome.changed,
      actor: actor.actor,
      requestId: actor.requestId,
    });
  return showSecret(ctx, name);
}

/** All or nothing: a subject that is not granted (a typo) refuses the whole call, so no access is silently kept. */
export async function ungrantSecret(
  ctx: SecretContext,
  name: string,
  subjects: readonly string[],
  actor: ActorContext,
): Promise<SecretView> {
  assertSecretName(name);
  // Syntax only: a role removed from the config, or a foreign SPIFFE ID, must still be removable.
  const parsed = parseSubjects(ctx, subjects, false);
  if (parsed.length === 0) throw new GatehouseError('GH_SECRET_INVALID', 'name at least one subject to ungrant');
  const now = ctx.now();
  const outcome = await ctx.store.ungrantSecret(
    name,
    parsed.map((s) => s.text),
    now,
    (changed) => [
      {
        time: now,
        type: 'ca.secret_ungranted',
        actor: actor.actor,
        requestId: actor.requestId ?? null,
        details: { secret: name, subjects: changed },
      },
    ],
  );
  if (!outcome.ok) {
    if (outcome.reason === 'NOT_FOUND') throw notFound(name);
    if (outcome.reason === 'NOT_GRANTED') {
      throw new GatehouseError(
        'GH_SECRET_INVALID',
        `secret ${name} is not granted to ${outcome.subjects.join(', ')} (granted: ${outcome.granted.join(', ') || 'nobody'}); nothing was changed`,
      );
    }
    throw new GatehouseError('GH_INTERNAL', `unexpected ungrant outcome ${outcome.reason}`);
  }
  ctx.logger.info('ca.secret_ungranted', {
    secretName: name,
    subjects: outcome.changed,
    actor: actor.actor,
    requestId: actor.requestId,
  });
  return showSecret(ctx, name);
}

/** Deduplicated; `strict` also checks each role against the config and each SPIFFE ID against the trust domain. */
export function parseSubjects(ctx: SecretContext, texts: readonly string[], strict: boolean): GrantSubject[] {
  const roles = Object.keys(ctx.config.roles);
  const seen = new Map<string, GrantSubject>();
  for (const text of texts) {
    if (typeof text !== 'string') throw new GatehouseError('GH_SECRET_INVALID', 'grant subjects must be strings');
    const subject = parseSubject(text, { trustDomain: ctx.config.trustDomain, roles, strict });
    seen.set(subject.text, subject);
  }
  return [...seen.values()];
}
