/**
 * The rule for what a remote caller reads of an error (src/errors/public-error.ts), over every
 * code of the registry: a public code carries its message, any other only a pointer to the log,
 * and each 503 names what is unavailable without its address.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERRORS, GatehouseError, type ErrorCode } from '../src/errors/errors.js';
import { publicMessage, STORE_RETRY_AFTER_S } from '../src/errors/public-error.js';

const SECRET = 'postgres://gatehouse:hunter2@db.internal:5432/ca at /var/lib/gatehouse/ca/intermediate.key';
const codes = Object.keys(ERRORS) as ErrorCode[];

test('public-error-exposed-codes-carry-their-message', () => {
  for (const code of codes.filter((c) => ERRORS[c].expose)) {
    assert.equal(
      publicMessage(new GatehouseError(code, 'the name web-1 is taken'), 'r1'),
      'the name web-1 is taken',
      code,
    );
  }
});

test('public-error-internal-codes-say-only-where-to-look', () => {
  for (const code of codes.filter((c) => !ERRORS[c].expose)) {
    const message = publicMessage(new GatehouseError(code, SECRET), 'abc123');
    assert.ok(!message.includes('hunter2') && !message.includes('db.internal') && !message.includes('/var/lib'), code);
    assert.match(message, /\(requestId abc123\)$/, code);
  }
});

test('public-error-every-503-names-what-is-unavailable-and-when-to-retry', () => {
  const unavailable = codes.filter((c) => ERRORS[c].http === 503 && !ERRORS[c].expose);
  assert.ok(unavailable.includes('GH_STORE_UNAVAILABLE'));
  for (const code of unavailable) {
    const message = publicMessage(new GatehouseError(code, SECRET), 'r2');
    // A new 503 code gets its own phrase in public-error.ts, not the generic fallback.
    assert.match(message, /^service unavailable: the CA cannot reach its [A-Za-z ]+; retry after \d+ s/, code);
    assert.ok(message.includes(`retry after ${STORE_RETRY_AFTER_S} s`), code);
  }
});
