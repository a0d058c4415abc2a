/**
 * A small bounded fuzzer over the request-smuggling table: each iteration takes a seed case,
 * mutates its bytes (byte flips, CRLFs duplicated, dropped or made bare, header lines
 * duplicated, names recased, TE/CL lines inserted, random write boundaries) with a
 * deterministic PRNG, and checks the invariant only (the case's own expectation no longer
 * applies to mutated bytes). Bounded by wall time, not iterations; the seed is printed on failure
 * and can be replayed with GATEHOUSE_DESYNC_SEED=<seed>.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { makeTempDir } from './helpers/tmp.js';
import {
  DesyncRig,
  makePki,
  invariantViolations,
  describeOutcome,
  type Pki,
  type DesyncCase,
} from './helpers/desync-harness.js';
import { DESYNC_CASES } from './helpers/desync-cases.js';
import type { UpstreamKind } from './helpers/recording-upstream.js';

/** Per app parser; the two run side by side, so ~10 s of wall time in all. */
const BUDGET_MS = Number(process.env.GATEHOUSE_DESYNC_FUZZ_MS ?? 10_000);
const BASE_SEED = Number(process.env.GATEHOUSE_DESYNC_SEED ?? 0x5eed);

/** mulberry32: small, fast, and the same sequence on every platform. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rng = () => number;
const pick = <T>(rng: Rng, list: readonly T[]): T => list[Math.floor(rng() * list.length)]!;
const at = (rng: Rng, text: string) => Math.floor(rng() * (text.length + 1));

/** Only cases written as plain bytes are seeds (their waits would mean nothing once mutated). */
const SEEDS: Array<{ name: string; text: string }> = DESYNC_CASES.flatMap((c) => {
  if (typeof c.bytes === 'string') return [{ name: c.name, text: c.bytes }];
  if (Array.isArray(c.bytes) && c.bytes.every((s) => typeof s === 'string'))
    return [{ name: c.name, text: (c.bytes as string[]).join('') }];
  return [];
});

const INTERESTING = ['\r', '\n', ' ', '\t', ':', ';', ',', '0', 'f', '\0', '\x0b', 'a', '"'];
const FRAMING_LINES = [
  'Transfer-Encoding: chunked',
  'Content-Length: 0',
  'Content-Length: 5',
  'Transfer-Encoding: identity',
  'Connection: content-length',
  'Connection: transfer-encoding',
  'Content-Length: 40',
];

const MUTATIONS: Array<(rng: Rng, text: string) => string> = [
  // Flip one byte to a random or an interesting one.
  (rng, t) => {
    const i = Math.floor(rng() * t.length);
    return (
      t.slice(0, i) +
      (rng() < 0.5 ? pick(rng, INTERESTING) : String.fromCharCode(Math.floor(rng() * 256))) +
      t.slice(i + 1)
    );
  },
  // Duplicate, remove, or make bare one CRLF.
  (rng, t) => {
    const crlfs = [...t.matchAll(/\r\n/g)].map((m) => m.index!);
    if (!crlfs.length) return t;
    const i = pick(rng, crlfs);
    return t.slice(0, i) + pick(rng, ['\r\n\r\n', '', '\n', '\r']) + t.slice(i + 2);
  },
  // Duplicate a header line.
  (rng, t) => {
    const lines = t.split('\r\n');
    const i = 1 + Math.floor(rng() * Math.max(1, lines.length - 2));
    lines.splice(i, 0, lines[i] ?? '');
    return lines.join('\r\n');
  },
  // Change the case of a name.
  (rng, t) =>
    t.replace(/(^|\r\n)([A-Za-z-]+):/g, (m, pre: string, name: string) =>
      rng() < 0.3 ? `${pre}${rng() < 0.5 ? name.toUpperCase() : name.toLowerCase()}:` : m,
    ),
  // Insert a framing line after a request line.
  (rng, t) => {
    const lines = [...t.matchAll(/ HTTP\/1\.[01]\r\n/g)].map((m) => m.index! + m[0].length);
    if (!lines.length) return t;
    const i = pick(rng, lines);
    return `${t.slice(0, i)}${pick(rng, FRAMING_LINES)}\r\n${t.slice(i)}`;
  },
  // Insert a random interesting byte anywhere.
  (rng, t) => {
    const i = at(rng, t);
    return t.slice(0, i) + pick(rng, INTERESTING) + t.slice(i);
  },
];

function mutate(rng: Rng, text: string): string {
  let out = text;
  const n = 1 + Math.floor(rng() * 3);
  for (let k = 0; k < n; k++) out = pick(rng, MUTATIONS)(rng, out);
  return out;
}

/** Random write boundaries: the gateway must parse the same whatever the TLS records are. */
function splitWrites(rng: Rng, text: string): string[] {
  const cuts = Array.from({ length: Math.floor(rng() * 4) }, () => at(rng, text)).sort((a, b) => a - b);
  const parts: string[] = [];
  let last = 0;
  for (const cut of cuts) {
    if (cut > last) parts.push(text.slice(last, cut));
    last = Math.max(last, cut);
  }
  parts.push(text.slice(last));
  return parts.filter((p) => p.length > 0);
}

const tmp = makeTempDir('gatehouse-desync-fuzz-');
let pki: Pki;
before(async () => {
  pki = await makePki(tmp.dir);
});
after(() => tmp.cleanup());

describe('gateway-desync-fuzz', { concurrency: true }, () => {
  for (const [k, kind] of (['node', 'python'] as UpstreamKind[]).entries()) {
    it(`desync-fuzz-${kind}-invariant-holds-for-mutated-table-bytes`, async (t) => {
      const rig = new DesyncRig(kind, pki);
      await rig.start();
      const failures: string[] = [];
      let iterations = 0;
      const started = Date.now();
      try {
        const deadline = Date.now() + BUDGET_MS;
        while (Date.now() < deadline && failures.length < 3) {
          const seed = (BASE_SEED + k * 1_000_003 + iterations) >>> 0;
          const rng = prng(seed);
          const source = pick(rng, SEEDS);
          const bytes = mutate(rng, source.text);
          const c: DesyncCase = { name: `fuzz-${seed}`, bytes: splitWrites(rng, bytes), expect: {} };
          const outcome = await rig.runCase(c, { idleMs: 120 });
          const violations = invariantViolations(outcome, 'alice');
          if (violations.length)
            failures.push(
              `seed ${seed} (GATEHOUSE_DESYNC_SEED=${seed}), from ${source.name}, bytes ${JSON.stringify(bytes)}:\n  ${violations.join('\n  ')}\n${describeOutcome(outcome)}`,
            );
          iterations++;
        }
      } finally {
        await rig.stop();
      }
      t.diagnostic(
        `${iterations} mutations in ${Date.now() - started} ms of ${BUDGET_MS} (${kind}; stops early after 3 failures); base seed ${BASE_SEED}; gateway crashes: ${rig.crashes.map((c) => c.name).join(', ') || 'none'}`,
      );
      assert.deepEqual(failures, [], `base seed ${BASE_SEED}`);
    });
  }
});
