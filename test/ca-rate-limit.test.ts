/**
 * Rate limits of POST /enroll and POST /renew (issue 11): token buckets per source address, per
 * join token and per presented certificate, answered 429 with Retry-After over real HTTPS.
 * 127.0.0.2 is loopback too on Linux: a client bound to it is a second source address.
 * The buckets themselves are tested with an injected clock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import YAML from 'yaml';
import { KeyedTokenBuckets, RequestRateLimits, TokenBucket, sourceKey } from '../src/ca/rate-limit.js';
import { DEFAULT_RATE_LIMITS, parseCaConfig } from '../src/config/ca-config.js';
import { isGatehouseError } from '../src/errors/errors.js';
import { createLogger } from '../src/log/logger.js';
import { startCaFixture, type CaFixture } from './helpers/ca-fixture.js';
import { enrollIdentity, expectError, newCsr, rootPemOf, type HttpResult } from './helpers/ca-http.js';
import { pollUntil } from './helpers/poll.js';
import { findLog } from './helpers/log-lines.js';

// ---- the buckets, with an injected clock ----

test('rate-limit-bucket-burst-then-refill-with-whole-second-retry-after', () => {
  let now = 0;
  const buckets = new KeyedTokenBuckets({ rate: 0.5, burst: 3 }, { now: () => now });
  assert.deepEqual(
    [1, 2, 3].map(() => buckets.take('a').allowed),
    [true, true, true],
    'a burst of 3',
  );
  assert.deepEqual(buckets.take('a'), { allowed: false, retryAfterSeconds: 2 }, 'one token every 2 s');
  now += 1500;
  assert.deepEqual(
    buckets.take('a'),
    { allowed: false, retryAfterSeconds: 1 },
    '0.5 s left rounds up to 1 s, never 0 (RFC 9110 §10.2.3)',
  );
  now += 500;
  assert.equal(buckets.take('a').allowed, true, 'the token is back after 2 s');
  assert.equal(buckets.take('b').allowed, true, 'another key has its own bucket');
  const fast = new KeyedTokenBuckets({ rate: 1000, burst: 1 }, { now: () => now });
  fast.take('x');
  assert.deepEqual(fast.take('x'), { allowed: false, retryAfterSeconds: 1 }, 'a 1 ms wait is still Retry-After: 1');
});

test('rate-limit-bucket-ignores-a-clock-going-backwards', () => {
  const bucket = new TokenBucket({ rate: 1, burst: 2 }, 10_000);
  bucket.take();
  bucket.take();
  assert.equal(bucket.ready(5_000), false, 'going back earns nothing');
  assert.equal(bucket.ready(10_999), false, 'nor does it shift the refill time');
  assert.equal(bucket.ready(11_000), true);
});

test('rate-limit-memory-bounded-under-a-spray-of-keys', () => {
  let now = 0;
  const buckets = new KeyedTokenBuckets({ rate: 1, burst: 2 }, { now: () => now, maxKeys: 100 });
  let victimAllowed = 0;
  for (let i = 0; i < 100_000; i++) {
    buckets.take(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
    if (buckets.take('victim').allowed) victimAllowed++;
    assert.ok(buckets.size <= 100, `${buckets.size} keys tracked`);
    if (i % 1000 === 0) now += 1;
  }
  assert.equal(buckets.size, 100);
  // 100 ms passed: a tenth of a token earned. Had the spray evicted it, it would start full again.
  assert.equal(
    victimAllowed,
    2,
    'a key in use keeps its bucket through the spray (the least recently used goes first)',
  );
  // Once the spray stops and the buckets have refilled, each new key forgets two full ones.
  now += 10_000;
  for (let i = 0; i < 60; i++) buckets.take(`new-${i}`);
  assert.equal(
    buckets.size,
    60,
    'the 100 refilled buckets are forgotten by the first 50 new keys; the 60 new ones remain',
  );
});

test('rate-limit-request-limits-off-with-null-counted-and-logged-once-a-minute', () => {
  let now = 0;
  const lines: string[] = [];
  const counted: string[] = [];
  const limits = parseCaConfig(
    YAML.stringify({ ...baseConfig, limits: { enroll: { perSource: { rate: 1, burst: 1 }, perToken: null } } }),
    'x',
    {},
  ).limits;
  const rl = new RequestRateLimits(limits, {
    now: () => now,
    logger: createLogger({ level: 'debug', write: (l) => void lines.push(l) }),
    onLimited: (e, k) => counted.push(`${e}:${k}`),
  });
  assert.equal(rl.take('enroll', 'source', 's').allowed, true);
  for (let i = 0; i < 5; i++) assert.equal(rl.take('enroll', 'source', 's').allowed, false);
  for (let i = 0; i < 100; i++)
    assert.equal(rl.take('enroll', 'token', 't').allowed, true, 'perToken: null is no limit');
  assert.deepEqual(counted, Array(5).fill('enroll:source'), 'every refusal counted');
  assert.equal(lines.length, 1, 'one log line for five refusals');
  assert.equal(JSON.parse(lines[0]!).msg, 'ca.rate_limited');
  now += 60_000;
  rl.take('enroll', 'source', 's');
  rl.take('enroll', 'source', 's');
  assert.equal(lines.length, 2, 'the next line a minute later');
  assert.equal(JSON.parse(lines[1]!).refusedSinceLastLine, 5, 'it counts the refusals not logged (4) and its own');
  assert.equal(sourceKey('::ffff:192.0.2.7'), '192.0.2.7', 'an IPv4-mapped address is its IPv4 source');
  assert.equal(sourceKey('2001:db8::1'), '2001:db8::1');
  assert.equal(sourceKey(undefined), 'unknown');
});

const baseConfig = {
  org: 'O',
  trustDomain: 't.internal',
  keys: { root: 'r.pem', intermediate: 'i.pem' },
  roles: { web: { profile: 'client' } },
};

test('rate-limit-config-defaults-null-and-validation', () => {
  const defaults = parseCaConfig(YAML.stringify(baseConfig), 'x', {}).limits;
  assert.deepEqual({ enroll: defaults.enroll, renew: defaults.renew }, DEFAULT_RATE_LIMITS);
  assert.deepEqual(
    defaults.enroll.perSource,
    { rate: 20, burst: 50 },
    'issue 11: 20 per second per source, bursts of 50',
  );
  const set = parseCaConfig(
    YAML.stringify({ ...baseConfig, limits: { renew: { perSource: null, perCertificate: { rate: 0.1, burst: 2 } } } }),
    'x',
    {},
  ).limits;
  assert.equal(set.renew.perSource, null);
  assert.deepEqual(set.renew.perCertificate, { rate: 0.1, burst: 2 });
  assert.deepEqual(set.enroll, DEFAULT_RATE_LIMITS.enroll, 'the other endpoint keeps its defaults');
  const refused = (limits: object, message: RegExp) =>
    assert.throws(
      () => parseCaConfig(YAML.stringify({ ...baseConfig, limits }), 'gatehouse.yaml', {}),
      (err) => isGatehouseError(err, 'GH_CONFIG_INVALID') && message.test(err.message),
    );
  refused(
    { enroll: { perSource: { rate: 0, burst: 5 } } },
    /limits\.enroll\.perSource\.rate: rate: requests per second, above 0 \(write null to turn the limit off\)/,
  );
  refused({ enroll: { perSource: { rate: 5, burst: 2.5 } } }, /limits\.enroll\.perSource\.burst/);
  refused({ enroll: { perSource: { rate: 5 } } }, /limits\.enroll\.perSource\.burst/);
  refused(
    { enroll: { perSource: { rate: 5, burst: 5, window: '1s' } } },
    /limits\.enroll\.perSource: unknown key "window"/,
  );
  refused({ enroll: { perIdentity: null } }, /limits\.enroll: unknown key "perIdentity"/);
  refused({ renew: { perToken: null } }, /limits\.renew: unknown key "perToken"/);
});

// ---- over HTTPS against a running CA ----

type Sent = HttpResult;

/** One request on a fresh connection from `localAddress` (127.0.0.1 unless told). */
function send(
  fixture: CaFixture,
  path: string,
  body: object,
  options: { localAddress?: string; key?: string; cert?: string } = {},
): Promise<Sent> {
  const agent = new Agent({
    ca: rootPemOf(fixture),
    keepAlive: false,
    maxCachedSessions: 0,
    ...(options.key ? { key: options.key, cert: options.cert } : {}),
  });
  const payload = Buffer.from(JSON.stringify(body));
  const url = new URL(path, fixture.url);
  return new Promise<Sent>((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        localAddress: options.localAddress ?? '127.0.0.1',
        headers: { 'content-type': 'application/json', 'content-length': String(payload.length) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers as IncomingHttpHeaders,
            body: Buffer.from(text),
            text,
            json,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  }).finally(() => agent.destroy());
}

const hex = (n: number, c: string) => c.repeat(n);
/** Well-formed join tokens for this CA that it never issued: the authority refuses them 401. */
function madeUpToken(fixture: CaFixture, id: string, secretChar = 'a'): string {
  return `GHTKN-1-${fixture.server.authority.rootFingerprint}-${id}-${hex(32, secretChar)}`;
}

function expectRateLimited(res: Sent, what: string): number {
  expectError(res, 429, 'GH_RATE_LIMITED', what);
  const retryAfter = String(res.headers['retry-after']);
  assert.match(
    retryAfter,
    /^[1-9]\d*$/,
    `${what}: Retry-After is delay-seconds (RFC 9110 §10.2.3), got "${retryAfter}"`,
  );
  assert.match(
    res.json.error.message,
    new RegExp(`retry after ${retryAfter} s`),
    `${what}: the message says when to retry`,
  );
  return Number(retryAfter);
}

function withLimits(limits: object): (yaml: string) => string {
  return (yaml) => {
    const doc = YAML.parse(yaml) as Record<string, Record<string, unknown>>;
    doc.limits = { ...(doc.limits ?? {}), ...limits };
    return YAML.stringify(doc);
  };
}

async function auditCount(fixture: CaFixture): Promise<number> {
  return (await fixture.store.listAudit({})).length;
}

test('ca-enroll-per-source-limit-429-with-retry-after-isolated-per-address-and-recovers', async () => {
  const fixture = await startCaFixture({
    configEdit: withLimits({ enroll: { perSource: { rate: 2, burst: 3 }, perToken: null } }),
  });
  try {
    const csr = (await newCsr({ commonName: 'nobody' })).csr;
    const attempt = (i: number, localAddress = '127.0.0.1') =>
      send(
        fixture,
        '/enroll',
        { token: madeUpToken(fixture, i.toString(16).padStart(16, '0')), csr },
        { localAddress },
      );
    for (let i = 0; i < 3; i++)
      expectError(await attempt(i), 401, 'GH_TOKEN_INVALID', `request ${i + 1} of the burst reaches the authority`);
    const events = await auditCount(fixture);
    const first = expectRateLimited(await attempt(3), 'the 4th request from 127.0.0.1');
    assert.equal(first, 1, 'one token every 0.5 s: Retry-After rounds up to 1');
    for (let i = 0; i < 5; i++) expectRateLimited(await attempt(10 + i), 'still limited');
    assert.equal(await auditCount(fixture), events, 'a rate-limited request writes no audit event');

    expectError(await attempt(20, '127.0.0.2'), 401, 'GH_TOKEN_INVALID', 'another source address has its own bucket');

    const started = Date.now();
    const recovered = await pollUntil(
      '127.0.0.1 admitted again',
      async () => {
        const r = await attempt(30);
        return r.status === 429 ? undefined : r;
      },
      5_000,
      100,
    );
    expectError(recovered, 401, 'GH_TOKEN_INVALID', 'after the wait');
    assert.ok(Date.now() - started <= (first + 1) * 1000, 'admitted within Retry-After (and one poll)');
    assert.ok(
      findLog(fixture.logLines, 'ca.rate_limited', { endpoint: 'enroll', limit: 'source' }),
      'one warn line names the limit',
    );
    assert.ok(
      !fixture.logLines.some((l) => {
        const r = JSON.parse(l) as Record<string, unknown>;
        return r.level === 'info' && r.msg === 'ca.request_failed' && l.includes('GH_RATE_LIMITED');
      }),
      'no info line per 429',
    );
  } finally {
    await fixture.close();
  }
});

test('ca-enroll-per-token-limit-spans-source-addresses-and-needs-the-secret', async () => {
  const fixture = await startCaFixture({
    configEdit: withLimits({ enroll: { perSource: null, perToken: { rate: 0.1, burst: 2 } } }),
  });
  try {
    const csr = (await newCsr({ commonName: 'nobody' })).csr;
    const token = madeUpToken(fixture, '00000000000000aa');
    expectError(
      await send(fixture, '/enroll', { token, csr }),
      401,
      'GH_TOKEN_INVALID',
      'first use of the token, from 127.0.0.1',
    );
    expectError(
      await send(fixture, '/enroll', { token, csr }, { localAddress: '127.0.0.2' }),
      401,
      'GH_TOKEN_INVALID',
      'second use, from 127.0.0.2',
    );
    const wait = expectRateLimited(
      await send(fixture, '/enroll', { token, csr }, { localAddress: '127.0.0.3' }),
      'the third use, from a third address',
    );
    assert.equal(wait, 10, 'one token every 10 s');
    expectRateLimited(await send(fixture, '/enroll', { token, csr }), 'and from the first again');
    const sameId = madeUpToken(fixture, '00000000000000aa', 'b');
    expectError(
      await send(fixture, '/enroll', { token: sameId, csr }, { localAddress: '127.0.0.2' }),
      401,
      'GH_TOKEN_INVALID',
      'the same ID with another secret is another bucket: knowing an ID does not use up its bucket',
    );
    expectError(
      await send(fixture, '/enroll', { token: madeUpToken(fixture, '00000000000000bb'), csr }),
      401,
      'GH_TOKEN_INVALID',
      'another token',
    );
    for (let i = 0; i < 4; i++)
      expectError(
        await send(fixture, '/enroll', { token: 'GHTKN-1-nonsense', csr }),
        401,
        'GH_TOKEN_INVALID',
        'a malformed token has no bucket: the authority refuses it',
      );

    // A real token from the operator still enrolls: its own bucket is full.
    const { token: real } = await fixture.server.authority.createToken({ role: 'web' }, { actor: 'test' });
    const made = await newCsr({ commonName: 'web-ok' });
    const ok = await send(fixture, '/enroll', { token: real, csr: made.csr }, { localAddress: '127.0.0.3' });
    assert.equal(ok.status, 201, ok.text);
  } finally {
    await fixture.close();
  }
});

test('ca-legitimate-enrollment-and-renewal-work-within-the-default-limits', async () => {
  const fixture = await startCaFixture();
  try {
    const id = await enrollIdentity(fixture, { role: 'web', name: 'web-1' });
    const renewed = await send(
      fixture,
      '/renew',
      { csr: (await newCsr({ commonName: 'web-1' })).csr },
      { key: id.keyPem, cert: id.certPem },
    );
    assert.equal(renewed.status, 201, renewed.text);
    assert.equal(renewed.headers['retry-after'], undefined);
  } finally {
    await fixture.close();
  }
});

test('ca-renew-per-source-and-per-certificate-limits', async () => {
  const fixture = await startCaFixture({
    configEdit: withLimits({ renew: { perSource: { rate: 0.1, burst: 2 }, perCertificate: { rate: 2, burst: 2 } } }),
  });
  try {
    // Per source, before the certificate is looked at: no certificate from 127.0.0.2.
    for (let i = 0; i < 2; i++)
      expectError(
        await send(fixture, '/renew', { csr: 'x' }, { localAddress: '127.0.0.2' }),
        401,
        'GH_AUTH_REQUIRED',
        `no certificate, request ${i + 1}`,
      );
    assert.equal(
      expectRateLimited(
        await send(fixture, '/renew', { csr: 'x' }, { localAddress: '127.0.0.2' }),
        'the 3rd from 127.0.0.2',
      ),
      10,
    );

    // Per certificate, from two addresses: refused CSRs still take the certificate's tokens.
    const id = await enrollIdentity(fixture, { role: 'web', name: 'web-2' });
    const mtls = { key: id.keyPem, cert: id.certPem };
    expectError(
      await send(fixture, '/renew', { csr: 'not a csr' }, { ...mtls, localAddress: '127.0.0.3' }),
      400,
      'GH_CSR_MALFORMED',
      'renewal 1',
    );
    expectError(
      await send(fixture, '/renew', { csr: 'not a csr' }, { ...mtls, localAddress: '127.0.0.4' }),
      400,
      'GH_CSR_MALFORMED',
      'renewal 2',
    );
    expectRateLimited(
      await send(fixture, '/renew', { csr: 'not a csr' }, { ...mtls, localAddress: '127.0.0.5' }),
      'renewal 3 of the same certificate, from a third address',
    );
    const csr = (await newCsr({ commonName: 'web-2' })).csr;
    let poll = 10;
    const renewed = await pollUntil(
      'the certificate may renew again',
      async () => {
        // A new address per poll, so only the certificate's bucket is waited for.
        const r = await send(fixture, '/renew', { csr }, { ...mtls, localAddress: `127.0.0.${poll++}` });
        return r.status === 429 ? undefined : r;
      },
      5_000,
      100,
    );
    assert.equal(renewed.status, 201, renewed.text);
  } finally {
    await fixture.close();
  }
});

test('ca-renew-refusals-without-a-certificate-are-audited-rate-limited', async () => {
  const fixture = await startCaFixture({
    configEdit: withLimits({ renew: { perSource: null, perCertificate: null } }),
  });
  try {
    const started = Date.now();
    for (let i = 0; i < 40; i++) expectError(await send(fixture, '/renew', { csr: 'x' }), 401, 'GH_AUTH_REQUIRED');
    const seconds = (Date.now() - started) / 1000;
    const events = (await fixture.store.listAudit({ type: 'ca.cert_refused' })).filter(
      (e) => e.details.via === 'renew',
    );
    // refusal-audit.ts: a burst of 20 per source, then one every 2 s.
    assert.ok(
      events.length >= 1 && events.length <= 20 + Math.ceil(seconds * 0.5) + 1,
      `${events.length} events for 40 refusals in ${seconds.toFixed(1)} s`,
    );
  } finally {
    await fixture.close();
  }
});
