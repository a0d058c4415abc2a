/**
 * The file operations of `ca backup` and `ca restore` (backup.ts, backup-restore.ts): every
 * file read through SHA-256 without following a symlink, copies created exclusively and fsync'd,
 * folders private, and a hidden sibling to build into so a path is either complete or absent.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { GatehouseError } from '../errors/errors.js';
import { fsyncDir } from '../files/atomic-write.js';

const CHUNK = 1 << 20;

export interface FileDigest {
  size: number;
  sha256: string;
}

export function ioError(what: string, path: string, cause: unknown): GatehouseError {
  return new GatehouseError(
    'GH_FILE_IO',
    `cannot ${what} ${path}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`,
    { cause },
  );
}

/** Streams `path` (never following a symlink) through SHA-256, copying it to `dest` when given (created exclusively, 0600, fsync'd). */
export function digestFile(path: string, dest?: string): FileDigest {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(CHUNK);
  let size = 0;
  let src: number | undefined;
  let out: number | undefined;
  try {
    src = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    if (dest !== undefined) out = openSync(dest, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    for (;;) {
      const n = readSync(src, buf, 0, CHUNK, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      size += n;
      if (out !== undefined) {
        let written = 0;
        while (written < n) written += writeSync(out, buf, written, n - written);
      }
    }
    if (out !== undefined) fsyncSync(out);
  } catch (cause) {
    throw ioError(dest !== undefined ? 'copy' : 'read', path, cause);
  } finally {
    if (src !== undefined) closeSync(src);
    if (out !== undefined) closeSync(out);
  }
  return { size, sha256: hash.digest('hex') };
}

export function mkdirPrivate(path: string): void {
  try {
    mkdirSync(path, { mode: 0o700 });
  } catch (cause) {
    throw ioError('create', path, cause);
  }
}

export function isEmptyDir(path: string): boolean {
  return statSync(path).isDirectory() && readdirSync(path).length === 0;
}

/** A hidden sibling of `path` to build into, renamed to `path` once complete. */
export function stagingSibling(path: string, suffix: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.${suffix}`);
}

/** The directories under `root` (relative, parents first), for an fsync of each after writing. */
export function fsyncTree(root: string, dirs: readonly string[]): void {
  for (const d of [...dirs].reverse()) fsyncDir(join(root, d));
  fsyncDir(root);
}

/** True when anything, even a dangling symlink, is at `path`. */
export function lstatExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A copied or checked file against the size and SHA-256 its manifest recorded. */
export function assertDigest(path: string, actual: FileDigest, recorded: FileDigest): void {
  if (actual.size !== recorded.size) {
    throw new GatehouseError(
      'GH_BACKUP_CORRUPT',
      `${path} was changed or damaged: it has ${actual.size} bytes, the manifest recorded ${recorded.size}`,
    );
  }
  if (actual.sha256 !== recorded.sha256) {
    throw new GatehouseError(
      'GH_BACKUP_CORRUPT',
      `${path} was changed or damaged: its SHA-256 is ${actual.sha256}, the manifest recorded ${recorded.sha256}`,
    );
  }
}
