/** The posture report: the documented score formula, failing checks heaviest first, facts, and a collector that throws. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { collectPosture, scoreOf } from '../src/posture/report.js';
import { defineCollector, type CheckResult } from '../src/posture/check.js';
import { makeTempDir } from './helpers/tmp.js';
import { writeTree } from './helpers/system-tree.js';

const check = (id: string, weight: number, verdict: CheckResult['verdict']): CheckResult => ({
  id,
  weight,
  verdict,
  reason: id,
});

test('posture-score-is-the-weighted-share-of-decided-checks-that-pass', () => {
  assert.equal(scoreOf([check('a', 20, 'pass'), check('b', 10, 'fail'), check('c', 30, 'unknown')]), 67);
  assert.equal(scoreOf([check('a', 20, 'pass'), check('b', 10, 'pass')]), 100);
  assert.equal(scoreOf([check('a', 20, 'fail')]), 0);
  assert.equal(scoreOf([check('a', 20, 'unknown')]), null, 'nothing decided: no score');
  assert.equal(scoreOf([]), null);
});

test('posture-report-on-a-fixture-tree: failing heaviest first, facts, a throwing collector is one unknown check', () => {
  const tmp = makeTempDir('gatehouse-posture-report-');
  try {
    const files: Record<string, string> = {
      'etc/os-release': 'PRETTY_NAME="Debian GNU/Linux 10 (buster)"\nID=debian\nVERSION_ID="10"\n',
      'etc/ssh/sshd_config': 'PermitRootLogin yes\nPasswordAuthentication no\n',
      'proc/uptime': '3600.52 7000.00\n',
      'proc/sys/kernel/osrelease': '6.1.0-28-amd64\n',
      'proc/sys/kernel/hostname': 'web-01\n',
      'run/systemd/timesync/synchronized': '',
    };
    writeTree(tmp.dir, files);
    const now = new Date('2026-12-01T12:00:00Z');
    const report = collectPosture({ root: tmp.dir, now });
    // The fixture has an /etc but no firewall configuration: firewall fails too (as heavy as ssh-root-login, listed after it).
    assert.deepEqual(report.failing, ['os-supported', 'ssh-root-login', 'firewall'], 'heaviest first');
    const decided = report.checks.filter((c) => c.verdict !== 'unknown');
    assert.deepEqual(
      decided.map((c) => [c.id, c.verdict]),
      [
        ['os-supported', 'fail'],
        ['ssh-root-login', 'fail'],
        ['ssh-password-auth', 'pass'],
        ['firewall', 'fail'],
        ['time-sync', 'pass'],
      ],
    );
    assert.equal(report.score, Math.round((100 * (10 + 5)) / (20 + 15 + 10 + 15 + 5)));
    assert.deepEqual(report.facts, {
      hostname: 'web-01',
      kernel: '6.1.0-28-amd64',
      uptimeSeconds: 3600,
      bootedAt: '2026-12-01T11:00:00.000Z',
    });
    assert.equal(report.packages, null);
    const broken = collectPosture({ root: tmp.dir, now }, [
      defineCollector('boom', 5, () => {
        throw new Error('bad\nsecond line');
      }),
    ]);
    assert.deepEqual(broken.checks, [{ id: 'boom', weight: 5, verdict: 'unknown', reason: 'the check failed: bad' }]);
    assert.equal(broken.score, null);
  } finally {
    tmp.cleanup();
  }
});
