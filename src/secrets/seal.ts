/**
 * Envelope encryption of secret values, with node:crypto only.
 *
 * Each version of a secret gets its own random 256-bit data key. The value is sealed with
 * AES-256-GCM under that data key; the data key is sealed with AES-256-GCM under the secrets
 * master key (master-key.ts). Both carry associated data naming the secret and the version
 * (and, for the data key, the master key's ID), so a ciphertext, or a whole row, copied to
 * another name or version does not authenticate there.
 *
 * IVs (NIST SP 800-38D §8.2.2, the RBG-based construction): 96 random bits per encryption.
 * A data key encrypts exactly one message, so its IV can never repeat; the master key wraps
 * one data key per version and per rekey, far below the 2^32 invocations §8.3 allows for random
 * IVs under one key, and `secret rekey` starts a new key. Tags are the full 128 bits, and are
 * required to be on decryption (SP 800-38D §5.2.1.2, Appendix C: a decipher that accepts a
 * shorter tag makes forgeries cheaper).
 *
 * The checksum is HMAC-SHA256 over the value under a key derived from the data key (HKDF,
 * its own label): stable for the life of the version (a rekey does not change the data key),
 * useful to an agent as a change detector, and, unlike a plain SHA-256, of no use to someone
 * holding the database who wants to test guesses of a weak value.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { GatehouseError } from '../errors/errors.js';

export const IV_BYTES = 12;
export const TAG_BYTES = 16;
export const KEY_BYTES = 32;
/** A sealed data key: IV, then the 32-byte key encrypted, then the tag. */
export const SEALED_KEY_BYTES = IV_BYTES + KEY_BYTES + TAG_BYTES;
export const CHECKSUM_PREFIX = 'hmac-sha256:';

const VALUE_LABEL = 'gatehouse/secret-value/v1';
const DATA_KEY_LABEL = 'gatehouse/secret-data-key/v1';
const CHECKSUM_LABEL = 'gatehouse/secret-checksum/v1';

export interface MasterKey {
  /** Random, public: stored with every sealed data key, so a reader holding another key notices. */
  id: string;
  key: Buffer;
}

/** One sealed version, as the store keeps it. */
export interface SealedValue {
  keyId: string;
  sealedKey: Buffer;
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
  checksum: string;
  size: number;
}

/**
 * Associated data: each field length-prefixed (4 bytes, big-endian), so no two different
 * (label, name, version, key ID) tuples encode to the same bytes ("a.b" + "1" vs "a" + ".b1").
 */
export function associatedData(label: string, name: string, version: number, keyId = ''): Buffer {
  if (!Number.isSafeInteger(version) || version < 1 || version > 0xffff_ffff)
    throw new GatehouseError('GH_INTERNAL', `secret version ${version} out of range`);
  const versionBytes = Buffer.alloc(4);
  versionBytes.writeUInt32BE(version);
  const parts = [Buffer.from(label), Buffer.from(name, 'utf8'), versionBytes, Buffer.from(keyId)];
  return Buffer.concat(
    parts.flatMap((p) => {
      const length = Buffer.alloc(4);
      length.writeUInt32BE(p.length);
      return [length, p];
    }),
  );
}

function gcmSeal(key: Buffer, plaintext: Buffer, aad: Buffer): { iv: Buffer; ciphertext: Buffer; tag: Buffer } {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, ciphertext, tag: cipher.getAuthTag() };
}

/** Null when the ciphertext, tag, IV, key or associated data do not authenticate. */
function gcmOpen(key: Buffer, iv: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer): Buffer | null {
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch {
    return null;
  }
}

export function checksumOf(dataKey: Buffer, value: Buffer): string {
  const macKey = Buffer.from(hkdfSync('sha256', dataKey, Buffer.alloc(0), CHECKSUM_LABEL, KEY_BYTES));
  try {
    return CHECKSUM_PREFIX + createHmac('sha256', macKey).update(value).digest('hex');
  } finally {
    macKey.fill(0);
  }
}

export function sealDataKey(master: MasterKey, name: string, version: number, dataKey: Buffer): Buffer {
  const { iv, ciphertext, tag } = gcmSeal(
    master.key,
    dataKey,
    associatedData(DATA_KEY_LABEL, name, version, master.id),
  );
  return Buffer.concat([iv, ciphertext, tag]);
}

/** The data key, or null when the sealed key does not authenticate for this name, version and master key. */
export function openDataKey(master: MasterKey, name: string, version: number, sealedKey: Buffer): Buffer | null {
  if (sealedKey.length !== SEALED_KEY_BYTES) return null;
  const key = gcmOpen(
    master.key,
    sealedKey.subarray(0, IV_BYTES),
    sealedKey.subarray(IV_BYTES, IV_BYTES + KEY_BYTES),
    sealedKey.subarray(IV_BYTES + KEY_BYTES),
    associatedData(DATA_KEY_LABEL, name, version, master.id),
  );
  return key && key.length === KEY_BYTES ? key : null;
}

export function sealValue(master: MasterKey, name: string, version: number, value: Buffer): SealedValue {
  const dataKey = randomBytes(KEY_BYTES);
  try {
    const { iv, ciphertext, tag } = gcmSeal(dataKey, value, associatedData(VALUE_LABEL, name, version));
    return {
      keyId: master.id,
      sealedKey: sealDataKey(master, name, version, dataKey),
      iv,
      ciphertext,
      tag,
      checksum: checksumOf(dataKey, value),
      size: value.length,
    };
  } finally {
    dataKey.fill(0);
  }
}

function sealedInvalid(name: string, version: number, what: string): GatehouseError {
  return new GatehouseError(
    'GH_SECRET_SEALED_INVALID',
    `secret ${name} version ${version} was refused: ${what} (changed in the database, or copied from another secret); nothing was delivered`,
  );
}

/**
 * The value, after its data key, its ciphertext and its checksum all authenticated for this
 * name and version; else GH_SECRET_SEALED_INVALID, and no byte of the value leaves here.
 */
export function openValue(
  master: MasterKey,
  name: string,
  version: number,
  sealed: Omit<SealedValue, 'keyId'>,
): Buffer {
  const dataKey = openDataKey(master, name, version, sealed.sealedKey);
  if (!dataKey) throw sealedInvalid(name, version, `its data key does not authenticate under master key ${master.id}`);
  try {
    const value = gcmOpen(
      dataKey,
      sealed.iv,
      sealed.ciphertext,
      sealed.tag,
      associatedData(VALUE_LABEL, name, version),
    );
    if (!value) throw sealedInvalid(name, version, 'its ciphertext does not authenticate');
    // The checksum and size columns are not under the tag: a value is delivered only with the
    // checksum and size the store lists for it, or an agent could be told "unchanged" wrongly.
    const expected = Buffer.from(checksumOf(dataKey, value));
    const stored = Buffer.from(sealed.checksum);
    if (value.length !== sealed.size || expected.length !== stored.length || !timingSafeEqual(expected, stored)) {
      value.fill(0);
      throw sealedInvalid(name, version, 'its checksum or size does not match its value');
    }
    return value;
  } finally {
    dataKey.fill(0);
  }
}

/** The data key of one version sealed again under another master key; the value is not touched. */
export function resealDataKey(
  from: MasterKey,
  to: MasterKey,
  name: string,
  version: number,
  sealedKey: Buffer,
): Buffer {
  const dataKey = openDataKey(from, name, version, sealedKey);
  if (!dataKey) throw sealedInvalid(name, version, `its data key does not authenticate under master key ${from.id}`);
  try {
    return sealDataKey(to, name, version, dataKey);
  } finally {
    dataKey.fill(0);
  }
}
