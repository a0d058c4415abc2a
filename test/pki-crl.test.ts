/**
 * Interop: the hand-written CRL encoder (src/pki/crl.ts) against OpenSSL (`openssl crl`) and
 * @peculiar/x509's X509Crl: signature, issuer, dates, CRL number, every entry and reason code.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CRLNumber } from '@peculiar/asn1-x509';
import * as pki from '../src/pki/index.js';
import { x509 } from '../src/pki/x509-library.js';
import { run, type RunResult } from './helpers/run.js';
import { makeTempDir } from './helpers/tmp.js';

const openssl = (args: string[]) => run('openssl', args);
const output = (r: RunResult) => `status ${r.status}\nstdout:\n${r.stdout.slice(0, 4000)}\nstderr:\n${r.stderr}`;
const bytes = (der: Buffer): Uint8Array<ArrayBuffer> => new Uint8Array(der);

/**
 * `openssl crl -verify`. OpenSSL 3.0 exits 0 when the signature does not verify (it prints
 * "verify failure"), so success means status 0 *and* "verify OK".
 */
async function opensslCrlVerify(crlFile: string, caFile: string): Promise<{ ok: boolean; result: RunResult }> {
  const result = await openssl(['crl', '-in', crlFile, '-noout', '-CAfile', caFile, '-verify']);
  const text = result.stdout + result.stderr;
  return { ok: result.status === 0 && /^verify OK$/m.test(text) && !/verify failure/.test(text), result };
}

// How `openssl crl -text` names each reason (crypto/x509/v3_enum.c).
const OPENSSL_REASON: Record<pki.CrlReason, string> = {
  unspecified: 'Unspecified',
  keyCompromise: 'Key Compromise',
  cACompromise: 'CA Compromise',
  affiliationChanged: 'Affiliation Changed',
  superseded: 'Superseded',
  cessationOfOperation: 'Cessation Of Operation',
  certificateHold: 'Certificate Hold',
  removeFromCRL: 'Remove From CRL',
  privilegeWithdrawn: 'Privilege Withdrawn',
  aACompromise: 'AA Compromise',
};
// RFC 5280 §5.3.1 codes, written out independently of CRL_REASONS.
const REASON_CODE: Record<pki.CrlReason, number> = {
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
const ALL_REASONS = Object.keys(REASON_CODE) as pki.CrlReason[];

const serialValue = (hex: string) => BigInt(`0x${hex}`);
const seconds = (d: Date) => Math.floor(d.getTime() / 1000) * 1000;

interface OpensslCrl {
  issuer: string;
  lastUpdate: Date;
  nextUpdate: Date;
  crlNumber: string;
  akid: string;
  entries: Array<{ serial: bigint; revokedAt: Date; reason: string | null }>;
}

async function opensslCrlText(crlFile: string): Promise<OpensslCrl> {
  const r = await openssl(['crl', '-in', crlFile, '-noout', '-text', '-nameopt', 'RFC2253']);
  assert.equal(r.status, 0, `openssl crl -text; ${output(r)}`);
  const text = r.stdout;
  const field = (re: RegExp, what: string) => {
    const m = re.exec(text);
    assert.ok(m?.[1], `openssl crl -text: no ${what}\n${text.slice(0, 4000)}`);
    return m[1].trim();
  };
  const revokedSection = text.split(/^Revoked Certificates:$/m)[1]?.split(/^\s+Signature Algorithm:/m)[0] ?? '';
  const entries = [
    ...revokedSection.matchAll(
      /Serial Number: ([0-9A-F]+)\n\s+Revocation Date: (.+)\n(?:\s+CRL entry extensions:\n\s+X509v3 CRL Reason Code: *\n\s+(.+)\n)?/g,
    ),
  ].map((m) => ({ serial: serialValue(m[1]!), revokedAt: new Date(m[2]!), reason: m[3]?.trim() ?? null }));
  assert.equal(entries.length, (revokedSection.match(/Serial Number:/g) ?? []).length, 'every revoked entry was read');
  assert.equal(/^Version 2 \(0x1\)$/m.test(text.replace(/^\s+/gm, '')), true, 'a v2 CRL');
  return {
    issuer: field(/Issuer: (.+)$/m, 'issuer'),
    lastUpdate: new Date(field(/Last Update: (.+)$/m, 'last update')),
    nextUpdate: new Date(field(/Next Update: (.+)$/m, 'next update')),
    crlNumber: field(/X509v3 CRL Number: *\n\s+(.+)$/m, 'CRL number'),
    akid: field(/X509v3 Authority Key Identifier: *\n\s+(?:keyid:)?([0-9A-F:]+)$/m, 'AKI')
      .replace(/:/g, '')
      .toLowerCase(),
    entries,
  };
}

/** OpenSSL prints CRL numbers in decimal, or as 0x-prefixed hex once they no longer fit a long. */
function opensslNumber(text: string): bigint {
  return text.startsWith('0x')
    ? BigInt(text)
    : text.includes(':')
      ? BigInt(`0x${text.replace(/:/g, '')}`)
      : BigInt(text);
}

interface Ca {
  certDer: Buffer;
  key: KeyObject;
  file: string;
  authority: pki.SigningAuthority;
}

async function buildCas(type: pki.KeyType, dir: string): Promise<{ root: Ca; int: Ca }> {
  const validity = { notBefore: new Date('2019-01-01T00:00:00Z'), notAfter: new Date('2060-01-01T00:00:00Z') };
  const rootKey = pki.generatePrivateKey(type);
  const intKey = pki.generatePrivateKey(type);
  const rootDer = await pki.buildRootCertificate(rootKey, {
    commonName: `CRL Root ${type}`,
    organization: 'Gatehouse Test',
    ...validity,
  });
  const intDer = await pki.buildIntermediateCertificate(
    intKey,
    { certDer: rootDer, key: rootKey },
    { commonName: `CRL Issuing ${type}`, organization: 'Gatehouse Test', ...validity },
  );
  const make = (certDer: Buffer, key: KeyObject, name: string): Ca => {
    const file = join(dir, `${type}-${name}.pem`);
    writeFileSync(file, pki.toPem('CERTIFICATE', certDer));
    return { certDer, key, file, authority: pki.prepareSigningAuthority(certDer, key) };
  };
  return { root: make(rootDer, rootKey, 'root'), int: make(intDer, intKey, 'int') };
}

function writeCrl(dir: string, name: string, crlDer: Buffer): string {
  const file = join(dir, `${name}.crl.pem`);
  writeFileSync(file, pki.toPem('X509 CRL', crlDer));
  return file;
}

/** One entry per reason, with serials that exercise INTEGER encoding (pad byte, leading zeros, short). */
function sampleEntries(): pki.RevokedEntry[] {
  const serials = [
    pki.randomSerial().toString('hex'),
    '80112233445566778899aabbccddeeff', // top bit set: needs a 0x00 pad to stay positive
    '0000abcdef', // leading zero octets: trimmed
    '1', // odd number of hex digits
    '7f',
    pki.randomSerial().toString('hex'),
    pki.randomSerial().toString('hex'),
    pki.randomSerial().toString('hex'),
    pki.randomSerial().toString('hex'),
    pki.randomSerial().toString('hex'),
  ];
  return ALL_REASONS.map((reason, i) => ({
    serial: serials[i]!,
    // One revocation date before 2000 (UTCTime 9x), the rest recent.
    revokedAt: i === 1 ? new Date('1999-12-31T23:59:59Z') : new Date(Date.UTC(2024, 0, 1 + i, 12, 0, i)),
    reason,
  }));
}

for (const type of ['p256', 'p384', 'rsa3072', 'ed25519'] as const) {
  describe(`${type}-crl`, () => {
    let dir: string;
    let cleanup: () => void;
    let cas: { root: Ca; int: Ca };
    before(async () => {
      ({ dir, cleanup } = makeTempDir('gatehouse-crl-'));
      cas = await buildCas(type, dir);
    });
    after(() => cleanup?.());

    for (const level of ['int', 'root'] as const) {
      test(`${level}-crl-${type}-verifies-with-openssl-and-peculiar-and-lists-every-serial-and-reason`, async () => {
        const ca = cas[level];
        const entries = sampleEntries();
        const spec: pki.CrlSpec = {
          crlNumber: 42n,
          thisUpdate: new Date(Date.now() - 60_000),
          nextUpdate: new Date('2051-03-04T05:06:07Z'), // GeneralizedTime
          entries,
        };
        const crlDer = pki.buildCrl(ca.authority, spec);
        const file = writeCrl(dir, `${type}-${level}`, crlDer);

        const { ok, result } = await opensslCrlVerify(file, ca.file);
        assert.ok(ok, `openssl crl -verify -CAfile ${level}; ${output(result)}`);
        const other = level === 'int' ? cas.root : cas.int;
        const wrong = await opensslCrlVerify(file, other.file);
        assert.equal(wrong.ok, false, `openssl crl -verify with the wrong CA must fail; ${output(wrong.result)}`);

        const text = await opensslCrlText(file);
        const issuer = new x509.X509Certificate(bytes(ca.certDer));
        assert.equal(
          text.issuer,
          `O=Gatehouse Test,CN=CRL ${level === 'int' ? 'Issuing' : 'Root'} ${type}`,
          'issuer (RFC 2253 order)',
        );
        assert.equal(text.lastUpdate.getTime(), seconds(spec.thisUpdate), 'lastUpdate');
        assert.equal(text.nextUpdate.getTime(), spec.nextUpdate.getTime(), 'nextUpdate (GeneralizedTime, 2051)');
        assert.equal(opensslNumber(text.crlNumber), 42n, 'CRL number');
        assert.equal(text.akid, issuer.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId, 'CRL AKI = issuer SKI');
        assert.deepEqual(
          text.entries,
          entries.map((e) => ({
            serial: serialValue(e.serial),
            revokedAt: new Date(seconds(e.revokedAt)),
            reason: e.reason === 'unspecified' ? null : OPENSSL_REASON[e.reason],
          })),
          'openssl lists every serial, revocation date and reason (unspecified is omitted, RFC 5280 §5.3.1)',
        );

        const crl = new x509.X509Crl(bytes(crlDer));
        assert.equal(await crl.verify({ publicKey: issuer }), true, '@peculiar/x509 verifies the CRL signature');
        assert.equal(crl.version, 1, 'v2 (version field 1)');
        assert.equal(crl.issuer, issuer.subject, 'issuer');
        assert.equal(crl.thisUpdate.getTime(), seconds(spec.thisUpdate));
        assert.equal(crl.nextUpdate?.getTime(), spec.nextUpdate.getTime());
        assert.deepEqual(
          crl.entries.map((e) => ({
            serial: serialValue(e.serialNumber),
            revokedAt: e.revocationDate.getTime(),
            reason: e.reason ?? null,
          })),
          entries.map((e) => ({
            serial: serialValue(e.serial),
            revokedAt: seconds(e.revokedAt),
            reason: e.reason === 'unspecified' ? null : REASON_CODE[e.reason],
          })),
          '@peculiar/x509 reads every entry',
        );
        const number = crl.getExtension('2.5.29.20');
        assert.ok(number, 'CRL number extension');
        assert.equal(String(AsnConvert.parse(number.value, CRLNumber).value), '42');
        const aki = crl.getExtension(x509.AuthorityKeyIdentifierExtension);
        assert.equal(aki?.keyId, issuer.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId, 'AKI (peculiar)');
      });
    }

    test(`tampered-crl-${type}-fails-openssl-and-peculiar-verification`, async () => {
      const crlDer = pki.buildCrl(cas.int.authority, {
        crlNumber: 7n,
        thisUpdate: new Date(Date.now() - 60_000),
        nextUpdate: new Date(Date.now() + 86_400_000),
        entries: sampleEntries(),
      });
      // Revoke a different certificate than the one signed for: change the last bit of the fixed top-bit serial.
      const serial = Buffer.from(sampleEntries()[1]!.serial, 'hex');
      const at = crlDer.indexOf(serial);
      assert.ok(at > 0, 'the top-bit serial is in the DER');
      const tampered = Buffer.from(crlDer);
      tampered[at + serial.length - 1]! ^= 0x01;
      const file = writeCrl(dir, `${type}-tampered`, tampered);
      const { ok, result } = await opensslCrlVerify(file, cas.int.file);
      assert.equal(ok, false, `openssl crl -verify must refuse a tampered CRL; ${output(result)}`);
      assert.equal(
        await new x509.X509Crl(bytes(tampered)).verify({ publicKey: new x509.X509Certificate(bytes(cas.int.certDer)) }),
        false,
      );
    });
  });
}

describe('crl-edge-cases', () => {
  let dir: string;
  let cleanup: () => void;
  let cas: { root: Ca; int: Ca };
  before(async () => {
    ({ dir, cleanup } = makeTempDir('gatehouse-crl-'));
    cas = await buildCas('p256', dir);
  });
  after(() => cleanup?.());

  test('empty-crl-omits-revokedCertificates-and-verifies-with-openssl-and-peculiar', async () => {
    const spec = {
      crlNumber: 1n,
      thisUpdate: new Date(Date.now() - 60_000),
      nextUpdate: new Date(Date.now() + 86_400_000),
      entries: [],
    };
    const crlDer = pki.buildCrl(cas.int.authority, spec);
    const file = writeCrl(dir, 'empty', crlDer);
    const { ok, result } = await opensslCrlVerify(file, cas.int.file);
    assert.ok(ok, `openssl crl -verify; ${output(result)}`);
    const text = await opensslCrlText(file);
    assert.deepEqual(text.entries, []);
    assert.equal(opensslNumber(text.crlNumber), 1n);
    const raw = await openssl(['crl', '-in', file, '-noout', '-text']);
    assert.match(raw.stdout, /No Revoked Certificates\./, 'openssl: no revokedCertificates');
    const crl = new x509.X509Crl(bytes(crlDer));
    assert.equal(crl.entries.length, 0);
    assert.equal(await crl.verify({ publicKey: new x509.X509Certificate(bytes(cas.int.certDer)) }), true);
  });

  test('crl-numbers-encode-as-positive-minimal-integers-read-identically-by-openssl-and-peculiar', async () => {
    // 0, the 0x7f/0x80 pad boundary, 2^53 + 1 (beyond exact doubles), and the RFC 5280 §5.2.3 maximum of 20 octets.
    for (const crlNumber of [0n, 1n, 127n, 128n, 255n, 256n, 2n ** 53n + 1n, 2n ** 64n + 1n, 2n ** 159n - 1n]) {
      const crlDer = pki.buildCrl(cas.int.authority, {
        crlNumber,
        thisUpdate: new Date(Date.now() - 60_000),
        nextUpdate: new Date(Date.now() + 86_400_000),
        entries: [],
      });
      const file = writeCrl(dir, `number-${crlNumber}`, crlDer);
      const { ok, result } = await opensslCrlVerify(file, cas.int.file);
      assert.ok(ok, `openssl crl -verify (CRL number ${crlNumber}); ${output(result)}`);
      assert.equal(
        opensslNumber((await opensslCrlText(file)).crlNumber),
        crlNumber,
        `openssl reads CRL number ${crlNumber}`,
      );
      const number = new x509.X509Crl(bytes(crlDer)).getExtension('2.5.29.20');
      assert.ok(number);
      assert.equal(
        String(AsnConvert.parse(number.value, CRLNumber).value),
        crlNumber.toString(),
        `@peculiar/x509 reads CRL number ${crlNumber}`,
      );
    }
  });

  test('crl-with-10000-entries-builds-and-verifies-with-openssl-and-peculiar', async () => {
    const entries: pki.RevokedEntry[] = Array.from({ length: 10_000 }, (_, i) => ({
      serial: pki.randomSerial().toString('hex'),
      revokedAt: new Date(Date.UTC(2024, 0, 1) + i * 1000),
      reason: ALL_REASONS[i % ALL_REASONS.length]!,
    }));
    const crlDer = pki.buildCrl(cas.int.authority, {
      crlNumber: 10_000n,
      thisUpdate: new Date(Date.now() - 60_000),
      nextUpdate: new Date(Date.now() + 86_400_000),
      entries,
    });
    const file = writeCrl(dir, 'large', crlDer);
    const { ok, result } = await opensslCrlVerify(file, cas.int.file);
    assert.ok(ok, `openssl crl -verify; ${output(result)}`);
    const text = await opensslCrlText(file);
    assert.equal(text.entries.length, 10_000, 'openssl lists 10,000 entries');
    for (const [i, e] of text.entries.entries()) {
      const want = entries[i]!;
      assert.equal(e.serial, serialValue(want.serial), `entry ${i} serial`);
      assert.equal(e.reason, want.reason === 'unspecified' ? null : OPENSSL_REASON[want.reason], `entry ${i} reason`);
    }
    // asn1js refuses more than 10,000 nodes by default (a guard for untrusted input); this CRL has ~80,000.
    const crl = new x509.X509Crl(bytes(crlDer), { berOptions: { maxNodes: 1_000_000 } });
    assert.equal(crl.entries.length, 10_000, '@peculiar/x509 reads 10,000 entries');
    assert.equal(serialValue(crl.entries[9_999]!.serialNumber), serialValue(entries[9_999]!.serial));
    assert.equal(await crl.verify({ publicKey: new x509.X509Certificate(bytes(cas.int.certDer)) }), true);
  });
});
