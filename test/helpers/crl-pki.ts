/**
 * A small PKI for revocation tests, built in-process: root → issuing intermediate → leaves,
 * and CRLs signed by either CA (src/pki/crl.ts). Keys and certificates are new on every run.
 */
import type { KeyObject } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import * as pki from '../../src/pki/index.js';
import * as der from '../../src/pki/der.js';

export interface TestCa {
  certDer: Buffer;
  certPem: string;
  key: KeyObject;
  authority: pki.SigningAuthority;
  name: string;
}

export interface TestLeaf {
  der: Buffer;
  pem: string;
  /** Lowercase hex, as certificate.ts and crl-parse.ts key serials. */
  serial: string;
}

const VALIDITY = { notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2060-01-01T00:00:00Z') };

function testCa(certDer: Buffer, key: KeyObject, name: string): TestCa {
  return {
    certDer,
    certPem: pki.toPem('CERTIFICATE', certDer),
    key,
    authority: pki.prepareSigningAuthority(certDer, key),
    name,
  };
}

export async function buildTestPki(
  label = 'Revocation',
  type: pki.KeyType = 'p256',
): Promise<{ root: TestCa; intermediate: TestCa; bundlePem: string }> {
  const rootKey = pki.generatePrivateKey(type);
  const intKey = pki.generatePrivateKey(type);
  const rootDer = await pki.buildRootCertificate(rootKey, {
    commonName: `${label} Root`,
    organization: 'Gatehouse Test',
    ...VALIDITY,
  });
  const intDer = await pki.buildIntermediateCertificate(
    intKey,
    { certDer: rootDer, key: rootKey },
    { commonName: `${label} Issuing`, organization: 'Gatehouse Test', ...VALIDITY },
  );
  const root = testCa(rootDer, rootKey, `${label} Root`);
  const intermediate = testCa(intDer, intKey, `${label} Issuing`);
  return { root, intermediate, bundlePem: root.certPem + intermediate.certPem };
}

/** A client leaf signed by `ca`; `serial` (hex) lets a test pick a serial that needs DER padding. */
export function issueLeaf(ca: TestCa, name: string, serial?: string): TestLeaf {
  const serialBytes = serial ? Buffer.from(serial.length % 2 ? `0${serial}` : serial, 'hex') : pki.randomSerial();
  const der = pki.buildLeafCertificate(ca.authority, {
    serial: serialBytes,
    commonName: name,
    organizationalUnit: 'web',
    organization: 'Gatehouse Test',
    spkiDer: pki.spkiDer(pki.generatePrivateKey('p256')),
    notBefore: VALIDITY.notBefore,
    notAfter: VALIDITY.notAfter,
    profile: 'client',
    dns: [],
    ip: [],
    uri: [],
    email: [],
  });
  return { der, pem: pki.toPem('CERTIFICATE', der), serial: pki.parseCertificate(der).serial };
}

export interface CrlOptions {
  crlNumber: bigint;
  revoked?: Array<string | pki.RevokedEntry>;
  thisUpdate?: Date;
  nextUpdate?: Date;
}

export function makeCrl(ca: TestCa, options: CrlOptions): Buffer {
  const thisUpdate = options.thisUpdate ?? new Date(Date.now() - 60_000);
  return pki.buildCrl(ca.authority, {
    crlNumber: options.crlNumber,
    thisUpdate,
    nextUpdate: options.nextUpdate ?? new Date(thisUpdate.getTime() + 86_400_000),
    entries: (options.revoked ?? []).map((e) =>
      typeof e === 'string' ? { serial: e, revokedAt: thisUpdate, reason: 'keyCompromise' as const } : e,
    ),
  });
}

/** Replaces `path` the way deploy tools do: write a sibling, then rename over it. */
export function replaceFile(path: string, content: string | Buffer): void {
  writeFileSync(`${path}.tmp`, content);
  renameSync(`${path}.tmp`, path);
}

/** A v1 CRL without nextUpdate (RFC 5280 §5.1.2.5 requires one), correctly signed. */
export function makeCrlWithoutNextUpdate(ca: TestCa, revokedSerial: string): Buffer {
  const tbs = der.seq(
    ca.authority.algorithm.identifierDer,
    ca.authority.subjectNameDer,
    der.time(new Date(Date.now() - 60_000)),
    der.seq(der.seq(der.uintBytes(Buffer.from(revokedSerial, 'hex')), der.time(new Date(Date.now() - 60_000)))),
  );
  return der.seq(
    tbs,
    ca.authority.algorithm.identifierDer,
    der.bitString(pki.signWith(ca.authority.algorithm, ca.key, tbs)),
  );
}
