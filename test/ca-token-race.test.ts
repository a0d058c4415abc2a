/**
 * Join-token uses under concurrency: many machines enrolling with the same token at once, each
 * on its own TLS connection (its own https.Agent) with its own key. The store's commit is the
 * arbiter; the number of certificates must equal the token's uses exactly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startCaFixture, type CaFixture } from './helpers/ca-fixture.js';
import { enrollRequest, expectError, newCsr, type HttpResult } from './helpers/ca-http.js';

const RACERS = 50;

async function race(fixture: CaFixture, uses: number): Promise<void> {
  const { token, record } = await fixture.server.authority.createToken({ role: 'web', uses }, { actor: 'test' });
  const csrs = await Promise.all(
    Array.from({ length: RACERS }, (_, i) => newCsr({ commonName: `racer-${uses}-${i}` })),
  );
  // Every request has its own agent (enrollRequest makes one per call): 50 fresh TLS connections.
  const results: HttpResult[] = await Promise.all(csrs.map((c) => enrollRequest(fixture, { token, csr: c.csr })));

  const winners = results.filter((r) => r.status === 201);
  const losers = results.filter((r) => r.status !== 201);
  assert.equal(
    winners.length,
    uses,
    `exactly ${uses} enrollment(s) succeed; statuses: ${results.map((r) => r.status).join(',')}`,
  );
  assert.equal(losers.length, RACERS - uses);
  for (const loser of losers) expectError(loser, 409, 'GH_TOKEN_USED');

  const certs = (await fixture.store.listCerts()).filter((c) => c.tokenId === record.id);
  assert.equal(certs.length, uses, `store holds exactly ${uses} certificate(s) from the token`);
  assert.deepEqual(
    certs.map((c) => c.serial).sort(),
    winners.map((w) => w.json.serial as string).sort(),
    'the stored certificates are the ones returned',
  );
  for (const w of winners) {
    const stored = certs.find((c) => c.serial === w.json.serial);
    assert.equal(stored?.fingerprint, w.json.fingerprint);
  }
  assert.equal((await fixture.store.getToken(record.id))!.uses, uses, 'token.uses equals the successes');

  const used = (await fixture.store.listAudit({ type: 'ca.token_used' })).filter((e) => e.tokenId === record.id);
  assert.equal(used.length, uses, 'one ca.token_used audit event per success');
  const refused = (await fixture.store.listAudit({ type: 'ca.token_refused' })).filter((e) => e.tokenId === record.id);
  assert.equal(refused.length, RACERS - uses, 'every loser is audited');
  assert.ok(refused.every((e) => e.details.code === 'GH_TOKEN_USED'));
}

test('token-single-use-under-race', async (t) => {
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  await race(fixture, 1);
});

test('token-with-5-uses-under-race-of-50-enrolls-exactly-5', async (t) => {
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  await race(fixture, 5);
});
