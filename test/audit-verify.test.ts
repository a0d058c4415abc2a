/**
 * `gatehouse audit verify` as operators run it (the real CLI on a real CA directory), against a
 * trail edited behind the store's back with the SQLite driver: each kind of tampering must be
 * found, and the first broken event named exactly.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { initCa } from '../src/ca/init.js';
import { Authority } from '../src/ca/authority.js';
import { loadCaMaterial } from '../src/ca/ca-dir.js';
import { silentLogger } from '../src/log/logger.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import { auditHash } from '../src/store/audit-chain.js';
import type { AuditInput, AuditRecord } from '../src/store/store-audit.js';
import { gatehouse } from './helpers/cli.js';
import { makeTempDir } from './helpers/tmp.js';

const T0 = new Date('2026-03-01T10:00:00Z');
const minutes = (n: number) => new Date(T0.getTime() + n * 60_000);
const tmp = makeTempDir();
let template = '';
/** The trail as written: 1 ca.cert_issued (admin), 2 ca.initialized, 3–7 ca.token_created one minute apart. */
let events: AuditRecord[] = [];
let copies = 0;

before(async () => {
  template = join(tmp.dir, 'template');
  await initCa({ dir: template, org: 'Audit Test', now: T0 });
  const store = openSqliteStore(join(template, 'gatehouse.db'));
  let tick = 0;
  const authority = new Authority({
    ...loadCaMaterial(template),
    store,
    logger: silentLogger,
    now: () => minutes(++tick),
  });
  for (let i = 0; i < 5; i++) await authority.createToken({ role: 'web' }, { actor: 'local:test' });
  events = await store.listAudit();
  await store.close();
  assert.deepEqual(
    events.map((e) => [e.seq, e.type]),
    [[1, 'ca.cert_issued'], [2, 'ca.initialized'], ...[3, 4, 5, 6, 7].map((s) => [s, 'ca.token_created'])],
  );
});

after(() => tmp.cleanup());

/** A copy of the template CA, edited with the driver as an attacker with file access would. */
function tamperedCa(edit: (db: Database.Database) => void): string {
  const dir = join(tmp.dir, `ca-${++copies}`);
  cpSync(template, dir, { recursive: true });
  const db = new Database(join(dir, 'gatehouse.db'));
  edit(db);
  db.close();
  return dir;
}

interface VerifyJson {
  ok: boolean;
  count: number;
  head: string | null;
  firstBroken: { seq: number | null; time: string | null; type: string | null; problem: string; reason: string } | null;
}

async function verify(
  dir: string,
  extra: string[] = [],
): Promise<{
  status: number | null;
  json: VerifyJson;
  text: { status: number | null; stdout: string; stderr: string };
}> {
  const [j, t] = await Promise.all([
    gatehouse(['audit', 'verify', '--dir', dir, '--json', ...extra]),
    gatehouse(['audit', 'verify', '--dir', dir, ...extra]),
  ]);
  assert.equal(j.status, t.status, `--json and text agree on the exit code\n${j.stdout}\n${t.stderr}`);
  return { status: j.status, json: JSON.parse(j.stdout) as VerifyJson, text: t };
}

const ev = (seq: number) => events.find((e) => e.seq === seq)!;
const inputOf = (e: AuditRecord): AuditInput => ({
  time: e.time,
  type: e.type,
  actor: e.actor,
  serial: e.serial,
  fingerprint: e.fingerprint,
  tokenId: e.tokenId,
  requestId: e.requestId,
  details: e.details,
});
function insertRow(db: Database.Database, seq: number, e: AuditInput, prevHash: string): string {
  const hash = auditHash(prevHash, e);
  db.prepare(
    'INSERT INTO audit_events (seq, time, type, actor, serial, fingerprint, token_id, request_id, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  ).run(
    seq,
    e.time.getTime(),
    e.type,
    e.actor,
    e.serial ?? null,
    e.fingerprint ?? null,
    e.tokenId ?? null,
    e.requestId ?? null,
    JSON.stringify(e.details ?? {}),
    prevHash,
    hash,
  );
  return hash;
}
/** Moves events from `from` on up by `by` sequence numbers (through a detour: seq is the primary key). */
function shiftUp(db: Database.Database, from: number, by: number): void {
  db.prepare('UPDATE audit_events SET seq = seq + 1000 WHERE seq >= ?').run(from);
  db.prepare('UPDATE audit_events SET seq = seq - 1000 + ? WHERE seq >= 1000').run(by);
}

test('audit-verify-intact-trail-exits-0-with-count-and-head', async () => {
  const r = await verify(template);
  assert.equal(r.status, 0, r.text.stderr);
  assert.deepEqual(r.json, {
    ok: true,
    count: 7,
    head: `7:${ev(7).hash}`,
    recordedHead: { seq: 7, hash: ev(7).hash },
    firstBroken: null,
  } as unknown as VerifyJson);
  assert.match(r.text.stdout, /^audit trail intact: 7 events/);
  assert.match(r.text.stdout, new RegExp(`head: +7:${ev(7).hash}\n`));
});

test('audit-verify-modified-event-named-as-content-changed', async () => {
  const dir = tamperedCa((db) => db.prepare("UPDATE audit_events SET actor = 'mallory' WHERE seq = 4").run());
  const r = await verify(dir);
  assert.equal(r.status, 65);
  assert.deepEqual(r.json.firstBroken, {
    seq: 4,
    time: minutes(2).toISOString(),
    type: 'ca.token_created',
    problem: 'modified',
    reason: 'hash mismatch: event content changed (or the event was not written by Gatehouse)',
  });
  assert.equal(r.json.count, 7);
  assert.match(
    r.text.stderr,
    /^error: the audit trail is broken at event 4 \(ca\.token_created, 2026-03-01T10:02:00\.000Z\): hash mismatch: event content changed .*; 7 events read \[GH_AUDIT_BROKEN\]$/m,
  );
});

test('audit-verify-modified-details-that-are-not-json-still-named-as-modified', async () => {
  const dir = tamperedCa((db) => db.prepare("UPDATE audit_events SET details = '{broken' WHERE seq = 6").run());
  const r = await verify(dir);
  assert.equal(r.status, 65);
  assert.equal(r.json.firstBroken?.seq, 6);
  assert.equal(r.json.firstBroken?.problem, 'modified');
});

test('audit-verify-modified-event-with-recomputed-hash-breaks-the-next-link', async () => {
  const dir = tamperedCa((db) => {
    const e = { ...inputOf(ev(4)), actor: 'mallory' };
    db.prepare('UPDATE audit_events SET actor = ?, hash = ? WHERE seq = 4').run('mallory', auditHash(ev(3).hash, e));
  });
  const r = await verify(dir);
  assert.equal(r.status, 65);
  assert.deepEqual(r.json.firstBroken, {
    seq: 5,
    time: minutes(3).toISOString(),
    type: 'ca.token_created',
    problem: 'deleted',
    reason:
      'previous-hash does not match event 4: an event before it was deleted, or rewritten with a recomputed hash (its previous-hash names no event in the trail)',
  });
});

test('audit-verify-deleted-event-names-the-one-after-the-gap', async () => {
  const dir = tamperedCa((db) => db.prepare('DELETE FROM audit_events WHERE seq = 4').run());
  const r = await verify(dir);
  assert.equal(r.status, 65);
  assert.deepEqual(r.json.firstBroken, {
    seq: 5,
    time: minutes(3).toISOString(),
    type: 'ca.token_created',
    problem: 'deleted',
    reason:
      'previous-hash does not match event 3: an event before it was deleted, or rewritten with a recomputed hash (its previous-hash names no event in the trail; sequence numbers jump from 3 to 5)',
  });
  assert.equal(r.json.count, 6);
});

test('audit-verify-reordered-events-swapped-sequence-numbers', async () => {
  const dir = tamperedCa((db) => {
    db.prepare('UPDATE audit_events SET seq = -4 WHERE seq = 4').run();
    db.prepare('UPDATE audit_events SET seq = 4 WHERE seq = 5').run();
    db.prepare('UPDATE audit_events SET seq = 5 WHERE seq = -4').run();
  });
  const r = await verify(dir);
  assert.equal(r.status, 65);
  // Position 4 now holds the event written at minute 3 (originally event 5).
  assert.deepEqual(r.json.firstBroken, {
    seq: 4,
    time: minutes(3).toISOString(),
    type: 'ca.token_created',
    problem: 'reordered',
    reason:
      'previous-hash does not match event 3: events were reordered (its previous-hash names event 5, which now comes after it)',
  });
});

test('audit-verify-inserted-event-with-forged-hash-named-itself', async () => {
  // The strongest insertion short of rewriting everything after it: a well-formed event whose
  // hash is computed correctly and which links to event 4.
  const forged: AuditInput = {
    time: minutes(2.5),
    type: 'ca.cert_revoked',
    actor: 'spiffe://audit.internal/admin/admin',
    serial: 'abcd',
    details: { reason: 'keyCompromise' },
  };
  const dir = tamperedCa((db) => {
    shiftUp(db, 5, 1);
    insertRow(db, 5, forged, ev(4).hash);
  });
  const r = await verify(dir);
  assert.equal(r.status, 65);
  assert.deepEqual(r.json.firstBroken, {
    seq: 5,
    time: minutes(2.5).toISOString(),
    type: 'ca.cert_revoked',
    problem: 'inserted',
    reason: "inserted: event 6's previous-hash names event 4, so event 5 was not in the trail when event 6 was written",
  });
  assert.equal(r.json.count, 8);
});

test('audit-verify-event-appended-outside-the-store-named-against-the-recorded-head', async () => {
  const dir = tamperedCa((db) =>
    insertRow(db, 8, { time: minutes(9), type: 'ca.token_created', actor: 'local:mallory', details: {} }, ev(7).hash),
  );
  const r = await verify(dir);
  assert.equal(r.status, 65);
  assert.deepEqual(r.json.firstBroken, {
    seq: 8,
    time: minutes(9).toISOString(),
    type: 'ca.token_created',
    problem: 'inserted',
    reason: 'inserted: the store recorded event 7 as its last, so event 8 was added without going through Gatehouse',
  });
});

test('audit-verify-truncated-trail-newest-event-deleted-is-found-and-stays-found-after-new-appends', async () => {
  const dir = tamperedCa((db) => db.prepare('DELETE FROM audit_events WHERE seq = 7').run());
  const r = await verify(dir);
  assert.equal(r.status, 65);
  assert.deepEqual(r.json.firstBroken, {
    seq: 7,
    time: null,
    type: null,
    problem: 'truncated',
    reason: `missing: the store recorded event 7 (hash ${ev(7).hash.slice(0, 16)}…) as its last, but the trail ends at event 6: the newest event was deleted`,
  });
  // The CA keeps working: its next event chains to the recorded head, so the gap stays visible.
  const store = openSqliteStore(join(dir, 'gatehouse.db'));
  await store.appendAudit([{ time: minutes(10), type: 'ca.admin_call', actor: 'local:test', details: {} }]);
  await store.close();
  const later = await verify(dir);
  assert.equal(later.status, 65);
  assert.equal(later.json.firstBroken?.seq, 8);
  assert.equal(later.json.firstBroken?.problem, 'deleted');
  assert.match(later.json.firstBroken!.reason, /^previous-hash does not match event 6: an event before it was deleted/);
});

test('audit-verify-head-record-deleted-is-reported', async () => {
  const dir = tamperedCa((db) => db.prepare("DELETE FROM meta WHERE key = 'audit:head'").run());
  const r = await verify(dir);
  assert.equal(r.status, 65);
  assert.equal(r.json.firstBroken?.problem, 'head-missing');
});

test('audit-verify-limit-full-rewrite-with-recomputed-hashes-passes-alone-and-fails-against-an-anchor', async () => {
  const anchor = `5:${ev(5).hash}`;
  // An attacker with write access deletes event 4, renumbers, recomputes every hash after it
  // and the head: the chain is consistent again. This is the documented limit.
  const dir = tamperedCa((db) => {
    db.prepare('DELETE FROM audit_events WHERE seq >= 4').run();
    let prev = ev(3).hash;
    for (const seq of [5, 6, 7]) prev = insertRow(db, seq - 1, inputOf(ev(seq)), prev);
    db.prepare("UPDATE meta SET value = ? WHERE key = 'audit:head'").run(JSON.stringify({ seq: 6, hash: prev }));
  });
  const alone = await verify(dir);
  assert.equal(alone.status, 0, 'a consistent rewrite is not detectable from the database alone');
  assert.equal(alone.json.count, 6);
  const anchored = await verify(dir, ['--anchor', anchor]);
  assert.equal(anchored.status, 65);
  assert.equal(anchored.json.firstBroken?.seq, 5);
  assert.equal(anchored.json.firstBroken?.problem, 'anchor-mismatch');
  assert.match(
    anchored.text.stderr,
    /broken at event 5 \(ca\.token_created, 2026-03-01T10:04:00\.000Z\): hash [0-9a-f]{16}… differs from the anchor/,
  );
  assert.equal((await verify(template, ['--anchor', anchor])).status, 0, 'the untouched trail matches its anchor');
  assert.equal(
    (await verify(template, ['--anchor', `9:${ev(7).hash}`])).json.firstBroken?.problem,
    'anchor-mismatch',
    'an anchor past the end fails',
  );
});

test('audit-verify-usage-and-missing-ca-exit-codes', async () => {
  const bad = await gatehouse(['audit', 'verify', '--dir', template, '--anchor', '7:nothex']);
  assert.equal(bad.status, 64);
  assert.match(bad.stderr, /--anchor "7:nothex" is not SEQ:HASH/);
  const missing = await gatehouse(['audit', 'verify', '--dir', join(tmp.dir, 'nowhere')]);
  assert.equal(missing.status, 66);
  assert.match(missing.stderr, /no CA database at .*nowhere\/gatehouse\.db \[GH_CA_NOT_FOUND\]/);
});
