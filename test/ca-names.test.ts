import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildCsrPem, generatePrivateKey } from '../src/pki/index.js';
import { isGatehouseError } from '../src/errors/errors.js';
import { startCaFixture } from './helpers/ca-fixture.js';

test('enroll-name-held-by-another-active-cert-refused-409-until-revoked', async (t) => {
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const { authority } = fixture.server;
  const csr = () => buildCsrPem(generatePrivateKey('p256'), { commonName: 'web-1' });
  const first = await authority.enroll(
    (await authority.createToken({ role: 'web', namePattern: 'web-*' }, { actor: 't' })).token,
    await csr(),
    { actor: 'anonymous' },
  );

  const taker = await authority.createToken({ role: 'web', namePattern: 'web-*' }, { actor: 't' });
  await assert.rejects(
    authority.enroll(taker.token, await csr(), { actor: 'anonymous' }),
    (err) => isGatehouseError(err, 'GH_NAME_TAKEN') && err.message.includes(first.record.serial),
  );
  assert.equal(
    (await fixture.store.getToken(taker.record.id))!.uses,
    0,
    'the refused enrollment did not spend the token',
  );

  // The same name under another role is another identity.
  await authority.enroll((await authority.createToken({ role: 'admin' }, { actor: 't' })).token, await csr(), {
    actor: 'anonymous',
  });

  // Revoked, the name stays reserved for the machine that enrolled it (issue 11).
  await authority.revokeCertificate(first.record.serial, 'superseded', { actor: 't' });
  await assert.rejects(
    authority.enroll(taker.token, await csr(), { actor: 'anonymous' }),
    (err) =>
      isGatehouseError(err, 'GH_NAME_TAKEN') &&
      /stays reserved/.test(err.message) &&
      err.message.includes('gatehouse name release web/web-1'),
  );
  await authority.releaseName('web', 'web-1', { actor: 't' });
  const after = await authority.enroll(taker.token, await csr(), { actor: 'anonymous' });
  assert.equal(after.record.spiffeId, 'spiffe://test.internal/web/web-1');
  assert.equal((await fixture.store.listAudit({ type: 'ca.name_released' })).length, 1);
});

test('enroll-token-made-for-the-exact-name-replaces-an-active-holder', async (t) => {
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const { authority } = fixture.server;
  const csr = () => buildCsrPem(generatePrivateKey('p256'), { commonName: 'rebuilt' });
  await authority.enroll((await authority.createToken({ role: 'web' }, { actor: 't' })).token, await csr(), {
    actor: 'anonymous',
  });
  const replaced = await authority.enroll(
    (await authority.createToken({ role: 'web', name: 'rebuilt' }, { actor: 't' })).token,
    await csr(),
    { actor: 'anonymous' },
  );
  assert.equal(replaced.record.name, 'rebuilt');
});
