/**
 * The writes that seal a value: a new secret (version 1) and a rotation (the next version, the
 * old one kept for the overlap). Each seals under the store's master key, commits with its
 * audit event in one transaction, and tries again when a rotation or a rekey won the race.
 */
import { GatehouseError } from '../errors/errors.js';
import { SECRETS_KEY_ID_META } from '../store/store-secrets.js';
import { sealValue, type MasterKey } from './seal.js';
import { MAX_GRANTS_PER_SECRET, assertSecretName, assertSecretValue } from './names.js';
import { notFound, type ActorContext, type SecretContext } from './context.js';
import { parseSubjects } from './grants.js';
import { purgeExpired } from './removal.js';
import { showSecret, type SecretView } from './views.js';

/** Longest rotation overlap: an old version should not outlive its replacement by much. */
export const MAX_ROTATION_OVERLAP_MS = 30 * 86_400_000;
/** Attempts at a write that lost a race (a rotation or a rekey committed meanwhile) before giving up. */
const WRITE_ATTEMPTS = 5;

export async function createSecret(
  ctx: SecretContext,
  input: { name: string; value: Buffer; grants: readonly string[] },
  actor: ActorContext,
): Promise<SecretView> {
  assertSecretName(input.name);
  assertSecretValue(input.value);
  const grants = parseSubjects(ctx, input.grants, true);
  if (grants.length > MAX_GRANTS_PER_SECRET)
    throw new GatehouseError(
      'GH_SECRET_INVALID',
      `a secret may be granted to at most ${MAX_GRANTS_PER_SECRET} subjects; got ${grants.length}`,
    );
  await purgeExpired(ctx);
  for (let attempt = 1; ; attempt++) {
    const now = ctx.now();
    const key = await sealingKey(ctx, true);
    const sealed = sealValue(key, input.name, 1, input.value);
    const outcome = await ctx.store.createSecret(
      {
        version: { name: input.name, version: 1, createdAt: now, ...sealed },
        grants: grants.map((g) => g.text),
        at: now,
      },
      {
        time: now,
        type: 'ca.secret_created',
        actor: actor.actor,
        requestId: actor.requestId ?? null,
        details: {
          secret: input.name,
          version: 1,
          size: sealed.size,
          keyId: sealed.keyId,
          grants: grants.map((g) => g.text),
        },
      },
    );
    if (outcome.ok) break;
    if (outcome.reason === 'EXISTS') {
      throw new GatehouseError(
        'GH_SECRET_EXISTS',
        outcome.existing === input.name
          ? `secret ${input.name} already exists; give it a new value with \`gatehouse secret rotate ${input.name}\``
          : `secret ${outcome.existing} exists, and ${input.name} differs from it only in letter case (on many file systems they are the same file); choose another name`,
      );
    }
    if (outcome.reason !== 'KEY_CHANGED' || attempt >= WRITE_ATTEMPTS) throw lostRace(input.name, outcome.reason);
  }
  ctx.logger.info('ca.secret_created', {
    secretName: input.name,
    version: 1,
    size: input.value.length,
    grants: grants.map((g) => g.text),
    actor: actor.actor,
    requestId: actor.requestId,
  });
  return showSecret(ctx, input.name);
}

/** One rotation; SecretService.rotate runs those of one name one after the other. */
export async function rotateSecret(
  ctx: SecretContext,
  name: string,
  value: Buffer,
  overlapMs: number | undefined,
  actor: ActorContext,
): Promise<SecretView> {
  assertSecretName(name);
  assertSecretValue(value);
  const overlap = overlapMs ?? ctx.config.secrets.rotationOverlap;
  if (!Number.isSafeInteger(overlap) || overlap < 0 || overlap > MAX_ROTATION_OVERLAP_MS) {
    throw new GatehouseError(
      'GH_SECRET_INVALID',
      'the rotation overlap must be from 0 (the old version is deleted at once) to 30d',
    );
  }
  await purgeExpired(ctx);
  let version: number;
  for (let attempt = 1; ; attempt++) {
    const now = ctx.now();
    const secret = await ctx.store.getSecret(name);
    if (!secret) throw notFound(name);
    version = secret.currentVersion + 1;
    const key = await sealingKey(ctx, true);
    const sealed = sealValue(key, name, version, value);
    const previousExpiresAt = overlap === 0 ? null : new Date(now.getTime() + overlap);
    const outcome = await ctx.store.rotateSecret(
      { version: { name, version, createdAt: now, ...sealed }, at: now, previousExpiresAt },
      {
        time: now,
        type: 'ca.secret_rotated',
        actor: actor.actor,
        requestId: actor.requestId ?? null,
        details: {
          secret: name,
          version,
          previousVersion: secret.currentVersion,
          previousExpiresAt: previousExpiresAt?.toISOString() ?? null,
          previousDeleted: previousExpiresAt === null,
          size: sealed.size,
          keyId: sealed.keyId,
        },
      },
    );
    if (outcome.ok) break;
    if (outcome.reason === 'NOT_FOUND') throw notFound(name);
    if (attempt >= WRITE_ATTEMPTS) throw lostRace(name, outcome.reason);
  }
  ctx.logger.info('ca.secret_rotated', {
    secretName: name,
    version,
    size: value.length,
    overlapMs: overlap,
    actor: actor.actor,
    requestId: actor.requestId,
  });
  return showSecret(ctx, name);
}

/**
 * The master key new versions are sealed with: the store's (every sealed data key is under
 * it), else the key file's current key, made now for a CA created before secrets existed.
 */
async function sealingKey(ctx: SecretContext, createIfMissing: boolean): Promise<MasterKey> {
  const stored = await ctx.store.getMeta(SECRETS_KEY_ID_META);
  if (stored !== null) return ctx.keys.byId(stored);
  const file = createIfMissing ? ctx.keys.fileOrCreate() : ctx.keys.file();
  if (!file) throw new GatehouseError('GH_SECRET_MASTER_KEY', `${ctx.keys.caDir} has no secrets master key`);
  if (ctx.keys.hasPassphrase && !file.encrypted) {
    ctx.logger.warn('ca.secrets_master_key_unencrypted', {
      dir: ctx.keys.caDir,
      fix: 'run `gatehouse secret rekey --dir DIR --passphrase-file FILE` to store it encrypted',
    });
  }
  return file.current;
}

function lostRace(name: string, reason: string): GatehouseError {
  return new GatehouseError(
    'GH_STORE_IO',
    `secret ${name} kept changing while it was being written (${reason}); try again`,
  );
}
