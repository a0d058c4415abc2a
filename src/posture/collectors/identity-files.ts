/**
 * The agent's own identity on disk: a private key others can read is an identity others can
 * take. key.pem must be 0600 (or 0400) and the directory not open to other users.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { Collector } from '../check.js';
import { defineCollector } from '../check.js';

export const identityFilesCollector: Collector = defineCollector('identity-files', 15, (ctx) => {
  if (!ctx.identityDir) return { verdict: 'unknown', reason: 'no identity directory was given to check' };
  const mode = (path: string) => {
    try {
      return statSync(path).mode & 0o777;
    } catch {
      return null;
    }
  };
  const dirMode = mode(ctx.identityDir);
  const keyMode = mode(join(ctx.identityDir, 'key.pem'));
  const octal = (m: number | null) => (m === null ? 'missing' : m.toString(8).padStart(4, '0'));
  const details = { directoryMode: octal(dirMode), keyMode: octal(keyMode) };
  if (dirMode === null || keyMode === null)
    return {
      verdict: 'fail',
      reason: `the identity directory or its key.pem is missing (${ctx.identityDir})`,
      details,
    };
  if ((keyMode & 0o077) !== 0)
    return {
      verdict: 'fail',
      reason: `key.pem has mode ${octal(keyMode)}: other users can read this machine's private key (chmod 600)`,
      details,
    };
  if ((dirMode & 0o022) !== 0)
    return {
      verdict: 'fail',
      reason: `the identity directory has mode ${octal(dirMode)}: other users can replace its files (chmod 700)`,
      details,
    };
  return { verdict: 'pass', reason: `key.pem ${octal(keyMode)}, directory ${octal(dirMode)}`, details };
});
