/**
 * Name takeover under concurrency: many machines, each with its own join token that does not fix
 * the name, enrolling the same new name at once over real HTTPS (one TLS connection each). They
 * can all pass the early GH_NAME_TAKEN check before any of them is recorded; the store re-checks
 * inside the transaction that records the certificate, so exactly one gets the SPIFFE ID and the
 * others are refused without spending their token's use.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:https';
// eslint-disable-next-line no-restricted-imports -- see the one pause below
import { setTimeout as sleep } from 'node:timers/promises';
import { startCaFixture, type CaFixture } from './helpers/ca-fixture.js';
import { enrollRequest, expectError, newCsr, rootPemOf, type HttpResult } from './helpers/ca-http.js';

const RACERS = 20;
const NAME = 'contested-1';

/**
 * An enrollment on its own TLS connection whose body is sent but for its last byte: the request
 * is in the server's hands and `release()` completes it. Released together, the requests reach
 * the authority within one event-loop turn or two, so every early check runs before any commit
 * (without this, the TLS handshakes spread the requests out and the early check alone refuses
 * the later ones, which would not exercise the in-transaction guard).
 */
async function heldEnrollment(fixture: CaFixture, body: object): Promise<{ release: () => Promise<HttpResult> }> {
  const agent = new Agent({ ca: rootPemOf(fixture), keepAlive: false, maxCachedSessions: 0 });
  const payload = Buffer.from(JSON.stringify(body));
  const req = request(new URL('enroll', `${fixture.url.replace(/\/$/, '')}/`), {
    method: 'POST',
    agent,
    headers: { 'content-type': 'application/json', 'content-length': String(payload.length) },
    timeout: 30_000,
  });
  const answer = new Promise<HttpResult>((resolve, reject) => {
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        const text = raw.toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: raw, text, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer from the CA')));
    req.on('error', reject);
  }).finally(() => agent.destroy());
  answer.catch(() => undefined);
  await new Promise<void>((resolve, reject) => {
    req.once('error', reject);
    req.write(payload.subarray(0, -1), (err) => (err ? reject(err) : resolve()));
  });
  return {
    release: () => {
      req.end(payload.subarray(-1));
      return answer;
    },
  };
}

test('same-new-name-enrolled-concurrently-with-different-tokens-exactly-one-holds-it', async (t) => {
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const { authority } = fixture.server;
  const tokens = await Promise.all(
    Array.from({ length: RACERS }, () => authority.createToken({ role: 'web' }, { actor: 'test' })),
  );
  const csrs = await Promise.all(tokens.map(() => newCsr({ commonName: NAME })));
  // Every request has its own agent: RACERS fresh TLS connections, all open before any completes.
  const held = await Promise.all(
    tokens.map((tk, i) => heldEnrollment(fixture, { token: tk.token, csr: csrs[i]!.csr })),
  );
  // Nothing signals that the server has read a partial body; the pause only tightens the race,
  // and exactly-one must hold with or without it.
  await sleep(100);
  const results: HttpResult[] = await Promise.all(held.map((h) => h.release()));

  const statuses = results.map((r) => r.status).join(',');
  const winners = results.flatMap((r, i) => (r.status === 201 ? [i] : []));
  assert.equal(winners.length, 1, `exactly one enrollment gets the name; statuses: ${statuses}`);
  const winner = winners[0]!;
  const won = results[winner]!.json as Record<string, string>;
  assert.equal(won.spiffeId, `spiffe://test.internal/web/${NAME}`);
  for (const [i, r] of results.entries()) {
    if (i === winner) continue;
    const err = expectError(r, 409, 'GH_NAME_TAKEN', `racer ${i}`);
    assert.ok(err.message.includes(won.serial!), `the refusal names the holder's serial: ${err.message}`);
  }

  const all = await fixture.store.listCerts({ name: NAME, role: 'web' });
  assert.deepEqual(
    all.map((c) => c.serial),
    [won.serial],
    'the store holds exactly one certificate for the name: the one returned',
  );
  assert.equal((await fixture.store.listCerts({ name: NAME, role: 'web', state: 'active' })).length, 1);
  assert.equal(all[0]!.tokenId, tokens[winner]!.record.id);

  for (const [i, tk] of tokens.entries()) {
    assert.equal(
      (await fixture.store.getToken(tk.record.id))!.uses,
      i === winner ? 1 : 0,
      `token ${i}: only the winner's use is consumed`,
    );
  }
  const used = (await fixture.store.listAudit({ type: 'ca.token_used' })).filter((e) =>
    tokens.some((tk) => tk.record.id === e.tokenId),
  );
  assert.equal(used.length, 1, 'one ca.token_used audit event');
  const refused = (await fixture.store.listAudit({ type: 'ca.cert_refused' })).filter(
    (e) => e.details.code === 'GH_NAME_TAKEN',
  );
  assert.equal(refused.length, RACERS - 1, 'every loser is audited as refused with GH_NAME_TAKEN');

  // The losers' tokens still have their use: each enrolls a name of its own.
  const again = await Promise.all(
    tokens.map(async (tk, i) => {
      if (i === winner) return null;
      return enrollRequest(fixture, { token: tk.token, csr: (await newCsr({ commonName: `after-${i}` })).csr });
    }),
  );
  for (const [i, r] of again.entries()) {
    if (r)
      assert.equal(
        r.status,
        201,
        `loser ${i} enrolls another name with its unspent token: HTTP ${r.status} ${r.text.slice(0, 300)}`,
      );
  }
  assert.equal((await fixture.store.listCerts({ role: 'web', state: 'active' })).length, RACERS);
});

test('concurrent-enrollments-with-a-token-made-for-the-name-may-still-replace', async (t) => {
  // The guard applies only to tokens that do not fix the name: tokens made with --name keep the
  // operator's explicit right to replace an active holder, also when they arrive together.
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const { authority } = fixture.server;
  const tokens = await Promise.all(
    Array.from({ length: 5 }, () => authority.createToken({ role: 'web', name: 'rebuilt-1' }, { actor: 'test' })),
  );
  const results = await Promise.all(
    tokens.map(async (tk) =>
      enrollRequest(fixture, { token: tk.token, csr: (await newCsr({ commonName: 'rebuilt-1' })).csr }),
    ),
  );
  assert.deepEqual(
    results.map((r) => r.status),
    [201, 201, 201, 201, 201],
  );
  assert.equal((await fixture.store.listCerts({ name: 'rebuilt-1', role: 'web', state: 'active' })).length, 5);
});
