/**
 * Anonymous traffic cannot fill the CA's disk (issue 11): a flood of requests without a
 * certificate, with long paths, and of enrollments with made-up tokens, over real HTTPS, leaves
 * a bounded number of small audit events, and the rest are counted as suppressed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:https';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startCaFixture } from './helpers/ca-fixture.js';
import { MAX_REFUSAL_FIELD_CHARS, RefusalAuditLimiter } from '../src/ca/refusal-audit.js';

function storeBytes(caDir: string): number {
  const db = join(caDir, 'gatehouse.db');
  return [db, `${db}-wal`].reduce((sum, f) => sum + (existsSync(f) ? statSync(f).size : 0), 0);
}

function send(agent: Agent, url: string, ca: string, method: string, path: string, body?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request({ host: u.hostname, port: u.port, method, path, agent, ca, servername: 'localhost', headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {} }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('ca-flood-of-anonymous-refusals-grows-the-store-by-a-bounded-amount', async () => {
  const fixture = await startCaFixture();
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  try {
    const ca = readFileSync(join(fixture.caDir, 'root.pem'), 'utf8');
    const before = storeBytes(fixture.caDir);
    const started = Date.now();
    const longPath = `/admin/${'x'.repeat(8 * 1024)}`;
    const jobs: (() => Promise<number>)[] = [];
    for (let i = 0; i < 2000; i++) jobs.push(() => send(agent, fixture.url, ca, 'GET', longPath));
    const fakeToken = `GHTKN-1-${'0'.repeat(64)}-${'0'.repeat(16)}-${'a'.repeat(32)}`;
    for (let i = 0; i < 500; i++) jobs.push(() => send(agent, fixture.url, ca, 'POST', '/enroll', JSON.stringify({ token: fakeToken, csr: 'y'.repeat(4000) })));
    const statuses: number[] = [];
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < jobs.length) statuses.push(await jobs[next++]!());
    }));
    const seconds = (Date.now() - started) / 1000;
    assert.ok(statuses.every((s) => s >= 400 && s < 500), `every request refused: ${[...new Set(statuses)].join(',')}`);

    const all = await fixture.store.listAudit({});
    const events = all.filter((e) => e.type === 'ca.admin_refused' || e.type === 'ca.token_refused' || e.type === 'ca.cert_refused');
    // One source (127.0.0.1): a burst of 20, then one every 2 s.
    const allowed = 20 + Math.ceil(seconds * 0.5) + 1;
    assert.ok(events.length <= allowed, `${events.length} refusal events written for 2 500 refused requests in ${seconds.toFixed(1)} s (at most ${allowed})`);
    assert.ok(events.length >= 1, 'refusals are still audited, up to the limit');
    for (const e of events) {
      for (const value of Object.values(e.details)) if (typeof value === 'string') assert.ok(value.length <= MAX_REFUSAL_FIELD_CHARS + 1, `a ${value.length}-character field was stored`);
    }
    const grown = storeBytes(fixture.caDir) - before;
    assert.ok(grown < 1024 * 1024, `the store grew by ${grown} bytes`);
  } finally {
    agent.destroy();
    await fixture.close();
  }
});

test('ca-refusal-audit-limiter-per-source-and-overall', () => {
  let now = 0;
  const limiter = new RefusalAuditLimiter({ burst: 3, perSecond: 1 }, { burst: 5, perSecond: 10 }, () => now);
  assert.deepEqual([1, 2, 3, 4].map(() => limiter.allow('a')), [true, true, true, false], 'a burst of 3 per source');
  assert.deepEqual([1, 2, 3].map(() => limiter.allow('b')), [true, true, false], 'the overall burst of 5 binds another source too');
  now += 1000;
  assert.equal(limiter.allow('a'), true, 'one token back after a second');
  assert.equal(limiter.allow('a'), false);
});
