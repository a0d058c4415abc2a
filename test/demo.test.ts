/** `gatehouse demo --check`: the whole story of the talks, unattended, from a fresh state folder. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { gatehouse } from './helpers/cli.js';
import { makeTempDir } from './helpers/tmp.js';

test('demo-check-runs-the-whole-story-and-cleans-up', async () => {
  const { dir, cleanup } = makeTempDir('gh-demo-');
  try {
    const state = join(dir, 'state');
    const r = await gatehouse(['demo', '--check', '--state-dir', state], {
      env: { GATEHOUSE_LOG_LEVEL: 'warn' },
      timeoutMs: 90_000,
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    for (const scenario of [
      'no certificate',
      'unlisted device y.d.wott.local',
      'allowlisted device x.d.wott.local',
      'forged identity headers',
      'posture rule refuses x.d.wott.local on /reports/',
      'secret aws-credentials.yml delivered to x.d.wott.local',
      'gateway certificate rotated by the agent',
    ]) {
      assert.match(r.stdout, new RegExp(`^ok  +${scenario.replace(/\./g, '\\.')}$`, 'm'), `${scenario} passed`);
    }
    assert.match(r.stdout, /got: +403 You shall not pass!/);
    assert.match(r.stdout, /got: +200 Welcome x\.d\.wott\.local\. We've been expecting you\./);
    assert.match(r.stdout, /All 7 outcomes as promised/);
    assert.ok(!existsSync(state), 'the state folder is removed at exit');
  } finally {
    cleanup();
  }
});

test('demo-check-keep-leaves-a-usable-state-folder', async () => {
  const { dir, cleanup } = makeTempDir('gh-demo-');
  try {
    const state = join(dir, 'state');
    const r = await gatehouse(['demo', '--check', '--keep', '--state-dir', state], {
      env: { GATEHOUSE_LOG_LEVEL: 'warn' },
      timeoutMs: 90_000,
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const whoami = await gatehouse(['agent', 'whoami', '--dir', join(state, 'x.d.wott.local'), '--json']);
    assert.equal(whoami.status, 0, whoami.stderr);
    assert.equal((JSON.parse(whoami.stdout) as { name: string }).name, 'x.d.wott.local');
  } finally {
    cleanup();
  }
});
