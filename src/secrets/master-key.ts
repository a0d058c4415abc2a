/**
 * The secrets master key: `secrets-master-key.json` in the CA directory, 0600, written
 * atomically. It seals the data key of every secret version (seal.ts).
 *
 *   {"format":1,"keyId":"<current>","keys":[{"id","createdAt","key":"<base64>"}]}
 *
 * When the CA has a passphrase, each key is stored encrypted instead of as `key`:
 * `"encrypted":{"kdf":"scrypt","N":32768,"r":8,"p":1,"salt","iv","ciphertext","tag"}`, the
 * key-encryption key derived with scrypt (RFC 7914) from the passphrase and a random salt, the
 * key sealed with AES-256-GCM (random 96-bit IV, NIST SP 800-38D §8.2.2) with the format and
 * key ID as associated data. Without a passphrase the key sits next to the database in the
 * clear: encryption at rest then protects a copy of the database alone, not a copy of the
 * directory (docs/secrets.md).
 *
 * The file normally holds one key. During `secret rekey` it holds the new key and the old one
 * for the moment the database is re-sealed, so a crash at any point leaves every sealed data
 * key openable; the rekey then rewrites it with the new key alone.
 */
import { linkSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { z } from 'zod';
import { GatehouseError } from '../errors/errors.js';
import { fsyncDir, tempPathFor, writeFileAtomic, writeNewFile } from '../files/atomic-write.js';
import { withDirLock } from '../files/dir-lock.js';
import { assertPrivateFile } from '../files/identity-dir.js';
import type { MasterKey } from './seal.js';

export const MASTER_KEY_FILE = 'secrets-master-key.json';
const FORMAT = 1;
const KEY_BYTES = 32;
/** scrypt cost: 2^15 with r = 8 (about 32 MiB and 0.1 s here), as RFC 7914 §2 suggests for interactive use. */
const SCRYPT = { N: 2 ** 15, r: 8, p: 1 } as const;
const SCRYPT_MAXMEM = 64 * 1024 * 1024;
const WRAP_LABEL = 'gatehouse/secrets-master-key/v1';

const b64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/);
const entrySchema = z.strictObject({
  id: z.string().regex(/^[0-9a-f]{16}$/),
  createdAt: z.string(),
  key: b64.optional(),
  encrypted: z
    .strictObject({
      kdf: z.literal('scrypt'),
      N: z
        .number()
        .int()
        .min(2 ** 14)
        .max(2 ** 20),
      r: z.number().int().min(1).max(32),
      p: z.number().int().min(1).max(16),
      salt: b64,
      iv: b64,
      ciphertext: b64,
      tag: b64,
    })
    .optional(),
});
const fileSchema = z.strictObject({
  format: z.literal(FORMAT),
  keyId: z.string().regex(/^[0-9a-f]{16}$/),
  keys: z.array(entrySchema).min(1).max(8),
});
type KeyEntry = z.infer<typeof entrySchema>;

export interface MasterKeyFile {
  current: MasterKey;
  /** Every key in the file, the current one first. More than one: a rekey did not finish. */
  keys: MasterKey[];
  /** Whether the keys are stored encrypted with the passphrase. */
  encrypted: boolean;
}

export function masterKeyPath(caDir: string): string {
  return join(caDir, MASTER_KEY_FILE);
}

export function newMasterKey(): MasterKey {
  return { id: randomBytes(8).toString('hex'), key: randomBytes(KEY_BYTES) };
}

function wrapAad(id: string): Buffer {
  return Buffer.from(`${WRAP_LABEL}\n${FORMAT}\n${id}`);
}

function entryFor(key: MasterKey, passphrase: string | undefined, createdAt: Date): KeyEntry {
  const base = { id: key.id, createdAt: createdAt.toISOString() };
  if (passphrase === undefined) return { ...base, key: key.key.toString('base64') };
  const salt = randomBytes(16);
  const kek = scryptSync(passphrase, salt, KEY_BYTES, { ...SCRYPT, maxmem: SCRYPT_MAXMEM });
  try {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', kek, iv, { authTagLength: 16 });
    cipher.setAAD(wrapAad(key.id));
    const ciphertext = Buffer.concat([cipher.update(key.key), cipher.final()]);
    return {
      ...base,
      encrypted: {
        kdf: 'scrypt',
        ...SCRYPT,
        salt: salt.toString('base64'),
        iv: iv.toString('base64'),
        ciphertext: ciphertext.toString('base64'),
        tag: cipher.getAuthTag().toString('base64'),
      },
    };
  } finally {
    kek.fill(0);
  }
}

function keyOf(entry: KeyEntry, passphrase: string | undefined, path: string): MasterKey {
  if (entry.key !== undefined && entry.encrypted === undefined) {
    const key = Buffer.from(entry.key, 'base64');
    if (key.length !== KEY_BYTES)
      throw new GatehouseError('GH_SECRET_MASTER_KEY', `${path}: key ${entry.id} is not ${KEY_BYTES} bytes`);
    return { id: entry.id, key };
  }
  const e = entry.encrypted;
  if (!e || entry.key !== undefined)
    throw new GatehouseError('GH_SECRET_MASTER_KEY', `${path}: key ${entry.id} must have either "key" or "encrypted"`);
  if (passphrase === undefined) {
    throw new GatehouseError(
      'GH_SECRET_MASTER_KEY',
      `${path} is encrypted with the CA passphrase; pass --passphrase-file (or set GATEHOUSE_PASSPHRASE_FILE)`,
    );
  }
  const kek = scryptSync(passphrase, Buffer.from(e.salt, 'base64'), KEY_BYTES, {
    N: e.N,
    r: e.r,
    p: e.p,
    maxmem: SCRYPT_MAXMEM,
  });
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek, Buffer.from(e.iv, 'base64'), { authTagLength: 16 });
    decipher.setAAD(wrapAad(entry.id));
    decipher.setAuthTag(Buffer.from(e.tag, 'base64'));
    const key = Buffer.concat([decipher.update(Buffer.from(e.ciphertext, 'base64')), decipher.final()]);
    if (key.length !== KEY_BYTES) throw new Error('wrong length');
    return { id: entry.id, key };
  } catch {
    throw new GatehouseError(
      'GH_SECRET_MASTER_KEY',
      `${path}: cannot decrypt master key ${entry.id}: wrong passphrase, or the file was changed`,
    );
  } finally {
    kek.fill(0);
  }
}

function fileText(keys: MasterKey[], passphrase: string | undefined, now: Date): string {
  const doc = { format: FORMAT, keyId: keys[0]!.id, keys: keys.map((k) => entryFor(k, passphrase, now)) };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** The key file, or null when the CA has none yet. */
export function readMasterKeyFile(caDir: string, passphrase: string | undefined): MasterKeyFile | null {
  const path = masterKeyPath(caDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new GatehouseError('GH_SECRET_MASTER_KEY', `cannot read ${path}: ${(cause as NodeJS.ErrnoException).code}`, {
      cause,
    });
  }
  assertPrivateFile(path);
  let parsed: z.infer<typeof fileSchema>;
  try {
    parsed = fileSchema.parse(JSON.parse(text));
  } catch {
    // The text may hold key material: never echo it.
    throw new GatehouseError(
      'GH_SECRET_MASTER_KEY',
      `${path} is not a Gatehouse secrets master key file (format ${FORMAT})`,
    );
  }
  const keys = parsed.keys.map((entry) => keyOf(entry, passphrase, path));
  const current = keys.find((k) => k.id === parsed.keyId);
  if (!current)
    throw new GatehouseError('GH_SECRET_MASTER_KEY', `${path}: its current key ${parsed.keyId} is not among its keys`);
  return {
    current,
    keys: [current, ...keys.filter((k) => k !== current)],
    encrypted: parsed.keys.every((k) => k.encrypted !== undefined),
  };
}

/** Replaces the file atomically with `keys` (the first is the current one). */
export function writeMasterKeyFile(
  caDir: string,
  keys: MasterKey[],
  passphrase: string | undefined,
  now = new Date(),
): void {
  writeFileAtomic(masterKeyPath(caDir), fileText(keys, passphrase, now), 0o600);
}

/**
 * Creates the file with a new key unless one exists; returns the file in force either way. The
 * temp file is linked into place, which fails if the name exists: of two processes creating
 * the first key at the same moment (`secret create` locally while `ca serve` does too), one
 * key wins and both use it.
 */
export function createMasterKeyFile(caDir: string, passphrase: string | undefined, now = new Date()): MasterKeyFile {
  const existing = readMasterKeyFile(caDir, passphrase);
  if (existing) return existing;
  const path = masterKeyPath(caDir);
  const key = newMasterKey();
  const temp = tempPathFor(path);
  writeNewFile(temp, fileText([key], passphrase, now), 0o600);
  try {
    linkSync(temp, path);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== 'EEXIST')
      throw new GatehouseError('GH_FILE_IO', `cannot create ${path}: ${(cause as NodeJS.ErrnoException).code}`, {
        cause,
      });
  } finally {
    rmSync(temp, { force: true });
  }
  fsyncDir(caDir);
  const made = readMasterKeyFile(caDir, passphrase);
  if (!made) throw new GatehouseError('GH_SECRET_MASTER_KEY', `${path} vanished while it was being created`);
  return made;
}

/** What identifies one version of the file on disk, to re-read it only when it changed. */
function fileStamp(path: string): string | null {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
  } catch {
    return null;
  }
}

/**
 * The master keys of one CA directory, loaded when first needed and re-read when a sealed data
 * key names a key this process does not hold and the file changed meanwhile (a `secret rekey`,
 * or the first `secret create`, run locally while `ca serve` runs).
 */
export class MasterKeyRing {
  private loaded: MasterKeyFile | null = null;
  private stamp: string | null = null;

  constructor(
    readonly caDir: string,
    private readonly passphrase: string | undefined,
  ) {}

  get hasPassphrase(): boolean {
    return this.passphrase !== undefined;
  }

  /** The file in force, re-read if it changed; null when there is none. */
  file(): MasterKeyFile | null {
    const stamp = fileStamp(masterKeyPath(this.caDir));
    if (stamp === null) {
      this.loaded = null;
      this.stamp = null;
      return null;
    }
    if (stamp !== this.stamp || !this.loaded) {
      // Replaces what was held: a key the file no longer lists is forgotten here too.
      this.loaded = readMasterKeyFile(this.caDir, this.passphrase);
      this.stamp = stamp;
    }
    return this.loaded;
  }

  /** The file, created with a first key when the CA has none yet (a CA made before secrets existed). */
  fileOrCreate(): MasterKeyFile {
    const file = this.file();
    if (file) return file;
    createMasterKeyFile(this.caDir, this.passphrase);
    return this.file()!;
  }

  /** The key with this ID, from memory or from the file as it is now. */
  byId(id: string): MasterKey {
    const held = this.loaded?.keys.find((k) => k.id === id);
    if (held) return held;
    const file = this.file();
    const found = file?.keys.find((k) => k.id === id);
    if (found) return found;
    throw new GatehouseError(
      'GH_SECRET_MASTER_KEY',
      file
        ? `the stored secrets are sealed with master key ${id}, which ${masterKeyPath(this.caDir)} does not hold (it holds ${file.keys.map((k) => k.id).join(', ')}); restore the key file that matches this database`
        : `the stored secrets are sealed with master key ${id}, but ${masterKeyPath(this.caDir)} does not exist; restore it from the backup of this CA directory`,
    );
  }

  write(keys: MasterKey[]): void {
    writeMasterKeyFile(this.caDir, keys, this.passphrase);
    this.loaded = null;
    this.stamp = null;
  }
}

const REKEY_LOCK = '.secrets-master-key.lock';

/**
 * Runs `fn` holding the CA directory's rekey lock: two rekeys at once could each write a key
 * file that lacks the other's new key. The lock file names its process; one left by a process
 * that is gone (a crash) is taken over.
 */
export async function withRekeyLock<T>(caDir: string, fn: () => Promise<T>): Promise<T> {
  const path = join(caDir, REKEY_LOCK);
  return withDirLock(
    path,
    (holder) =>
      new GatehouseError(
        'GH_SECRET_MASTER_KEY',
        `another \`secret rekey\` holds ${path} (pid ${holder.pid ?? '?'} on ${holder.host ?? '?'} since ${holder.since ?? '?'}); wait for it, or remove the file if no rekey is running`,
      ),
    fn,
  );
}
