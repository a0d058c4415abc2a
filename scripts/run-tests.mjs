#!/usr/bin/env node
// Runs the compiled test suite (all of it, or the files whose path contains an argument). The
// external peers the selected tests use as oracles must be present: a missing tool fails the run
// loudly instead of silently skipping tests.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, delimiter, dirname, join, resolve } from 'node:path';

const REQUIRED_TOOLS = [
  ['openssl', ['version'], 'apt-get install -y openssl'],
  ['curl', ['--version'], 'apt-get install -y curl'],
  ['go', ['version'], 'apt-get install -y golang-go'],
  ['certtool', ['--version'], 'apt-get install -y gnutls-bin'],
  // The dashboard's browser tests drive Debian's Chromium (playwright-core downloads no browser).
  ['chromium', ['--version'], 'apt-get install -y chromium'],
  // The proxies of docs/recipes, run for real by test/interop-*.test.ts.
  ['nginx', ['-v'], 'apt-get install -y nginx'],
  ['haproxy', ['-v'], 'apt-get install -y haproxy'],
  ['caddy', ['version'], 'apt-get install -y caddy'],
  ['socat', ['-V'], 'apt-get install -y socat'],
  // The README and docs' shell blocks (test/docs-shell.test.ts) pick fields out of --json output with jq.
  ['jq', ['--version'], 'apt-get install -y jq'],
  ['python3', ['-c', 'import requests'], 'apt-get install -y python3-requests'],
  // promtool, Prometheus' own parser and linter, checks every metrics endpoint (test/promtool.test.ts).
  ['promtool', ['--version'], 'apt-get install -y prometheus'],
  // systemd's own checks of docs/deploy's units (test/deploy-systemd.test.ts): verify and security.
  ['systemd-analyze', ['--version'], 'apt-get install -y systemd'],
  // A real `cfssl serve` is the external signing CA of test/external-signer.test.ts.
  ['cfssl', ['version'], 'apt-get install -y golang-cfssl'],
  // test/store-postgres.test.ts starts its own throwaway PostgreSQL server with initdb and pg_ctl.
  [postgresTool('initdb'), ['--version'], 'apt-get install -y postgresql'],
];

// Debian keeps the server's tools off PATH, in /usr/lib/postgresql/N/bin: the newest one.
function postgresTool(cmd) {
  const root = '/usr/lib/postgresql';
  let versions = [];
  try {
    versions = readdirSync(root)
      .filter((v) => statSync(join(root, v, 'bin', cmd), { throwIfNoEntry: false }))
      .sort((a, b) => Number(b) - Number(a));
  } catch {
    // no PostgreSQL installed
  }
  return versions.length ? join(root, versions[0], 'bin', cmd) : cmd;
}

// Debian installs nginx and haproxy in /usr/sbin, which a normal user's PATH lacks; the tests look there too.
function resolveTool(cmd) {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'].filter(
    Boolean,
  )) {
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return join(dir, cmd);
    } catch {
      // not in this directory
    }
  }
  return cmd;
}
function findTests(dir) {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return findTests(path);
    return entry.endsWith('.test.js') ? [path] : [];
  });
}
// --tools: print the system tools the selected tests need, and run nothing.
const listTools = process.argv.includes('--tools');
const filter = process.argv.slice(2).filter((a) => a !== '--tools');
const files = findTests('dist/test')
  .filter((f) => filter.length === 0 || filter.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error('no test files found under dist/test');
  process.exit(1);
}

// Only the tools the selected tests use are demanded (`npm test -- policy` needs no Chromium): a
// test file uses a tool when it or a helper it imports names it in a string. The docs' shell
// blocks may run any of them. A tool missed here still fails its test loudly (ENOENT), never skips it.
const sources = new Map();
function sourceWithImports(path, seen = new Set()) {
  if (seen.has(path)) return '';
  seen.add(path);
  if (!sources.has(path))
    sources.set(path, statSync(path, { throwIfNoEntry: false }) ? readFileSync(path, 'utf8') : '');
  const text = sources.get(path);
  const imported = [...text.matchAll(/from\s+['"](\.{1,2}\/[^'"]+)['"]/g)]
    .map((m) => resolve(dirname(path), m[1]))
    .filter((p) => p.startsWith(resolve('dist/test')));
  return [text, ...imported.map((p) => sourceWithImports(p, seen))].join('\n');
}
const usesTool = (text, cmd) =>
  new RegExp(`['"\`/ ]${basename(cmd).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}['"\` ]`).test(text);
const selected = files.map((f) => sourceWithImports(resolve(f)));
const needed =
  filter.length === 0 || selected.some((text) => text.includes('doc-blocks.js'))
    ? REQUIRED_TOOLS
    : REQUIRED_TOOLS.filter(([cmd]) => selected.some((text) => usesTool(text, cmd)));
if (listTools) {
  for (const [cmd, , fix] of needed) console.log(`${basename(cmd).padEnd(16)} ${fix}`);
  process.exit(0);
}
const missing = needed.filter(([cmd, args]) => spawnSync(resolveTool(cmd), args, { stdio: 'ignore' }).status !== 0);
if (missing.length) {
  for (const [cmd, , fix] of missing) console.error(`the selected tests need '${cmd}', which is not installed: ${fix}`);
  process.exit(1);
}
// A test that hangs fails after 10 minutes instead of holding the run until CI's hard limit.
// Node applies --test-timeout to each test file as a whole too, and pki-interop's file takes
// over 3 minutes on a loaded 2-core machine (RSA key generation, Go and certtool per leaf).
const result = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=2', '--test-timeout=600000', '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
