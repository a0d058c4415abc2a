/**
 * The envelope encryption of secrets (src/secrets/seal.ts), the master key file
 * (src/secrets/master-key.ts) and the name and subject rules (src/secrets/names.ts), as units.
 * The same guards are proven end to end against a running `ca serve` in test/ca-secrets.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createDecipheriv, createHash, randomBytes, scryptSync } from 'node:crypto';
import { join } from 'node:path';
import { isGatehouseError } from '../src/errors/errors.js';
import {
  CHECKSUM_PREFIX,
  SEALED_KEY_BYTES,
  associatedData,
  checksumOf,
  openDataKey,
  openValue,
  resealDataKey,
  sealValue,
  type MasterKey,
} from '../src/secrets/seal.js';
import {
  MASTER_KEY_FILE,
  MasterKeyRing,
  createMasterKeyFile,
  newMasterKey,
  readMasterKeyFile,
  writeMasterKeyFile,
} from '../src/secrets/master-key.js';
import {
  MAX_SECRET_BYTES,
  assertSecretValue,
  decodeBase64Value,
  parseOverlap,
  parseSubject,
  secretNameProblem,
} from '../src/secrets/names.js';
import { makeTempDir } from './helpers/tmp.js';

const sealedInvalid = (err: unknown) => isGatehouseError(err, 'GH_SECRET_SEALED_INVALID');
/** A value with NUL, invalid UTF-8 and every byte value. */
const BINARY = Buffer.concat([
  Buffer.from([0, 0xff, 0xfe, 0xc3, 0x28, 0x00, 0x80]),
  Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
]);

test('secrets-seal-round-trips-binary-values-and-every-version-has-its-own-data-key-and-iv', () => {
  const master = newMasterKey();
  const a = sealValue(master, 'db', 1, BINARY);
  const b = sealValue(master, 'db', 1, BINARY);
  assert.deepEqual(openValue(master, 'db', 1, a), BINARY);
  assert.equal(a.size, BINARY.length);
  assert.equal(a.keyId, master.id);
  assert.equal(a.iv.length, 12);
  assert.equal(a.tag.length, 16);
  assert.equal(a.sealedKey.length, SEALED_KEY_BYTES);
  assert.notDeepEqual(a.iv, b.iv, 'a random IV per encryption (NIST SP 800-38D §8.2.2)');
  assert.notDeepEqual(a.ciphertext, b.ciphertext);
  assert.notEqual(a.checksum, b.checksum, 'a data key per version, so the keyed checksum differs too');
  assert.ok(!a.ciphertext.includes(BINARY.subarray(7, 40)), 'the ciphertext does not hold the plaintext');
  // The largest value too.
  const big = randomBytes(MAX_SECRET_BYTES);
  assert.deepEqual(openValue(master, 'big', 7, sealValue(master, 'big', 7, big)), big);
});

test('secrets-seal-checksum-is-keyed-by-the-data-key-not-a-plain-digest', () => {
  const master = newMasterKey();
  const s = sealValue(master, 'db', 1, Buffer.from('hunter2'));
  assert.match(s.checksum, new RegExp(`^${CHECKSUM_PREFIX}[0-9a-f]{64}$`));
  assert.notEqual(
    s.checksum.slice(CHECKSUM_PREFIX.length),
    createHash('sha256').update('hunter2').digest('hex'),
    'someone holding the database cannot test guesses',
  );
  const dataKey = openDataKey(master, 'db', 1, s.sealedKey)!;
  assert.equal(
    checksumOf(dataKey, Buffer.from('hunter2')),
    s.checksum,
    'stable for the version: recomputable from its data key',
  );
  assert.notEqual(checksumOf(dataKey, Buffer.from('hunter3')), s.checksum);
});

test('secrets-seal-refuses-any-changed-byte-in-any-field', () => {
  const master = newMasterKey();
  const s = sealValue(master, 'db', 3, BINARY);
  const flip = (b: Buffer, i: number) => {
    const c = Buffer.from(b);
    c[i]! ^= 0x01;
    return c;
  };
  const cases: Array<[string, Parameters<typeof openValue>[3]]> = [
    ['ciphertext first byte', { ...s, ciphertext: flip(s.ciphertext, 0) }],
    ['ciphertext last byte', { ...s, ciphertext: flip(s.ciphertext, s.ciphertext.length - 1) }],
    ['ciphertext truncated', { ...s, ciphertext: s.ciphertext.subarray(0, -1) }],
    ['iv', { ...s, iv: flip(s.iv, 5) }],
    ['tag', { ...s, tag: flip(s.tag, 15) }],
    ['tag truncated to 12 bytes', { ...s, tag: s.tag.subarray(0, 12) }],
    ['sealed data key', { ...s, sealedKey: flip(s.sealedKey, 20) }],
    ['sealed data key IV', { ...s, sealedKey: flip(s.sealedKey, 0) }],
    ['checksum', { ...s, checksum: s.checksum.replace(/.$/, (c) => (c === '0' ? '1' : '0')) }],
    ['size', { ...s, size: s.size + 1 }],
  ];
  for (const [what, sealed] of cases) assert.throws(() => openValue(master, 'db', 3, sealed), sealedInvalid, what);
  assert.throws(() => openValue(newMasterKey(), 'db', 3, s), sealedInvalid, 'another master key');
  assert.throws(
    () => openValue({ id: 'ffffffffffffffff', key: master.key }, 'db', 3, s),
    sealedInvalid,
    'the same key bytes under another key ID',
  );
});

test('secrets-seal-ciphertext-moved-to-another-name-or-version-does-not-authenticate', () => {
  const master = newMasterKey();
  const s = sealValue(master, 'db', 3, BINARY);
  assert.throws(() => openValue(master, 'db2', 3, s), sealedInvalid, 'the whole row under another name');
  assert.throws(() => openValue(master, 'DB', 3, s), sealedInvalid, 'another case');
  assert.throws(() => openValue(master, 'db', 2, s), sealedInvalid, 'another version');
  // Only the value parts moved, with the target's own data key: the value AAD refuses it too.
  const other = sealValue(master, 'api', 1, Buffer.from('other'));
  assert.throws(
    () => openValue(master, 'api', 1, { ...other, iv: s.iv, ciphertext: s.ciphertext, tag: s.tag }),
    sealedInvalid,
  );
});

test('secrets-seal-associated-data-is-length-prefixed-so-no-two-pairs-collide', () => {
  const seen = new Map<string, string>();
  for (const [name, version] of [
    ['a.b', 1],
    ['a', 1],
    ['a.b1', 1],
    ['ab', 1],
    ['a', 11],
    ['a1', 1],
    ['db', 256],
    ['db', 1],
  ] as const) {
    const hex = associatedData('label', name, version).toString('hex');
    assert.equal(seen.get(hex), undefined, `${name}@${version} collides with ${seen.get(hex)}`);
    seen.set(hex, `${name}@${version}`);
  }
  assert.notDeepEqual(associatedData('l', 'x', 1, 'k1'), associatedData('l', 'x', 1, 'k2'));
});

test('secrets-seal-reseal-changes-only-the-sealed-data-key', () => {
  const from = newMasterKey();
  const to = newMasterKey();
  const s = sealValue(from, 'db', 1, BINARY);
  const sealedKey = resealDataKey(from, to, 'db', 1, s.sealedKey);
  assert.deepEqual(openValue(to, 'db', 1, { ...s, sealedKey }), BINARY, 'same IV, ciphertext, tag and checksum');
  assert.throws(() => openValue(from, 'db', 1, { ...s, sealedKey }), sealedInvalid);
  assert.throws(
    () => resealDataKey(to, from, 'db', 1, s.sealedKey),
    sealedInvalid,
    'a key that does not open it is refused, not re-sealed',
  );
});

test('secrets-master-key-file-plain-without-passphrase-0600-and-exclusive-create', () => {
  const { dir, cleanup } = makeTempDir();
  try {
    assert.equal(readMasterKeyFile(dir, undefined), null);
    const made = createMasterKeyFile(dir, undefined);
    assert.equal(statSync(join(dir, MASTER_KEY_FILE)).mode & 0o777, 0o600);
    const again = createMasterKeyFile(dir, undefined);
    assert.equal(again.current.id, made.current.id, 'a second create keeps the key in force');
    assert.deepEqual(again.current.key, made.current.key);
    assert.equal(made.encrypted, false);
    chmodSync(join(dir, MASTER_KEY_FILE), 0o644);
    assert.throws(
      () => readMasterKeyFile(dir, undefined),
      (err) => isGatehouseError(err, 'GH_CA_DIR_PERMS'),
    );
    chmodSync(join(dir, MASTER_KEY_FILE), 0o600);
    writeFileSync(join(dir, MASTER_KEY_FILE), '{"format":1,"keyId":"zz"}', { mode: 0o600 });
    assert.throws(
      () => readMasterKeyFile(dir, undefined),
      (err) => isGatehouseError(err, 'GH_SECRET_MASTER_KEY') && !err.message.includes('"zz"'),
    );
  } finally {
    cleanup();
  }
});

test('secrets-master-key-file-with-passphrase-never-holds-the-raw-key', () => {
  const { dir, cleanup } = makeTempDir();
  try {
    const made = createMasterKeyFile(dir, 'correct horse battery');
    const text = readFileSync(join(dir, MASTER_KEY_FILE), 'utf8');
    const raw = made.current.key;
    for (const form of [raw.toString('base64'), raw.toString('hex'), raw.toString('base64url'), raw.toString('latin1')])
      assert.ok(!text.includes(form), 'no encoding of the raw key in the file');
    assert.ok(!readFileSync(join(dir, MASTER_KEY_FILE)).includes(raw), 'nor its bytes');
    const doc = JSON.parse(text);
    assert.equal(doc.keys[0].key, undefined);
    assert.equal(doc.keys[0].encrypted.kdf, 'scrypt');
    assert.equal(doc.keys[0].encrypted.N, 2 ** 15);
    assert.equal(made.encrypted, true);
    // The file decrypts independently (scrypt + AES-256-GCM, AAD = label, format, key ID) to the same key.
    const e = doc.keys[0].encrypted;
    const kek = scryptSync('correct horse battery', Buffer.from(e.salt, 'base64'), 32, {
      N: e.N,
      r: e.r,
      p: e.p,
      maxmem: 64 * 1024 * 1024,
    });
    const d = createDecipheriv('aes-256-gcm', kek, Buffer.from(e.iv, 'base64'), { authTagLength: 16 });
    d.setAAD(Buffer.from(`gatehouse/secrets-master-key/v1\n1\n${doc.keyId}`));
    d.setAuthTag(Buffer.from(e.tag, 'base64'));
    assert.deepEqual(Buffer.concat([d.update(Buffer.from(e.ciphertext, 'base64')), d.final()]), raw);

    assert.deepEqual(readMasterKeyFile(dir, 'correct horse battery')!.current.key, raw);
    assert.throws(
      () => readMasterKeyFile(dir, 'wrong horse battery'),
      (err) => isGatehouseError(err, 'GH_SECRET_MASTER_KEY') && /wrong passphrase/.test(err.message),
    );
    assert.throws(
      () => readMasterKeyFile(dir, undefined),
      (err) => isGatehouseError(err, 'GH_SECRET_MASTER_KEY') && /--passphrase-file/.test(err.message),
    );
    // An entry's key ID is bound to its ciphertext: swapping IDs breaks it.
    doc.keys[0].id = doc.keyId = 'aaaaaaaaaaaaaaaa';
    writeFileSync(join(dir, MASTER_KEY_FILE), JSON.stringify(doc), { mode: 0o600 });
    assert.throws(
      () => readMasterKeyFile(dir, 'correct horse battery'),
      (err) => isGatehouseError(err, 'GH_SECRET_MASTER_KEY'),
    );
  } finally {
    cleanup();
  }
});

test('secrets-master-key-ring-re-reads-the-file-only-when-it-changed-and-forgets-removed-keys', () => {
  const { dir, cleanup } = makeTempDir();
  try {
    const ring = new MasterKeyRing(dir, undefined);
    assert.equal(ring.file(), null);
    assert.throws(
      () => ring.byId('0123456789abcdef'),
      (err) => isGatehouseError(err, 'GH_SECRET_MASTER_KEY') && /does not exist/.test(err.message),
    );
    const first = ring.fileOrCreate().current;
    const second: MasterKey = newMasterKey();
    // Another process (a local rekey) adds a key: found when asked for.
    writeMasterKeyFile(dir, [second, first], undefined);
    assert.deepEqual(ring.byId(second.id).key, second.key);
    writeMasterKeyFile(dir, [second], undefined);
    assert.equal(ring.file()!.keys.length, 1);
    assert.throws(
      () => ring.byId(first.id),
      (err) => isGatehouseError(err, 'GH_SECRET_MASTER_KEY') && err.message.includes(first.id),
      'a key gone from the file is gone from the ring',
    );
  } finally {
    cleanup();
  }
});

test('secrets-names-safe-alphabet-reserved-identity-files-and-limits', () => {
  for (const ok of ['db', 'db-password', 'A.b_c-1', 'x'.repeat(128), 'certs.pem', 'key.pem.bak'])
    assert.equal(secretNameProblem(ok), null, ok);
  for (const bad of [
    '',
    '.',
    '..',
    '.hidden',
    '-x',
    'a/b',
    'a\\b',
    'a b',
    'x'.repeat(129),
    'é',
    'a\u0000',
    'cert.pem',
    'KEY.PEM',
    'Ca.pem',
    'crl.pem',
    '%2e%2e',
  ]) {
    assert.notEqual(secretNameProblem(bad), null, JSON.stringify(bad));
  }
  assert.throws(
    () => assertSecretValue(Buffer.alloc(0)),
    (err) => isGatehouseError(err, 'GH_SECRET_INVALID'),
  );
  assert.throws(
    () => assertSecretValue(Buffer.alloc(MAX_SECRET_BYTES + 1)),
    (err) => isGatehouseError(err, 'GH_SECRET_INVALID') && /512000/.test(err.message),
  );
  assertSecretValue(Buffer.alloc(MAX_SECRET_BYTES));
  assert.equal(parseOverlap('0'), 0);
  assert.equal(parseOverlap('1h30m'), 5_400_000);
  assert.throws(
    () => parseOverlap('soon'),
    (err) => isGatehouseError(err, 'GH_SECRET_INVALID'),
  );
});

test('secrets-subjects-use-the-policy-forms-checked-against-the-ca', () => {
  const ca = { trustDomain: 'acme.internal', roles: ['web', 'gateway'] };
  assert.deepEqual(parseSubject('role:web', ca), { kind: 'role', value: 'web', text: 'role:web' });
  assert.deepEqual(parseSubject('name:laptop-1', ca), { kind: 'name', value: 'laptop-1', text: 'name:laptop-1' });
  assert.equal(
    parseSubject('id:spiffe://acme.internal/web/laptop-1', ca).text,
    'id:spiffe://acme.internal/web/laptop-1',
  );
  const refused = (text: string, why: RegExp) =>
    assert.throws(
      () => parseSubject(text, ca),
      (err) => isGatehouseError(err, 'GH_SECRET_INVALID') && why.test(err.message),
      text,
    );
  refused('role:admin', /does not have/);
  refused('role:Web!', /role name/);
  refused('web', /is not one of/);
  refused('fingerprint:ab', /is not one of/);
  refused('name:spiffe://acme.internal/web/x', /write it as id:/);
  refused('name:a/b', /must name an identity/);
  refused('id:laptop-1', /id:spiffe/);
  refused('id:spiffe://other.internal/web/x', /outside this CA's trust domain/);
  refused('id:spiffe://acme.internal/web/../admin', /SPIFFE ID/);
  // Taking a grant back checks the syntax only: a role since removed from the config can be ungranted.
  assert.equal(parseSubject('role:old-role', { ...ca, strict: false }).text, 'role:old-role');
});

test('secrets-admin-api-base64-values-are-decoded-strictly-and-never-echoed', () => {
  assert.deepEqual(decodeBase64Value(BINARY.toString('base64')), BINARY);
  for (const bad of ['aGVsbG8', 'aGVsbG8=x', 'aGVs bG8=', 'aGVsbG9=', '****', 12, null, undefined]) {
    assert.throws(
      () => decodeBase64Value(bad),
      (err) =>
        isGatehouseError(err, 'GH_SECRET_INVALID') &&
        (typeof bad !== 'string' || bad === '' || !err.message.includes(bad)),
      String(bad),
    );
  }
});

test('secrets-master-key-dir-created-by-hand-is-used-as-is', () => {
  const { dir, cleanup } = makeTempDir();
  try {
    mkdirSync(join(dir, 'sub'));
    const key = newMasterKey();
    writeMasterKeyFile(join(dir, 'sub'), [key], undefined);
    assert.equal(new MasterKeyRing(join(dir, 'sub'), undefined).fileOrCreate().current.id, key.id);
  } finally {
    cleanup();
  }
});
