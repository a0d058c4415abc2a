/**
 * Reading an OSV feed from disk: a .json file holding one record or an array of them, or a
 * directory of such files (OSV.dev's per-ecosystem all.zip, unpacked). Bounded so that a wrong
 * path (a disk image, /) fails quickly with a message instead of filling memory.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { GatehouseError } from '../../errors/errors.js';

const MAX_FILE_BYTES = 256 * 1024 * 1024;
const MAX_FILES = 500_000;

export interface FeedRecord {
  value: unknown;
  /** File and index, for error messages. */
  where: string;
}

export function readOsvFeed(path: string): FeedRecord[] {
  let stat;
  try {
    stat = statSync(path);
  } catch (err) {
    throw new GatehouseError(
      'GH_FILE_IO',
      `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { cause: err },
    );
  }
  if (!stat.isDirectory()) return readFeedFile(path);
  const names = readdirSync(path)
    .filter((n) => n.endsWith('.json'))
    .sort();
  if (names.length === 0)
    throw new GatehouseError(
      'GH_ADVISORY_INVALID',
      `${path} holds no .json files (unpack OSV's all.zip into it first)`,
    );
  if (names.length > MAX_FILES)
    throw new GatehouseError('GH_ADVISORY_INVALID', `${path} holds ${names.length} files, more than ${MAX_FILES}`);
  return names.flatMap((n) => readFeedFile(join(path, n)));
}

function readFeedFile(file: string): FeedRecord[] {
  const size = statSync(file).size;
  if (size > MAX_FILE_BYTES)
    throw new GatehouseError(
      'GH_ADVISORY_INVALID',
      `${file} is ${size} bytes, more than the ${MAX_FILE_BYTES} an OSV file may be`,
    );
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new GatehouseError('GH_ADVISORY_INVALID', `${file} is not JSON: ${(err as Error).message.slice(0, 200)}`);
  }
  if (Array.isArray(value)) return value.map((v, i) => ({ value: v, where: `${file} record ${i}` }));
  return [{ value, where: file }];
}
