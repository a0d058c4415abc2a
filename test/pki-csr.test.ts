/**
 * Interop: the hand-written PKCS#10 reader (src/pki/csr.ts) against OpenSSL (`openssl req`)
 * and @peculiar/x509's Pkcs10CertificateRequest, plus its behaviour on hostile input: every
 * rejection is a GatehouseError with a GH_CSR_* code, never another error type.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as pki from '../src/pki/index.js';
import * as der from '../src/pki/der.js';
import { x509 } from '../src/pki/x509-library.js';
import { GatehouseError } from '../src/errors/errors.js';
import { run, type RunResult } from './helpers/run.js';
import { makeTempDir } from './helpers/tmp.js';

const openssl = (args: string[]) => run('openssl', args);
const output = (r: RunResult) => `status ${r.status}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
function assertPasses(r: RunResult, what: string): void {
  assert.equal(r.status, 0, `${what} should pass; ${output(r)}`);
}

/**
 * `openssl req -verify`. OpenSSL 3.0 exits 0 even when the self-signature does not verify
 * (it only prints "verify failure"), so the verdict is read from the message.
 */
async function opensslReqVerify(
  file: string,
  inform: 'PEM' | 'DER' = 'PEM',
): Promise<{ ok: boolean; result: RunResult }> {
  const result = await openssl(['req', '-inform', inform, '-in', file, '-noout', '-verify']);
  const text = result.stdout + result.stderr;
  const ok = result.status === 0 && /self-signature verify OK/.test(text) && !/verify failure/.test(text);
  return { ok, result };
}

type CsrCode = 'GH_CSR_MALFORMED' | 'GH_CSR_SIGNATURE' | 'GH_CSR_KEY_UNSUPPORTED';
const CSR_CODES: readonly string[] = ['GH_CSR_MALFORMED', 'GH_CSR_SIGNATURE', 'GH_CSR_KEY_UNSUPPORTED'];

/** parseCsr must throw a GatehouseError with `code`, and nothing else. */
function assertCsrError(input: string | Buffer, code: CsrCode, what: string): void {
  let thrown: unknown;
  try {
    pki.parseCsr(input);
  } catch (err) {
    thrown = err;
  }
  assert.ok(thrown !== undefined, `${what}: parseCsr accepted it`);
  assert.ok(
    thrown instanceof GatehouseError,
    `${what}: threw ${String((thrown as Error)?.stack ?? thrown)} instead of a GatehouseError`,
  );
  assert.equal(thrown.code, code, `${what}: ${thrown.code} (${thrown.message})`);
}

/** RFC 5952 canonical text for IPv6 (OpenSSL prints it uncompressed and upper case), IPv4 unchanged. */
function canonicalIp(ip: string): string {
  return ip.includes(':') ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip;
}

interface CsrView {
  subject: Array<[type: string, value: string]>;
  keyDescription: string;
  sans: { dns: string[]; ip: string[]; uri: string[]; email: string[] };
  requestsCa: boolean;
}

/** What `openssl req -noout -text` says about a CSR. */
async function opensslView(csrFile: string): Promise<CsrView> {
  const r = await openssl(['req', '-in', csrFile, '-noout', '-text']);
  assertPasses(r, 'openssl req -text');
  const text = r.stdout;
  const subjectLine = /^\s*Subject:(.*)$/m.exec(text)?.[1]?.trim() ?? '';
  const subject =
    subjectLine === ''
      ? []
      : subjectLine.split(/, (?=[A-Za-z0-9.]+ = )/).map((part) => {
          const [type, value] = part.split(' = ') as [string, string];
          return [type, value] as [string, string];
        });
  let keyDescription: string;
  const curve = /NIST CURVE: (P-\d+)/.exec(text)?.[1];
  const rsaBits = /Public Key Algorithm: rsaEncryption\s+Public-Key: \((\d+) bit\)/.exec(text)?.[1];
  if (curve) keyDescription = `ECDSA ${curve}`;
  else if (rsaBits) keyDescription = `RSA ${rsaBits}`;
  else if (/Public Key Algorithm: ED25519/.test(text)) keyDescription = 'Ed25519';
  else throw new Error(`unrecognised key in openssl output:\n${text}`);
  const sans = { dns: [] as string[], ip: [] as string[], uri: [] as string[], email: [] as string[] };
  const sanLine = /X509v3 Subject Alternative Name: *\n\s*(.+)$/m.exec(text)?.[1];
  for (const item of sanLine ? sanLine.split(', ') : []) {
    const [, type, value] = /^(DNS|IP Address|URI|email):(.*)$/.exec(item) ?? [];
    assert.ok(type && value !== undefined, `unexpected SAN item "${item}"`);
    ({ DNS: sans.dns, 'IP Address': sans.ip, URI: sans.uri, email: sans.email })[type as 'DNS']!.push(
      type === 'IP Address' ? canonicalIp(value) : value,
    );
  }
  const requestsCa = /X509v3 Basic Constraints:.*\n\s*CA:TRUE/.test(text);
  return { subject, keyDescription, sans, requestsCa };
}

/** @peculiar/x509's names for attribute types that differ from OpenSSL's. */
const PECULIAR_TYPE_NAMES: Record<string, string> = { E: 'emailAddress' };

/** What @peculiar/x509 says about a CSR; also checks that it verifies the self-signature. */
async function peculiarView(csrDer: Buffer): Promise<CsrView> {
  const csr = new x509.Pkcs10CertificateRequest(new Uint8Array(csrDer));
  assert.equal(await csr.verify(), true, '@peculiar/x509 verifies the CSR signature');
  const subject = csr.subjectName
    .toJSON()
    .flatMap((rdn) =>
      Object.entries(rdn).flatMap(([type, values]) =>
        values.map((v) => [PECULIAR_TYPE_NAMES[type] ?? type, String(v)] as [string, string]),
      ),
    );
  const alg = csr.publicKey.algorithm as { name: string; namedCurve?: string; modulusLength?: number };
  const keyDescription =
    alg.name === 'ECDSA'
      ? `ECDSA ${alg.namedCurve}`
      : alg.name === 'RSASSA-PKCS1-v1_5'
        ? `RSA ${alg.modulusLength}`
        : alg.name;
  const sans = { dns: [] as string[], ip: [] as string[], uri: [] as string[], email: [] as string[] };
  const sanExt = csr.getExtension('2.5.29.17');
  if (sanExt) {
    assert.ok(sanExt instanceof x509.SubjectAlternativeNameExtension);
    for (const name of sanExt.names.items) {
      if (name.type === 'dns') sans.dns.push(name.value);
      else if (name.type === 'ip') sans.ip.push(canonicalIp(name.value));
      else if (name.type === 'url') sans.uri.push(name.value);
      else if (name.type === 'email') sans.email.push(name.value);
      else assert.fail(`unexpected SAN type ${name.type}`);
    }
  }
  const bc = csr.getExtension('2.5.29.19');
  const requestsCa = bc instanceof x509.BasicConstraintsExtension && bc.ca;
  return { subject, keyDescription, sans, requestsCa };
}

function ourView(parsed: pki.ParsedCsr): CsrView {
  return {
    subject: parsed.subject.map((a) => [a.type, a.value]),
    keyDescription: parsed.keyDescription,
    sans: { dns: parsed.sans.dns, ip: parsed.sans.ip.map(canonicalIp), uri: parsed.sans.uri, email: parsed.sans.email },
    requestsCa: parsed.requestsCa,
  };
}

const derOfPem = (pem: string) => pki.decodePem(pem, 'CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST')[0]!;

/** The CSR with its outer signatureAlgorithm replaced (certificationRequestInfo and signature untouched). */
function relabel(csrDer: Buffer, algorithmIdentifierHex: string): Buffer {
  const [cri, , signature] = der.children(der.readNode(csrDer));
  return der.seq(cri!.raw, Buffer.from(algorithmIdentifierHex, 'hex'), signature!.raw);
}

// DER AlgorithmIdentifiers, written out by hand from RFC 4055, RFC 5758 and RFC 8410.
const ALG = {
  sha256WithRSA: '300d06092a864886f70d01010b0500',
  sha384WithRSA: '300d06092a864886f70d01010c0500',
  md5WithRSA: '300d06092a864886f70d0101040500',
  ecdsaSha256: '300a06082a8648ce3d040302',
  ed25519: '300506032b6570',
};

const OPENSSL_KEYS = {
  p256: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  p384: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  rsa2048: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
  ed25519: ['-algorithm', 'ED25519'],
  rsa1024: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024'],
} as const;
type OpensslKey = keyof typeof OPENSSL_KEYS;

const SUBJECT = '/C=US/O=Acme Corp/OU=web/CN=web-1/emailAddress=ops@example.test';
const SAN =
  'subjectAltName=DNS:web-1.example.test,DNS:*.web.example.test,IP:10.0.0.1,IP:2001:db8::1,URI:spiffe://example.test/web/web-1,email:ops@example.test';
const VARIANTS: Record<string, string[]> = {
  'no-extensions': [],
  'san-dns-ip-uri-email': ['-addext', SAN],
  'san-and-critical-ca-true': ['-addext', SAN, '-addext', 'basicConstraints=critical,CA:TRUE'],
};

describe('csr-from-openssl', () => {
  let dir: string;
  let cleanup: () => void;
  const keyFile = (type: OpensslKey) => join(dir, `${type}.key`);

  /** `openssl req -new` for a key made by `openssl genpkey`; returns the PEM file. */
  async function opensslCsr(type: OpensslKey, tag: string, extra: string[]): Promise<string> {
    const file = join(dir, `${type}-${tag}.csr`);
    assertPasses(
      await openssl(['req', '-new', '-key', keyFile(type), '-subj', SUBJECT, ...extra, '-out', file]),
      `openssl req -new (${type}, ${tag})`,
    );
    return file;
  }

  before(async () => {
    ({ dir, cleanup } = makeTempDir('gatehouse-csr-'));
    await Promise.all(
      (Object.keys(OPENSSL_KEYS) as OpensslKey[]).map(async (type) =>
        assertPasses(
          await openssl(['genpkey', ...OPENSSL_KEYS[type], '-out', keyFile(type)]),
          `openssl genpkey ${type}`,
        ),
      ),
    );
  });
  after(() => cleanup?.());

  for (const type of ['p256', 'p384', 'rsa2048', 'ed25519'] as const) {
    for (const [variant, extra] of Object.entries(VARIANTS)) {
      test(`openssl-req-${type}-${variant}-parses-like-openssl-text-and-peculiar-x509`, async () => {
        const file = await opensslCsr(type, variant, extra);
        const pem = readFileSync(file, 'utf8');
        const csrDer = derOfPem(pem);
        const parsed = pki.parseCsr(pem);
        const ours = ourView(parsed);
        const fromOpenssl = await opensslView(file);
        const fromPeculiar = await peculiarView(csrDer);
        assert.deepEqual(ours, fromOpenssl, 'parseCsr agrees with openssl req -text');
        assert.deepEqual(ours, fromPeculiar, 'parseCsr agrees with @peculiar/x509');
        // Sanity of the oracles themselves: the fixture says what we asked openssl for.
        assert.deepEqual(ours.subject, [
          ['C', 'US'],
          ['O', 'Acme Corp'],
          ['OU', 'web'],
          ['CN', 'web-1'],
          ['emailAddress', 'ops@example.test'],
        ]);
        assert.equal(ours.requestsCa, variant === 'san-and-critical-ca-true');
        assert.equal(ours.sans.ip.length, variant === 'no-extensions' ? 0 : 2);
        assert.deepEqual(
          parsed.extensionOids,
          variant === 'no-extensions'
            ? []
            : variant === 'san-dns-ip-uri-email'
              ? ['2.5.29.17']
              : ['2.5.29.17', '2.5.29.19'],
        );
        // The public key is the one openssl put in, bit for bit.
        const pub = await openssl(['pkey', '-in', keyFile(type), '-pubout']);
        assertPasses(pub, 'openssl pkey -pubout');
        assert.deepEqual(
          parsed.spkiDer,
          pki.decodePem(pub.stdout, 'PUBLIC KEY')[0],
          'SPKI matches openssl pkey -pubout',
        );
        // DER, PEM-in-a-Buffer and the legacy "NEW CERTIFICATE REQUEST" label read the same.
        assert.deepEqual(ourView(pki.parseCsr(csrDer)), ours, 'DER input');
        assert.deepEqual(ourView(pki.parseCsr(Buffer.from(pem))), ours, 'PEM in a Buffer');
        assert.deepEqual(ourView(pki.parseCsr(pki.toPem('NEW CERTIFICATE REQUEST', csrDer))), ours, 'legacy PEM label');
        assert.deepEqual(pki.parseCsr(csrDer).der, csrDer);
      });
    }
  }

  test('openssl-req-p384-sha384-parses-like-openssl-text-and-peculiar-x509', async () => {
    const file = await opensslCsr('p384', 'sha384', ['-sha384', '-addext', SAN]);
    const pem = readFileSync(file, 'utf8');
    const ours = ourView(pki.parseCsr(pem));
    assert.deepEqual(ours, await opensslView(file));
    assert.deepEqual(ours, await peculiarView(derOfPem(pem)));
  });

  test('rsa-1024-csr-is-rejected-as-key-unsupported', async () => {
    const file = await opensslCsr('rsa1024', 'plain', []);
    const { ok, result } = await opensslReqVerify(file);
    assert.ok(ok, `openssl req -verify (the CSR itself is sound); ${output(result)}`);
    assertCsrError(readFileSync(file, 'utf8'), 'GH_CSR_KEY_UNSUPPORTED', 'RSA 1024 CSR');
  });

  test('sha1-signed-csr-is-rejected-as-signature', async () => {
    const file = await opensslCsr('rsa2048', 'sha1', ['-sha1']);
    assertCsrError(readFileSync(file, 'utf8'), 'GH_CSR_SIGNATURE', 'sha1WithRSAEncryption CSR');
  });

  test('one-flipped-bit-in-the-signature-is-rejected-as-signature-by-parseCsr-and-openssl', async () => {
    for (const type of ['p256', 'p384', 'rsa2048', 'ed25519'] as const) {
      const csrDer = derOfPem(readFileSync(await opensslCsr(type, 'flip', ['-addext', SAN]), 'utf8'));
      const tampered = Buffer.from(csrDer);
      tampered[tampered.length - 1]! ^= 0x01; // the signature is the last field
      assertCsrError(tampered, 'GH_CSR_SIGNATURE', `${type} CSR with a flipped signature bit`);
      const file = join(dir, `${type}-flipped.der`);
      writeFileSync(file, tampered);
      const { ok, result } = await opensslReqVerify(file, 'DER');
      assert.equal(ok, false, `openssl req -verify also refuses the ${type} CSR; ${output(result)}`);
    }
  });

  test('signature-algorithm-that-does-not-fit-the-key-is-rejected-as-signature-by-parseCsr-and-openssl', async () => {
    const csrOf = async (type: OpensslKey) =>
      derOfPem(readFileSync(await opensslCsr(type, 'relabel', ['-addext', SAN]), 'utf8'));
    const [p256, rsa, ed] = await Promise.all([csrOf('p256'), csrOf('rsa2048'), csrOf('ed25519')]);
    const cases: Array<[label: string, csr: Buffer]> = [
      ['ECDSA P-256 key labelled sha256WithRSAEncryption', relabel(p256, ALG.sha256WithRSA)],
      ['ECDSA P-256 key labelled Ed25519', relabel(p256, ALG.ed25519)],
      ['RSA key labelled ecdsa-with-SHA256', relabel(rsa, ALG.ecdsaSha256)],
      ['RSA key labelled Ed25519', relabel(rsa, ALG.ed25519)],
      ['Ed25519 key labelled ecdsa-with-SHA256', relabel(ed, ALG.ecdsaSha256)],
      ['Ed25519 key labelled sha256WithRSAEncryption', relabel(ed, ALG.sha256WithRSA)],
      ['RSA SHA-256 signature labelled sha384WithRSAEncryption', relabel(rsa, ALG.sha384WithRSA)],
      ['RSA signature labelled md5WithRSAEncryption', relabel(rsa, ALG.md5WithRSA)],
    ];
    // Control: the relabelling itself is sound (the original label gives back the original CSR).
    assert.deepEqual(relabel(p256, ALG.ecdsaSha256), p256);
    assert.deepEqual(relabel(rsa, ALG.sha256WithRSA), rsa);
    assert.deepEqual(relabel(ed, ALG.ed25519), ed);
    for (const [i, [label, csr]] of cases.entries()) {
      assertCsrError(csr, 'GH_CSR_SIGNATURE', label);
      const file = join(dir, `relabelled-${i}.der`);
      writeFileSync(file, csr);
      const { ok, result } = await opensslReqVerify(file, 'DER');
      assert.equal(ok, false, `openssl req -verify also refuses: ${label}; ${output(result)}`);
    }
  });

  test('every-truncation-of-a-valid-csr-is-malformed', async () => {
    for (const type of ['p256', 'ed25519', 'rsa2048'] as const) {
      const csrDer = derOfPem(
        readFileSync(await opensslCsr(type, 'truncate', VARIANTS['san-and-critical-ca-true']!), 'utf8'),
      );
      pki.parseCsr(csrDer); // the whole CSR is fine
      for (let length = 0; length < csrDer.length; length++) {
        assertCsrError(
          csrDer.subarray(0, length),
          'GH_CSR_MALFORMED',
          `${type} CSR truncated to ${length} of ${csrDer.length} bytes`,
        );
      }
    }
  });

  test('every-single-bit-flip-is-rejected-with-a-csr-error-and-never-crashes', async () => {
    for (const type of ['p256', 'ed25519', 'rsa2048'] as const) {
      const csrDer = derOfPem(
        readFileSync(await opensslCsr(type, 'bitflip', VARIANTS['san-and-critical-ca-true']!), 'utf8'),
      );
      const [cri, , signature] = der.children(der.readNode(csrDer));
      // Bytes the signature covers or consists of: changing any of them must be refused.
      const mustFail = (pos: number) =>
        (pos >= cri!.start && pos < cri!.end) || (pos >= signature!.contentStart + 1 && pos < signature!.end);
      for (let pos = 0; pos < csrDer.length; pos++) {
        for (const bit of [0x01, 0x80]) {
          const tampered = Buffer.from(csrDer);
          tampered[pos]! ^= bit;
          let result: pki.ParsedCsr | undefined;
          try {
            result = pki.parseCsr(tampered);
          } catch (err) {
            assert.ok(
              err instanceof GatehouseError && CSR_CODES.includes(err.code),
              `${type} byte ${pos} ^ ${bit}: threw ${String((err as Error)?.stack ?? err)}`,
            );
          }
          if (result) {
            assert.ok(
              !mustFail(pos),
              `${type} byte ${pos} ^ ${bit} is covered by the signature, yet parseCsr accepted it`,
            );
            // Outside the signed bytes (e.g. algorithm parameters) an accepted CSR must still mean the same.
            assert.deepEqual(
              ourView(result),
              ourView(pki.parseCsr(csrDer)),
              `${type} byte ${pos} ^ ${bit}: accepted with other content`,
            );
          }
        }
      }
    }
  });
});

describe('csr-from-buildCsrPem', () => {
  let dir: string;
  let cleanup: () => void;
  before(() => ({ dir, cleanup } = makeTempDir('gatehouse-csr-')));
  after(() => cleanup?.());

  for (const type of ['p256', 'p384', 'rsa2048', 'rsa3072', 'ed25519'] as const) {
    test(`buildCsrPem-${type}-passes-openssl-req-verify-and-reads-back-identically`, async () => {
      const key = pki.generatePrivateKey(type);
      const pem = await pki.buildCsrPem(key, {
        commonName: `agent-${type}`,
        dns: [`agent-${type}.example.test`],
        ip: ['192.0.2.10', '2001:db8::10'],
      });
      const file = join(dir, `${type}.csr`);
      writeFileSync(file, pem);
      const { ok, result } = await opensslReqVerify(file);
      assert.ok(ok, `openssl req -verify; ${output(result)}`);
      const parsed = pki.parseCsr(pem);
      const ours = ourView(parsed);
      assert.deepEqual(parsed.sans.ip, ['192.0.2.10', '2001:db8::10'], 'IPs in RFC 5952 canonical form');
      assert.deepEqual(ours, await opensslView(file), 'parseCsr agrees with openssl req -text');
      assert.deepEqual(ours, await peculiarView(derOfPem(pem)), 'parseCsr agrees with @peculiar/x509');
      assert.deepEqual(ours.subject, [['CN', `agent-${type}`]]);
      assert.equal(ours.keyDescription, pki.describeKey(key));
      assert.deepEqual(ours.sans, {
        dns: [`agent-${type}.example.test`],
        ip: ['192.0.2.10', '2001:db8::10'],
        uri: [],
        email: [],
      });
      assert.equal(ours.requestsCa, false);
    });
  }
});

describe('csr-bad-input', () => {
  let validPem: string;
  before(async () => {
    validPem = await pki.buildCsrPem(pki.generatePrivateKey('p256'), {
      commonName: 'bad-input',
      dns: ['bad-input.example.test'],
    });
  });

  test('garbage-text-is-malformed', () => {
    assertCsrError('this is not a certificate request', 'GH_CSR_MALFORMED', 'plain text');
    assertCsrError(Buffer.from('this is not a certificate request'), 'GH_CSR_MALFORMED', 'plain text as bytes');
    assertCsrError(
      '-----BEGIN CERTIFICATE REQUEST-----\n!!!! not base64 !!!!\n-----END CERTIFICATE REQUEST-----\n',
      'GH_CSR_MALFORMED',
      'PEM with a body that is not base64',
    );
    assertCsrError(
      pki.toPem('CERTIFICATE REQUEST', Buffer.from('garbage inside a PEM block')),
      'GH_CSR_MALFORMED',
      'PEM wrapping garbage',
    );
    assertCsrError(
      validPem.replace(/CERTIFICATE REQUEST/g, 'CERTIFICATE'),
      'GH_CSR_MALFORMED',
      'a CSR under a CERTIFICATE label',
    );
    assertCsrError(Buffer.from([0x30, 0x80, 0x00, 0x00]), 'GH_CSR_MALFORMED', 'BER indefinite length');
    assertCsrError(Buffer.from([0x30, 0x81, 0x05, 1, 2, 3, 4, 5]), 'GH_CSR_MALFORMED', 'non-minimal DER length');
  });

  test('empty-input-is-malformed', () => {
    assertCsrError('', 'GH_CSR_MALFORMED', 'empty string');
    assertCsrError(Buffer.alloc(0), 'GH_CSR_MALFORMED', 'empty buffer');
    assertCsrError(
      '-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n',
      'GH_CSR_MALFORMED',
      'empty PEM block',
    );
  });

  test('two-csrs-in-one-pem-are-malformed', () => {
    pki.parseCsr(validPem);
    assertCsrError(validPem + validPem, 'GH_CSR_MALFORMED', 'two CSR blocks');
  });

  test('der-with-trailing-garbage-is-malformed', () => {
    const csrDer = derOfPem(validPem);
    assertCsrError(Buffer.concat([csrDer, Buffer.from([0x00])]), 'GH_CSR_MALFORMED', 'one trailing zero byte');
    assertCsrError(Buffer.concat([csrDer, Buffer.from('trailing garbage')]), 'GH_CSR_MALFORMED', 'trailing text');
    assertCsrError(Buffer.concat([csrDer, csrDer]), 'GH_CSR_MALFORMED', 'two DER CSRs back to back');
  });

  test('a-certificate-is-not-a-csr', async () => {
    const key = pki.generatePrivateKey('p256');
    const certDer = await pki.buildRootCertificate(key, {
      commonName: 'Not A CSR',
      organization: 'Test',
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3600_000),
    });
    assertCsrError(certDer, 'GH_CSR_MALFORMED', 'certificate DER');
  });
});
