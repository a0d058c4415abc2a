/**
 * The secret service in-process, where a clock or a race has to be arranged: an expired
 * identity (the CA's clock moved past its notAfter), concurrent rotations, and a rekey that
 * commits between another process sealing a new version and storing it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { isGatehouseError } from '../src/errors/errors.js';
import { MasterKeyRing } from '../src/secrets/master-key.js';
import { SecretService } from '../src/secrets/service.js';
import { silentLogger } from '../src/log/logger.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import type { Store } from '../src/store/store.js';
import { startCaFixture } from './helpers/ca-fixture.js';
import { caRequest, enrollIdentity, expectError, rootPemOf } from './helpers/ca-http.js';

const local = { actor: 'local:test' };

test('secrets-service-an-expired-identity-is-refused-and-audited', async () => {
  let skewMs = 0;
  const fixture = await startCaFixture({ now: () => new Date(Date.now() + skewMs) });
  try {
    const web = await enrollIdentity(fixture, { role: 'web', name: 'web-1' });
    await fixture.server.secrets.create({ name: 'db', value: Buffer.from('v'), grants: ['role:web'] }, local);
    const get = () =>
      caRequest(fixture.url, 'v1/secrets/db', { ca: rootPemOf(fixture), key: web.keyPem, cert: web.certPem });
    assert.equal((await get()).status, 200);
    skewMs = 25 * 3_600_000;
    // 401 as /renew answers an expired certificate: the agent must enroll again, not retry.
    expectError(await get(), 401, 'GH_CERT_EXPIRED');
    const refused = (await fixture.store.listAudit({ type: 'ca.secret_read_refused' })).at(-1)!;
    assert.deepEqual(
      [refused.actor, refused.serial, refused.details.reason, refused.details.secret],
      [web.spiffeId, web.serial, 'expired', 'db'],
    );
  } finally {
    await fixture.close();
  }
});

test('secrets-service-concurrent-rotations-each-get-their-own-version', async () => {
  const fixture = await startCaFixture();
  try {
    const secrets = fixture.server.secrets;
    await secrets.create({ name: 'db', value: Buffer.from('v1'), grants: ['role:web'] }, local);
    // One process: queued per name. Two processes (another connection, another service): the
    // store's version check makes the loser seal again for the next version.
    const other = openSqliteStore(join(fixture.caDir, 'gatehouse.db'));
    const elsewhere = new SecretService({
      store: other,
      config: fixture.server.authority.config,
      keys: new MasterKeyRing(fixture.caDir, undefined),
      logger: silentLogger,
    });
    await Promise.all([
      ...[2, 3].map((n) => secrets.rotate('db', Buffer.from(`value ${n}`), 60_000, local)),
      ...[4, 5].map((n) => elsewhere.rotate('db', Buffer.from(`value ${n}`), 60_000, local)),
    ]);
    await other.close();
    const shown = await secrets.show('db');
    assert.equal(shown.currentVersion, 5);
    assert.deepEqual(
      shown.versions.map((v) => v.version),
      [5, 4, 3, 2, 1],
      'none lost, each sealed for its own version',
    );
    const web = await enrollIdentity(fixture, { role: 'web', name: 'web-1' });
    const reader = (await fixture.store.getCert(web.serial))!;
    const values = await Promise.all(
      [1, 2, 3, 4, 5].map((v) =>
        secrets.readForIdentity(reader, 'db', v, { source: 'test' }).then((s) => s.value.toString()),
      ),
    );
    assert.deepEqual(values.slice(0, 1), ['v1']);
    assert.deepEqual(values.slice(1).sort(), ['value 2', 'value 3', 'value 4', 'value 5']);
  } finally {
    await fixture.close();
  }
});

test('secrets-service-a-version-sealed-under-a-key-retired-by-a-concurrent-rekey-is-sealed-again', async () => {
  const fixture = await startCaFixture();
  try {
    const served = fixture.server.secrets;
    await served.create({ name: 'first', value: Buffer.from('one'), grants: ['role:web'] }, local);
    // Another process (the CLI on the CA directory) rekeys while `ca serve` is sealing a new secret
    // with the key it holds: the rekey commits after the seal, before the store call.
    const other = openSqliteStore(join(fixture.caDir, 'gatehouse.db'));
    const rekeyer = new SecretService({
      store: other,
      config: fixture.server.authority.config,
      keys: new MasterKeyRing(fixture.caDir, undefined),
      logger: silentLogger,
    });
    let rekeyed = false;
    const racing = new Proxy(fixture.store as Store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (prop === 'createSecret' && typeof value === 'function') {
          return async (...args: unknown[]) => {
            if (!rekeyed) {
              rekeyed = true;
              await rekeyer.rekey(local);
            }
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const service = new SecretService({
      store: racing,
      config: fixture.server.authority.config,
      keys: served.keys,
      logger: silentLogger,
    });
    await service.create({ name: 'second', value: Buffer.from('two'), grants: ['role:web'] }, local);
    assert.ok(rekeyed);
    const web = await enrollIdentity(fixture, { role: 'web', name: 'web-1' });
    const reader = (await fixture.store.getCert(web.serial))!;
    for (const [name, value] of [
      ['first', 'one'],
      ['second', 'two'],
    ] as const) {
      assert.equal(
        (await served.readForIdentity(reader, name, null, { source: 'test' })).value.toString(),
        value,
        `${name} opens under the key in force`,
      );
    }
    const keyIds = new Set(
      (await Promise.all(['first', 'second'].map((n) => fixture.store.listSecretVersions(n, new Date()))))
        .flat()
        .map((v) => v.keyId),
    );
    assert.equal(keyIds.size, 1, 'every version under the one new key');
    await other.close();
  } finally {
    await fixture.close();
  }
});

test('secrets-service-a-missing-master-key-file-is-a-clear-error-and-nothing-is-delivered', async () => {
  const fixture = await startCaFixture();
  try {
    const secrets = fixture.server.secrets;
    await secrets.create({ name: 'db', value: Buffer.from('v'), grants: ['role:web'] }, local);
    const { renameSync } = await import('node:fs');
    renameSync(join(fixture.caDir, 'secrets-master-key.json'), join(fixture.root, 'moved.json'));
    const web = await enrollIdentity(fixture, { role: 'web', name: 'web-1' });
    const reader = (await fixture.store.getCert(web.serial))!;
    // The running service still holds the key in memory; a fresh one (a restart) does not.
    const restarted = new SecretService({
      store: fixture.store,
      config: fixture.server.authority.config,
      keys: new MasterKeyRing(fixture.caDir, undefined),
      logger: silentLogger,
    });
    await assert.rejects(
      restarted.readForIdentity(reader, 'db', null, { source: 'test' }),
      (err) => isGatehouseError(err, 'GH_SECRET_MASTER_KEY') && /does not exist; restore it/.test(err.message),
    );
    await assert.rejects(
      restarted.rotate('db', Buffer.from('w'), 0, local),
      (err) => isGatehouseError(err, 'GH_SECRET_MASTER_KEY'),
      'and no new key is made for a store that has secrets',
    );
    assert.equal(
      (await fixture.store.listAudit({ type: 'ca.secret_read_refused' })).at(-1)!.details.reason,
      'master-key',
    );
  } finally {
    await fixture.close();
  }
});

test('secrets-service-two-rekeys-at-once-cannot-both-run-and-a-stale-lock-is-taken-over', async () => {
  const fixture = await startCaFixture();
  try {
    await fixture.server.secrets.create({ name: 'db', value: Buffer.from('v'), grants: ['role:web'] }, local);
    const another = new SecretService({
      store: fixture.store,
      config: fixture.server.authority.config,
      keys: new MasterKeyRing(fixture.caDir, undefined),
      logger: silentLogger,
    });
    const outcomes = await Promise.allSettled([fixture.server.secrets.rekey(local), another.rekey(local)]);
    assert.deepEqual(outcomes.map((o) => o.status).sort(), ['fulfilled', 'rejected']);
    const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    assert.ok(
      isGatehouseError(refused.reason, 'GH_SECRET_MASTER_KEY') &&
        /another `secret rekey` holds/.test(refused.reason.message),
    );
    const { writeFileSync, existsSync } = await import('node:fs');
    const { hostname } = await import('node:os');
    const lock = join(fixture.caDir, '.secrets-master-key.lock');
    assert.equal(existsSync(lock), false, 'released');
    // A lock left by a process that is gone (pid 2^22 + 1 is beyond Linux's pid_max default).
    writeFileSync(lock, JSON.stringify({ pid: 4_194_305, host: hostname(), since: '2026-01-01T00:00:00Z' }), {
      mode: 0o600,
    });
    await another.rekey(local);
    const web = await enrollIdentity(fixture, { role: 'web', name: 'web-1' });
    const reader = (await fixture.store.getCert(web.serial))!;
    assert.equal(
      (await fixture.server.secrets.readForIdentity(reader, 'db', null, { source: 'test' })).value.toString(),
      'v',
    );
  } finally {
    await fixture.close();
  }
});
