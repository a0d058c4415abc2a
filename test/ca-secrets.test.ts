/**
 * Secrets end to end (issue 13): a real `ca serve` process, real HTTPS with mutual TLS, the
 * `gatehouse secret` CLI locally (--dir) and remotely (--identity), and the database, its WAL
 * and every log line inspected from outside. The tests of one CA run in order and share it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { caRequest, expectError, newCsr, type HttpResult } from './helpers/ca-http.js';
import { pollUntil } from './helpers/poll.js';
import { startCaProcess, type CaProcess } from './helpers/ca-process.js';
import { CLI_PATH } from './helpers/cli.js';
import { findLog, parseLogLines } from './helpers/log-lines.js';
import { run, type RunResult } from './helpers/run.js';
import { makeTempDir } from './helpers/tmp.js';
import { httpGet } from './helpers/http-get.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import { readMasterKeyFile, MASTER_KEY_FILE } from '../src/secrets/master-key.js';
import { CaClient } from '../src/agent/ca-client.js';
import type { AuditRecord } from '../src/store/store-audit.js';

const tmp = makeTempDir('gatehouse-secrets-');
const caDir = join(tmp.dir, 'ca');
const dbPath = join(caDir, 'gatehouse.db');
/** Every stdout and stderr of every CLI run, for the plaintext search at the end. */
const cliOutput: string[] = [];
/** Every response body the tests received that was not a value they asked for. */
const responses: string[] = [];
let ca: CaProcess;
let rootPem = '';

/** The value planted to be searched for: text to find, then NUL, invalid UTF-8 and high bytes. */
const PLANTED_TEXT = `PLANTED-${randomBytes(12).toString('hex')}`;
const PLANTED = Buffer.concat([
  Buffer.from(PLANTED_TEXT),
  Buffer.from([0x00, 0xff, 0xfe, 0xc3, 0x28, 0x00, 0x80, 0x0a]),
]);
/** Planted through the admin API (base64 in JSON) and through stdin. */
const PLANTED_REMOTE_TEXT = `PLANTED-REMOTE-${randomBytes(12).toString('hex')}`;
const PLANTED_REMOTE = Buffer.concat([Buffer.from(PLANTED_REMOTE_TEXT), Buffer.from([0, 0, 0xff, 0x00])]);
const PLANTED_ROTATED_TEXT = `PLANTED-ROTATED-${randomBytes(12).toString('hex')}`;

interface Reader {
  key: string;
  cert: string;
  serial: string;
  spiffeId: string;
  name: string;
}
let web1: Reader;
let web2: Reader;
let gw1: Reader;

async function gh(args: string[], input?: Buffer | string, env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  const r = await run(process.execPath, [CLI_PATH, ...args], {
    env: { ...process.env, GATEHOUSE_LOG_LEVEL: 'debug', ...env },
    ...(input !== undefined ? { input } : {}),
  });
  cliOutput.push(r.stdout, r.stderr);
  return r;
}

async function ok(args: string[], input?: Buffer | string, env?: NodeJS.ProcessEnv): Promise<RunResult> {
  const r = await gh(args, input, env);
  assert.equal(r.status, 0, `gatehouse ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
  return r;
}

async function enrollAs(role: string, name: string): Promise<Reader> {
  const t = await ok(['token', 'create', '--dir', caDir, '--role', role, '--name', name]);
  const made = await newCsr({ commonName: name, ...(role === 'gateway' ? { dns: ['localhost'] } : {}) });
  const r = await caRequest(ca.url, 'enroll', { ca: rootPem, body: { token: t.stdout.trim(), csr: made.csr } });
  assert.equal(r.status, 201, r.text);
  return { key: made.keyPem, cert: r.json.chain, serial: r.json.serial, spiffeId: r.json.spiffeId, name };
}

async function read(who: Reader | null, path: string): Promise<HttpResult> {
  const r = await caRequest(ca.url, path, { ca: rootPem, ...(who ? { key: who.key, cert: who.cert } : {}) });
  if (r.status !== 200 || r.headers['content-type'] === 'application/json') responses.push(r.text);
  return r;
}

/** Remote use through the admin API: the admin identity, and the URL of this CA (its agent.json names the configured port). */
const remote = () => ['--identity', join(caDir, 'admin'), '--ca', ca.url];

function valueFile(name: string, value: Buffer): string {
  const path = join(tmp.dir, name);
  writeFileSync(path, value, { mode: 0o600 });
  return path;
}

/** The audit trail as the CA recorded it, read from a separate connection. */
async function auditTrail(filter: { type?: string } = {}): Promise<AuditRecord[]> {
  const store = openSqliteStore(dbPath, { readonly: true });
  try {
    return await store.listAudit(filter);
  } finally {
    await store.close();
  }
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const body = (await httpGet(ca.metricsUrl!)).body;
  const want = `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')}}`;
  const line = body.split('\n').find((l) => l.startsWith(`${want} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

function withDb<T>(fn: (db: Database.Database) => T): T {
  const db = new Database(dbPath);
  db.pragma('busy_timeout = 5000');
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

const SEALED_COLUMNS = ['key_id', 'sealed_key', 'iv', 'ciphertext', 'tag', 'checksum', 'size'] as const;

before(async () => {
  await ok(['ca', 'init', '--dir', caDir, '--trust-domain', 'secrets.internal']);
  rootPem = readFileSync(join(caDir, 'root.pem'), 'utf8');
  ca = await startCaProcess(caDir, ['--metrics-listen', '127.0.0.1:0', '--log-level', 'debug']);
  web1 = await enrollAs('web', 'web-1');
  web2 = await enrollAs('web', 'web-2');
  gw1 = await enrollAs('gateway', 'gw-1');
});

after(async () => {
  await ca?.stop();
  tmp.cleanup();
});

test('ca-secrets-granted-identity-gets-the-exact-bytes-over-mtls-with-version-and-checksum', async () => {
  assert.equal(statSync(join(caDir, MASTER_KEY_FILE)).mode & 0o777, 0o600, 'ca init made the master key, 0600');
  const created = JSON.parse(
    (
      await ok([
        'secret',
        'create',
        'planted',
        '--file',
        valueFile('planted.bin', PLANTED),
        '--grant',
        'role:web',
        '--dir',
        caDir,
        '--json',
      ])
    ).stdout,
  );
  assert.equal(created.currentVersion, 1);
  assert.deepEqual(
    created.grants.map((g: { subject: string }) => g.subject),
    ['role:web'],
  );
  // Right after the create, its row went through the WAL: the search below looks where the data is.
  const ciphertext = withDb(
    (db) => db.prepare("SELECT ciphertext FROM secret_versions WHERE name = 'planted'").get() as { ciphertext: Buffer },
  ).ciphertext;
  assert.ok(readFileSync(`${dbPath}-wal`).includes(ciphertext), 'the new row is in the -wal file');

  const r = await read(web1, 'v1/secrets/planted');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body, PLANTED, 'byte for byte: NUL, invalid UTF-8, a trailing newline');
  assert.equal(r.headers['content-type'], 'application/octet-stream');
  assert.equal(r.headers['cache-control'], 'no-store');
  assert.equal(r.headers['content-length'], String(PLANTED.length));
  assert.equal(r.headers['gatehouse-secret-version'], '1');
  assert.match(String(r.headers['gatehouse-secret-checksum']), /^hmac-sha256:[0-9a-f]{64}$/);

  const list = await read(web1, 'v1/secrets');
  assert.equal(list.status, 200);
  assert.deepEqual(
    list.json.secrets.map((s: Record<string, unknown>) => [s.name, s.version, s.checksum, s.size]),
    [['planted', 1, r.headers['gatehouse-secret-checksum'], PLANTED.length]],
  );
  assert.deepEqual(Object.keys(list.json.secrets[0]).sort(), ['checksum', 'name', 'size', 'updatedAt', 'version']);

  const audit = (await auditTrail({ type: 'ca.secret_read' })).at(-1)!;
  assert.equal(audit.actor, web1.spiffeId);
  assert.equal(audit.serial, web1.serial);
  assert.deepEqual(audit.details, { secret: 'planted', version: 1, spiffeId: web1.spiffeId });
  const shown = JSON.parse((await ok(['secret', 'show', 'planted', '--dir', caDir, '--json'])).stdout);
  assert.equal(shown.versions[0].lastReadBy, web1.spiffeId, 'the last read is recorded with the version');
  assert.ok((await metric('gatehouse_ca_secret_reads_total', { result: 'delivered' })) >= 1);
});

test('ca-secrets-remote-cli-through-the-admin-api-creates-from-binary-stdin-and-a-gateway-certificate-reads', async () => {
  const admin = [...remote()];
  await ok(
    ['secret', 'create', 'remote', '--from-stdin', '--grant', 'role:gateway', '--grant', 'name:web-2', ...admin],
    PLANTED_REMOTE,
  );
  const gw = await read(gw1, 'v1/secrets/remote');
  assert.equal(gw.status, 200, `a server-profile (gateway) certificate reads too: ${gw.text}`);
  assert.deepEqual(gw.body, PLANTED_REMOTE);
  assert.deepEqual((await read(web2, 'v1/secrets/remote')).body, PLANTED_REMOTE, 'name:web-2');
  const list = JSON.parse((await ok(['secret', 'list', '--json', ...admin])).stdout);
  assert.deepEqual(
    list.map((s: { name: string }) => s.name),
    ['planted', 'remote'],
  );
  assert.ok(!JSON.stringify(list).includes(PLANTED_REMOTE.toString('base64')), 'metadata only');
  const text = (await ok(['secret', 'show', 'remote', ...admin])).stdout;
  assert.match(text, /granted to:\s+name:web-2, role:gateway/);
  const rekey = await gh(['secret', 'rekey', ...admin]);
  assert.equal(rekey.status, 64, 'rekey is local only');
});

test('ca-secrets-another-role-gets-403-like-an-unknown-secret-and-both-are-audited-and-counted', async () => {
  const before = {
    notGranted: await metric('gatehouse_ca_secret_reads_total', { result: 'not_granted' }),
    unknown: await metric('gatehouse_ca_secret_reads_total', { result: 'unknown' }),
  };
  const denied = expectError(await read(gw1, 'v1/secrets/planted'), 403, 'GH_SECRET_NOT_GRANTED');
  const unknown = expectError(await read(gw1, 'v1/secrets/no-such-secret'), 403, 'GH_SECRET_NOT_GRANTED');
  assert.equal(
    denied.message.replace('planted', 'NAME'),
    unknown.message.replace('no-such-secret', 'NAME'),
    'an unknown name cannot be told from an ungranted one',
  );
  assert.ok(!denied.message.includes(PLANTED_TEXT));
  const listed = await read(gw1, 'v1/secrets');
  assert.deepEqual(
    listed.json.secrets.map((s: { name: string }) => s.name),
    ['remote'],
    'the list holds only what is granted',
  );

  const refusals = (await auditTrail({ type: 'ca.secret_read_refused' })).filter((e) => e.actor === gw1.spiffeId);
  assert.deepEqual(
    refusals.map((e) => [e.details.secret, e.details.reason, e.details.code, e.serial]),
    [
      ['planted', 'not-granted', 'GH_SECRET_NOT_GRANTED', gw1.serial],
      ['no-such-secret', 'unknown', 'GH_SECRET_NOT_GRANTED', gw1.serial],
    ],
    'the audit says which',
  );
  assert.equal(await metric('gatehouse_ca_secret_reads_total', { result: 'not_granted' }), before.notGranted + 1);
  assert.equal(await metric('gatehouse_ca_secret_reads_total', { result: 'unknown' }), before.unknown + 1);
  // Malformed names and versions: 400, counted; the name is not echoed into the trail.
  expectError(await read(web1, 'v1/secrets/cert.pem'), 400, 'GH_SECRET_INVALID');
  expectError(await read(web1, 'v1/secrets/a%2Fb'), 400, 'GH_SECRET_INVALID');
  expectError(await read(web1, 'v1/secrets/planted?version=01'), 400, 'GH_SECRET_INVALID');
  expectError(await read(web1, 'v1/secrets/planted?version=-1'), 400, 'GH_SECRET_INVALID');
  expectError(
    await caRequest(ca.url, 'v1/secrets/planted', {
      ca: rootPem,
      key: web1.key,
      cert: web1.cert,
      method: 'POST',
      body: {},
    }),
    405,
    'GH_METHOD_NOT_ALLOWED',
  );
  assert.ok((await metric('gatehouse_ca_secret_reads_total', { result: 'invalid' })) >= 5);
  const noCert = await read(null, 'v1/secrets/planted');
  expectError(noCert, 401, 'GH_AUTH_REQUIRED');
  assert.ok((await metric('gatehouse_ca_secret_reads_total', { result: 'untrusted' })) >= 1);
  assert.ok(
    (await auditTrail({ type: 'ca.secret_read_refused' })).some(
      (e) => e.actor === 'anonymous' && e.details.reason === 'no-certificate',
    ),
  );
});

test('ca-secrets-grants-by-spiffe-id-and-ungrant-removes-access-at-once', async () => {
  await ok([
    'secret',
    'create',
    'pinned',
    '--file',
    valueFile('pinned.bin', Buffer.from('only web-2')),
    '--grant',
    `id:${web2.spiffeId}`,
    '--dir',
    caDir,
  ]);
  assert.equal((await read(web2, 'v1/secrets/pinned')).status, 200);
  expectError(await read(web1, 'v1/secrets/pinned'), 403, 'GH_SECRET_NOT_GRANTED');

  assert.equal((await read(web1, 'v1/secrets/planted')).status, 200);
  await ok(['secret', 'grant', 'planted', 'name:web-1', ...remote()]);
  await ok(['secret', 'ungrant', 'planted', 'role:web', ...remote()]);
  assert.equal((await read(web1, 'v1/secrets/planted')).status, 200, 'web-1 still has name:web-1');
  expectError(await read(web2, 'v1/secrets/planted'), 403, 'GH_SECRET_NOT_GRANTED', 'role:web ungranted');
  await ok(['secret', 'ungrant', 'planted', 'name:web-1', '--dir', caDir]);
  expectError(await read(web1, 'v1/secrets/planted'), 403, 'GH_SECRET_NOT_GRANTED');
  assert.deepEqual((await read(web1, 'v1/secrets')).json.secrets, []);
  // An ungrant naming a subject that is not granted (a typo) changes nothing.
  await ok(['secret', 'grant', 'planted', 'role:web', '--dir', caDir]);
  const typo = await gh(['secret', 'ungrant', 'planted', 'role:web', 'name:web-l', '--dir', caDir]);
  assert.equal(typo.status, 65);
  assert.match(typo.stderr, /not granted to name:web-l .*nothing was changed \[GH_SECRET_INVALID\]/);
  assert.equal((await read(web1, 'v1/secrets/planted')).status, 200, 'role:web kept');
  const events = await auditTrail({ type: 'ca.secret_ungranted' });
  assert.deepEqual(
    events.map((e) => e.details.subjects),
    [['role:web'], ['name:web-1']],
  );
});

test('ca-secrets-rotate-serves-the-new-version-and-the-old-one-only-during-the-overlap', async () => {
  const rotated = Buffer.from(`${PLANTED_ROTATED_TEXT}\u0000v2`);
  const out = await ok([
    'secret',
    'rotate',
    'planted',
    '--file',
    valueFile('rotated.bin', rotated),
    '--overlap',
    '3s',
    '--dir',
    caDir,
  ]);
  assert.match(out.stdout, /version 2, .*version 1 stays readable until/);
  const current = await read(web1, 'v1/secrets/planted');
  assert.deepEqual([current.body, current.headers['gatehouse-secret-version']], [rotated, '2']);
  const old = await read(web1, 'v1/secrets/planted?version=1');
  assert.deepEqual(
    [old.body, old.headers['gatehouse-secret-version']],
    [PLANTED, '1'],
    'the old version, during the overlap',
  );
  assert.equal(
    (await read(web1, 'v1/secrets')).json.secrets.find((s: { name: string }) => s.name === 'planted').version,
    2,
  );
  const gone = await pollUntil(
    'the old version refused after the overlap',
    async () => {
      const r = await read(web1, 'v1/secrets/planted?version=1');
      return r.status === 200 ? undefined : r;
    },
    15_000,
    100,
  );
  const err = expectError(gone, 404, 'GH_SECRET_NOT_FOUND');
  assert.match(err.message, /current version is 2/);
  const expired = await pollUntil('ca.secret_version_expired audited', async () =>
    (await auditTrail({ type: 'ca.secret_version_expired' })).find((e) => e.details.secret === 'planted'),
  );
  assert.equal(expired.details.version, 1);
  assert.equal(
    withDb(
      (db) => (db.prepare("SELECT COUNT(*) AS n FROM secret_versions WHERE name = 'planted'").get() as { n: number }).n,
    ),
    1,
    'its row is deleted',
  );

  // Overlap 0: the previous version is gone at once; an ungranted caller still learns nothing.
  await ok([
    'secret',
    'rotate',
    'planted',
    '--file',
    valueFile('rotated.bin', rotated),
    '--overlap',
    '0',
    '--dir',
    caDir,
  ]);
  expectError(await read(web1, 'v1/secrets/planted?version=2'), 404, 'GH_SECRET_NOT_FOUND');
  expectError(await read(gw1, 'v1/secrets/planted?version=2'), 403, 'GH_SECRET_NOT_GRANTED');
  assert.equal((await read(web1, 'v1/secrets/planted')).headers['gatehouse-secret-version'], '3');
});

test('ca-secrets-flipped-ciphertext-byte-in-the-database-is-refused-and-nothing-delivered', async () => {
  const row = withDb(
    (db) => db.prepare("SELECT ciphertext FROM secret_versions WHERE name = 'pinned'").get() as { ciphertext: Buffer },
  );
  const flipped = Buffer.from(row.ciphertext);
  flipped[3]! ^= 0x40;
  withDb((db) => db.prepare("UPDATE secret_versions SET ciphertext = ? WHERE name = 'pinned'").run(flipped));
  const r = await read(web2, 'v1/secrets/pinned');
  const err = expectError(r, 500, 'GH_SECRET_SEALED_INVALID');
  assert.match(
    err.message,
    /secret pinned version 1 was refused: its ciphertext does not authenticate .*nothing was delivered/,
  );
  assert.ok(!r.body.includes(Buffer.from('only web-2')), 'no byte of the value');
  const refused = (await auditTrail({ type: 'ca.secret_read_refused' })).at(-1)!;
  assert.deepEqual(
    [refused.actor, refused.details.reason, refused.details.code],
    [web2.spiffeId, 'sealed-invalid', 'GH_SECRET_SEALED_INVALID'],
  );
  assert.ok(findLog(ca.output(), 'ca.secret_sealed_invalid', { secretName: 'pinned', level: 'error' }));
  assert.ok(
    !(await auditTrail({ type: 'ca.secret_read' })).some((e) => e.details.secret === 'pinned' && e.time > refused.time),
    'no read recorded',
  );
  assert.ok((await metric('gatehouse_ca_secret_reads_total', { result: 'sealed_invalid' })) >= 1);
  // The same row put back reads again: the flipped byte alone was refused.
  withDb((db) => db.prepare("UPDATE secret_versions SET ciphertext = ? WHERE name = 'pinned'").run(row.ciphertext));
  assert.deepEqual((await read(web2, 'v1/secrets/pinned')).body, Buffer.from('only web-2'));
});

test('ca-secrets-a-sealed-row-copied-to-another-secret-is-refused-by-its-associated-data', async () => {
  await ok(['secret', 'grant', 'pinned', 'role:web', '--dir', caDir]);
  const [source, target] = withDb((db) => [
    db.prepare(`SELECT ${SEALED_COLUMNS.join(', ')} FROM secret_versions WHERE name = 'planted'`).get() as Record<
      string,
      unknown
    >,
    db.prepare(`SELECT ${SEALED_COLUMNS.join(', ')} FROM secret_versions WHERE name = 'pinned'`).get() as Record<
      string,
      unknown
    >,
  ]);
  // Everything sealed (data key, IV, ciphertext, tag, checksum, size) from planted v3 into pinned v1.
  const copy = (from: Record<string, unknown>) =>
    withDb((db) =>
      db
        .prepare(
          `UPDATE secret_versions SET ${SEALED_COLUMNS.map((c) => `${c} = @${c}`).join(', ')} WHERE name = 'pinned'`,
        )
        .run(from),
    );
  copy(source!);
  const err = expectError(await read(web1, 'v1/secrets/pinned'), 500, 'GH_SECRET_SEALED_INVALID');
  assert.match(err.message, /its data key does not authenticate/);
  assert.equal((await read(web1, 'v1/secrets/planted')).status, 200, 'the source still reads under its own name');
  copy(target!);
  assert.equal((await read(web1, 'v1/secrets/pinned')).status, 200);
});

test('ca-secrets-rekey-keeps-every-value-readable-and-the-old-master-key-is-gone', async () => {
  await ok([
    'secret',
    'rotate',
    'remote',
    '--file',
    valueFile('remote2.bin', Buffer.from('remote v2')),
    '--overlap',
    '10m',
    '--dir',
    caDir,
  ]);
  const oldFile = readFileSync(join(caDir, MASTER_KEY_FILE), 'utf8');
  const oldKey = readMasterKeyFile(caDir, undefined)!.current;
  const before = withDb(
    (db) =>
      db
        .prepare(
          'SELECT name, version, key_id, sealed_key, iv, ciphertext, tag, checksum FROM secret_versions ORDER BY name, version',
        )
        .all() as Array<Record<string, unknown>>,
  );
  assert.ok(before.length >= 4 && before.every((r) => r.key_id === oldKey.id));

  const out = JSON.parse((await ok(['secret', 'rekey', '--dir', caDir, '--json'])).stdout);
  assert.deepEqual(out.previousKeyIds, [oldKey.id]);
  assert.equal(out.resealed, before.length);
  const newFile = readFileSync(join(caDir, MASTER_KEY_FILE), 'utf8');
  const doc = JSON.parse(newFile);
  assert.deepEqual(
    doc.keys.map((k: { id: string }) => k.id),
    [out.keyId],
    'the file holds the new key alone',
  );
  assert.ok(
    !newFile.includes(oldKey.id) && !newFile.includes(oldKey.key.toString('base64')),
    'no trace of the old key in the file',
  );
  assert.notEqual(newFile, oldFile);
  assert.equal(statSync(join(caDir, MASTER_KEY_FILE)).mode & 0o777, 0o600);
  assert.deepEqual(
    readdirSync(caDir).filter((f) => f.includes('secrets-master-key') && f !== MASTER_KEY_FILE),
    [],
    'no temp or backup copy left beside it',
  );

  const after = withDb(
    (db) =>
      db
        .prepare(
          'SELECT name, version, key_id, sealed_key, iv, ciphertext, tag, checksum FROM secret_versions ORDER BY name, version',
        )
        .all() as Array<Record<string, unknown>>,
  );
  assert.deepEqual(
    after.map((r) => [r.name, r.version, r.iv, r.ciphertext, r.tag, r.checksum]),
    before.map((r) => [r.name, r.version, r.iv, r.ciphertext, r.tag, r.checksum]),
    'values, IVs, tags and checksums untouched',
  );
  assert.ok(
    after.every((r, i) => r.key_id === out.keyId && !(r.sealed_key as Buffer).equals(before[i]!.sealed_key as Buffer)),
    'every data key sealed again',
  );

  // The running CA held the old key: it reads the file again when it meets the new key ID.
  assert.deepEqual((await read(web1, 'v1/secrets/planted')).body, Buffer.from(`${PLANTED_ROTATED_TEXT}\u0000v2`));
  assert.deepEqual((await read(web2, 'v1/secrets/pinned')).body, Buffer.from('only web-2'));
  assert.deepEqual((await read(gw1, 'v1/secrets/remote')).body, Buffer.from('remote v2'));
  assert.deepEqual(
    (await read(gw1, 'v1/secrets/remote?version=1')).body,
    PLANTED_REMOTE,
    'an old version in its overlap too',
  );
  // And seals new versions under the new key.
  await ok([
    'secret',
    'create',
    'after-rekey',
    '--file',
    valueFile('after.bin', Buffer.from('new')),
    '--grant',
    'role:web',
    ...remote(),
  ]);
  assert.equal(
    withDb(
      (db) =>
        (db.prepare("SELECT key_id FROM secret_versions WHERE name = 'after-rekey'").get() as { key_id: string })
          .key_id,
    ),
    out.keyId,
  );
  assert.deepEqual((await read(web1, 'v1/secrets/after-rekey')).body, Buffer.from('new'));
  const audit = (await auditTrail({ type: 'ca.secret_rekeyed' })).at(-1)!;
  assert.deepEqual(audit.details, {
    keyId: out.keyId,
    previousKeyIds: [oldKey.id],
    resealed: before.length,
    encrypted: false,
  });
});

test('ca-secrets-bad-input-gets-a-precise-error-and-changes-nothing', async () => {
  const listBefore = (await ok(['secret', 'list', '--dir', caDir, '--json'])).stdout;
  // Every change of a secret, not the reads and refusals this test causes on purpose.
  const changes = (e: AuditRecord) =>
    e.type.startsWith('ca.secret_') && e.type !== 'ca.secret_read' && e.type !== 'ca.secret_read_refused';
  const eventsBefore = (await auditTrail()).filter(changes).length;
  const cases: Array<[string[], Buffer | undefined, number, RegExp]> = [
    [
      ['secret', 'create', '../etc', '--from-stdin', '--dir', caDir],
      Buffer.from('x'),
      65,
      /secret name is not allowed/,
    ],
    [['secret', 'create', 'cert.pem', '--from-stdin', '--dir', caDir], Buffer.from('x'), 65, /reserved/],
    [
      ['secret', 'create', 'big', '--from-stdin', '--dir', caDir],
      Buffer.alloc(500 * 1024 + 1, 1),
      65,
      /larger than 512000 bytes/,
    ],
    [['secret', 'create', 'empty', '--from-stdin', '--dir', caDir], Buffer.alloc(0), 65, /is empty/],
    [
      ['secret', 'create', 'x', '--from-stdin', '--grant', 'role:nope', '--dir', caDir],
      Buffer.from('x'),
      65,
      /role this CA does not have/,
    ],
    [
      ['secret', 'create', 'x', '--from-stdin', '--grant', 'id:spiffe://elsewhere.internal/web/a', '--dir', caDir],
      Buffer.from('x'),
      65,
      /outside this CA's trust domain/,
    ],
    [['secret', 'create', 'x', '--file', join(tmp.dir, 'missing'), '--dir', caDir], undefined, 74, /cannot read/],
    [['secret', 'create', 'x', '--dir', caDir], undefined, 64, /exactly one of --file PATH or --from-stdin/],
    [
      ['secret', 'create', 'PLANTED', '--from-stdin', '--dir', caDir],
      Buffer.from('x'),
      73,
      /differs from it only in letter case/,
    ],
    [['secret', 'rotate', 'nope', '--from-stdin', '--dir', caDir], Buffer.from('x'), 66, /no secret named nope/],
    [
      ['secret', 'rotate', 'planted', '--from-stdin', '--overlap', 'soon', '--dir', caDir],
      Buffer.from('x'),
      65,
      /not a duration/,
    ],
    [
      ['secret', 'rotate', 'planted', '--from-stdin', '--overlap', '31d', '--dir', caDir],
      Buffer.from('x'),
      65,
      /from 0 .* to 30d/,
    ],
    [['secret', 'grant', 'planted', '--dir', caDir], undefined, 64, /missing SUBJECT/],
    [['secret', 'grant', 'nope', 'role:web', '--dir', caDir], undefined, 66, /no secret named nope/],
    [['secret', 'delete', 'nope', ...remote()], undefined, 66, /no secret named nope/],
    [
      ['secret', 'create', 'x', '--from-stdin', '--grant', 'role:nope', ...remote()],
      Buffer.from('x'),
      65,
      /role this CA does not have/,
    ],
  ];
  for (const [args, input, exit, message] of cases) {
    const r = await gh(args, input);
    assert.equal(r.status, exit, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
  }
  // The admin API refuses a value that is not canonical base64, and one past the limit, with the JSON error shape.
  const admin = {
    key: readFileSync(join(caDir, 'admin', 'key.pem'), 'utf8'),
    cert: readFileSync(join(caDir, 'admin', 'cert.pem'), 'utf8'),
  };
  const post = (path: string, body: object) => caRequest(ca.url, path, { ca: rootPem, ...admin, body });
  expectError(await post('admin/secrets', { name: 'x', value: 'aGVsbG8', grants: [] }), 400, 'GH_SECRET_INVALID');
  expectError(
    await post('admin/secrets', { name: 'x', value: Buffer.alloc(500 * 1024 + 1).toString('base64') }),
    400,
    'GH_SECRET_INVALID',
  );
  expectError(await post('admin/secrets', { name: 'x', value: 'eA==', grants: 'role:web' }), 400, 'GH_BODY_INVALID');
  expectError(
    await caRequest(ca.url, 'admin/secrets', { ca: rootPem, ...admin, body: Buffer.alloc(2 * 1024 * 1024, 0x20) }),
    413,
    'GH_BODY_TOO_LARGE',
  );
  expectError(
    await caRequest(ca.url, 'admin/secrets', {
      ca: rootPem,
      key: web1.key,
      cert: web1.cert,
      body: { name: 'x', value: 'eA==' },
    }),
    403,
    'GH_AUTH_FORBIDDEN',
  );
  // The largest value is accepted, through the API too.
  assert.equal(
    (
      await post('admin/secrets', {
        name: 'largest',
        value: randomBytes(500 * 1024).toString('base64'),
        grants: ['role:web'],
      })
    ).status,
    201,
  );
  await ok(['secret', 'delete', 'largest', '--dir', caDir]);

  assert.equal((await ok(['secret', 'list', '--dir', caDir, '--json'])).stdout, listBefore, 'no secret changed');
  const eventsAfter = (await auditTrail()).filter(changes);
  assert.deepEqual(
    eventsAfter.slice(eventsBefore).map((e) => [e.type, e.details.secret]),
    [
      ['ca.secret_created', 'largest'],
      ['ca.secret_deleted', 'largest'],
    ],
    'only the largest value, created and deleted',
  );
});

test('ca-secrets-100-reads-measured', async () => {
  // New TLS connection per read (the tests' client) and one kept-alive connection (the agent's CaClient).
  let started = performance.now();
  for (let i = 0; i < 100; i++)
    assert.equal(
      (await caRequest(ca.url, 'v1/secrets/pinned', { ca: rootPem, key: web2.key, cert: web2.cert })).status,
      200,
    );
  const fresh = performance.now() - started;
  const client = new CaClient({ baseUrl: ca.url, rootPem, identity: { keyPem: web2.key, certPem: web2.cert } });
  try {
    started = performance.now();
    for (let i = 0; i < 100; i++)
      assert.equal((await client.getBytes('v1/secrets/pinned', 'application/octet-stream')).toString(), 'only web-2');
  } finally {
    client.close();
  }
  const kept = performance.now() - started;
  console.log(
    `# 100 secret reads (each audited, fsync'd): ${Math.round(fresh)} ms with a new TLS connection each, ${Math.round(kept)} ms on one kept-alive connection`,
  );
});

test('ca-secrets-a-revoked-certificate-cannot-read-and-its-refusal-is-audited', async () => {
  assert.equal((await read(web1, 'v1/secrets/planted')).status, 200);
  await ok(['cert', 'revoke', web1.serial, '--reason', 'keyCompromise', '--dir', caDir]);
  const r = await read(web1, 'v1/secrets/planted');
  expectError(r, 403, 'GH_CERT_REVOKED');
  expectError(await read(web1, 'v1/secrets'), 403, 'GH_CERT_REVOKED', 'the list too');
  const refused = (await auditTrail({ type: 'ca.secret_read_refused' })).filter((e) => e.details.reason === 'revoked');
  assert.ok(refused.length >= 1);
  assert.deepEqual(
    [refused[0]!.actor, refused[0]!.serial, refused[0]!.details.secret],
    [web1.spiffeId, web1.serial, 'planted'],
    'who, from the inventory',
  );
  assert.ok((await metric('gatehouse_ca_secret_reads_total', { result: 'revoked' })) >= 2);
});

test('ca-secrets-delete-removes-every-version-and-reads-then-look-unknown', async () => {
  await ok(['secret', 'delete', 'remote', '--dir', caDir]);
  expectError(await read(gw1, 'v1/secrets/remote'), 403, 'GH_SECRET_NOT_GRANTED');
  assert.equal(
    withDb(
      (db) => (db.prepare("SELECT COUNT(*) AS n FROM secret_versions WHERE name = 'remote'").get() as { n: number }).n,
    ),
    0,
  );
  assert.deepEqual((await auditTrail({ type: 'ca.secret_deleted' })).at(-1)!.details, {
    secret: 'remote',
    versions: [1, 2],
  });
});

test('ca-secrets-a-flood-of-refused-reads-is-counted-in-full-but-audited-within-the-refusal-limit', async () => {
  const audited = async () =>
    (await auditTrail({ type: 'ca.secret_read_refused' })).filter((e) => e.actor === gw1.spiffeId).length;
  const before = {
    audited: await audited(),
    counted: await metric('gatehouse_ca_secret_reads_total', { result: 'not_granted' }),
    suppressed: await metric('gatehouse_ca_audit_events_suppressed_total', { type: 'ca.secret_read_refused' }),
  };
  const FLOOD = 40;
  for (let i = 0; i < FLOOD; i++) expectError(await read(gw1, 'v1/secrets/planted'), 403, 'GH_SECRET_NOT_GRANTED');
  const written = (await audited()) - before.audited;
  const suppressed =
    (await metric('gatehouse_ca_audit_events_suppressed_total', { type: 'ca.secret_read_refused' })) -
    before.suppressed;
  assert.equal(
    await metric('gatehouse_ca_secret_reads_total', { result: 'not_granted' }),
    before.counted + FLOOD,
    'every refusal counted',
  );
  // A burst of 20 per source (less what earlier refusals from 127.0.0.1 took), then one every 2 s.
  assert.ok(written <= 25, `${written} events written for ${FLOOD} refusals`);
  assert.equal(written + suppressed, FLOOD, 'the rest counted as suppressed, not lost');
});

// Last: it reads everything the tests above made the CA write.
test('ca-secrets-planted-values-appear-nowhere-in-the-database-the-wal-the-logs-or-the-audit-trail', async () => {
  const forms = (text: string, value: Buffer) => [
    Buffer.from(text),
    Buffer.from(value.toString('base64')),
    Buffer.from(value.toString('hex')),
  ];
  const planted = [
    ...forms(PLANTED_TEXT, PLANTED),
    ...forms(PLANTED_REMOTE_TEXT, PLANTED_REMOTE),
    Buffer.from(PLANTED_ROTATED_TEXT),
  ];
  const files = [
    dbPath,
    `${dbPath}-wal`,
    ...readdirSync(caDir)
      .filter((f) => f.endsWith('.json') || f.endsWith('.yaml'))
      .map((f) => join(caDir, f)),
  ];
  assert.ok(existsSync(`${dbPath}-wal`) && statSync(`${dbPath}-wal`).size > 0, 'the WAL is there to search');
  for (const file of files) {
    const bytes = readFileSync(file);
    for (const p of planted) assert.ok(!bytes.includes(p), `${file} holds ${p.toString().slice(0, 30)}…`);
  }
  const logText = ca.output();
  const lines = logText.split('\n');
  assert.ok(parseLogLines(logText).length > 50, 'the CA logged (at debug) all along');
  assert.ok(
    parseLogLines(logText).some((l) => l.msg === 'ca.secret_read'),
    'including the reads',
  );
  for (const line of [...lines, ...cliOutput.flatMap((o) => o.split('\n')), ...responses]) {
    for (const p of planted)
      assert.ok(!line.includes(p.toString('latin1')), `a line holds a planted value: ${line.slice(0, 200)}`);
  }
  const trail = JSON.stringify(await auditTrail());
  assert.ok(trail.includes('"secret":"planted"'), 'the trail names the secret');
  for (const p of planted) assert.ok(!trail.includes(p.toString('latin1')), 'the audit trail holds no value');
  const metrics = (await httpGet(ca.metricsUrl!)).body;
  for (const p of planted) assert.ok(!metrics.includes(p.toString('latin1')));
});

test('ca-secrets-an-existing-ca-without-a-master-key-gets-one-at-its-first-secret-while-serve-runs', async () => {
  const dir = join(tmp.dir, 'old-ca');
  await ok(['ca', 'init', '--dir', dir, '--trust-domain', 'old.internal']);
  // A CA made before secrets existed has no key file.
  unlinkSync(join(dir, MASTER_KEY_FILE));
  const serve = await startCaProcess(dir);
  try {
    const t = await ok(['token', 'create', '--dir', dir, '--role', 'web', '--name', 'w']);
    const made = await newCsr({ commonName: 'w' });
    const root = readFileSync(join(dir, 'root.pem'), 'utf8');
    const enrolled = await caRequest(serve.url, 'enroll', {
      ca: root,
      body: { token: t.stdout.trim(), csr: made.csr },
    });
    await ok([
      'secret',
      'create',
      'first',
      '--file',
      valueFile('first.bin', Buffer.from('first!')),
      '--grant',
      'role:web',
      '--dir',
      dir,
    ]);
    assert.equal(statSync(join(dir, MASTER_KEY_FILE)).mode & 0o777, 0o600, 'made on the first create');
    const r = await caRequest(serve.url, 'v1/secrets/first', { ca: root, key: made.keyPem, cert: enrolled.json.chain });
    assert.deepEqual(r.body, Buffer.from('first!'), 'the running CA found the key made after it started');
  } finally {
    await serve.stop();
  }
});

test('ca-secrets-an-encrypted-ca-keeps-the-master-key-encrypted-and-needs-the-passphrase', async () => {
  const dir = join(tmp.dir, 'locked-ca');
  const passFile = join(tmp.dir, 'pass.txt');
  writeFileSync(passFile, 'a long enough passphrase\n', { mode: 0o600 });
  const wrongFile = join(tmp.dir, 'wrong.txt');
  writeFileSync(wrongFile, 'another passphrase\n', { mode: 0o600 });
  await ok(['ca', 'init', '--dir', dir, '--trust-domain', 'locked.internal', '--passphrase-file', passFile]);
  const assertEncryptedOnDisk = () => {
    const text = readFileSync(join(dir, MASTER_KEY_FILE), 'utf8');
    const key = readMasterKeyFile(dir, 'a long enough passphrase')!;
    assert.equal(key.encrypted, true);
    for (const k of key.keys) {
      for (const form of [k.key.toString('base64'), k.key.toString('hex'), k.key.toString('base64url')])
        assert.ok(!text.includes(form), 'the file never holds the raw key');
      assert.ok(!readFileSync(join(dir, MASTER_KEY_FILE)).includes(k.key));
    }
    assert.ok(
      JSON.parse(text).keys.every(
        (e: Record<string, unknown>) => e.key === undefined && (e.encrypted as { kdf: string }).kdf === 'scrypt',
      ),
    );
    return key.current.id;
  };
  const firstId = assertEncryptedOnDisk();
  // The config names the passphrase file (ca init wrote it): move it away to see the errors.
  const config = join(dir, 'gatehouse.yaml');
  writeFileSync(config, readFileSync(config, 'utf8').replace(/passphraseFile: .*/, 'passphraseFile: null'), {
    mode: 0o600,
  });
  const missing = await gh(['secret', 'create', 'x', '--from-stdin', '--dir', dir], Buffer.from('x'));
  assert.equal(missing.status, 77);
  assert.match(missing.stderr, /encrypted; pass --passphrase-file/);
  const wrong = await gh(
    ['secret', 'create', 'x', '--from-stdin', '--dir', dir, '--passphrase-file', wrongFile],
    Buffer.from('x'),
  );
  assert.equal(wrong.status, 77);
  assert.match(wrong.stderr, /wrong passphrase/);
  assert.equal(
    existsSync(`${dir}/gatehouse.db`) &&
      withDbAt(dir, (db) => (db.prepare('SELECT COUNT(*) AS n FROM secrets').get() as { n: number }).n),
    0,
    'nothing created',
  );

  await ok(
    ['secret', 'create', 'locked', '--from-stdin', '--grant', 'role:web', '--dir', dir],
    Buffer.from('locked value'),
    { GATEHOUSE_PASSPHRASE_FILE: passFile },
  );
  const serve = await startCaProcess(dir, ['--passphrase-file', passFile]);
  try {
    const root = readFileSync(join(dir, 'root.pem'), 'utf8');
    const t = await ok([
      'token',
      'create',
      '--dir',
      dir,
      '--role',
      'web',
      '--name',
      'w',
      '--passphrase-file',
      passFile,
    ]);
    const made = await newCsr({ commonName: 'w' });
    const enrolled = await caRequest(serve.url, 'enroll', {
      ca: root,
      body: { token: t.stdout.trim(), csr: made.csr },
    });
    const reader = { key: made.keyPem, cert: enrolled.json.chain };
    assert.deepEqual(
      (await caRequest(serve.url, 'v1/secrets/locked', { ca: root, ...reader })).body,
      Buffer.from('locked value'),
    );
    const rekeyed = JSON.parse(
      (await ok(['secret', 'rekey', '--dir', dir, '--passphrase-file', passFile, '--json'])).stdout,
    );
    assert.equal(rekeyed.encrypted, true);
    assert.notEqual(assertEncryptedOnDisk(), firstId, 'the new key is encrypted too');
    assert.deepEqual(
      (await caRequest(serve.url, 'v1/secrets/locked', { ca: root, ...reader })).body,
      Buffer.from('locked value'),
      'the running CA opens the new key with its passphrase',
    );
  } finally {
    await serve.stop();
  }
});

function withDbAt<T>(dir: string, fn: (db: Database.Database) => T): T {
  const db = new Database(join(dir, 'gatehouse.db'), { readonly: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}
