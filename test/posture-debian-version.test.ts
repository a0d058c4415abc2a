/**
 * Debian version comparison against the real `dpkg --compare-versions` over the hard cases:
 * epochs, tildes (before everything, even the end), revisions, leading zeros, letters against
 * other characters, colons and dashes inside the upstream version.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareDebianVersions, parseDebianVersion } from '../src/posture/debian-version.js';
import { requireTool } from './helpers/proxy-peers.js';
import { run } from './helpers/run.js';

const PAIRS: Array<[string, string]> = [
  ['1.0', '1.0'],
  ['1.0', '1.1'],
  ['1.0', '1.0-1'],
  ['1.0-1', '1.0-2'],
  ['1.0-10', '1.0-9'],
  ['1:1.0', '2.0'],
  ['0:1.0', '1.0'],
  ['2:0.1', '1:9.9'],
  ['10:1', '9:1'],
  ['1.0~rc1', '1.0'],
  ['1.0~rc1', '1.0~rc2'],
  ['1.0~~', '1.0~'],
  ['1.0~', '1.0'],
  ['1.0~rc1-1', '1.0-1'],
  ['1.0-1~bpo1', '1.0-1'],
  ['1.0a', '1.0'],
  ['1.0a', '1.0b'],
  ['1.0+dfsg', '1.0'],
  ['1.0+dfsg', '1.0.1'],
  ['1.0.', '1.0'],
  ['1.0+', '1.0a'],
  ['1.01', '1.1'],
  ['1.001', '1.1'],
  ['1.0010', '1.9'],
  ['007', '7'],
  ['1.2.3', '1.2.10'],
  ['1.0-1.1', '1.0-1'],
  ['1.0-1+deb12u1', '1.0-1'],
  ['1.0-1+deb12u1', '1.0-1+deb12u2'],
  ['1.0-1+b1', '1.0-1.1'],
  ['2.36-9+deb12u4', '2.36-9+deb12u10'],
  ['3.0.11-1~deb12u2', '3.0.11-1'],
  ['1:2.38.1-5+deb12u1', '2.38.1-5+deb12u2'],
  ['1.2-3-4', '1.2-3'],
  ['1:2:3', '1:2'],
  ['a', 'b'],
  ['1.0-0', '1.0'],
  ['1.0-a', '1.0-1'],
  ['9.18.28-1~deb12u2', '9.18.28-1'],
  ['7.88.1-10+deb12u8', '7.88.1-10+deb12u5'],
  ['252.33-1~deb12u1', '252.30-1~deb12u2'],
];

test('posture-debian-version-agrees-with-dpkg-on-every-hard-case', async () => {
  const dpkg = requireTool('dpkg', 'dpkg');
  for (const [a, b] of PAIRS) {
    const ours = Math.sign(compareDebianVersions(a, b));
    const lt = (await run(dpkg, ['--compare-versions', a, 'lt', b])).status === 0;
    const eq = (await run(dpkg, ['--compare-versions', a, 'eq', b])).status === 0;
    const theirs = lt ? -1 : eq ? 0 : 1;
    assert.equal(ours, theirs, `${a} vs ${b}: ours ${ours}, dpkg ${theirs}`);
    assert.equal(Math.sign(compareDebianVersions(b, a)), theirs === 0 ? 0 : -theirs, `${b} vs ${a} (reversed)`);
  }
});

test('posture-debian-version-refuses-what-is-not-a-version', () => {
  for (const bad of ['', ' ', '1.0 beta', 'x:1.0', ':1.0', '1.0-', '1.0-$', '-1', '1.0_1']) {
    assert.throws(
      () => parseDebianVersion(bad),
      (err: Error) => /is not a Debian version/.test(err.message),
      JSON.stringify(bad),
    );
  }
  assert.deepEqual(parseDebianVersion('1:2.3-4+deb12u1'), { epoch: 1, upstream: '2.3', revision: '4+deb12u1' });
});
