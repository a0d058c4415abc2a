import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { parseWorkers } from '../src/cli/workers-option.js';
import { gatehouse } from './helpers/cli.js';

test('--workers takes a whole number within the bound, or auto; anything else is a usage error naming the bound', async () => {
  assert.equal(parseWorkers('1', 64), 1);
  assert.equal(parseWorkers('64', 64), 64);
  assert.equal(parseWorkers('auto', 64), Math.min(availableParallelism(), 64));
  assert.equal(parseWorkers('auto', 1), 1, 'auto never exceeds the bound');
  for (const bad of ['0', '65', '-1', '1.5', '2e1', ' 2', '0x2', '', 'Auto']) {
    assert.throws(
      () => parseWorkers(bad, 64),
      (err: Error & { code?: string }) => err.code === 'GH_USAGE' && /from 1 to 64, or auto/.test(err.message),
      bad,
    );
  }
  // Both servers use it: the gateway's bound is 256, the CA's 64.
  const gw = await gatehouse(['gateway', '--workers', '257', '--listen', '127.0.0.1:0']);
  assert.equal(gw.status, 64, gw.stderr);
  assert.match(gw.stderr, /--workers must be a whole number from 1 to 256, or auto/);
  const ca = await gatehouse(['ca', 'serve', '--dir', '/nonexistent-ca', '--workers', 'two']);
  assert.equal(ca.status, 64, ca.stderr);
  assert.match(ca.stderr, /--workers must be a whole number from 1 to 64, or auto/);
});
