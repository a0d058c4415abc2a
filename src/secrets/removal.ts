/**
 * How secret versions leave the store: an operator deleting a secret with all its versions,
 * and the purge of old versions whose rotation overlap ended, which every write and read runs
 * first so an expired version is never delivered. Each removal is audited.
 */
import { assertSecretName } from './names.js';
import { notFound, type ActorContext, type SecretContext } from './context.js';

export async function deleteSecret(
  ctx: SecretContext,
  name: string,
  actor: ActorContext,
): Promise<{ name: string; deleted: true; versions: number }> {
  assertSecretName(name);
  const now = ctx.now();
  const deleted = await ctx.store.deleteSecret(name, (versions) => ({
    time: now,
    type: 'ca.secret_deleted',
    actor: actor.actor,
    requestId: actor.requestId ?? null,
    details: { secret: name, versions: versions.map((v) => v.version) },
  }));
  if (!deleted) throw notFound(name);
  ctx.logger.info('ca.secret_deleted', {
    secretName: name,
    versions: deleted.versions,
    actor: actor.actor,
    requestId: actor.requestId,
  });
  return { name, deleted: true, versions: deleted.versions };
}

/** Deletes the old versions whose overlap ended; each is audited `ca.secret_version_expired`. */
export async function purgeExpired(ctx: SecretContext): Promise<number> {
  const now = ctx.now();
  const removed = await ctx.store.purgeExpiredSecretVersions(now, (v) => ({
    time: now,
    type: 'ca.secret_version_expired',
    actor: 'ca:secrets',
    details: { secret: v.name, version: v.version, expiredAt: v.expiresAt.toISOString() },
  }));
  for (const r of removed) ctx.logger.info('ca.secret_version_expired', { secretName: r.name, version: r.version });
  return removed.length;
}
