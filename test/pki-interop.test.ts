/**
 * Interop: the hand-written DER fast path for leaf certificates (src/pki/leaf-certificate.ts)
 * cross-checked against independent implementations: OpenSSL (`openssl verify -x509_strict`),
 * Go's crypto/x509 (test/goverify), GnuTLS (`certtool --verify`) and @peculiar/x509's parser.
 * Every negative check also asserts *why* the peer refused, so a refusal for an unrelated
 * reason cannot pass for the expected one.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import * as pki from '../src/pki/index.js';
import { x509 } from '../src/pki/x509-library.js';
import { run, type RunResult } from './helpers/run.js';
import { goVerify, goVerifyBinary } from './helpers/goverify.js';
import { makeTempDir } from './helpers/tmp.js';

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

type CaKeyType = 'p256' | 'p384' | 'rsa3072' | 'ed25519';
const CA_KEY_TYPES: CaKeyType[] = ['p256', 'p384', 'rsa3072', 'ed25519'];
const LEAF_KEY_TYPES: pki.KeyType[] = ['p256', 'p384', 'rsa2048', 'rsa3072', 'ed25519'];
const PROFILES: pki.LeafProfile[] = ['client', 'server', 'both'];

// CA validity covers the "expired leaf" dates (2020) and the post-2050 leaves.
const CA_NOT_BEFORE = new Date('2019-01-01T00:00:00Z');
const CA_NOT_AFTER = new Date('2060-01-01T00:00:00Z');

// Key generation is not under test; one key per type per process keeps RSA generation cheap.
const keyCache = new Map<pki.KeyType, KeyObject>();
function keyOf(type: pki.KeyType): KeyObject {
  let key = keyCache.get(type);
  if (!key) keyCache.set(type, (key = pki.generatePrivateKey(type)));
  return key;
}

interface Chain {
  rootDer: Buffer;
  intDer: Buffer;
  intKey: KeyObject;
  authority: pki.SigningAuthority;
  rootPem: string;
  intPem: string;
}

/** Root and intermediate each with a fresh key of `type` (CA keys are not shared across chains). */
async function buildChain(type: pki.KeyType): Promise<Chain> {
  const rootKey = pki.generatePrivateKey(type);
  const intKey = pki.generatePrivateKey(type);
  const rootDer = await pki.buildRootCertificate(rootKey, {
    commonName: `Interop Root ${type}`,
    organization: 'Gatehouse Test',
    notBefore: CA_NOT_BEFORE,
    notAfter: CA_NOT_AFTER,
  });
  const intDer = await pki.buildIntermediateCertificate(
    intKey,
    { certDer: rootDer, key: rootKey },
    {
      commonName: `Interop Issuing ${type}`,
      organization: 'Gatehouse Test',
      notBefore: CA_NOT_BEFORE,
      notAfter: CA_NOT_AFTER,
    },
  );
  return {
    rootDer,
    intDer,
    intKey,
    authority: pki.prepareSigningAuthority(intDer, intKey),
    rootPem: pki.toPem('CERTIFICATE', rootDer),
    intPem: pki.toPem('CERTIFICATE', intDer),
  };
}

function leafSpec(
  name: string,
  leafKey: KeyObject,
  profile: pki.LeafProfile,
  overrides: Partial<pki.LeafSpec> = {},
): pki.LeafSpec {
  return {
    serial: pki.randomSerial(),
    commonName: name,
    organizationalUnit: 'web',
    organization: 'Gatehouse Test',
    spkiDer: pki.spkiDer(leafKey),
    notBefore: new Date(Date.now() - 5 * 60_000),
    notAfter: new Date(Date.now() + 24 * 3600_000),
    profile,
    dns: [`${name}.example.test`, `${name}.svc.cluster.local`],
    // The last one has a single zero group, which RFC 5952 §4.2.2 forbids compressing to "::".
    ip: ['10.20.30.40', '2001:db8::7', '2001:db8:0:1:1:1:1:1'],
    uri: [`spiffe://example.test/web/${name}`],
    email: [`${name}@example.test`],
    crlUrl: 'http://ca.example.test/crl/issuing.crl',
    ...overrides,
  };
}

/** Writes root.pem, int.pem, `${tag}.pem` (leaf) and `${tag}-chain.pem` (leaf + intermediate for certtool). */
function writeFiles(dir: string, chain: Chain, tag: string, leafDer: Buffer) {
  const files = {
    root: join(dir, 'root.pem'),
    int: join(dir, 'int.pem'),
    leaf: join(dir, `${tag}.pem`),
    chain: join(dir, `${tag}-chain.pem`),
  };
  writeFileSync(files.root, chain.rootPem);
  writeFileSync(files.int, chain.intPem);
  writeFileSync(files.leaf, pki.toPem('CERTIFICATE', leafDer));
  writeFileSync(files.chain, pki.toPem('CERTIFICATE', leafDer) + chain.intPem);
  return files;
}

const openssl = (args: string[]) => run('openssl', args);
const certtool = (args: string[]) => run('certtool', args);
/** A copy with its own ArrayBuffer, the type @peculiar/x509's constructors take. */
const bytes = (der: Buffer): Uint8Array<ArrayBuffer> => new Uint8Array(der);
const output = (r: RunResult) => `status ${r.status}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

function assertPasses(r: RunResult, what: string): void {
  assert.equal(r.status, 0, `${what} should pass; ${output(r)}`);
}
function assertFails(r: RunResult, why: RegExp, what: string): void {
  assert.notEqual(r.status, 0, `${what} should fail; ${output(r)}`);
  assert.match(r.stdout + r.stderr, why, `${what} failed for another reason; ${output(r)}`);
}

function opensslVerify(
  files: { root: string; int: string; leaf: string },
  purpose: 'sslclient' | 'sslserver',
  extra: string[] = [],
) {
  return openssl([
    'verify',
    '-x509_strict',
    '-purpose',
    purpose,
    ...extra,
    '-CAfile',
    files.root,
    '-untrusted',
    files.int,
    files.leaf,
  ]);
}

/** RFC 5952 canonical text for IPv6 (OpenSSL prints it uncompressed and upper case), IPv4 unchanged. */
function canonicalIp(ip: string): string {
  return ip.includes(':') ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip;
}

/** RFC 7093 §2 method 1, computed from the SPKI parsed by @peculiar/asn1-x509 rather than our DER reader. */
function expectedKeyId(spkiDer: Buffer): string {
  const spki = AsnConvert.parse(spkiDer, SubjectPublicKeyInfo);
  return createHash('sha256').update(Buffer.from(spki.subjectPublicKey)).digest().subarray(0, 20).toString('hex');
}

/** `openssl x509` serial, SHA-256 fingerprint and SAN list, as lowercase hex without colons. */
async function opensslFields(leafFile: string) {
  const r = await openssl([
    'x509',
    '-in',
    leafFile,
    '-noout',
    '-serial',
    '-fingerprint',
    '-sha256',
    '-ext',
    'subjectAltName',
  ]);
  assertPasses(r, 'openssl x509');
  const serial = /^serial=([0-9A-F]+)$/m.exec(r.stdout)?.[1];
  const fingerprint = /^sha256 Fingerprint=([0-9A-F:]+)$/im.exec(r.stdout)?.[1];
  const sanLine = /X509v3 Subject Alternative Name: *\n\s*(.+)$/m.exec(r.stdout)?.[1];
  assert.ok(serial && fingerprint && sanLine, `cannot read openssl x509 output:\n${r.stdout}`);
  const sans = { dns: [] as string[], ip: [] as string[], uri: [] as string[], email: [] as string[] };
  for (const item of sanLine.split(', ')) {
    const [, type, value] = /^(DNS|IP Address|URI|email):(.*)$/.exec(item) ?? [];
    assert.ok(type && value !== undefined, `unexpected SAN item "${item}" in ${sanLine}`);
    ({ DNS: sans.dns, 'IP Address': sans.ip, URI: sans.uri, email: sans.email })[type as 'DNS']!.push(
      type === 'IP Address' ? canonicalIp(value) : value,
    );
  }
  return { serial: serial.toLowerCase(), fingerprint: fingerprint.replace(/:/g, '').toLowerCase(), sans };
}

/** The leaf as @peculiar/x509 reads it, against the spec it was built from and its issuer. */
async function assertPeculiarAgrees(leafDer: Buffer, spec: pki.LeafSpec, intDer: Buffer): Promise<void> {
  const cert = new x509.X509Certificate(bytes(leafDer));
  const issuer = new x509.X509Certificate(bytes(intDer));
  assert.equal(cert.serialNumber, spec.serial.toString('hex'), 'serial');
  assert.deepEqual(cert.subjectName.getField('CN'), [spec.commonName], 'subject CN');
  assert.deepEqual(cert.subjectName.getField('OU'), [spec.organizationalUnit], 'subject OU');
  assert.deepEqual(cert.subjectName.getField('O'), [spec.organization], 'subject O');
  assert.equal(cert.issuer, issuer.subject, 'issuer equals the intermediate subject');

  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  assert.ok(san, 'SAN extension present');
  const names = san.names.items;
  const of = (type: string) => names.filter((n) => n.type === type).map((n) => n.value);
  assert.deepEqual(of('dns'), spec.dns, 'SAN DNS');
  assert.deepEqual(of('ip').map(canonicalIp), spec.ip.map(canonicalIp), 'SAN IP');
  assert.deepEqual(of('url'), spec.uri, 'SAN URI');
  assert.deepEqual(of('email'), spec.email, 'SAN email');
  assert.equal(
    names.length,
    spec.dns.length + spec.ip.length + spec.uri.length + spec.email.length,
    'no other SAN entries',
  );

  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  assert.ok(eku, 'EKU extension present');
  const wanted = [
    ...(spec.profile !== 'client' ? [SERVER_AUTH] : []),
    ...(spec.profile !== 'server' ? [CLIENT_AUTH] : []),
  ];
  assert.deepEqual([...eku.usages].sort(), wanted.sort(), 'extended key usages');

  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  assert.ok(bc, 'basicConstraints present');
  assert.equal(bc.ca, false, 'basicConstraints cA is FALSE');
  assert.equal(bc.critical, true, 'basicConstraints is critical');

  const ku = cert.getExtension(x509.KeyUsagesExtension);
  assert.ok(ku, 'keyUsage present');
  assert.equal(ku.critical, true, 'keyUsage is critical');
  const isRsa = AsnConvert.parse(spec.spkiDer, SubjectPublicKeyInfo).algorithm.algorithm === '1.2.840.113549.1.1.1';
  const expectedKu = x509.KeyUsageFlags.digitalSignature | (isRsa ? x509.KeyUsageFlags.keyEncipherment : 0);
  assert.equal(ku.usages, expectedKu, 'keyUsage bits');

  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  assert.ok(ski, 'SKI present');
  assert.equal(ski.keyId, expectedKeyId(spec.spkiDer), 'SKI is the RFC 7093 method 1 hash of the leaf key');
  const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension);
  const issuerSki = issuer.getExtension(x509.SubjectKeyIdentifierExtension);
  assert.ok(aki?.keyId && issuerSki, 'AKI in leaf and SKI in intermediate');
  assert.equal(aki.keyId, issuerSki.keyId, 'leaf AKI links to the intermediate SKI');

  const cdp = cert.getExtension(x509.CRLDistributionPointsExtension);
  assert.ok(cdp, 'CRL distribution points present');
  const urls = [...cdp.distributionPoints].flatMap((dp) =>
    [...(dp.distributionPoint?.fullName ?? [])].map((gn) => gn.uniformResourceIdentifier),
  );
  assert.deepEqual(urls, [spec.crlUrl], 'CRL distribution point URL');

  assert.equal(
    cert.notBefore.getTime(),
    Math.floor(spec.notBefore.getTime() / 1000) * 1000,
    'notBefore (to the second)',
  );
  assert.equal(cert.notAfter.getTime(), Math.floor(spec.notAfter.getTime() / 1000) * 1000, 'notAfter (to the second)');
  assert.equal(
    await cert.verify({ publicKey: issuer }),
    true,
    '@peculiar/x509 verifies the signature with the intermediate',
  );
}

// ------------------------------------------------------------------------------------- matrix

for (const caType of CA_KEY_TYPES) {
  describe(`${caType}-ca-root-intermediate`, () => {
    let chain: Chain;
    let dir: string;
    let cleanup: () => void;
    before(async () => {
      ({ dir, cleanup } = makeTempDir('gatehouse-interop-'));
      chain = await buildChain(caType);
      await goVerifyBinary();
    });
    after(() => cleanup?.());

    for (const leafType of LEAF_KEY_TYPES) {
      for (const profile of PROFILES) {
        const client = profile !== 'server';
        const server = profile !== 'client';
        test(`leaf-${leafType}-${profile}-verifies-with-openssl-go-certtool-and-parses-identically-in-peculiar-x509`, async () => {
          const name = `${leafType}-${profile}`;
          const spec = leafSpec(name, keyOf(leafType), profile);
          const leafDer = pki.buildLeafCertificate(chain.authority, spec);
          const files = writeFiles(dir, chain, name, leafDer);
          const goArgs = ['-roots', files.root, '-intermediates', files.int];
          // GnuTLS 'high' (128-bit security) refuses RSA 2048, which is 112-bit; that one leaf is checked at 'medium'.
          const certtoolProfile = leafType === 'rsa2048' ? 'medium' : 'high';
          const certtoolVerify = (eku: string) =>
            certtool([
              '--verify',
              '--load-ca-certificate',
              files.root,
              '--infile',
              files.chain,
              '--verify-profile',
              certtoolProfile,
              '--verify-purpose',
              eku,
            ]);

          const [sslclient, sslserver, goClient, goServer, goAny, ctClient, ctServer, fields] = await Promise.all([
            opensslVerify(files, 'sslclient'),
            opensslVerify(files, 'sslserver'),
            goVerify([...goArgs, '-usage', 'client', files.leaf]),
            goVerify([...goArgs, '-usage', 'server', files.leaf]),
            goVerify([...goArgs, '-usage', 'any', files.leaf]),
            certtoolVerify(CLIENT_AUTH),
            certtoolVerify(SERVER_AUTH),
            opensslFields(files.leaf),
          ]);

          // OpenSSL, strict RFC 5280 checks, purpose from the EKU.
          if (client) assertPasses(sslclient, 'openssl verify -purpose sslclient');
          else
            assertFails(
              sslclient,
              /unsuitable certificate purpose/,
              'openssl verify -purpose sslclient of a server-only leaf',
            );
          if (server) assertPasses(sslserver, 'openssl verify -purpose sslserver');
          else
            assertFails(
              sslserver,
              /unsuitable certificate purpose/,
              'openssl verify -purpose sslserver of a client-only leaf',
            );

          // Go crypto/x509.
          assertPasses(goAny, 'goverify -usage any');
          assert.match(goAny.stdout, /^OK$/m);
          if (client) assertPasses(goClient, 'goverify -usage client');
          else assertFails(goClient, /incompatible key usage/, 'goverify -usage client of a server-only leaf');
          if (server) assertPasses(goServer, 'goverify -usage server');
          else assertFails(goServer, /incompatible key usage/, 'goverify -usage server of a client-only leaf');
          if (server) {
            const [byDns, byIpv4, byIpv6, byOther] = await Promise.all([
              goVerify([...goArgs, '-usage', 'server', '-dns', spec.dns[1]!, files.leaf]),
              goVerify([...goArgs, '-usage', 'server', '-dns', spec.ip[0]!, files.leaf]),
              goVerify([...goArgs, '-usage', 'server', '-dns', spec.ip[1]!, files.leaf]),
              goVerify([...goArgs, '-usage', 'server', '-dns', 'elsewhere.example.test', files.leaf]),
            ]);
            assertPasses(byDns, `goverify -dns ${spec.dns[1]} (DNS SAN)`);
            assertPasses(byIpv4, `goverify -dns ${spec.ip[0]} (IPv4 SAN)`);
            assertPasses(byIpv6, `goverify -dns ${spec.ip[1]} (IPv6 SAN)`);
            assertFails(byOther, /not valid for any names|is valid for/, 'goverify -dns with a name not in the SAN');
          }

          // GnuTLS.
          if (client)
            assertPasses(ctClient, `certtool --verify-profile ${certtoolProfile} --verify-purpose clientAuth`);
          else
            assertFails(ctClient, /does not match the intended purpose/, 'certtool clientAuth of a server-only leaf');
          if (server)
            assertPasses(ctServer, `certtool --verify-profile ${certtoolProfile} --verify-purpose serverAuth`);
          else
            assertFails(ctServer, /does not match the intended purpose/, 'certtool serverAuth of a client-only leaf');

          // Our own reader agrees with OpenSSL on serial, fingerprint and SANs.
          const info = pki.parseCertificate(leafDer);
          assert.equal(info.serial, fields.serial, 'parseCertificate serial = openssl -serial');
          assert.equal(
            info.fingerprint,
            fields.fingerprint,
            'parseCertificate fingerprint = openssl -fingerprint -sha256',
          );
          assert.deepEqual(info.sans.dns, fields.sans.dns, 'SAN DNS (openssl)');
          assert.deepEqual(info.sans.ip.map(canonicalIp), fields.sans.ip, 'SAN IP (openssl)');
          assert.deepEqual(
            info.sans.ip,
            spec.ip.map(canonicalIp),
            'parseCertificate prints IPs in RFC 5952 canonical form',
          );
          assert.deepEqual(info.sans.uri, fields.sans.uri, 'SAN URI (openssl)');
          assert.deepEqual(info.sans.email, fields.sans.email, 'SAN email (openssl)');
          assert.equal(info.isCa, false);
          assert.deepEqual(info.crlUrls, [spec.crlUrl]);
          const identity = pki.identityOf(info);
          assert.equal(identity.name, name);
          assert.equal(identity.role, 'web');
          assert.equal(identity.spiffeId, spec.uri[0]);

          // @peculiar/x509 reads every field back and verifies the signature.
          await assertPeculiarAgrees(leafDer, spec, chain.intDer);

          // And the module's own chain verifier accepts it.
          assert.equal(pki.verifyChain([leafDer, chain.intDer], chain.rootDer).length, 3);
        });
      }
    }
  });
}

// ---------------------------------------------------------------------- serials and validity

describe('leaf-serials-and-validity', () => {
  let chain: Chain;
  let dir: string;
  let cleanup: () => void;
  before(async () => {
    ({ dir, cleanup } = makeTempDir('gatehouse-interop-'));
    chain = await buildChain('p256');
    await goVerifyBinary();
  });
  after(() => cleanup?.());

  test('random-serials-are-positive-at-least-64-bits-distinct-and-vary-in-every-free-bit', () => {
    const serials = Array.from({ length: 1000 }, () => pki.randomSerial());
    assert.equal(new Set(serials.map((s) => s.toString('hex'))).size, 1000, '1000 serials, all distinct');
    const bits = serials[0]!.length * 8;
    const seenZero = new Array<boolean>(bits).fill(false);
    const seenOne = new Array<boolean>(bits).fill(false);
    for (const serial of serials) {
      assert.equal(serial.length * 8, bits, 'every serial has the same length');
      assert.ok(serial.length * 8 >= 64, 'at least 64 bits');
      assert.ok(serial.length <= 20, 'RFC 5280: at most 20 octets');
      assert.equal(serial[0]! & 0x80, 0, 'top bit clear: the DER INTEGER is positive without a pad byte');
      assert.notEqual(serial[0], 0, 'no leading zero octet: full length, minimal DER');
      for (let bit = 0; bit < serial.length * 8; bit++) {
        if ((serial[bit >> 3]! >> (7 - (bit & 7))) & 1) seenOne[bit] = true;
        else seenZero[bit] = true;
      }
    }
    // Bits 0 and 1 are fixed by design; every other bit must have taken both values across
    // 1000 draws (a constant bit there would happen with probability 2^-999 per bit if random).
    const stuck = seenZero.map((zero, bit) => bit >= 2 && !(zero && seenOne[bit])).indexOf(true);
    assert.equal(stuck, -1, `bit ${stuck} of the serial never changed`);
    assert.ok(bits - 2 >= 64, 'at least 64 random bits');
  });

  test('serial-in-leaf-is-a-positive-minimal-der-integer-as-read-by-openssl-and-peculiar', async () => {
    const cases: Array<[label: string, serial: Buffer, expected: string]> = [
      ['random', pki.randomSerial(), ''],
      [
        'top-bit-set-needs-a-pad-byte',
        Buffer.from('80112233445566778899aabbccddeeff', 'hex'),
        '80112233445566778899aabbccddeeff',
      ],
      ['leading-zero-octets-are-trimmed', Buffer.from('0000112233445566', 'hex'), '112233445566'],
    ];
    for (const [label, serial, expectedHex] of cases) {
      const expected = expectedHex || serial.toString('hex');
      const leafDer = pki.buildLeafCertificate(
        chain.authority,
        leafSpec(`serial-${label}`, keyOf('p256'), 'client', { serial }),
      );
      const files = writeFiles(dir, chain, `serial-${label}`, leafDer);
      assertPasses(await opensslVerify(files, 'sslclient'), `openssl verify of the ${label} serial leaf`);
      const fields = await opensslFields(files.leaf);
      assert.equal(fields.serial.replace(/^0+(?=.)/, ''), expected, `${label}: openssl serial`);
      assert.equal(pki.parseCertificate(leafDer).serial, expected, `${label}: parseCertificate serial`);
      const peculiarSerial = new x509.X509Certificate(bytes(leafDer)).serialNumber;
      assert.equal(peculiarSerial.replace(/^(00)+(?=.)/, ''), expected, `${label}: @peculiar/x509 serial`);
      // OpenSSL (c2i_ASN1_INTEGER) and Go (cryptobyte) both reject a non-minimal INTEGER, and
      // opensslFields() only accepts an unsigned serial, so passing both means positive and minimal DER.
      assertPasses(
        await goVerify(['-roots', files.root, '-intermediates', files.int, '-usage', 'client', files.leaf]),
        `${label}: goverify`,
      );
    }
  });

  test('validity-uses-utctime-through-2049-and-generalizedtime-from-2050', async () => {
    const cases: Array<[notAfter: string, tag: 'UTCTIME' | 'GENERALIZEDTIME', opensslDate: RegExp]> = [
      ['2049-12-31T23:59:59Z', 'UTCTIME', /^notAfter=Dec 31 23:59:59 2049 GMT$/m],
      ['2050-01-01T00:00:00Z', 'GENERALIZEDTIME', /^notAfter=Jan {2}1 00:00:00 2050 GMT$/m],
      ['2051-06-30T12:00:00Z', 'GENERALIZEDTIME', /^notAfter=Jun 30 12:00:00 2051 GMT$/m],
    ];
    for (const [notAfterText, tag, opensslDate] of cases) {
      const notAfter = new Date(notAfterText);
      const spec = leafSpec(`validity-${notAfter.getUTCFullYear()}`, keyOf('p256'), 'both', { notAfter });
      const leafDer = pki.buildLeafCertificate(chain.authority, spec);
      const files = writeFiles(dir, chain, spec.commonName, leafDer);
      const dates = await openssl(['x509', '-in', files.leaf, '-noout', '-startdate', '-enddate']);
      assertPasses(dates, 'openssl x509 -enddate');
      assert.match(dates.stdout, opensslDate, `openssl prints notAfter ${notAfterText}`);
      const parsed = (await openssl(['asn1parse', '-in', files.leaf])).stdout;
      const times = [...parsed.matchAll(/prim: (UTCTIME|GENERALIZEDTIME)\s*:(\S+)/g)].map((m) => [m[1], m[2]]);
      assert.equal(times.length, 2, `two times in the leaf:\n${parsed}`);
      assert.equal(times[0]![0], 'UTCTIME', 'notBefore (now) is a UTCTime');
      assert.deepEqual(
        times[1],
        [tag, tag === 'UTCTIME' ? notAfterText.slice(2).replace(/[-T:]/g, '') : notAfterText.replace(/[-T:]/g, '')],
        'notAfter encoding',
      );
      assert.equal(pki.parseCertificate(leafDer).notAfter.getTime(), notAfter.getTime(), 'parseCertificate notAfter');
      assert.equal(
        new x509.X509Certificate(bytes(leafDer)).notAfter.getTime(),
        notAfter.getTime(),
        '@peculiar/x509 notAfter',
      );
      // Go decodes the time too: valid one second before notAfter, expired one second after.
      const goArgs = ['-roots', files.root, '-intermediates', files.int, '-usage', 'server'];
      const atIso = (ms: number) => new Date(notAfter.getTime() + ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
      assertPasses(
        await goVerify([...goArgs, '-at', atIso(-1000), files.leaf]),
        `goverify just before ${notAfterText}`,
      );
      assertFails(
        await goVerify([...goArgs, '-at', atIso(1000), files.leaf]),
        /expired/,
        `goverify just after ${notAfterText}`,
      );
      const epoch = (ms: number) => String(Math.floor((notAfter.getTime() + ms) / 1000));
      assertPasses(
        await opensslVerify(files, 'sslserver', ['-attime', epoch(-1000)]),
        `openssl verify just before ${notAfterText}`,
      );
      assertFails(
        await opensslVerify(files, 'sslserver', ['-attime', epoch(1000)]),
        /certificate has expired/,
        `openssl verify just after ${notAfterText}`,
      );
    }
  });

  test('expired-leaf-fails-openssl-go-and-verifyChain-but-verifies-at-a-time-inside-its-validity', async () => {
    const spec = leafSpec('expired', keyOf('p256'), 'both', {
      notBefore: new Date('2020-01-01T00:00:00Z'),
      notAfter: new Date('2021-01-01T00:00:00Z'),
    });
    const leafDer = pki.buildLeafCertificate(chain.authority, spec);
    const files = writeFiles(dir, chain, 'expired', leafDer);
    const goArgs = ['-roots', files.root, '-intermediates', files.int];
    assertFails(
      await opensslVerify(files, 'sslclient'),
      /certificate has expired/,
      'openssl verify of an expired leaf',
    );
    assertFails(await goVerify([...goArgs, '-usage', 'client', files.leaf]), /expired/, 'goverify of an expired leaf');
    assert.throws(
      () => pki.verifyChain([leafDer, chain.intDer], chain.rootDer),
      (err: unknown) => err instanceof Error && (err as { code?: string }).code === 'GH_CHAIN_INVALID',
    );
    // The same certificate is fine inside its validity: the refusal above is the expiry alone.
    const inside = new Date('2020-06-01T00:00:00Z');
    assertPasses(
      await opensslVerify(files, 'sslclient', ['-attime', String(inside.getTime() / 1000)]),
      'openssl verify -attime 2020-06-01',
    );
    assertPasses(
      await goVerify([...goArgs, '-usage', 'client', '-at', '2020-06-01T00:00:00Z', files.leaf]),
      'goverify -at 2020-06-01',
    );
    assert.equal(pki.verifyChain([leafDer, chain.intDer], chain.rootDer, inside).length, 3);
  });

  test('leaf-from-another-ca-fails-openssl-and-go', async () => {
    const other = await buildChain('p256');
    const leafDer = pki.buildLeafCertificate(other.authority, leafSpec('foreign', keyOf('p256'), 'both'));
    const files = writeFiles(dir, chain, 'foreign', leafDer); // root/int of `chain`, leaf of `other`
    // Same issuer name, different issuing key: only the key identifiers and signature tell them apart.
    assertFails(
      await opensslVerify(files, 'sslclient'),
      /unable to get local issuer certificate|certificate signature failure/,
      'openssl verify of a foreign leaf',
    );
    assertFails(
      await goVerify(['-roots', files.root, '-intermediates', files.int, files.leaf]),
      /unknown authority/,
      'goverify of a foreign leaf',
    );
    assert.throws(
      () => pki.verifyChain([leafDer, chain.intDer], chain.rootDer),
      (err: unknown) => (err as { code?: string }).code === 'GH_CHAIN_INVALID',
    );
  });
});
