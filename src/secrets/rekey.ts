/**
 * A new secrets master key (`gatehouse secret rekey`): every data key sealed again under it in
 * one transaction, the key file changed around it so that a crash at any point leaves every
 * data key openable. Local only: the key file is on the CA machine.
 */
import { newMasterKey, withRekeyLock } from './master-key.js';
import { resealDataKey } from './seal.js';
import type { ActorContext, SecretContext } from './context.js';

export interface RekeyResult {
  keyId: string;
  previousKeyIds: string[];
  resealed: number;
  encrypted: boolean;
}

export function rekeySecrets(ctx: SecretContext, actor: ActorContext): Promise<RekeyResult> {
  return withRekeyLock(ctx.keys.caDir, () => rekeyLocked(ctx, actor));
}

async function rekeyLocked(ctx: SecretContext, actor: ActorContext): Promise<RekeyResult> {
  const { keys } = ctx;
  const old = keys.fileOrCreate();
  const next = newMasterKey();
  // 1. The new key goes into the file beside the old ones, so a crash at any point leaves every
  //    sealed data key openable (and `ca serve`, reading the file again, finds both).
  keys.write([next, ...old.keys]);
  const now = ctx.now();
  let resealed: number;
  try {
    resealed = await ctx.store.rekeySecrets(
      next.id,
      (v) => resealDataKey(keys.byId(v.keyId), next, v.name, v.version, v.sealedKey),
      (count) => ({
        time: now,
        type: 'ca.secret_rekeyed',
        actor: actor.actor,
        requestId: actor.requestId ?? null,
        details: {
          keyId: next.id,
          previousKeyIds: old.keys.map((k) => k.id),
          resealed: count,
          encrypted: keys.hasPassphrase,
        },
      }),
    );
  } catch (err) {
    // Nothing was re-sealed: the file goes back to what it was.
    keys.write(old.keys);
    throw err;
  }
  // 2. The database is under the new key alone: the old keys leave the file.
  keys.write([next]);
  for (const k of old.keys) k.key.fill(0);
  ctx.logger.info('ca.secret_rekeyed', {
    keyId: next.id,
    previousKeyIds: old.keys.map((k) => k.id),
    resealed,
    actor: actor.actor,
  });
  return { keyId: next.id, previousKeyIds: old.keys.map((k) => k.id), resealed, encrypted: keys.hasPassphrase };
}
