/**
 * `gatehouse ca backup` and `ca restore` against a real `ca serve` process while clients keep
 * enrolling and renewing: the copy is consistent (every certificate a client held before the
 * backup started is in it, the database passes integrity_check and audit verify), the restored
 * CA serves and renews an identity enrolled before the backup, any changed byte is refused with
 * the file named, nothing is ever overwritten or left half-written, modes are 0700/0600, and an
 * encrypted CA is backed up without its passphrase.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import * as pki from '../src/pki/index.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import { startCaProcess, type CaProcess } from './helpers/ca-process.js';
import { caRequest } from './helpers/ca-http.js';
import { pollUntil } from './helpers/poll.js';
import { gatehouse } from './helpers/cli.js';
import type { RunResult } from './helpers/run.js';
import { makeTempDir } from './helpers/tmp.js';

// The PEM label of a key, assembled here so this file holds no key-looking text (every key is made at test time).
const KEY_LABEL = ['PRIVATE', 'KEY'].join(' ');

const tmp = makeTempDir('gatehouse-backup-');
const caDir = join(tmp.dir, 'ca');
const backupDir = join(tmp.dir, 'backup-1');
let ca: CaProcess | null = null;
let rootPem = '';
let rootFingerprint = '';
let token = '';
const keeperDir = join(tmp.dir, 'keeper');

const show = (r: RunResult) =>
  `exit ${r.status}\nstdout: ${r.stdout.slice(0, 3000)}\nstderr: ${r.stderr.slice(0, 3000)}`;
const paths_ = (files: Array<{ path: string; size: number }>) => files.map((f) => `${f.path} ${f.size}`).join(', ');
const modeOf = (path: string) => statSync(path).mode & 0o777;

/** Every path under `dir` (relative), folders included. */
function walk(dir: string, rel = ''): string[] {
  return readdirSync(join(dir, rel)).flatMap((name) => {
    const child = rel ? `${rel}/${name}` : name;
    return statSync(join(dir, child)).isDirectory() ? [child, ...walk(dir, child)] : [child];
  });
}

/** The base64 bodies of every private key under `dir`: none may ever be printed. */
function keyBodies(dir: string): string[] {
  return walk(dir)
    .filter((p) => p.endsWith('.pem') && readFileSync(join(dir, p), 'utf8').includes(KEY_LABEL))
    .map(
      (p) =>
        readFileSync(join(dir, p), 'utf8')
          .split('\n')
          .filter((l) => l && !l.startsWith('-----'))[0]!,
    );
}

function assertPrintsNoKey(r: RunResult, dir: string): void {
  const printed = r.stdout + r.stderr;
  assert.ok(!printed.includes(KEY_LABEL), 'no PEM key header printed');
  for (const body of keyBodies(dir)) assert.ok(!printed.includes(body), 'no key material printed');
}

/** Folders 0700, files 0600, all the way down. */
function assertPrivateTree(dir: string): void {
  assert.equal(modeOf(dir), 0o700, dir);
  for (const p of walk(dir)) {
    const path = join(dir, p);
    assert.equal(modeOf(path), statSync(path).isDirectory() ? 0o700 : 0o600, `mode of ${p}`);
  }
}

/** Nothing but `expected` in `parent`: no hidden `.partial` or `.restoring` sibling left behind. */
function assertNoLeftovers(parent: string, expected: string[]): void {
  assert.deepEqual(
    readdirSync(parent).filter((n) => n.startsWith('.')),
    [],
    `hidden leftovers in ${parent}`,
  );
  for (const name of readdirSync(parent)) assert.ok(expected.includes(name), `unexpected ${name} in ${parent}`);
}

function crlNumberOf(der: Buffer): bigint {
  const n = pki.parseCrl(der).crlNumber;
  assert.ok(n !== null, 'the CRL has a number');
  return n;
}

before(async () => {
  assert.equal(
    (await gatehouse(['ca', 'init', '--dir', caDir, '--name', 'Backup', '--trust-domain', 'backup.test'])).status,
    0,
  );
  // One source enrolls and renews in a tight loop: without this the limits would answer 429.
  appendFileSync(
    join(caDir, 'gatehouse.yaml'),
    'limits:\n  enroll: { perSource: null, perToken: null }\n  renew: { perSource: null, perCertificate: null }\n',
  );
  rootPem = readFileSync(join(caDir, 'root.pem'), 'utf8');
  rootFingerprint = pki.sha256Hex(pki.decodePem(rootPem, 'CERTIFICATE')[0]!);
  token = (
    await gatehouse(['token', 'create', '--dir', caDir, '--role', 'web', '--uses', '10000', '--names', 'load-*'])
  ).stdout.trim();
  ca = await startCaProcess(caDir);
  // An agent enrolled before the backup: it must renew against the restored CA.
  writeFileSync(
    join(tmp.dir, 'keeper-token.txt'),
    (await gatehouse(['token', 'create', '--dir', caDir, '--role', 'web', '--name', 'keeper'])).stdout,
  );
  const enrolled = await gatehouse([
    'agent',
    'enroll',
    '--ca',
    ca.url,
    '--token-file',
    join(tmp.dir, 'keeper-token.txt'),
    '--dir',
    keeperDir,
  ]);
  assert.equal(enrolled.status, 0, show(enrolled));
});

after(async () => {
  await ca?.stop();
  tmp.cleanup();
});

interface Issued {
  serial: string;
  /** When the client had the certificate in hand (the response arrived). */
  receivedAt: number;
}

/** Enrolls, then renews what it enrolled, over and over, until stopped. */
function startLoad(url: string, workers: number): { issued: Issued[]; errors: string[]; stop(): Promise<void> } {
  const issued: Issued[] = [];
  const errors: string[] = [];
  let stopped = false;
  let sequence = 0;
  const worker = async () => {
    while (!stopped) {
      const name = `load-${sequence++}`;
      let key = pki.generatePrivateKey('p256');
      const enrolled = await caRequest(url, 'enroll', {
        method: 'POST',
        ca: rootPem,
        body: { token, csr: await pki.buildCsrPem(key, { commonName: name }) },
      });
      if (enrolled.status !== 201) {
        errors.push(`enroll ${enrolled.status} ${enrolled.text}`);
        continue;
      }
      issued.push({ serial: enrolled.json.serial, receivedAt: Date.now() });
      let chain = enrolled.json.chain as string;
      for (let i = 0; i < 3 && !stopped; i++) {
        const next = pki.generatePrivateKey('p256');
        const renewed = await caRequest(url, 'renew', {
          method: 'POST',
          ca: rootPem,
          key: pki.privateKeyToPem(key),
          cert: chain,
          body: { csr: await pki.buildCsrPem(next, { commonName: name }) },
        });
        if (renewed.status !== 201) {
          errors.push(`renew ${renewed.status} ${renewed.text}`);
          break;
        }
        issued.push({ serial: renewed.json.serial, receivedAt: Date.now() });
        key = next;
        chain = renewed.json.chain as string;
      }
    }
  };
  const running = Promise.all(Array.from({ length: workers }, () => worker()));
  return {
    issued,
    errors,
    stop: async () => {
      stopped = true;
      await running;
    },
  };
}

let backupJson: {
  path: string;
  manifestSha256: string;
  bytes: number;
  durationMs: number;
  manifest: {
    rootFingerprint: string;
    audit: { head: string; events: number; intact: boolean };
    files: Array<{ path: string; size: number; sha256: string }>;
    excluded: Array<{ path: string; reason: string }>;
    dirs: string[];
  };
};

test('ca-backup-of-a-running-ca-under-load-is-a-consistent-copy', async (t) => {
  const load = startLoad(ca!.url, 4);
  let r: RunResult;
  let startedAt: number;
  try {
    await pollUntil(
      `clients enrolled and renewed (errors so far: ${load.errors.slice(0, 3).join('; ')})`,
      async () => (load.issued.length >= 30 || load.errors.length > 0 ? true : undefined),
      30_000,
    );
    assert.deepEqual(load.errors, []);
    startedAt = Date.now();
    r = await gatehouse(['ca', 'backup', '--dir', caDir, '--out', backupDir, '--json']);
    const endedAt = Date.now();
    assert.ok(
      load.issued.some((i) => i.receivedAt > startedAt && i.receivedAt < endedAt),
      'certificates were issued while the backup ran',
    );
    // Issuance goes on after the backup too, so the backup is really taken under load.
    const atEnd = load.issued.length;
    await pollUntil(
      'issuance after the backup',
      async () => (load.issued.length > atEnd + 5 ? true : undefined),
      30_000,
    );
  } finally {
    await load.stop();
  }
  assert.deepEqual(load.errors, [], 'every enrollment and renewal succeeded while the backup ran');
  assert.equal(r.status, 0, show(r));
  assertPrintsNoKey(r, caDir);
  backupJson = JSON.parse(r.stdout);
  const { manifest } = backupJson;
  t.diagnostic(
    `backup of ${manifest.files.length} files (${paths_(manifest.files)}), ${backupJson.bytes} bytes, took ${backupJson.durationMs} ms (${load.issued.length} certificates issued by the load)`,
  );

  assert.equal(backupJson.path, backupDir);
  assert.equal(manifest.rootFingerprint, rootFingerprint);
  assert.equal(manifest.audit.intact, true);
  const paths = manifest.files.map((f) => f.path);
  for (const expected of [
    'ca/gatehouse.db',
    'ca/gatehouse.yaml',
    'ca/root.pem',
    'ca/root-key.pem',
    'ca/intermediate.pem',
    'ca/intermediate-key.pem',
    'ca/admin/key.pem',
    'ca/admin/cert.pem',
    'ca/admin/ca.pem',
    'ca/admin/agent.json',
  ]) {
    assert.ok(paths.includes(expected), `${expected} is in the backup (${paths.join(', ')})`);
  }
  // ca serve holds the database open in WAL mode: its -wal exists and is left out, never copied.
  assert.ok(
    manifest.excluded.some((e) => e.path === 'gatehouse.db-wal' && /snapshot/.test(e.reason)),
    JSON.stringify(manifest.excluded),
  );
  assert.ok(!existsSync(join(backupDir, 'ca', 'gatehouse.db-wal')));
  assertPrivateTree(backupDir);
  assertNoLeftovers(tmp.dir, ['ca', 'backup-1', 'keeper', 'keeper-token.txt']);
  // Keys are copied byte for byte.
  assert.deepEqual(
    readFileSync(join(backupDir, 'ca', 'intermediate-key.pem')),
    readFileSync(join(caDir, 'intermediate-key.pem')),
  );

  // The copy, read on its own: sound, and holding every certificate a client had before the backup started.
  const db = new Database(join(backupDir, 'ca', 'gatehouse.db'), { readonly: true });
  try {
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    const inBackup = new Set(
      (db.prepare('SELECT serial FROM certificates').all() as Array<{ serial: string }>).map((row) => row.serial),
    );
    const before = load.issued.filter((i) => i.receivedAt < startedAt!);
    assert.ok(before.length >= 30);
    assert.deepEqual(
      before.filter((i) => !inBackup.has(i.serial)).map((i) => i.serial),
      [],
      'every certificate received before the backup started is in it',
    );
    const head = db.prepare("SELECT value FROM meta WHERE key = 'audit:head'").get() as { value: string };
    const { seq, hash } = JSON.parse(head.value) as { seq: number; hash: string };
    assert.equal(manifest.audit.head, `${seq}:${hash}`, 'the manifest records the audit head of the copy');
  } finally {
    db.close();
  }

  // The live CA's trail records the backup, with the manifest's hash, and still verifies.
  const live = openSqliteStore(join(caDir, 'gatehouse.db'), { readonly: true });
  try {
    const events = await live.listAudit({ type: 'ca.backup_created' });
    assert.equal(events.length, 1);
    assert.equal(events[0]!.details.manifestSha256, backupJson.manifestSha256);
    assert.equal(events[0]!.details.path, backupDir);
    assert.match(events[0]!.actor, /^local:/);
  } finally {
    await live.close();
  }
  const verified = await gatehouse(['audit', 'verify', '--dir', caDir]);
  assert.equal(verified.status, 0, show(verified));
});

test('ca-restore-of-that-backup-serves-and-renews-an-identity-enrolled-before-it', async () => {
  assert.ok(backupJson, 'the backup test ran first');
  const restored = join(tmp.dir, 'restored');
  const r = await gatehouse(['ca', 'restore', '--from', backupDir, '--dir', restored, '--json']);
  assert.equal(r.status, 0, show(r));
  assertPrintsNoKey(r, restored);
  const out = JSON.parse(r.stdout);
  assert.equal(out.rootFingerprint, rootFingerprint);
  assert.equal(out.auditHead, backupJson.manifest.audit.head);
  assert.equal(out.manifestSha256, backupJson.manifestSha256);
  assert.ok(out.certificates.active > 30, JSON.stringify(out.certificates));
  assertPrivateTree(restored);

  // Checks a person runs after a restore (docs/operations.md): the trail up to the backup's head.
  const verified = await gatehouse(['audit', 'verify', '--dir', restored, '--anchor', backupJson.manifest.audit.head]);
  assert.equal(verified.status, 0, show(verified));
  const db = new Database(join(restored, 'gatehouse.db'), { readonly: true });
  assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
  db.close();
  const keeperSerial = (
    JSON.parse((await gatehouse(['agent', 'whoami', '--dir', keeperDir, '--json'])).stdout) as { serial: string }
  ).serial;
  const listed = await gatehouse(['cert', 'list', '--dir', restored, '--json']);
  assert.equal(listed.status, 0, show(listed));
  assert.ok(
    (JSON.parse(listed.stdout) as Array<{ serial: string }>).some((c) => c.serial === keeperSerial),
    'the identity enrolled before the backup is in the restored inventory',
  );

  // An identity enrolled after the backup, at the CA that was lost: unknown to the restored one.
  const lateKey = pki.generatePrivateKey('p256');
  const late = await caRequest(ca!.url, 'enroll', {
    method: 'POST',
    ca: rootPem,
    body: { token, csr: await pki.buildCsrPem(lateKey, { commonName: 'load-late' }) },
  });
  assert.equal(late.status, 201, late.text);

  const lastCrlOfOriginal = crlNumberOf((await caRequest(ca!.url, 'crl', { ca: rootPem })).body);
  const second = await startCaProcess(restored);
  try {
    const roots = await caRequest(second.url, 'roots', { ca: rootPem });
    assert.equal(pki.sha256Hex(pki.decodePem(roots.text, 'CERTIFICATE')[0]!), rootFingerprint);
    // Gateways refuse a CRL numbered below one they saw from the lost CA: the restored CA continues above.
    const crl = crlNumberOf((await caRequest(second.url, 'crl', { ca: rootPem })).body);
    assert.ok(crl > lastCrlOfOriginal, `restored CRL number ${crl} is above the original's ${lastCrlOfOriginal}`);
    const renewed = await gatehouse(['agent', 'renew', '--dir', keeperDir, '--ca', second.url]);
    assert.equal(renewed.status, 0, show(renewed));
    const after = (
      JSON.parse((await gatehouse(['agent', 'whoami', '--dir', keeperDir, '--json'])).stdout) as { serial: string }
    ).serial;
    assert.notEqual(after, keeperSerial, 'the agent holds a certificate from the restored CA');
    const again = await gatehouse(['cert', 'list', '--dir', restored, '--json']);
    assert.ok((JSON.parse(again.stdout) as Array<{ serial: string }>).some((c) => c.serial === after));
    // What docs/operations.md warns about: a certificate issued after the backup cannot renew there.
    const lateRenewal = await caRequest(second.url, 'renew', {
      method: 'POST',
      ca: rootPem,
      key: pki.privateKeyToPem(lateKey),
      cert: late.json.chain,
      body: { csr: await pki.buildCsrPem(pki.generatePrivateKey('p256'), { commonName: 'load-late' }) },
    });
    assert.equal(lateRenewal.status, 401, lateRenewal.text);
    assert.equal(lateRenewal.json.error.code, 'GH_CERT_UNTRUSTED');
    assert.match(lateRenewal.json.error.message, /not in this CA's inventory/);
  } finally {
    await second.stop();
  }
});

test('ca-restore-refuses-a-changed-byte-in-any-file-of-the-backup-naming-it', async () => {
  assert.ok(backupJson, 'the backup test ran first');
  const work = join(tmp.dir, 'tamper');
  mkdirSync(work);
  const targets = [...backupJson.manifest.files.map((f) => f.path), 'manifest.json'];
  for (const file of targets) {
    const copy = join(work, 'backup');
    rmSync(copy, { recursive: true, force: true });
    cpSync(backupDir, copy, { recursive: true });
    const bytes = readFileSync(join(copy, file));
    const at = Math.floor(bytes.length / 2);
    bytes[at] = bytes[at]! ^ 0x01;
    writeFileSync(join(copy, file), bytes);
    const r = await gatehouse(['ca', 'restore', '--from', copy, '--dir', join(work, 'restored')]);
    assert.equal(r.status, 65, `${file}: ${show(r)}`);
    assert.match(r.stderr, /\[GH_BACKUP_CORRUPT\]/, file);
    assert.ok(r.stderr.includes(`${join(copy, file)} was changed or damaged`), `the error names ${file}: ${r.stderr}`);
    assert.ok(!existsSync(join(work, 'restored')), `nothing restored from a backup with a changed ${file}`);
    assertNoLeftovers(work, ['backup']);
  }

  // A file added to the backup, or one taken away, is refused too.
  const copy = join(work, 'backup');
  rmSync(copy, { recursive: true, force: true });
  cpSync(backupDir, copy, { recursive: true });
  writeFileSync(join(copy, 'ca', 'extra.pem'), 'x');
  const added = await gatehouse(['ca', 'restore', '--from', copy, '--dir', join(work, 'restored')]);
  assert.equal(added.status, 65, show(added));
  assert.ok(added.stderr.includes(`${join(copy, 'ca', 'extra.pem')} is not in the manifest`), added.stderr);
  rmSync(join(copy, 'ca', 'extra.pem'));
  rmSync(join(copy, 'ca', 'intermediate-key.pem'));
  const missing = await gatehouse(['ca', 'restore', '--from', copy, '--dir', join(work, 'restored')]);
  assert.equal(missing.status, 65, show(missing));
  assert.ok(missing.stderr.includes(`${join(copy, 'ca', 'intermediate-key.pem')} is missing`), missing.stderr);
  assert.ok(!existsSync(join(work, 'restored')));
});

test('ca-backup-never-overwrites-and-restore-never-fills-a-non-empty-directory', async () => {
  const existingDir = join(tmp.dir, 'exists-dir');
  mkdirSync(existingDir);
  const existingFile = join(tmp.dir, 'exists-file');
  writeFileSync(existingFile, 'keep me');
  for (const out of [existingDir, existingFile, backupDir]) {
    const before = walk(out === existingFile ? tmp.dir : out).length;
    const r = await gatehouse(['ca', 'backup', '--dir', caDir, '--out', out]);
    assert.equal(r.status, 73, show(r));
    assert.match(r.stderr, /already exists.*\[GH_BACKUP_EXISTS\]/);
    assert.equal(walk(out === existingFile ? tmp.dir : out).length, before, `${out} untouched`);
  }
  assert.equal(readFileSync(existingFile, 'utf8'), 'keep me');
  assert.deepEqual(
    readdirSync(tmp.dir).filter((n) => n.startsWith('.')),
    [],
    'no partial backup left',
  );

  const occupied = join(tmp.dir, 'occupied');
  mkdirSync(occupied);
  writeFileSync(join(occupied, 'note.txt'), 'mine');
  const r = await gatehouse(['ca', 'restore', '--from', backupDir, '--dir', occupied]);
  assert.equal(r.status, 73, show(r));
  assert.match(r.stderr, /not empty.*\[GH_CA_EXISTS\]/);
  assert.deepEqual(readdirSync(occupied), ['note.txt']);

  // An empty directory made beforehand is used (replaced by the rename), and ends 0700.
  const empty = join(tmp.dir, 'empty-target');
  mkdirSync(empty, { mode: 0o755 });
  const ok = await gatehouse(['ca', 'restore', '--from', backupDir, '--dir', empty]);
  assert.equal(ok.status, 0, show(ok));
  assertPrivateTree(empty);
  // Inside the CA directory a backup would be copied into itself, and lost with it.
  const inside = await gatehouse(['ca', 'backup', '--dir', caDir, '--out', join(caDir, 'backup')]);
  assert.equal(inside.status, 64, show(inside));
  assert.ok(!existsSync(join(caDir, 'backup')));
});

test('ca-backup-of-a-passphrase-encrypted-ca-needs-no-passphrase-and-never-holds-it', async () => {
  const dir = join(tmp.dir, 'enc');
  mkdirSync(dir);
  const passphrase = join(dir, 'passphrase.txt');
  writeFileSync(passphrase, 'correct horse battery staple\n', { mode: 0o600 });
  const encCa = join(dir, 'ca');
  const init = await gatehouse(['ca', 'init', '--dir', encCa, '--passphrase-file', passphrase]);
  assert.equal(init.status, 0, show(init));
  // The passphrase is on another machine (or in a vault) while the backup is made.
  const kept = readFileSync(passphrase);
  rmSync(passphrase);
  const bk = join(dir, 'backup');
  const env = { GATEHOUSE_PASSPHRASE_FILE: '' };
  const r = await gatehouse(['ca', 'backup', '--dir', encCa, '--out', bk, '--json'], { env });
  assert.equal(r.status, 0, show(r));
  assertPrintsNoKey(r, encCa);
  const manifest = JSON.parse(r.stdout).manifest as {
    keys: { encrypted: boolean; rootKeyIncluded: boolean; passphraseFile: string };
  };
  assert.deepEqual(manifest.keys, { encrypted: true, rootKeyIncluded: true, passphraseFile: passphrase });
  for (const key of ['intermediate-key.pem', 'root-key.pem']) {
    const copied = readFileSync(join(bk, 'ca', key), 'utf8');
    assert.ok(copied.startsWith(`-----BEGIN ENCRYPTED ${KEY_LABEL}-----`), `${key} stays encrypted in the backup`);
    assert.equal(copied, readFileSync(join(encCa, key), 'utf8'));
  }

  // A passphrase file kept inside the CA directory is left out: never next to the keys it opens.
  writeFileSync(join(encCa, 'passphrase.txt'), kept, { mode: 0o600 });
  const bk2 = join(dir, 'backup-2');
  const r2 = await gatehouse(['ca', 'backup', '--dir', encCa, '--out', bk2, '--json'], {
    env: { GATEHOUSE_PASSPHRASE_FILE: join(encCa, 'passphrase.txt') },
  });
  assert.equal(r2.status, 0, show(r2));
  const excluded = (JSON.parse(r2.stdout).manifest as { excluded: Array<{ path: string; reason: string }> }).excluded;
  assert.ok(
    excluded.some((e) => e.path === 'passphrase.txt' && /passphrase/.test(e.reason)),
    JSON.stringify(excluded),
  );
  assert.ok(!existsSync(join(bk2, 'ca', 'passphrase.txt')));
  const holding = walk(bk2).filter(
    (p) => statSync(join(bk2, p)).isFile() && readFileSync(join(bk2, p)).includes(kept.subarray(0, kept.length - 1)),
  );
  assert.deepEqual(holding, [], 'the passphrase is in no file of the backup');

  // Restored without the passphrase; served with it.
  const restored = join(dir, 'restored');
  const rr = await gatehouse(['ca', 'restore', '--from', bk, '--dir', restored, '--json'], { env });
  assert.equal(rr.status, 0, show(rr));
  const out = JSON.parse(rr.stdout);
  assert.equal(out.keysEncrypted, true);
  assert.deepEqual(out.passphraseFile, { path: passphrase, present: false });
  writeFileSync(passphrase, kept, { mode: 0o600 });
  const served = await startCaProcess(restored);
  try {
    const roots = await caRequest(served.url, 'roots', { ca: readFileSync(join(restored, 'root.pem'), 'utf8') });
    assert.equal(
      pki.sha256Hex(pki.decodePem(roots.text, 'CERTIFICATE')[0]!),
      out.rootFingerprint,
      'the restored encrypted CA serves its root',
    );
  } finally {
    await served.stop();
  }
});

test('ca-backup-refuses-a-database-of-another-schema-version-and-writes-nothing', async () => {
  const dir = join(tmp.dir, 'schema');
  mkdirSync(dir);
  const other = join(dir, 'ca');
  assert.equal((await gatehouse(['ca', 'init', '--dir', other])).status, 0);
  const db = new Database(join(other, 'gatehouse.db'));
  const latest = Number((db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number }).v);
  for (const [what, edit] of [
    ['older', () => db.prepare('DELETE FROM schema_migrations WHERE version = ?').run(latest)],
    [
      'newer',
      () =>
        db
          .prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?), (?, ?)')
          .run(latest, Date.now(), latest + 1, Date.now()),
    ],
  ] as const) {
    edit();
    const before = readFileSync(join(other, 'gatehouse.db'));
    const r = await gatehouse(['ca', 'backup', '--dir', other, '--out', join(dir, `backup-${what}`)]);
    assert.equal(r.status, 74, `${what}: ${show(r)}`);
    assert.match(
      r.stderr,
      /has schema version \d+ and this Gatehouse .* uses version \d+: back it up with the Gatehouse version that runs this CA.*\[GH_STORE_IO\]/,
    );
    assert.deepEqual(readdirSync(dir), ['ca'], `${what}: no backup and no partial one`);
    assert.deepEqual(
      readFileSync(join(other, 'gatehouse.db')),
      before,
      `${what}: the database was not migrated or written`,
    );
  }
  db.close();
});
