/**
 * Issue 13 item 4: the agent's secrets folder, against a real CA over mutual TLS, with the real
 * CLI. A granted identity's folder gets the exact bytes (0400, folder 0700); another role gets
 * nothing; ungrant removes the file on the next sync and leaves the operator's own files alone;
 * rotate delivers the new version and `agent run` runs its hook once for it; a revoked
 * certificate's sync fails and the folder stays as it was.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readlinkSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { enrollAgent, startCaFixture, type CaFixture } from './helpers/ca-fixture.js';
import { CLI_PATH, gatehouse } from './helpers/cli.js';
import { completeLines, parseLogLines } from './helpers/log-lines.js';
import { waitFor } from './helpers/procs.js';

let fixture: CaFixture;
let web: string;
let other: string;
const actor = { actor: 'test' };
// Binary-safe: a NUL, bytes that are not UTF-8, a trailing newline.
const AWS = Buffer.concat([
  Buffer.from('---\nsecret:\n- T0t411yR4ND0M$TR1N9\n'),
  Buffer.from([0, 0xff, 0xfe, 0x80, 0x0a]),
]);

before(async () => {
  fixture = await startCaFixture();
  web = (await enrollAgent(fixture, 'web', 'images-app')).dir;
  other = (await enrollAgent(fixture, 'admin', 'someone-else')).dir;
  await fixture.server.secrets.create({ name: 'aws-credentials.yml', value: AWS, grants: ['role:web'] }, actor);
  await fixture.server.secrets.create(
    { name: 'db-password', value: Buffer.from('hunter2'), grants: ['name:images-app'] },
    actor,
  );
});

after(async () => {
  await fixture?.close();
});

const mode = (path: string) => statSync(path).mode & 0o777;

async function sync(dir: string, extra: string[] = []) {
  return gatehouse(['agent', 'secrets', 'sync', '--dir', dir, '--json', ...extra]);
}

test('agent-secrets-sync-writes-granted-secrets-0400-and-nothing-for-another-role', async () => {
  const first = await sync(web);
  assert.equal(first.status, 0, first.stderr);
  const result = JSON.parse(first.stdout) as { secretsDir: string; written: Array<{ name: string }>; changed: boolean };
  assert.equal(result.secretsDir, join(web, 'secrets'));
  assert.deepEqual(result.written.map((w) => w.name).sort(), ['aws-credentials.yml', 'db-password']);
  assert.ok(readFileSync(join(web, 'secrets', 'aws-credentials.yml')).equals(AWS), 'the exact bytes');
  assert.equal(readFileSync(join(web, 'secrets', 'db-password'), 'utf8'), 'hunter2');
  assert.equal(mode(join(web, 'secrets', 'aws-credentials.yml')), 0o400);
  assert.equal(mode(join(web, 'secrets')), 0o700);
  assert.ok(!first.stdout.includes('hunter2') && !first.stderr.includes('hunter2'), 'a value is never printed');

  const again = JSON.parse((await sync(web)).stdout) as { changed: boolean; unchanged: string[] };
  assert.equal(again.changed, false, 'nothing new: nothing written');
  assert.equal(again.unchanged.length, 2);

  const none = await sync(other);
  assert.equal(none.status, 0, none.stderr);
  assert.equal((JSON.parse(none.stdout) as { changed: boolean }).changed, false);
  assert.ok(!existsSync(join(other, 'secrets')), 'no folder for an identity with no secrets');
});

test('agent-secrets-ungrant-removes-the-file-and-keeps-files-the-agent-did-not-write', async () => {
  const dir = join(fixture.root, 'custom-secrets');
  assert.equal((await sync(web, ['--secrets-dir', dir])).status, 0);
  writeFileSync(join(dir, 'operator-notes.txt'), 'mine');
  await fixture.server.secrets.ungrant('db-password', ['name:images-app'], actor);
  const r = await sync(web, ['--secrets-dir', dir]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual((JSON.parse(r.stdout) as { removed: string[] }).removed, ['db-password']);
  assert.ok(!existsSync(join(dir, 'db-password')));
  assert.equal(readFileSync(join(dir, 'operator-notes.txt'), 'utf8'), 'mine', "not the agent's file: left alone");
  assert.ok(existsSync(join(dir, 'aws-credentials.yml')));
  await fixture.server.secrets.grant('db-password', ['name:images-app'], actor);
});

test('agent-secrets-link-identity-gives-the-talks-layout', async () => {
  const dir = join(fixture.root, 'var-secrets');
  const r = await sync(web, ['--secrets-dir', dir, '--link-identity']);
  assert.equal(r.status, 0, r.stderr);
  for (const file of ['cert.pem', 'key.pem', 'ca.pem']) {
    assert.ok(lstatSync(join(dir, file)).isSymbolicLink(), file);
    assert.equal(readlinkSync(join(dir, file)), join(web, file));
  }
  assert.deepEqual(
    readdirSync(dir)
      .filter((f) => !f.startsWith('.'))
      .sort(),
    ['aws-credentials.yml', 'ca.pem', 'cert.pem', 'db-password', 'key.pem'],
  );
});

test('agent-run-syncs-on-schedule-and-runs-the-hook-once-per-change', async () => {
  const dir = join(fixture.root, 'run-secrets');
  const hookLog = join(fixture.root, 'hook.log');
  const child = spawn(
    process.execPath,
    [
      CLI_PATH,
      'agent',
      'run',
      '--dir',
      web,
      '--secrets-dir',
      dir,
      '--secrets-interval',
      '1s',
      '--log-level',
      'debug',
      '--on-renew',
      `echo "$GATEHOUSE_EVENT $GATEHOUSE_SECRETS_DIR" >> '${hookLog}'`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const synced = () =>
    parseLogLines(stderr).filter((l) => l.msg === 'agent.secrets_synced' || l.msg === 'agent.secrets_changed').length;
  const hookLines = () => (existsSync(hookLog) ? completeLines(readFileSync(hookLog, 'utf8')) : []);
  try {
    await waitFor(() => hookLines().length === 1, 30_000, 'the first sync to run the hook');
    assert.equal(hookLines()[0], `secrets-changed ${dir}`);
    await fixture.server.secrets.rotate('aws-credentials.yml', Buffer.from('rotated'), 0, actor);
    await waitFor(
      () => readFileSync(join(dir, 'aws-credentials.yml'), 'utf8') === 'rotated',
      30_000,
      'the rotated value',
    );
    await waitFor(() => hookLines().length === 2, 10_000, 'the hook after the rotation');
    // Two more syncs with nothing new: the hook does not run again.
    const mark = synced();
    await waitFor(() => synced() >= mark + 2, 30_000, 'two more syncs');
    assert.equal(hookLines().length, 2, `the hook ran once per change:\n${hookLines().join('\n')}`);
    assert.equal(mode(join(dir, 'aws-credentials.yml')), 0o400);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
});

test('agent-secrets-sync-of-a-revoked-certificate-fails-and-keeps-the-folder', async () => {
  const victim = (await enrollAgent(fixture, 'web', 'revoked-app')).dir;
  assert.equal((await sync(victim)).status, 0);
  const serial = JSON.parse((await gatehouse(['agent', 'whoami', '--dir', victim, '--json'])).stdout).serial as string;
  await fixture.server.authority.revokeCertificate(serial, 'keyCompromise', { actor: 'test' } as never);
  const r = await sync(victim);
  assert.notEqual(r.status, 0, 'a revoked certificate reads nothing');
  assert.match(r.stderr, /revoked/);
  assert.ok(existsSync(join(victim, 'secrets', 'aws-credentials.yml')), 'a failed sync leaves the folder as it was');
});
