import { readFileSync } from 'node:fs';
import { GatehouseError } from '../errors/errors.js';

/** Reads a passphrase from a file (never from argv, where the process list would show it). */
export function readPassphraseFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new GatehouseError(
      'GH_FILE_IO',
      `cannot read passphrase file ${path}: ${(cause as NodeJS.ErrnoException).code}`,
      { cause },
    );
  }
  const passphrase = text.replace(/\r?\n$/, '');
  if (passphrase.length === 0) throw new GatehouseError('GH_USAGE', `passphrase file ${path} is empty`);
  return passphrase;
}
