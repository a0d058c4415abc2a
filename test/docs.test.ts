import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { cliReference, errorReference } from '../src/docs/reference.js';
import { COMMANDS } from '../src/cli/commands/index.js';
import { ERRORS } from '../src/errors/errors.js';
import { gatehouse } from './helpers/cli.js';

test('docs-cli-reference-matches-every-command-help', async () => {
  const doc = readFileSync('docs/cli.md', 'utf8');
  assert.equal(doc, cliReference(), 'docs/cli.md is stale: run `npm run docs`');
  for (const command of COMMANDS) {
    const r = await gatehouse([...command.path, '--help']);
    assert.equal(r.status, 0, `${command.path.join(' ')} --help`);
    assert.ok(
      doc.includes(r.stdout),
      `docs/cli.md lacks the current --help of \`gatehouse ${command.path.join(' ')}\``,
    );
  }
});

test('docs-error-reference-lists-every-code-with-status-and-exit', () => {
  const doc = readFileSync('docs/errors.md', 'utf8');
  assert.equal(doc, errorReference(), 'docs/errors.md is stale: run `npm run docs`');
  for (const [code, spec] of Object.entries(ERRORS)) {
    assert.ok(doc.includes(`| \`${code}\` | ${spec.http} | ${spec.exit} |`), code);
  }
});

test('readme-opens-with-the-two-commands', () => {
  const readme = readFileSync('README.md', 'utf8');
  const blocks = [...readme.matchAll(/```(?:sh|bash)?\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());
  assert.deepEqual(blocks.slice(0, 2), ['npm ci && npm start', 'npm ci && npm test']);
});

test('docs-and-sources-hold-no-merge-conflict-markers', () => {
  const tracked = execFileSync('git', ['ls-files', '*.md', '*.ts', '*.mjs', '*.json', '*.yml', '*.yaml'], {
    encoding: 'utf8',
  })
    .split('\n')
    .filter(Boolean);
  const offenders = tracked.filter((file) => /^(<{7}|>{7}) /m.test(readFileSync(file, 'utf8')));
  assert.deepEqual(offenders, []);
});
