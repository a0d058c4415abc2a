/**
 * An identity directory: `key.pem` (0600), `cert.pem` (leaf then intermediates) and `ca.pem`
 * (the pinned root). The same layout for agents and for the admin identity that `ca init` makes.
 *
 * The three files change together. A rename per file is atomic but the set is not, and a crash
 * between renames would pair a new key with an old certificate, losing the valid identity. So a
 * replacement is staged first in `.staged/`, sealed with a COMMIT marker, then moved into place;
 * `recoverIdentityDir` finishes a sealed stage or discards an unsealed one (a redo log).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { GatehouseError } from '../errors/errors.js';
import { fsyncDir, writeNewFile } from './atomic-write.js';

export const IDENTITY_FILES = { key: 'key.pem', cert: 'cert.pem', ca: 'ca.pem' } as const;
const STAGE_DIR = '.staged';
const COMMIT_MARKER = 'COMMIT';

export interface IdentityFiles {
  keyPem: string;
  certPem: string;
  caPem: string;
}

export function identityPaths(dir: string) {
  return { key: join(dir, IDENTITY_FILES.key), cert: join(dir, IDENTITY_FILES.cert), ca: join(dir, IDENTITY_FILES.ca) };
}

export function ensurePrivateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  } catch (cause) {
    throw new GatehouseError('GH_FILE_IO', `cannot create directory ${dir}: ${(cause as NodeJS.ErrnoException).code}`, {
      cause,
    });
  }
}

export function writeIdentityDir(dir: string, files: IdentityFiles): void {
  ensurePrivateDir(dir);
  recoverIdentityDir(dir);
  const stage = join(dir, STAGE_DIR);
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { mode: 0o700 });
  try {
    writeNewFile(join(stage, IDENTITY_FILES.key), files.keyPem, 0o600);
    writeNewFile(join(stage, IDENTITY_FILES.cert), files.certPem, 0o644);
    writeNewFile(join(stage, IDENTITY_FILES.ca), files.caPem, 0o644);
    fsyncDir(stage);
    writeNewFile(join(stage, COMMIT_MARKER), '', 0o600);
    fsyncDir(stage);
  } catch (err) {
    // Nothing was moved: the current identity is untouched.
    rmSync(stage, { recursive: true, force: true });
    throw err;
  }
  recoverIdentityDir(dir);
}

/** Completes a sealed stage, or removes an unsealed one. Safe to run at any time, any number of times. */
export function recoverIdentityDir(dir: string): 'none' | 'completed' | 'discarded' {
  const stage = join(dir, STAGE_DIR);
  if (!existsSync(stage)) return 'none';
  if (!existsSync(join(stage, COMMIT_MARKER))) {
    rmSync(stage, { recursive: true, force: true });
    return 'discarded';
  }
  for (const name of [IDENTITY_FILES.key, IDENTITY_FILES.cert, IDENTITY_FILES.ca]) {
    const staged = join(stage, name);
    if (existsSync(staged)) renameSync(staged, join(dir, name));
  }
  fsyncDir(dir);
  rmSync(stage, { recursive: true, force: true });
  return 'completed';
}

export function readIdentityDir(dir: string): IdentityFiles {
  recoverIdentityDir(dir);
  const paths = identityPaths(dir);
  if (!existsSync(paths.cert) || !existsSync(paths.key)) {
    throw new GatehouseError(
      'GH_AGENT_NOT_ENROLLED',
      `no identity in ${dir} (expected ${IDENTITY_FILES.cert} and ${IDENTITY_FILES.key}); run \`gatehouse agent enroll\``,
    );
  }
  assertPrivateFile(paths.key);
  try {
    return {
      keyPem: readFileSync(paths.key, 'utf8'),
      certPem: readFileSync(paths.cert, 'utf8'),
      caPem: existsSync(paths.ca) ? readFileSync(paths.ca, 'utf8') : '',
    };
  } catch (cause) {
    throw new GatehouseError(
      'GH_FILE_IO',
      `cannot read the identity in ${dir}: ${(cause as NodeJS.ErrnoException).code}`,
      { cause },
    );
  }
}

/** Refuses key files that other users can read, as ssh does. */
export function assertPrivateFile(path: string): void {
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new GatehouseError(code === 'ENOENT' ? 'GH_CA_NOT_FOUND' : 'GH_FILE_IO', `cannot read ${path}: ${code}`, {
      cause,
    });
  }
  if ((mode & 0o077) !== 0) {
    throw new GatehouseError(
      'GH_CA_DIR_PERMS',
      `${path} has mode ${mode.toString(8).padStart(4, '0')}; private keys must not be readable by others (chmod 600 ${path})`,
    );
  }
}
