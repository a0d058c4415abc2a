/**
 * `gatehouse context` (issue 12): a saved CA URL, root pin and admin identity, used by remote
 * commands when --ca and --identity are absent; stored 0600; a changed root is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCaFixture } from './helpers/ca-fixture.js';
import { gatehouse } from './helpers/cli.js';
import { makeTempDir } from './helpers/tmp.js';
import { makeCa } from './helpers/openssl-pki.js';

test('cli-context-add-use-list-remove-and-remote-commands-without-flags', async (t) => {
  const fixture = await startCaFixture();
  const home = makeTempDir('gatehouse-ctx-');
  t.after(async () => {
    await fixture.close();
    home.cleanup();
  });
  const env = { GATEHOUSE_CONFIG_DIR: join(home.dir, 'config'), GATEHOUSE_CA_DIR: '' };
  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) => gatehouse(args, { env: { ...env, ...extra } });

  const none = await cli(['token', 'list']);
  assert.equal(none.status, 64, none.stderr);
  assert.match(none.stderr, /gatehouse context add NAME --ca URL --identity ADMIN_DIR/);

  const added = await cli(['context', 'add', 'test', '--ca', fixture.url, '--identity', fixture.adminDir]);
  assert.equal(added.status, 0, added.stderr);
  assert.match(added.stdout, /added context test: .* \(current\)/);
  const path = join(home.dir, 'config', 'contexts.json');
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.equal(statSync(join(home.dir, 'config')).mode & 0o777, 0o700);

  // A remote command with neither --ca nor --identity uses the current context.
  const created = await cli(['token', 'create', '--role', 'web', '--json']);
  assert.equal(created.status, 0, created.stderr);
  const { id } = JSON.parse(created.stdout) as { id: string };
  const listed = await cli(['token', 'list', '--json']);
  assert.ok((JSON.parse(listed.stdout) as Array<{ id: string }>).some((tk) => tk.id === id));
  assert.equal(
    (await fixture.store.listAudit({ type: 'ca.token_created' })).at(-1)!.actor,
    'spiffe://test.internal/admin/admin',
    'through the admin API, as the admin identity',
  );

  // A second context; `use` switches, GATEHOUSE_CONTEXT and --context pick one per command.
  const otherDir = join(home.dir, 'other-admin');
  cpSync(fixture.adminDir, otherDir, { recursive: true });
  assert.equal(
    (await cli(['context', 'add', 'other', '--ca', 'https://127.0.0.1:1', '--identity', otherDir])).status,
    0,
  );
  const list = JSON.parse((await cli(['context', 'list', '--json'])).stdout) as Array<{
    name: string;
    current: boolean;
  }>;
  assert.deepEqual(
    list.map((c) => [c.name, c.current]),
    [
      ['test', true],
      ['other', false],
    ],
  );
  const unreachable = await cli(['token', 'list', '--context', 'other']);
  assert.notEqual(unreachable.status, 0);
  assert.match(unreachable.stderr, /cannot reach the CA at https:\/\/127\.0\.0\.1:1/);
  assert.equal((await cli(['token', 'list'], { GATEHOUSE_CONTEXT: 'test' })).status, 0);
  assert.equal((await cli(['context', 'use', 'other'])).status, 0);
  assert.notEqual((await cli(['token', 'list'])).status, 0, 'now the current context is the unreachable one');
  assert.equal((await cli(['token', 'list', '--context', 'test'])).status, 0);
  const unknown = await cli(['token', 'list', '--context', 'nope']);
  assert.equal(unknown.status, 64);
  assert.match(unknown.stderr, /no context "nope" .*contexts: test, other/);
  assert.equal(
    (await cli(['context', 'add', 'test', '--ca', fixture.url, '--identity', fixture.adminDir])).status,
    64,
    'no silent replacement',
  );

  // The identity's ca.pem replaced by another root: the pin refuses it.
  const foreign = await makeCa(home.dir, 'Foreign Root');
  writeFileSync(join(otherDir, 'ca.pem'), readFileSync(foreign.certPath));
  const pinned = await cli(['token', 'list', '--context', 'other']);
  assert.equal(pinned.status, 77, pinned.stderr);
  assert.match(pinned.stderr, /context was saved with root/);

  assert.equal((await cli(['context', 'remove', 'other'])).status, 0);
  assert.deepEqual(
    (JSON.parse((await cli(['context', 'list', '--json'])).stdout) as Array<{ name: string; current: boolean }>).map(
      (c) => [c.name, c.current],
    ),
    [['test', false]],
  );
  // Explicit flags still win over any context.
  assert.equal((await cli(['token', 'list', '--dir', fixture.caDir])).status, 0);
});

test('cli-dir-that-is-not-a-ca-says-so-before-any-advice-about-modes', async (t) => {
  const tmp = makeTempDir('gatehouse-notca-');
  t.after(() => tmp.cleanup());
  writeFileSync(join(tmp.dir, 'file.txt'), 'x');
  for (const [dir, said] of [
    [tmp.dir, /is not a Gatehouse CA directory \(it has no gatehouse\.yaml\)/],
    [join(tmp.dir, 'missing'), /does not exist/],
    [join(tmp.dir, 'file.txt'), /is not a directory/],
  ] as const) {
    const r = await gatehouse(['cert', 'list', '--dir', dir]);
    assert.equal(r.status, 66, r.stderr);
    assert.match(r.stderr, said);
    assert.doesNotMatch(r.stderr, /chmod/);
  }
});
