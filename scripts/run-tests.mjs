#!/usr/bin/env node
// Runs the compiled test suite. The external peers the tests use as oracles must be present:
// a missing tool fails the run loudly instead of silently skipping tests.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const REQUIRED_TOOLS = [
  ['openssl', ['version'], 'apt-get install -y openssl'],
  ['curl', ['--version'], 'apt-get install -y curl'],
  ['go', ['version'], 'apt-get install -y golang-go'],
  ['certtool', ['--version'], 'apt-get install -y gnutls-bin'],
  // The dashboard's browser tests drive Debian's Chromium (playwright-core downloads no browser).
  ['chromium', ['--version'], 'apt-get install -y chromium'],
];
const missing = REQUIRED_TOOLS.filter(([cmd, args]) => spawnSync(cmd, args, { stdio: 'ignore' }).status !== 0);
if (missing.length) {
  for (const [cmd, , fix] of missing) console.error(`test suite needs '${cmd}', which is not installed: ${fix}`);
  process.exit(1);
}

function findTests(dir) {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return findTests(path);
    return entry.endsWith('.test.js') ? [path] : [];
  });
}
const filter = process.argv.slice(2);
const files = findTests('dist/test').filter((f) => filter.length === 0 || filter.some((s) => f.includes(s))).sort();
if (files.length === 0) {
  console.error('no test files found under dist/test');
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-reporter=spec', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
