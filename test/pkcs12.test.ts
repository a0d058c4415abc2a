/**
 * PKCS#12 export, checked against real `openssl pkcs12` (the oracle) and Node's own PKCS#12
 * loader (tls.createSecureContext, i.e. OpenSSL's PKCS12_parse).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import * as pki from '../src/pki/index.js';
import { runSync, type RunResult } from './helpers/run.js';
import { makeTempDir } from './helpers/tmp.js';

const FAST = 2048; // OpenSSL's own default; the default (600000) is exercised once below.
const notBefore = new Date(Date.now() - 60_000);
const notAfter = new Date(Date.now() + 86_400_000);

let tmp: { dir: string; cleanup: () => void };
let rootDer: Buffer;
let intermediateDer: Buffer;
let ca: pki.SigningAuthority;
let fileCounter = 0;

before(async () => {
  tmp = makeTempDir('gatehouse-pkcs12-');
  const rootKey = pki.generatePrivateKey('p384');
  rootDer = await pki.buildRootCertificate(rootKey, {
    commonName: 'Test Root',
    organization: 'Gatehouse',
    notBefore,
    notAfter,
  });
  const intKey = pki.generatePrivateKey('p256');
  intermediateDer = await pki.buildIntermediateCertificate(
    intKey,
    { certDer: rootDer, key: rootKey },
    {
      commonName: 'Test Issuing CA',
      organization: 'Gatehouse',
      notBefore,
      notAfter,
    },
  );
  ca = pki.prepareSigningAuthority(intermediateDer, intKey);
});

after(() => tmp.cleanup());

function leafFor(type: pki.KeyType): { key: KeyObject; leafDer: Buffer } {
  const key = pki.generatePrivateKey(type);
  const leafDer = pki.buildLeafCertificate(ca, {
    serial: pki.randomSerial(),
    commonName: 'web-a',
    organizationalUnit: 'web',
    organization: 'Gatehouse',
    spkiDer: pki.spkiDer(key),
    notBefore,
    notAfter,
    profile: 'client',
    dns: [],
    ip: [],
    uri: ['spiffe://x/web/a'],
    email: [],
  });
  return { key, leafDer };
}

/** Writes the file and the passphrase file; openssl reads the passphrase with -passin file:. */
function write(p12: Buffer, passphrase: string): { p12Path: string; passPath: string } {
  const n = ++fileCounter;
  const p12Path = join(tmp.dir, `id-${n}.p12`);
  const passPath = join(tmp.dir, `pass-${n}.txt`);
  writeFileSync(p12Path, p12);
  writeFileSync(passPath, `${passphrase}\n`, 'utf8');
  return { p12Path, passPath };
}

function openssl(args: string[]): RunResult {
  return runSync('openssl', args);
}

/** "localKeyID: AB CD …" as openssl prints it. */
function opensslHex(bytes: Buffer): string {
  return [...bytes].map((b) => b.toString(16).toUpperCase().padStart(2, '0')).join(' ');
}

const count = (haystack: string, needle: string): number => haystack.split(needle).length - 1;

for (const type of ['p256', 'rsa2048', 'ed25519'] as const) {
  test(`openssl reads a ${type} identity: same key, chain in order, friendlyName and localKeyId`, () => {
    const { key, leafDer } = leafFor(type);
    const chain = [leafDer, intermediateDer, rootDer];
    const passphrase = 'correct horse battery staple';
    const p12 = pki.buildPkcs12({
      privateKey: key,
      certificatesDer: chain,
      passphrase,
      friendlyName: 'web-a',
      iterations: FAST,
    });
    const { p12Path, passPath } = write(p12, passphrase);

    const out = openssl(['pkcs12', '-in', p12Path, '-passin', `file:${passPath}`, '-nodes']);
    assert.equal(out.status, 0, out.stderr);

    // The private key openssl recovered has the original's public key (via openssl pkey -pubout).
    const keyPem = pki.decodePem(out.stdout, 'PRIVATE KEY');
    assert.equal(keyPem.length, 1, 'exactly one private key');
    const keyPath = join(tmp.dir, `key-${fileCounter}.pem`);
    writeFileSync(keyPath, pki.toPem('PRIVATE KEY', keyPem[0]!), { mode: 0o600 });
    const pub = openssl(['pkey', '-in', keyPath, '-pubout']);
    assert.equal(pub.status, 0, pub.stderr);
    assert.equal(pub.stdout, createPublicKey(key).export({ type: 'spki', format: 'pem' }));

    // Every certificate, byte for byte, leaf first.
    assert.deepEqual(pki.decodePem(out.stdout, 'CERTIFICATE'), chain);

    // localKeyId (SHA-1 of the leaf) and friendlyName on both the key bag and the leaf cert bag only.
    const localKeyId = opensslHex(createHash('sha1').update(leafDer).digest());
    assert.equal(count(out.stdout, `localKeyID: ${localKeyId}`), 2, out.stdout);
    assert.equal(count(out.stdout, 'friendlyName: web-a'), 2, out.stdout);
    assert.equal(count(out.stdout, 'Bag Attributes: <No Attributes>'), 2, 'intermediate and root carry no attributes');

    // Node's PKCS#12 loader accepts it (it also checks that the key matches the leaf).
    assert.doesNotThrow(() => createSecureContext({ pfx: p12, passphrase }));
    assert.throws(() => createSecureContext({ pfx: p12, passphrase: 'wrong' }), /mac verify failure/);
  });
}

test('openssl -info: MAC is HMAC-SHA256, key and certs are PBES2/PBKDF2-SHA256/AES-256-CBC at the default 600000 iterations', () => {
  const { key, leafDer } = leafFor('p256');
  const passphrase = 's3cret-passphrase';
  const p12 = pki.buildPkcs12({ privateKey: key, certificatesDer: [leafDer, intermediateDer], passphrase });
  const { p12Path, passPath } = write(p12, passphrase);

  const out = openssl(['pkcs12', '-in', p12Path, '-passin', `file:${passPath}`, '-info', '-nodes']);
  assert.equal(out.status, 0, out.stderr);
  const info = out.stdout + out.stderr;
  assert.match(info, /MAC: sha256, Iteration 600000/);
  assert.match(info, /MAC length: 32, salt length: 16/);
  assert.match(info, /PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256/);
  assert.match(info, /Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256/);
  // OpenSSL 3's layout: both certificates in the encrypted SafeContents, then the key bag in plain data.
  assert.match(info, /PKCS7 Encrypted data: [^\n]*\nCertificate bag\nCertificate bag\nPKCS7 Data\nShrouded Keybag/);
  // No friendlyName given: none written.
  assert.doesNotMatch(info, /friendlyName/);
});

test('a wrong passphrase fails the MAC check', () => {
  const { key, leafDer } = leafFor('p256');
  const p12 = pki.buildPkcs12({
    privateKey: key,
    certificatesDer: [leafDer],
    passphrase: 'right one',
    iterations: FAST,
  });
  const { p12Path } = write(p12, 'right one');
  const out = openssl(['pkcs12', '-in', p12Path, '-passin', 'pass:wrong one', '-nodes']);
  assert.notEqual(out.status, 0);
  // OpenSSL 3.0's app says "Mac verify error: invalid password?"; the library error is "mac verify failure".
  assert.match(out.stderr, /mac verify (failure|error)/i);
  assert.throws(() => createSecureContext({ pfx: p12, passphrase: 'wrong one' }), /mac verify failure/);
  const ok = openssl(['pkcs12', '-in', p12Path, '-passin', 'pass:right one', '-nodes']);
  assert.equal(ok.status, 0, ok.stderr);
});

test('non-ASCII passphrase: UTF-8 for PBKDF2, BMPString for the MAC, as OpenSSL 3 and Node expect', () => {
  const { key, leafDer } = leafFor('p256');
  const passphrase = 'pässwörd € 鍵 🔑';
  const p12 = pki.buildPkcs12({
    privateKey: key,
    certificatesDer: [leafDer, intermediateDer],
    passphrase,
    friendlyName: 'Zoë’s key',
    iterations: FAST,
  });
  const { p12Path, passPath } = write(p12, passphrase);
  const out = openssl(['pkcs12', '-in', p12Path, '-passin', `file:${passPath}`, '-nodes']);
  assert.equal(out.status, 0, out.stderr);
  assert.doesNotMatch(out.stderr, /warning/i, "verified as UTF-8, not through OpenSSL's legacy-encoding fallback");
  assert.equal(pki.decodePem(out.stdout, 'PRIVATE KEY').length, 1);
  // friendlyName is a BMPString: UTF-16BE of the string, as `openssl pkcs12 -export -name` writes it.
  assert.ok(p12.includes(Buffer.concat([Buffer.from([0x1e, 18]), Buffer.from('Zoë’s key', 'utf16le').swap16()])));
  assert.doesNotThrow(() => createSecureContext({ pfx: p12, passphrase }));
});

test("the RFC 7292 Appendix B KDF matches OpenSSL's PKCS12KDF for IDs 1, 2 and 3, multi-block output included", () => {
  const passphrase = 'pässwörd';
  const bmp = Buffer.concat([Buffer.from(passphrase, 'utf16le').swap16(), Buffer.alloc(2)]);
  const salt = Buffer.from('0123456789abcdef0123456789abcdef01', 'hex'); // 17 bytes: exercises the fill
  for (const id of [1, 2, 3] as const) {
    for (const length of [16, 32, 80]) {
      const out = openssl([
        'kdf',
        '-keylen',
        String(length),
        '-kdfopt',
        'digest:SHA256',
        '-kdfopt',
        `hexpass:${bmp.toString('hex')}`,
        '-kdfopt',
        `hexsalt:${salt.toString('hex')}`,
        '-kdfopt',
        'iter:1000',
        '-kdfopt',
        `id:${id}`,
        'PKCS12KDF',
      ]);
      assert.equal(out.status, 0, out.stderr);
      const expected = Buffer.from(out.stdout.trim().replace(/:/g, ''), 'hex');
      assert.deepEqual(pki.pkcs12Kdf(passphrase, salt, id, 1000, length), expected, `id ${id}, length ${length}`);
    }
  }
});

test('every export uses fresh salts and IVs', () => {
  const { key, leafDer } = leafFor('p256');
  const input = { privateKey: key, certificatesDer: [leafDer], passphrase: 'x', iterations: 1 };
  assert.notDeepEqual(pki.buildPkcs12(input), pki.buildPkcs12(input));
});

test('refuses an empty passphrase, a key that does not match the leaf, no certificates, bad iterations', () => {
  const { key, leafDer } = leafFor('p256');
  const other = pki.generatePrivateKey('p256');
  assert.throws(() => pki.buildPkcs12({ privateKey: key, certificatesDer: [leafDer], passphrase: '' }), /passphrase/);
  assert.throws(
    () => pki.buildPkcs12({ privateKey: other, certificatesDer: [leafDer], passphrase: 'x', iterations: FAST }),
    /does not match/,
  );
  assert.throws(
    () => pki.buildPkcs12({ privateKey: key, certificatesDer: [], passphrase: 'x', iterations: FAST }),
    /leaf/,
  );
  assert.throws(
    () => pki.buildPkcs12({ privateKey: key, certificatesDer: [leafDer], passphrase: 'x', iterations: 0 }),
    /iterations/,
  );
  assert.throws(
    () =>
      pki.buildPkcs12({
        privateKey: createPublicKey(key),
        certificatesDer: [leafDer],
        passphrase: 'x',
        iterations: FAST,
      }),
    /private key/,
  );
});
