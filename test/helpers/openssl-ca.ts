/**
 * A CA run by `openssl ca` in a temp dir: an independent issuer of certificates and CRLs
 * (`openssl ca -revoke`, `openssl ca -gencrl`) sharing none of our code.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, type RunResult } from './run.js';

export interface OpensslCa {
  dir: string;
  certPath: string;
  certDer: Buffer;
  issue(name: string): Promise<{ path: string; der: Buffer }>;
  revoke(certPath: string, reason: string | null): Promise<void>;
  /** `openssl ca -gencrl`; PEM text. */
  gencrl(options?: { crlDays?: number }): Promise<string>;
}

const output = (r: RunResult) =>
  `status ${r.status}\nstdout:\n${r.stdout.slice(0, 3000)}\nstderr:\n${r.stderr.slice(0, 3000)}`;

async function openssl(args: string[]): Promise<RunResult> {
  const r = await run('openssl', args);
  assert.equal(r.status, 0, `openssl ${args.join(' ')}\n${output(r)}`);
  return r;
}

/**
 * `v2: false` makes a v1 CRL (no crlnumber file, no crl_extensions): no CRL number, no AKI.
 * `firstSerial` is hex; 'FF01' makes serials whose DER INTEGER needs a 0x00 pad.
 */
export async function makeOpensslCa(
  dir: string,
  options: { key: 'ec' | 'rsa'; v2?: boolean; firstSerial?: string; subject?: string },
): Promise<OpensslCa> {
  mkdirSync(join(dir, 'newcerts'), { recursive: true });
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), `${options.firstSerial ?? '1000'}\n`);
  const v2 = options.v2 !== false;
  if (v2) writeFileSync(join(dir, 'crlnumber'), '1000\n');
  const config = join(dir, 'openssl.cnf');
  writeFileSync(
    config,
    [
      '[ ca ]',
      'default_ca = CA_default',
      '[ CA_default ]',
      `dir = ${dir}`,
      'database = $dir/index.txt',
      'new_certs_dir = $dir/newcerts',
      'certificate = $dir/ca.pem',
      'private_key = $dir/ca.key',
      'serial = $dir/serial',
      ...(v2 ? ['crlnumber = $dir/crlnumber', 'crl_extensions = crl_ext'] : []),
      'default_md = sha256',
      'default_days = 30',
      'default_crl_days = 7',
      'policy = policy_any',
      'unique_subject = no',
      'copy_extensions = none',
      'x509_extensions = usr_cert',
      '[ policy_any ]',
      'commonName = supplied',
      '[ usr_cert ]',
      'basicConstraints = CA:FALSE',
      'keyUsage = critical, digitalSignature',
      'extendedKeyUsage = clientAuth',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
      '[ crl_ext ]',
      'authorityKeyIdentifier = keyid:always',
      '[ req ]',
      'distinguished_name = dn',
      '[ dn ]',
      '[ v3_ca ]',
      'basicConstraints = critical, CA:TRUE',
      'keyUsage = critical, keyCertSign, cRLSign',
      'subjectKeyIdentifier = hash',
      '',
    ].join('\n'),
  );
  const newkey = (type: 'ec' | 'rsa') =>
    type === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048'];
  const certPath = join(dir, 'ca.pem');
  await openssl([
    'req',
    '-x509',
    ...newkey(options.key),
    '-nodes',
    '-keyout',
    join(dir, 'ca.key'),
    '-out',
    certPath,
    '-days',
    '3650',
    '-subj',
    options.subject ?? '/O=Gatehouse Test/CN=OpenSSL Test CA',
    '-config',
    config,
    '-extensions',
    'v3_ca',
  ]);
  const derOf = async (path: string) => {
    await openssl(['x509', '-in', path, '-outform', 'DER', '-out', `${path}.der`]);
    return readFileSync(`${path}.der`);
  };
  let n = 0;
  return {
    dir,
    certPath,
    certDer: await derOf(certPath),
    async issue(name) {
      const base = join(dir, `leaf-${++n}`);
      await openssl([
        'req',
        '-new',
        ...newkey('ec'),
        '-nodes',
        '-keyout',
        `${base}.key`,
        '-out',
        `${base}.csr`,
        '-subj',
        `/CN=${name}`,
      ]);
      await openssl(['ca', '-batch', '-config', config, '-in', `${base}.csr`, '-out', `${base}.pem`, '-notext']);
      return { path: `${base}.pem`, der: await derOf(`${base}.pem`) };
    },
    async revoke(path, reason) {
      await openssl(['ca', '-config', config, '-revoke', path, ...(reason ? ['-crl_reason', reason] : [])]);
    },
    async gencrl(gen = {}) {
      const out = join(dir, `crl-${++n}.pem`);
      await openssl([
        'ca',
        '-config',
        config,
        '-gencrl',
        '-out',
        out,
        ...(gen.crlDays ? ['-crldays', String(gen.crlDays)] : []),
      ]);
      return readFileSync(out, 'utf8');
    },
  };
}

export interface OpensslCrlView {
  version: number;
  issuer: string;
  lastUpdate: Date;
  nextUpdate: Date | null;
  crlNumber: bigint | null;
  /** Lowercase hex, no colons. */
  akid: string | null;
  /** Serial as a number, revocation date, and the RFC 5280 reason name (null when the entry has none). */
  entries: Array<{ serial: bigint; revokedAt: Date; reason: string | null }>;
}

// How `openssl crl -text` names each reason (crypto/x509/v3_enum.c), to RFC 5280 §5.3.1 names.
const OPENSSL_REASONS: Record<string, string> = {
  Unspecified: 'unspecified',
  'Key Compromise': 'keyCompromise',
  'CA Compromise': 'cACompromise',
  'Affiliation Changed': 'affiliationChanged',
  Superseded: 'superseded',
  'Cessation Of Operation': 'cessationOfOperation',
  'Certificate Hold': 'certificateHold',
  'Remove From CRL': 'removeFromCRL',
  'Privilege Withdrawn': 'privilegeWithdrawn',
  'AA Compromise': 'aACompromise',
};

/** `openssl crl -text` read back into fields: the independent view of a CRL file (PEM or DER). */
export async function opensslCrlText(path: string, inform: 'PEM' | 'DER' = 'PEM'): Promise<OpensslCrlView> {
  const r = await openssl(['crl', '-inform', inform, '-in', path, '-noout', '-text', '-nameopt', 'RFC2253']);
  const text = r.stdout;
  const field = (re: RegExp) => re.exec(text)?.[1]?.trim() ?? null;
  const number = field(/X509v3 CRL Number: *\n\s+(.+)$/m);
  const section = text.split(/^Revoked Certificates:$/m)[1]?.split(/^\s+Signature Algorithm:/m)[0] ?? '';
  const entries = [
    ...section.matchAll(
      /Serial Number: ([0-9A-F]+)\n\s+Revocation Date: (.+)\n(?:\s+CRL entry extensions:\n\s+X509v3 CRL Reason Code: *\n\s+(.+)\n)?/g,
    ),
  ].map((m) => ({
    serial: BigInt(`0x${m[1]!}`),
    revokedAt: new Date(m[2]!),
    reason: m[3] ? (OPENSSL_REASONS[m[3].trim()] ?? m[3].trim()) : null,
  }));
  assert.equal(
    entries.length,
    (section.match(/Serial Number:/g) ?? []).length,
    'every revoked entry was read from openssl crl -text',
  );
  const nextUpdate = field(/Next Update: (.+)$/m);
  return {
    version: Number(field(/Version (\d+)/)),
    issuer: field(/Issuer: (.+)$/m)!,
    lastUpdate: new Date(field(/Last Update: (.+)$/m)!),
    nextUpdate: nextUpdate && nextUpdate !== 'NONE' ? new Date(nextUpdate) : null,
    // Decimal, or 0x-prefixed / colon-separated hex once it no longer fits a long.
    crlNumber:
      number === null
        ? null
        : number.startsWith('0x')
          ? BigInt(number)
          : number.includes(':')
            ? BigInt(`0x${number.replace(/:/g, '')}`)
            : BigInt(number),
    akid:
      field(/X509v3 Authority Key Identifier: *\n\s+(?:keyid:)?([0-9A-F:]+)$/m)
        ?.replace(/:/g, '')
        .toLowerCase() ?? null,
    entries,
  };
}
