/**
 * What identities read over mutual TLS: the listing of the secrets granted to them, and one
 * secret's value, decided, recorded and audited in one transaction. Every refusal is turned
 * into its audit event and metric by read-refusals.ts; unknown and ungranted look the same.
 */
import { GatehouseError, isGatehouseError } from '../errors/errors.js';
import type { CertRecord } from '../store/store-certificates.js';
import { openValue } from './seal.js';
import { secretNameProblem, subjectsOf } from './names.js';
import type { ReaderContext, SecretContext } from './context.js';
import type { RefusalReason } from './read-results.js';
import { refused } from './read-refusals.js';
import { purgeExpired } from './removal.js';
import { listingView, type SecretListingView } from './views.js';

export interface DeliveredSecret {
  name: string;
  version: number;
  checksum: string;
  value: Buffer;
}

/** Thrown to refuse a read; carries what the audit and the metric need. */
class ReadRefusal extends Error {
  constructor(
    readonly reason: RefusalReason,
    readonly error: GatehouseError,
  ) {
    super(error.message);
  }
}

export async function listForIdentity(ctx: SecretContext, caller: CertRecord): Promise<SecretListingView[]> {
  await purgeExpired(ctx);
  const listed = await ctx.store.listSecretsGranted(subjectsOf(caller));
  ctx.observer?.read('listed');
  return listed.map(listingView);
}

export async function readForIdentity(
  ctx: SecretContext,
  caller: CertRecord,
  name: string,
  version: number | null,
  reader: ReaderContext,
): Promise<DeliveredSecret> {
  try {
    return await readUnobserved(ctx, caller, name, version, reader);
  } catch (err) {
    if (!(err instanceof ReadRefusal)) {
      await refused(ctx, caller, name, version, 'error', err, reader);
      throw err;
    }
    await refused(ctx, caller, name, version, err.reason, err.error, reader);
    throw err.error;
  }
}

async function readUnobserved(
  ctx: SecretContext,
  caller: CertRecord,
  name: string,
  version: number | null,
  reader: ReaderContext,
): Promise<DeliveredSecret> {
  if (secretNameProblem(name) !== null)
    throw new ReadRefusal('invalid', new GatehouseError('GH_SECRET_INVALID', 'that is not a valid secret name'));
  if (version !== null && (!Number.isSafeInteger(version) || version < 1 || version > 0xffff_ffff)) {
    throw new ReadRefusal('invalid', new GatehouseError('GH_SECRET_INVALID', 'version must be a whole number from 1'));
  }
  await purgeExpired(ctx);
  const subjects = subjectsOf(caller);
  // Both looked up whatever the answer, so an unknown name does not answer faster than an ungranted one.
  const [secret, granted] = await Promise.all([ctx.store.getSecret(name), ctx.store.isSecretGranted(name, subjects)]);
  if (!secret) throw new ReadRefusal('unknown', notGranted(caller, name));
  if (!granted) throw new ReadRefusal('not-granted', notGranted(caller, name));
  const wanted = version ?? secret.currentVersion;
  const row = await ctx.store.getSecretVersion(name, wanted, ctx.now());
  if (!row) throw new ReadRefusal('version-gone', versionGone(name, wanted, secret.currentVersion));
  let value: Buffer;
  try {
    value = openValue(ctx.keys.byId(row.keyId), name, row.version, row);
  } catch (err) {
    if (isGatehouseError(err, 'GH_SECRET_SEALED_INVALID')) {
      ctx.logger.error('ca.secret_sealed_invalid', {
        secretName: name,
        version: row.version,
        keyId: row.keyId,
        reason: err.message,
        requestId: reader.requestId,
      });
      throw new ReadRefusal('sealed-invalid', err);
    }
    if (isGatehouseError(err, 'GH_SECRET_MASTER_KEY')) throw new ReadRefusal('master-key', err);
    throw err;
  }
  const now = ctx.now();
  const outcome = await ctx.store.commitSecretRead(
    { name, version: row.version, checksum: row.checksum, subjects, at: now, by: caller.spiffeId },
    {
      time: now,
      type: 'ca.secret_read',
      actor: caller.spiffeId,
      serial: caller.serial,
      fingerprint: caller.fingerprint,
      requestId: reader.requestId ?? null,
      details: { secret: name, version: row.version, spiffeId: caller.spiffeId },
    },
  );
  if (outcome !== 'OK') {
    // Ungranted, rotated away or deleted between the checks above and this commit.
    value.fill(0);
    throw outcome === 'NOT_GRANTED'
      ? new ReadRefusal('not-granted', notGranted(caller, name))
      : new ReadRefusal('version-gone', versionGone(name, wanted, null));
  }
  ctx.observer?.read('delivered');
  ctx.logger.info('ca.secret_read', {
    secretName: name,
    version: row.version,
    spiffeId: caller.spiffeId,
    serial: caller.serial,
    requestId: reader.requestId,
  });
  return { name, version: row.version, checksum: row.checksum, value };
}

/** The one answer for an unknown and for an ungranted secret. */
function notGranted(caller: CertRecord, name: string): GatehouseError {
  return new GatehouseError(
    'GH_SECRET_NOT_GRANTED',
    `${caller.spiffeId} may not read secret ${name}: no such secret is granted to it`,
  );
}

function versionGone(name: string, version: number, current: number | null): GatehouseError {
  return new GatehouseError(
    'GH_SECRET_NOT_FOUND',
    `version ${version} of secret ${name} is not available (an old version is kept only for the rotation overlap)${current !== null ? `; the current version is ${current}` : ''}`,
  );
}
