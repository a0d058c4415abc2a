/**
 * The agent honours the CA's Retry-After (RFC 9110 §10.2.3): the client reads delay-seconds or
 * an HTTP-date from a 503 or 429 and ignores garbage; the scheduler waits at least that long
 * before it asks again, but never past its cap (retryCapMs, a quarter of what is left of the
 * certificate). The end-to-end case, a CA whose PostgreSQL is down, is in
 * ca-postgres-faults.test.ts; here a real CA refuses with its rate limit's 429.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { enroll } from '../src/agent/enroll.js';
import { parseRetryAfter } from '../src/agent/ca-client.js';
import { runAgent } from '../src/agent/renew-scheduler.js';
import { DEFAULT_RETRY_CAP_MS, retryDelayMs } from '../src/agent/renew-timing.js';
import { createLogger } from '../src/log/logger.js';
import { startCaFixture } from './helpers/ca-fixture.js';

const HOUR = 3_600_000;
const NOW = new Date('2026-12-07T12:00:00Z');

test('retry-after-is-delay-seconds-or-an-http-date-capped-and-garbage-is-ignored', () => {
  assert.equal(parseRetryAfter('5', NOW), 5000);
  assert.equal(parseRetryAfter(' 5 ', NOW), 5000, 'optional whitespace around the field value');
  assert.equal(parseRetryAfter('0', NOW), 0);
  assert.equal(parseRetryAfter('007', NOW), 7000);
  assert.equal(parseRetryAfter(['5', '5'], NOW), 5000, 'a repeated identical header');
  assert.equal(parseRetryAfter('120', NOW, 60_000), 60_000, 'capped');
  assert.equal(
    parseRetryAfter('99999999999999999999999', NOW),
    DEFAULT_RETRY_CAP_MS,
    'a huge number is capped, not Infinity',
  );
  assert.equal(DEFAULT_RETRY_CAP_MS, 300_000);
  // HTTP-dates: IMF-fixdate, and the obsolete RFC 850 and asctime forms.
  assert.equal(parseRetryAfter('Mon, 07 Dec 2026 12:00:30 GMT', NOW), 30_000);
  assert.equal(parseRetryAfter('Monday, 07-Dec-26 12:01:00 GMT', NOW), 60_000);
  assert.equal(parseRetryAfter('Mon Dec  7 12:00:10 2026', NOW), 10_000);
  assert.equal(parseRetryAfter('Mon, 07 Dec 2026 11:00:00 GMT', NOW), 0, 'a date already past: retry now');
  assert.equal(
    parseRetryAfter('Fri, 07 Dec 2029 12:00:00 GMT', NOW),
    DEFAULT_RETRY_CAP_MS,
    'a date years away is capped',
  );
  for (const garbage of [
    undefined,
    '',
    ' ',
    '-1',
    '1.5',
    '5s',
    '0x10',
    '+5',
    '1e3',
    'soon',
    'Infinity',
    'NaN',
    '2026-12-07T12:00:30Z',
    'Mon, 07 Dec 2026 12:00:30 UTC',
    'Mon, 31 Feb 2026 12:00:30 GMT',
    'Mon, 07 Dec 2026 25:00:30 GMT',
    '7 Dec 2026',
    ['5', '7'],
  ]) {
    assert.equal(parseRetryAfter(garbage, NOW), null, `ignored: ${JSON.stringify(garbage)}`);
  }
});

test('retry-delay-waits-at-least-the-retry-after-but-never-past-the-cap', () => {
  const low = () => 0; // full jitter at its lowest: the backoff is the base
  const hour = { baseMs: 5, capMs: 300_000, remainingMs: HOUR };
  assert.equal(retryDelayMs(0, { ...hour, retryAfterMs: null }, low), 5, 'no Retry-After: the backoff alone');
  assert.equal(retryDelayMs(0, { ...hour, retryAfterMs: 5000 }, low), 5000, 'at least the Retry-After');
  assert.equal(retryDelayMs(3, { ...hour, retryAfterMs: 5000 }, low), 5000);
  assert.equal(
    retryDelayMs(20, { baseMs: 1000, capMs: 300_000, remainingMs: HOUR, retryAfterMs: 5000 }, () => 1),
    300_000,
    'a longer backoff stays longer',
  );
  assert.equal(retryDelayMs(0, { ...hour, retryAfterMs: 3_600_000 }, low), 300_000, 'never past retryCapMs');
  assert.equal(retryDelayMs(0, { ...hour, capMs: 2000, retryAfterMs: 5000 }, low), 2000);
  // 8 s of certificate left: a quarter of it is 2 s; a CA asking for 5 s (or a hostile one asking
  // for an hour) does not keep the agent from trying again before the certificate runs out.
  assert.equal(retryDelayMs(0, { ...hour, remainingMs: 8000, retryAfterMs: 5000 }, low), 2000);
  assert.equal(retryDelayMs(0, { ...hour, remainingMs: 8000, retryAfterMs: 3_600_000 }, low), 2000);
  assert.equal(
    retryDelayMs(0, { ...hour, remainingMs: 100, retryAfterMs: 5000 }, low),
    1000,
    'the cap is never below 1 s',
  );
});

test('agent-run-waits-for-a-rate-limited-renewals-retry-after-within-its-cap', async (t) => {
  // One renewal per ~100 s from this address: the second renewal is refused 429 with Retry-After.
  const fixture = await startCaFixture({
    configEdit: (yaml) => `${yaml}limits:\n  renew:\n    perSource: { rate: 0.01, burst: 1 }\n`,
  });
  t.after(() => fixture.close());
  const { token } = await fixture.server.authority.createToken({ role: 'web' }, { actor: 'test' });
  const dir = join(fixture.root, 'dev-1');
  await enroll({ caUrl: fixture.url, token, dir, name: 'dev-1' });

  const runUntilFailure = async (retryCapMs: number) => {
    const lines: Array<Record<string, unknown>> = [];
    const controller = new AbortController();
    const logger = createLogger({
      level: 'debug',
      write: (l) => {
        const line = JSON.parse(l) as Record<string, unknown>;
        lines.push(line);
        if (line.msg === 'agent.renew_failed') controller.abort();
      },
    });
    // 18 h into a 24 h certificate: due now, and again at once after a renewal (its 2/3 is 16 h away).
    const started = Date.now();
    await runAgent({
      dir,
      logger,
      signal: controller.signal,
      now: () => new Date(Date.now() + 18 * HOUR),
      retryBaseMs: 5,
      retryCapMs,
      posture: null,
    });
    assert.ok(Date.now() - started < 15_000, 'the abort ends the run');
    return { lines, failed: lines.find((l) => l.msg === 'agent.renew_failed')! };
  };

  const first = await runUntilFailure(300_000);
  assert.equal(
    first.lines.filter((l) => l.msg === 'agent.cert_renewed').length,
    1,
    'the first renewal took the one token',
  );
  assert.equal(first.failed.code, 'GH_RATE_LIMITED', JSON.stringify(first.failed));
  const seconds = Number(/retry after (\d+) s/.exec(String(first.failed.reason))?.[1]);
  assert.ok(seconds >= 90 && seconds <= 100, `the CA asked for ~100 s: ${String(first.failed.reason)}`);
  assert.equal(first.failed.retryAfterMs, seconds * 1000, 'the header, as the client read it');
  assert.ok(
    Number(first.failed.retryInMs) >= seconds * 1000,
    `waits at least the Retry-After, not the 5 ms backoff: ${String(first.failed.retryInMs)}`,
  );
  assert.ok(Number(first.failed.retryInMs) <= 300_000);

  // With a 2 s cap the same refusal is retried after 2 s: the cap wins over the CA.
  const files = () => ['key.pem', 'cert.pem', 'ca.pem'].map((f) => readFileSync(join(dir, f), 'utf8'));
  const before = files();
  const capped = await runUntilFailure(2000);
  assert.equal(capped.failed.code, 'GH_RATE_LIMITED');
  assert.ok(Number(capped.failed.retryAfterMs) >= 90_000);
  assert.equal(capped.failed.retryInMs, 2000);
  assert.equal(capped.lines.filter((l) => l.msg === 'agent.cert_renewed').length, 0);
  assert.deepEqual(files(), before, 'the agent keeps the certificate it has: a refused renewal writes nothing');
});
