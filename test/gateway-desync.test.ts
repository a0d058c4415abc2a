/**
 * HTTP request smuggling (desync) against the real gateway CLI, in raw bytes over mutual TLS.
 * The whole table (test/helpers/desync-cases.ts) runs in front of two app parsers, Node's
 * llhttp and Python's http.server, because a desync is a disagreement between the gateway's
 * parser and the app's. Every case checks the invariant (test/helpers/desync-harness.ts) and
 * its own expectation: the status a correct gateway may answer, whether it must close the
 * connection, and the exact requests the app may see.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { OutgoingHttpHeaders } from 'node:http2';
import { makeTempDir } from './helpers/tmp.js';
import {
  DesyncRig,
  makePki,
  invariantViolations,
  expectationViolations,
  describeOutcome,
  type Pki,
  type DesyncCase,
  type CaseOutcome,
} from './helpers/desync-harness.js';
import { DESYNC_CASES, smuggled } from './helpers/desync-cases.js';
import type { UpstreamKind } from './helpers/recording-upstream.js';

const tmp = makeTempDir('gatehouse-desync-');
let pki: Pki;

before(async () => {
  pki = await makePki(tmp.dir);
});

after(() => tmp.cleanup());

function assertSafe(c: DesyncCase, outcome: CaseOutcome): void {
  const violations = [...invariantViolations(outcome, c.client ?? 'alice'), ...expectationViolations(c, outcome)];
  assert.deepEqual(violations, [], `${c.name}${c.note ? ` — ${c.note}` : ''}\n${describeOutcome(outcome)}`);
}

/** HTTP/2 cases: node:http2 with headers RFC 9113 §8.1.1/§8.2.2 make malformed. */
interface H2Case {
  name: string;
  headers: OutgoingHttpHeaders;
  body: string;
  expect: DesyncCase['expect'];
  note: string;
}

// transfer-encoding in HTTP/2 (RFC 9113 §8.2.2) is not here: Node's own client refuses to send
// it, so the case could only be skipped; gateway-admission.test.ts pins the refusal instead.
const H2_CASES: H2Case[] = [
  {
    name: 'h2-content-length-shorter-than-data',
    headers: { ':method': 'GET', ':path': '/hello', 'content-length': '5' },
    body: smuggled('h2-content-length-shorter-than-data'),
    expect: { upstream: [[], [{ method: 'GET', target: '/hello' }]] },
    note: 'RFC 9113 §8.1.1: DATA longer than content-length is malformed: stream error; at most the first 5 bytes as a body',
  },
  {
    name: 'h2-content-length-longer-than-data',
    headers: { ':method': 'POST', ':path': '/submit', 'content-length': '100' },
    body: 'hello',
    expect: { upstream: [[], [{ method: 'POST', target: '/submit' }]] },
    note: 'RFC 9113 §8.1.1: malformed; the app must never complete a 100-byte body from 5 bytes',
  },
  {
    name: 'h2-get-body-without-length',
    headers: { ':method': 'GET', ':path': '/hello' },
    body: smuggled('h2-get-body-without-length'),
    expect: {
      upstream: [
        [],
        [{ method: 'GET', target: '/hello', body: '' }],
        [{ method: 'GET', target: '/hello', body: smuggled('h2-get-body-without-length') }],
      ],
    },
    note: 'h2 frames the body itself; on the HTTP/1.1 hop it must be dropped or framed, never raw',
  },
  {
    name: 'h2-get-body-with-length',
    headers: {
      ':method': 'GET',
      ':path': '/hello',
      'content-length': String(smuggled('h2-get-body-with-length').length),
    },
    body: smuggled('h2-get-body-with-length'),
    expect: { upstream: [[], [{ method: 'GET', target: '/hello', body: smuggled('h2-get-body-with-length') }]] },
    note: 'forwarded framed, or refused',
  },
];

/** The same table, once per app parser; the two parsers run side by side (one gateway each). */
describe('gateway-desync', { concurrency: true }, () => {
  for (const kind of ['node', 'python'] as UpstreamKind[]) {
    describe(`desync-upstream-${kind}`, { concurrency: false }, () => {
      let rig: DesyncRig;
      before(async () => {
        rig = new DesyncRig(kind, pki);
        await rig.start();
      });
      after(async () => {
        for (const crash of rig?.crashes ?? [])
          console.error(
            `# gateway crashed after ${crash.name} (${kind} upstream): exit ${crash.exit}\n${crash.stderr.split('\n').slice(-12).join('\n')}`,
          );
        await rig?.stop();
      });

      for (const c of DESYNC_CASES) {
        it(`desync-${kind}-${c.name}`, async () => {
          assertSafe(c, await rig.runCase(c));
        });
      }

      for (const c of H2_CASES) {
        it(`desync-${kind}-${c.name}`, async () => {
          const outcome = await rig.runH2(c.name, c.headers, c.body);
          assert.ok(
            !outcome.h2?.error?.startsWith('client refused to send'),
            `the case never reached the gateway: ${outcome.h2?.error}`,
          );
          assertSafe({ name: c.name, bytes: '', expect: c.expect, note: c.note }, outcome);
        });
      }
    });
  }
});
