/**
 * Writes that never leave a half-written file: write a temp file in the same directory, fsync
 * it, rename over the target, fsync the directory. A full disk or a crash leaves the old file.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync, constants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { GatehouseError } from '../errors/errors.js';

export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Creates `path` exclusively with `mode` (no window in which it exists with wider permissions). */
export function writeNewFile(path: string, data: string | Buffer, mode: number): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
    writeAll(fd, data);
    fsyncSync(fd);
  } catch (cause) {
    if (fd !== undefined) closeQuietly(fd);
    if (fd !== undefined) rmSync(path, { force: true });
    throw new GatehouseError(
      'GH_FILE_IO',
      `cannot write ${path}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`,
      { cause },
    );
  }
  closeSync(fd);
}

export function writeFileAtomic(path: string, data: string | Buffer, mode = 0o644): void {
  const temp = tempPathFor(path);
  writeNewFile(temp, data, mode);
  try {
    renameSync(temp, path);
  } catch (cause) {
    rmSync(temp, { force: true });
    throw new GatehouseError('GH_FILE_IO', `cannot replace ${path}: ${(cause as NodeJS.ErrnoException).code}`, {
      cause,
    });
  }
  fsyncDir(dirname(path));
}

export function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, constants.O_RDONLY);
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some filesystems refuse fsync on directories; the rename itself is still atomic.
  }
}

function writeAll(fd: number, data: string | Buffer): void {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  let offset = 0;
  while (offset < buf.length) offset += writeSync(fd, buf, offset, buf.length - offset);
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* already failing */
  }
}
