/**
 * Every source file a comment or a document names by file name (`peer-auth.ts`,
 * `src/store/sqlite.ts`, `scripts/run-tests.mjs`) exists: after a file is moved or split, a
 * comment that still points at its old name sends the reader nowhere.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** Names that are not files of this repository on purpose. */
const NOT_OURS = new Set([
  'client.mjs', // written by interop-nginx.test.ts into its temp dir
  'x.ts', // an example path in test/helpers/architecture.ts
]);

const REFERENCE = /(?<![\w./-])((?:[\w.-]+\/)*[\w-]+\.(?:ts|mjs))\b/g;

test('file-references-in-comments-and-docs-name-files-that-exist', () => {
  const tracked = execFileSync('git', ['ls-files'], { cwd: REPO, encoding: 'utf8' }).split('\n').filter(Boolean);
  const names = new Set(tracked.map((f) => basename(f)));
  const exists = (ref: string) =>
    ref.includes('/') ? tracked.some((f) => f === ref || f.endsWith(`/${ref}`)) : names.has(ref);
  const missing: string[] = [];
  for (const file of tracked.filter((f) => /\.(ts|mjs|md)$/.test(f) && !f.startsWith('test/fixtures/'))) {
    for (const [i, line] of readFileSync(`${REPO}/${file}`, 'utf8').split('\n').entries()) {
      for (const [, ref] of line.matchAll(REFERENCE)) {
        if (!NOT_OURS.has(basename(ref!)) && !exists(ref!)) missing.push(`${file}:${i + 1} names ${ref}`);
      }
    }
  }
  assert.deepEqual(missing, []);
});
