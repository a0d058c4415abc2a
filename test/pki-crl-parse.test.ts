/**
 * The hand-written CRL reader (src/pki/crl-parse.ts) against two independent judges,
 * @peculiar/x509's X509Crl and `openssl crl -text`, on CRLs made by src/pki/crl.ts and by
 * `openssl ca -gencrl`; its signature check; and its refusals of malformed and unsupported CRLs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CRLNumber } from '@peculiar/asn1-x509';
import { isGatehouseError } from '../src/errors/errors.js';
import * as pki from '../src/pki/index.js';
import * as der from '../src/pki/der.js';
import { x509 } from '../src/pki/x509-library.js';
import { buildTestPki, issueLeaf, type TestCa } from './helpers/crl-pki.js';
import { generateCrl, makeCa, makeLeaf, opensslCrlText, revokeLeaf } from './helpers/openssl-pki.js';
import { makeTempDir } from './helpers/tmp.js';

const bytes = (b: Buffer): Uint8Array<ArrayBuffer> => new Uint8Array(b);
const seconds = (d: Date) => Math.floor(d.getTime() / 1000) * 1000;
const big = (hex: string) => BigInt(`0x${hex}`);
/** How a serial written in hex is keyed: whole octets, leading zero octets dropped, one kept. */
const serialKey = (hex: string) => (hex.length % 2 ? `0${hex}` : hex).replace(/^(00)+(?=..)/, '');
// RFC 5280 §5.3.1 codes, written out independently of src/pki/crl.ts.
const REASON_CODE: Record<string, number> = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
};

function assertCrlError(fn: () => unknown, code: 'GH_CRL_INVALID' | 'GH_CRL_SIGNATURE', message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isGatehouseError(err), `a GatehouseError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    return true;
  });
}

/** Entries that exercise INTEGER and time encoding: a 0x00 pad, leading zero octets, one digit, 1999, 2051. */
function sampleEntries(): pki.RevokedEntry[] {
  const serials = ['80112233445566778899aabbccddeeff', '0000abcdef', '1', '7f', pki.randomSerial().toString('hex')];
  const reasons: pki.CrlReason[] = ['keyCompromise', 'unspecified', 'superseded', 'certificateHold', 'aACompromise'];
  const dates = [
    new Date('1999-12-31T23:59:59Z'),
    new Date('2051-01-02T03:04:05Z'),
    new Date(Date.UTC(2024, 5, 1)),
    new Date(Date.UTC(2025, 0, 1, 12)),
    new Date(Date.UTC(2026, 1, 28, 23, 59, 59)),
  ];
  return serials.map((serial, i) => ({ serial, revokedAt: dates[i]!, reason: reasons[i]! }));
}

/** serial key → {revokedAt, reason}, as plain data for deepEqual. */
function entriesOf(crl: pki.ParsedCrl): Array<[string, number, string]> {
  return [...crl.revoked].map(([serial, e]) => [serial, e.revokedAt.getTime(), e.reason]);
}

/** The parsed CRL against X509Crl: issuer bytes, dates, number, AKI, every entry. */
function assertMatchesPeculiar(parsed: pki.ParsedCrl, crlDer: Buffer): void {
  const lib = new x509.X509Crl(bytes(crlDer), { berOptions: { maxNodes: 1_000_000 } });
  assert.ok(parsed.issuerNameDer.equals(Buffer.from(lib.issuerName.toArrayBuffer())), 'issuer Name DER');
  assert.equal(parsed.thisUpdate.getTime(), lib.thisUpdate.getTime(), 'thisUpdate');
  assert.equal(parsed.nextUpdate?.getTime(), lib.nextUpdate?.getTime(), 'nextUpdate');
  const number = lib.getExtension('2.5.29.20');
  assert.equal(
    parsed.crlNumber,
    number ? BigInt(String(AsnConvert.parse(number.value, CRLNumber).value)) : null,
    'CRL number',
  );
  const aki = lib.getExtension(x509.AuthorityKeyIdentifierExtension);
  assert.equal(parsed.issuerKeyId?.toString('hex') ?? null, aki?.keyId ?? null, 'AKI');
  assert.ok(parsed.signature.equals(Buffer.from(lib.signature)), 'signature bytes');
  assert.deepEqual(
    [...parsed.revoked].map(([serial, e]) => ({
      serial: big(serial),
      at: e.revokedAt.getTime(),
      reason: REASON_CODE[e.reason],
    })),
    lib.entries.map((e) => ({ serial: big(e.serialNumber), at: e.revocationDate.getTime(), reason: e.reason ?? 0 })),
    'every entry, in order, with its reason (absent = unspecified)',
  );
}

async function assertMatchesOpenssl(parsed: pki.ParsedCrl, file: string): Promise<void> {
  const view = await opensslCrlText(file);
  assert.equal(view.issuer, pki.formatDn(parsed.issuer).replace(/, /g, ','), 'issuer (RFC 2253)');
  assert.equal(view.lastUpdate.getTime(), parsed.thisUpdate.getTime(), 'lastUpdate');
  assert.equal(view.nextUpdate?.getTime() ?? null, parsed.nextUpdate?.getTime() ?? null, 'nextUpdate');
  assert.equal(view.crlNumber, parsed.crlNumber, 'CRL number');
  assert.equal(view.akid, parsed.issuerKeyId?.toString('hex') ?? null, 'AKI');
  assert.deepEqual(
    [...parsed.revoked].map(([serial, e]) => ({
      serial: big(serial),
      revokedAt: e.revokedAt.getTime(),
      reason: e.reason,
    })),
    view.entries.map((e) => ({
      serial: e.serial,
      revokedAt: e.revokedAt.getTime(),
      reason: e.reason ?? 'unspecified',
    })),
    'openssl lists the same serials, dates and reasons',
  );
}

describe('pki-crl-parse gatehouse-built crls', () => {
  let tmp: ReturnType<typeof makeTempDir>;
  before(() => (tmp = makeTempDir('gatehouse-crl-parse-')));
  after(() => tmp?.cleanup());

  for (const type of ['p256', 'p384', 'rsa2048', 'ed25519'] as const) {
    test(`parse-gatehouse-crl-${type}-matches-peculiar-and-openssl-and-verifies-with-its-issuer-only`, async () => {
      const { root, intermediate } = await buildTestPki(`Parse ${type}`, type);
      const entries = sampleEntries();
      const spec = {
        crlNumber: 2n ** 64n + 1n,
        thisUpdate: new Date(Date.now() - 60_000),
        nextUpdate: new Date('2051-03-04T05:06:07Z'),
        entries,
      };
      const crlDer = pki.buildCrl(intermediate.authority, spec);
      const parsed = pki.parseCrl(crlDer);

      assert.ok(parsed.der.equals(crlDer));
      assert.ok(parsed.issuerNameDer.equals(intermediate.authority.subjectNameDer), 'issuer Name bytes as signed');
      assert.ok(parsed.issuerKeyId?.equals(intermediate.authority.keyIdentifier), 'AKI = issuer key identifier');
      assert.equal(parsed.crlNumber, 2n ** 64n + 1n);
      assert.equal(parsed.thisUpdate.getTime(), seconds(spec.thisUpdate));
      assert.equal(parsed.nextUpdate?.toISOString(), '2051-03-04T05:06:07.000Z', 'GeneralizedTime from 2050');
      assert.equal(parsed.signatureAlgorithm, intermediate.authority.algorithm.oid);
      assert.deepEqual(
        entriesOf(parsed),
        entries.map((e) => [serialKey(e.serial), e.revokedAt.getTime(), e.reason]),
      );

      const pem = pki.toPem('X509 CRL', crlDer);
      assert.deepEqual(entriesOf(pki.parseCrl(pem)), entriesOf(parsed), 'PEM string reads as the DER');
      assert.deepEqual(entriesOf(pki.parseCrl(Buffer.from(pem))), entriesOf(parsed), 'PEM bytes read as the DER');

      assertMatchesPeculiar(parsed, crlDer);
      const file = join(tmp.dir, `${type}.crl.pem`);
      writeFileSync(file, pem);
      await assertMatchesOpenssl(parsed, file);

      pki.verifyCrlSignature(parsed, intermediate.certDer);
      pki.verifyCrlSignature(parsed, pki.parseCertificate(intermediate.certDer));
      assertCrlError(
        () => pki.verifyCrlSignature(parsed, root.certDer),
        'GH_CRL_SIGNATURE',
        /CRL issuer "O=Gatehouse Test, CN=Parse \S+ Issuing" is not the subject of the certificate "O=Gatehouse Test, CN=Parse \S+ Root"/,
      );
    });
  }

  test('serial-keys-match-certificate-serials-for-padded-and-short-serials', async () => {
    const { intermediate } = await buildTestPki('Serials');
    const leaves = ['80aa', 'ff', '01', '7f00', pki.randomSerial().toString('hex')].map((s, i) =>
      issueLeaf(intermediate, `serial-${i}`, s),
    );
    const crl = pki.parseCrl(
      pki.buildCrl(intermediate.authority, {
        crlNumber: 1n,
        thisUpdate: new Date(),
        nextUpdate: new Date(Date.now() + 3_600_000),
        entries: leaves.map((l) => ({ serial: l.serial, revokedAt: new Date(), reason: 'superseded' })),
      }),
    );
    for (const leaf of leaves)
      assert.ok(
        crl.revoked.has(pki.parseCertificate(leaf.der).serial),
        `certificate serial ${leaf.serial} is a key of the CRL map`,
      );
    assert.deepEqual(
      [...crl.revoked.keys()].slice(0, 4),
      ['80aa', 'ff', '01', '7f00'],
      'lowercase hex, pad octet dropped, one octet kept',
    );
  });

  test('tampered-crl-fails-signature-and-spoofed-issuer-key-is-refused', async () => {
    const { intermediate } = await buildTestPki('Tamper');
    const crlDer = pki.buildCrl(intermediate.authority, {
      crlNumber: 9n,
      thisUpdate: new Date(),
      nextUpdate: new Date(Date.now() + 3_600_000),
      entries: sampleEntries(),
    });
    const serial = Buffer.from(sampleEntries()[0]!.serial, 'hex');
    const tampered = Buffer.from(crlDer);
    tampered[crlDer.indexOf(serial) + serial.length - 1]! ^= 0x01; // un-revoke one certificate, revoke another
    const parsed = pki.parseCrl(tampered);
    assert.equal(parsed.revoked.has(sampleEntries()[0]!.serial), false, 'the tampered CRL no longer lists the serial');
    assertCrlError(
      () => pki.verifyCrlSignature(parsed, intermediate.certDer),
      'GH_CRL_SIGNATURE',
      /does not verify with the public key of "O=Gatehouse Test, CN=Tamper Issuing"/,
    );

    const sig = Buffer.from(crlDer);
    sig[sig.length - 2]! ^= 0x40;
    assertCrlError(
      () => pki.verifyCrlSignature(pki.parseCrl(sig), intermediate.certDer),
      'GH_CRL_SIGNATURE',
      /does not verify/,
    );

    // Same Name, another key: the AKI names the impostor's key.
    const impostor = (await buildTestPki('Tamper')).intermediate;
    const forged = pki.parseCrl(
      pki.buildCrl(impostor.authority, {
        crlNumber: 10n,
        thisUpdate: new Date(),
        nextUpdate: new Date(Date.now() + 3_600_000),
        entries: [],
      }),
    );
    assert.ok(forged.issuerNameDer.equals(parsed.issuerNameDer), 'control: same issuer Name bytes');
    assertCrlError(
      () => pki.verifyCrlSignature(forged, intermediate.certDer),
      'GH_CRL_SIGNATURE',
      /authority key identifier [0-9a-f]{40} is not the key identifier/,
    );
  });

  test('crl-signed-by-certificate-without-crlsign-key-usage-refused', async () => {
    const { intermediate } = await buildTestPki('KeyUsage');
    const key = pki.generatePrivateKey('p256');
    const leafDer = pki.buildLeafCertificate(intermediate.authority, {
      serial: pki.randomSerial(),
      commonName: 'not-a-ca',
      organizationalUnit: 'web',
      organization: 'Gatehouse Test',
      spkiDer: pki.spkiDer(key),
      notBefore: new Date('2020-01-01T00:00:00Z'),
      notAfter: new Date('2060-01-01T00:00:00Z'),
      profile: 'client',
      dns: [],
      ip: [],
      uri: [],
      email: [],
    });
    assert.deepEqual(
      pki.parseCertificate(leafDer).keyUsage,
      ['digitalSignature'],
      'control: the leaf has keyUsage digitalSignature only',
    );
    const crl = pki.parseCrl(
      pki.buildCrl(pki.prepareSigningAuthority(leafDer, key), {
        crlNumber: 1n,
        thisUpdate: new Date(),
        nextUpdate: new Date(Date.now() + 3_600_000),
        entries: [],
      }),
    );
    assertCrlError(
      () => pki.verifyCrlSignature(crl, leafDer),
      'GH_CRL_SIGNATURE',
      /"CN=not-a-ca, OU=web, O=Gatehouse Test" may not sign CRLs: its keyUsage lacks cRLSign/,
    );
    assert.deepEqual(
      pki.parseCertificate(intermediate.certDer).keyUsage,
      ['keyCertSign', 'cRLSign'],
      'control: the CA may sign CRLs',
    );
  });

  test('crl-with-100000-entries-parses-under-2-s-and-lists-what-openssl-lists', async (t) => {
    const { intermediate } = await buildTestPki('Large');
    const entries: pki.RevokedEntry[] = Array.from({ length: 100_000 }, (_, i) => ({
      serial: pki.randomSerial().toString('hex'),
      revokedAt: new Date(Date.UTC(2024, 0, 1) + i * 1000),
      reason: i % 2 ? 'keyCompromise' : 'unspecified',
    }));
    const crlDer = pki.buildCrl(intermediate.authority, {
      crlNumber: 100_000n,
      thisUpdate: new Date(),
      nextUpdate: new Date(Date.now() + 86_400_000),
      entries,
    });
    const started = performance.now();
    const parsed = pki.parseCrl(crlDer);
    const elapsedMs = performance.now() - started;
    t.diagnostic(`parseCrl of 100 000 entries: ${elapsedMs.toFixed(0)} ms`);
    // Timing is reported, not asserted (speed targets live in `npm run bench`, bench/crl-parse.ts).
    assert.equal(parsed.revoked.size, 100_000);
    pki.verifyCrlSignature(parsed, intermediate.certDer);
    const file = join(tmp.dir, 'large.crl');
    writeFileSync(file, crlDer);
    const view = await opensslCrlText(file, 'DER');
    assert.equal(view.entries.length, 100_000, 'openssl lists 100,000 entries');
    const ours = [...parsed.revoked].map(([serial, e]) => `${big(serial)} ${e.revokedAt.getTime()} ${e.reason}`);
    assert.deepEqual(
      ours,
      view.entries.map((e) => `${e.serial} ${e.revokedAt.getTime()} ${e.reason ?? 'unspecified'}`),
    );
  });
});

const OPENSSL_CA_SUBJECT = '/O=Gatehouse Test/CN=OpenSSL Test CA';

describe('pki-crl-parse openssl-made crls', () => {
  let tmp: ReturnType<typeof makeTempDir>;
  before(() => (tmp = makeTempDir('gatehouse-crl-openssl-')));
  after(() => tmp?.cleanup());

  for (const key of ['ec', 'rsa'] as const) {
    test(`parse-openssl-ca-gencrl-${key}-crl-matches-openssl-and-peculiar-and-verifies`, async () => {
      const ca = await makeCa(tmp.dir, key, { keyType: key, firstSerial: 'FF01', subject: OPENSSL_CA_SUBJECT });
      const leaves = [
        await makeLeaf(ca, { cn: 'a' }),
        await makeLeaf(ca, { cn: 'b' }),
        await makeLeaf(ca, { cn: 'c' }),
        await makeLeaf(ca, { cn: 'd' }),
        await makeLeaf(ca, { cn: 'kept' }),
      ];
      const reasons = ['keyCompromise', null, 'certificateHold', 'superseded'] as const;
      for (const [i, reason] of reasons.entries()) await revokeLeaf(ca, leaves[i]!.certPath, reason);
      const pem = await generateCrl(ca, { crlDays: 2 });
      const file = join(tmp.dir, `${key}.crl.pem`);
      writeFileSync(file, pem);

      const parsed = pki.parseCrl(pem);
      const serials = leaves.map((l) => pki.parseCertificate(l.der).serial);
      assert.deepEqual(serials.slice(0, 2), ['ff01', 'ff02'], 'control: serials that need a DER pad octet');
      assert.deepEqual(
        entriesOf(parsed).map(([s, , r]) => [s, r]),
        reasons.map((r, i) => [serials[i], r ?? 'unspecified']),
      );
      assert.equal(parsed.revoked.has(serials[4]!), false, 'the unrevoked certificate is not listed');
      assert.equal(parsed.crlNumber, 0x1000n, 'crlnumber file started at 1000 (hex)');
      const caCert = pki.parseCertificate(ca.certDer);
      assert.ok(parsed.issuerKeyId?.equals(caCert.subjectKeyId!), 'AKI keyid:always = CA SKI');
      assert.ok(parsed.issuerNameDer.equals(caCert.subjectNameDer));
      assert.equal(parsed.nextUpdate!.getTime() - parsed.thisUpdate.getTime(), 2 * 86_400_000, '-crldays 2');
      await assertMatchesOpenssl(parsed, file);
      assertMatchesPeculiar(parsed, parsed.der);
      pki.verifyCrlSignature(parsed, ca.certDer);
      // Another key under the very same name: only the AKI tells them apart.
      const other = await makeCa(tmp.dir, `${key}-other`, { keyType: key, subject: OPENSSL_CA_SUBJECT });
      assertCrlError(
        () => pki.verifyCrlSignature(parsed, other.certDer),
        'GH_CRL_SIGNATURE',
        /authority key identifier/,
      );
    });
  }

  test('parse-openssl-v1-crl-without-extensions-has-no-number-and-no-aki', async () => {
    const ca = await makeCa(tmp.dir, 'v1', { crl: 'v1' });
    const leaf = await makeLeaf(ca, { cn: 'v1-leaf' });
    await revokeLeaf(ca, leaf.certPath, null);
    const pem = await generateCrl(ca);
    const file = join(tmp.dir, 'v1.crl.pem');
    writeFileSync(file, pem);
    assert.equal((await opensslCrlText(file)).version, 1, 'control: openssl made a v1 CRL');
    const parsed = pki.parseCrl(pem);
    assert.equal(parsed.crlNumber, null);
    assert.equal(parsed.issuerKeyId, null);
    assert.deepEqual([...parsed.revoked.keys()], [pki.parseCertificate(leaf.der).serial]);
    await assertMatchesOpenssl(parsed, file);
    pki.verifyCrlSignature(parsed, ca.certDer);
  });
});

// ------------------------------------------------------------------ refusals

/** A CRL written field by field, so each test can break exactly one thing, then signed properly. */
function handCrl(
  ca: TestCa,
  parts: {
    version?: Buffer | null;
    tbsAlgorithm?: Buffer;
    thisUpdate?: Buffer;
    nextUpdate?: Buffer | null;
    entries?: Buffer[];
    extensions?: Buffer[] | null;
    extra?: Buffer;
  },
): Buffer {
  const algorithm = ca.authority.algorithm.identifierDer;
  const tbs = der.seq(
    ...(parts.version === null ? [] : [parts.version ?? der.smallInt(1)]),
    parts.tbsAlgorithm ?? algorithm,
    ca.authority.subjectNameDer,
    parts.thisUpdate ?? der.time(new Date(Date.now() - 60_000)),
    ...(parts.nextUpdate === null ? [] : [parts.nextUpdate ?? der.time(new Date(Date.now() + 3_600_000))]),
    ...(parts.entries?.length ? [der.seq(...parts.entries)] : []),
    ...(parts.extensions === null
      ? []
      : [
          der.ctx(
            0,
            true,
            der.seq(...(parts.extensions ?? [der.seq(der.oid('2.5.29.20'), der.octetString(der.smallInt(1)))])),
          ),
        ]),
    ...(parts.extra ? [parts.extra] : []),
  );
  return der.seq(tbs, algorithm, der.bitString(pki.signWith(ca.authority.algorithm, ca.key, tbs)));
}
const extension = (oid: string, critical: boolean, value: Buffer) =>
  der.seq(der.oid(oid), ...(critical ? [der.bool(true)] : []), der.octetString(value));
const entry = (serial: string, ...extensions: Buffer[]) =>
  der.seq(
    der.uintBytes(Buffer.from(serial, 'hex')),
    der.time(new Date('2024-01-01T00:00:00Z')),
    ...(extensions.length ? [der.seq(...extensions)] : []),
  );
const reasonCode = (code: number) => extension('2.5.29.21', false, der.tlv(0x0a, Buffer.from([code])));

describe('pki-crl-parse refusals', () => {
  let ca: TestCa;
  before(async () => {
    ca = (await buildTestPki('Refusals')).intermediate;
  });

  test('malformed-crl-input-refused-with-precise-message', () => {
    const good = handCrl(ca, { entries: [entry('01')] });
    const pemOf = (b: Buffer) => pki.toPem('X509 CRL', b);
    const cases: Array<[string, Buffer | string, RegExp]> = [
      ['empty', Buffer.alloc(0), /^CRL is empty$/],
      ['text', 'not a crl', /^CRL is neither DER \(a SEQUENCE\) nor PEM with an "X509 CRL" block$/],
      ['certificate PEM', ca.certPem, /^CRL is neither DER \(a SEQUENCE\) nor PEM with an "X509 CRL" block$/],
      ['two CRLs in one PEM', pemOf(good) + pemOf(good), /PEM holds 2 CRLs; give one CRL per source/],
      ['truncated', good.subarray(0, good.length - 10), /CRL is malformed: truncated/],
      ['trailing byte', Buffer.concat([good, Buffer.from([0])]), /trailing bytes after the CertificateList/],
      [
        'not a SEQUENCE',
        Buffer.from([0x04, 0x02, 0x30, 0x00]),
        /^CRL is neither DER \(a SEQUENCE\) nor PEM with an "X509 CRL" block$/,
      ],
      ['a SEQUENCE of something else', der.seq(der.smallInt(1)), /CRL is malformed: tbsCertList: expected tag 0x30/],
      ['v3', handCrl(ca, { version: der.smallInt(2) }), /unsupported CRL version \(INTEGER 02\)/],
      [
        'inner and outer algorithms differ',
        handCrl(ca, { tbsAlgorithm: der.seq(der.oid('1.2.840.10045.4.3.3')) }),
        /tbsCertList.signature differs from signatureAlgorithm/,
      ],
      [
        'fractional seconds',
        handCrl(ca, { thisUpdate: der.tlv(der.TAG.GENERALIZED_TIME, Buffer.from('20240101000000.5Z')) }),
        /thisUpdate: unsupported time "20240101000000.5Z"/,
      ],
      [
        '31 February',
        handCrl(ca, { thisUpdate: der.tlv(der.TAG.UTC_TIME, Buffer.from('240231000000Z')) }),
        /thisUpdate: unsupported time "240231000000Z"/,
      ],
      [
        'bad revocation date',
        handCrl(ca, {
          entries: [der.seq(der.uintBytes(Buffer.from([0x42])), der.tlv(der.TAG.UTC_TIME, Buffer.from('2401010000Z')))],
        }),
        /revocationDate of 42: unsupported time "2401010000Z"/,
      ],
      [
        'empty serial',
        handCrl(ca, { entries: [der.seq(der.tlv(der.TAG.INTEGER, Buffer.alloc(0)), der.time(new Date()))] }),
        /userCertificate is not a non-empty INTEGER/,
      ],
      [
        'negative CRL number',
        handCrl(ca, { extensions: [extension('2.5.29.20', false, der.tlv(der.TAG.INTEGER, Buffer.from([0xff])))] }),
        /cRLNumber is empty or negative/,
      ],
      [
        'field after the extensions',
        handCrl(ca, { extra: der.smallInt(5) }),
        /unexpected field 7 \(tag 0x2\) in tbsCertList/,
      ],
    ];
    for (const [what, input, message] of cases) {
      assert.doesNotThrow(() => assertCrlError(() => pki.parseCrl(input), 'GH_CRL_INVALID', message), what);
    }
    assert.equal(pki.parseCrl(good).revoked.size, 1, 'control: the unbroken CRL parses');
  });

  test('critical-crl-extensions-refused-and-unknown-noncritical-ignored', () => {
    const number = extension('2.5.29.20', false, der.smallInt(3));
    const refused: Array<[Buffer, RegExp]> = [
      [extension('2.5.29.27', true, der.smallInt(2)), /deltaCRLIndicator: delta CRLs are not supported/],
      [
        extension('2.5.29.28', true, der.seq(der.ctx(1, false, Buffer.from([0xff])))),
        /issuingDistributionPoint: partitioned and indirect CRLs are not supported/,
      ],
      [extension('1.2.3.4', true, der.seq()), /extension that cannot be processed: 1\.2\.3\.4 \(critical\)/],
    ];
    for (const [ext, message] of refused)
      assertCrlError(() => pki.parseCrl(handCrl(ca, { extensions: [number, ext] })), 'GH_CRL_INVALID', message);
    const tolerated = pki.parseCrl(handCrl(ca, { extensions: [number, extension('1.2.3.4', false, der.seq())] }));
    assert.equal(tolerated.crlNumber, 3n, 'an unknown non-critical extension is ignored');
  });

  test('critical-crl-entry-extensions-refused-and-reason-read-beside-others', () => {
    const certificateIssuer = extension('2.5.29.29', true, der.seq(der.ctx(4, true, ca.authority.subjectNameDer)));
    assertCrlError(
      () => pki.parseCrl(handCrl(ca, { entries: [entry('0a', certificateIssuer)] })),
      'GH_CRL_INVALID',
      /CRL entry 0a has a critical extension that cannot be processed: certificateIssuer: indirect CRLs are not supported/,
    );
    assertCrlError(
      () => pki.parseCrl(handCrl(ca, { entries: [entry('0b', extension('1.2.3.5', true, der.seq()))] })),
      'GH_CRL_INVALID',
      /CRL entry 0b has a critical extension that cannot be processed: 1\.2\.3\.5/,
    );
    const invalidityDate = extension(
      '2.5.29.24',
      false,
      der.tlv(der.TAG.GENERALIZED_TIME, Buffer.from('20231231000000Z')),
    );
    const crl = pki.parseCrl(
      handCrl(ca, {
        entries: [
          entry('0c', invalidityDate, reasonCode(4), extension('1.2.3.6', false, der.seq())),
          entry('0d', reasonCode(7)),
          entry('0e', reasonCode(1)),
        ],
      }),
    );
    assert.deepEqual(
      [...crl.revoked].map(([s, e]) => [s, e.reason]),
      [
        ['0c', 'superseded'],
        ['0d', 'unknown(7)'],
        ['0e', 'keyCompromise'],
      ],
      'reason found among other entry extensions; an unknown code still revokes',
    );
  });

  test('crl-without-next-update-parses-with-null', () => {
    const crl = pki.parseCrl(
      handCrl(ca, { nextUpdate: null, version: null, extensions: null, entries: [entry('05')] }),
    );
    assert.equal(crl.nextUpdate, null);
    assert.equal(crl.crlNumber, null);
    assert.deepEqual([...crl.revoked.keys()], ['05']);
    pki.verifyCrlSignature(crl, ca.certDer);
  });
});
