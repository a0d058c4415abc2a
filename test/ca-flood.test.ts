/**
 * Anonymous traffic cannot fill the CA's disk (issue 11): a flood of requests without a
 * certificate and of enrollments with made-up tokens, all with 8 KiB request targets, over real
 * HTTPS, leaves a bounded number of small audit events (the rest are counted as suppressed) and
 * meets the /enroll rate limit's 429s.
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

interface Answer {
  status: number;
  retryAfter: string | undefined;
}

function send(agent: Agent, url: string, ca: string, method: string, path: string, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        method,
        path,
        agent,
        ca,
        servername: 'localhost',
        headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {},
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] }));
      },
    );
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
    // 2 000 requests with 8 KiB request targets, half on the admin API without a certificate,
    // half enrollments with made-up tokens (a new one each, so only the per-source limit binds).
    const pad = 'x'.repeat(8 * 1024);
    const jobs: (() => Promise<Answer>)[] = [];
    for (let i = 0; i < 2000; i++) {
      if (i % 2 === 0) jobs.push(() => send(agent, fixture.url, ca, 'GET', `/admin/${pad}`));
      else {
        const fakeToken = `GHTKN-1-${'0'.repeat(64)}-${i.toString(16).padStart(16, '0')}-${'a'.repeat(32)}`;
        jobs.push(() =>
          send(
            agent,
            fixture.url,
            ca,
            'POST',
            `/enroll?pad=${pad}`,
            JSON.stringify({ token: fakeToken, csr: 'y'.repeat(4000) }),
          ),
        );
      }
    }
    const answers: Answer[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < jobs.length) answers.push(await jobs[next++]!());
      }),
    );
    const seconds = (Date.now() - started) / 1000;
    const statuses = answers.map((a) => a.status);
    assert.ok(
      statuses.every((s) => s >= 400 && s < 500),
      `every request refused: ${[...new Set(statuses)].join(',')}`,
    );
    // The default limit of /enroll, 20 per second per source with bursts of 50, binds the flood.
    const limited = answers.filter((a) => a.status === 429);
    assert.ok(limited.length > 0 && limited.length <= 1000, `${limited.length} answers were 429`);
    assert.ok(
      limited.length >= 1000 - (50 + Math.ceil(seconds * 20) + 1),
      `at most the burst and the rate pass: ${1000 - limited.length} of 1 000 enrollments in ${seconds.toFixed(1)} s`,
    );
    for (const a of limited)
      assert.match(a.retryAfter ?? '', /^[1-9]\d*$/, 'every 429 has a Retry-After in whole seconds');

    const all = await fixture.store.listAudit({});
    const events = all.filter(
      (e) => e.type === 'ca.admin_refused' || e.type === 'ca.token_refused' || e.type === 'ca.cert_refused',
    );
    // One source (127.0.0.1): a burst of 20, then one every 2 s.
    const allowed = 20 + Math.ceil(seconds * 0.5) + 1;
    assert.ok(
      events.length <= allowed,
      `${events.length} refusal events written for 2 000 refused requests in ${seconds.toFixed(1)} s (at most ${allowed})`,
    );
    assert.ok(events.length >= 1, 'refusals are still audited, up to the limit');
    for (const e of events) {
      for (const value of Object.values(e.details))
        if (typeof value === 'string')
          assert.ok(value.length <= MAX_REFUSAL_FIELD_CHARS + 1, `a ${value.length}-character field was stored`);
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
  assert.deepEqual(
    [1, 2, 3, 4].map(() => limiter.allow('a')),
    [true, true, true, false],
    'a burst of 3 per source',
  );
  assert.deepEqual(
    [1, 2, 3].map(() => limiter.allow('b')),
    [true, true, false],
    'the overall burst of 5 binds another source too',
  );
  now += 1000;
  assert.equal(limiter.allow('a'), true, 'one token back after a second');
  assert.equal(limiter.allow('a'), false);
  assert.deepEqual(
    [1, 2, 3].map(() => limiter.allow('b')),
    [true, true, false],
    'b kept the token the overall limit refused it: 1 left plus 1 earned',
  );
});
