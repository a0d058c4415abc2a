/**
 * A PKI made by the real `openssl` command line, independent of Gatehouse's own CA code: a
 * self-signed test CA and leaves signed by `openssl ca`, which (unlike `openssl x509 -req` in
 * OpenSSL 3.0) can set any notBefore/notAfter, including past and future windows, without
 * faketime. Subjects can be given as `-subj` text or as a raw `[dn]` config section, which is
 * the only way to put CR, LF, leading/trailing spaces or multi-valued RDNs into a name.
 *
 * The CA also revokes (`openssl ca -revoke`) and makes CRLs (`openssl ca -gencrl`, v2 with a CRL
 * number and an AKI, or v1 with neither), and `opensslCrlText` reads any CRL back through
 * `openssl crl -text`: an independent issuer and reader of CRLs sharing none of our code.
 *
 * Every command gets an argument array (never a shell) and runs asynchronously, so the helpers
 * are safe to call while an in-process server is serving.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, type RunResult } from './run.js';

export interface OpensslCa {
  name: string;
  /** The CA's own directory (database, serial, config, keys). */
  dir: string;
  certPath: string;
  keyPath: string;
  configPath: string;
  /** The CA certificate, PEM and DER. */
  pem: string;
  certDer: Buffer;
  /** `openssl ca` keeps a database: leaves of one CA are signed one at a time. */
  queue: Promise<unknown>;
}

export interface OpensslLeaf {
  certPath: string;
  keyPath: string;
  /** The leaf certificate, PEM (the CA is not appended). */
  pem: string;
  /** DER of the leaf, for comparing with what an app receives. */
  der: Buffer;
}

export interface LeafOptions {
  /** File base name inside the CA directory; defaults to a counter. */
  file?: string;
  /** Shorthand for `subject: /CN=<cn>`. */
  cn?: string;
  /** `-subj` text, e.g. `/CN=alice/OU=web`. */
  subject?: string;
  /**
   * The body of an openssl config `[dn]` section, written verbatim (UTF-8, `prompt = no`,
   * `string_mask = utf8only`). Unquoted values take `\r`, `\n`, `\t`, `\\` escapes; a field
   * name starting with `+` joins the previous RDN (a multi-valued RDN).
   */
  subjectConfig?: string;
  /** extendedKeyUsage, e.g. `clientAuth`, `serverAuth`; null leaves the extension out. Default clientAuth. */
  eku?: string | null;
  /** subjectAltName, e.g. `DNS:localhost,IP:127.0.0.1`. */
  san?: string;
  /** Validity window; default from one hour ago for `days` (default 1) days. */
  notBefore?: Date;
  notAfter?: Date;
  days?: number;
  /** Key: EC P-256 (default) or RSA 2048. */
  keyType?: 'ec' | 'rsa';
}

let fileCounter = 0;

export function opensslOutput(r: RunResult): string {
  return `status ${r.status}\nstdout:\n${r.stdout.slice(0, 4000)}\nstderr:\n${r.stderr.slice(0, 4000)}`;
}

async function openssl(args: string[], what: string): Promise<RunResult> {
  const r = await run('openssl', args);
  assert.equal(r.status, 0, `openssl ${what} failed (openssl ${args.join(' ')}):\n${opensslOutput(r)}`);
  return r;
}

/** `YYYYMMDDHHMMSSZ`, the form `openssl ca -startdate/-enddate` takes. */
export function opensslTime(date: Date): string {
  return date
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:T]/g, '');
}

function newKeyArgs(keyType: 'ec' | 'rsa' = 'ec'): string[] {
  return keyType === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
}

export interface CaOptions {
  days?: number;
  keyType?: 'ec' | 'rsa';
  /** `-subj` of the CA; default `/CN=<name>/O=Gatehouse openssl test`. */
  subject?: string;
  /** Hex serial of the first leaf; 'FF01' makes serials whose DER INTEGER needs a 0x00 pad. Default 1000. */
  firstSerial?: string;
  /** 'v2' (default): CRLs carry a CRL number (from 1000 hex) and an AKI; 'v1': neither. */
  crl?: 'v1' | 'v2';
}

/** A self-signed CA (basicConstraints CA:TRUE, keyCertSign, cRLSign) in `dir/<name>`, ready for `makeLeaf`. */
export async function makeCa(dir: string, name: string, options: CaOptions = {}): Promise<OpensslCa> {
  const caDir = join(dir, name.replace(/[^A-Za-z0-9._-]/g, '_'));
  mkdirSync(join(caDir, 'newcerts'), { recursive: true });
  writeFileSync(join(caDir, 'index.txt'), '');
  writeFileSync(join(caDir, 'serial'), `${options.firstSerial ?? '1000'}\n`);
  const v2 = options.crl !== 'v1';
  if (v2) writeFileSync(join(caDir, 'crlnumber'), '1000\n');
  const configPath = join(caDir, 'ca.cnf');
  // policy_anything with -preserveDN: the leaf's subject is exactly the request's.
  writeFileSync(
    configPath,
    [
      '[ca]',
      'default_ca = test_ca',
      '[test_ca]',
      `dir = ${caDir}`,
      'database = $dir/index.txt',
      'new_certs_dir = $dir/newcerts',
      'serial = $dir/serial',
      'default_md = sha256',
      'policy = policy_anything',
      'unique_subject = no',
      'copy_extensions = none',
      'email_in_dn = yes',
      'certificate = $dir/ca.pem',
      'private_key = $dir/ca.key',
      'default_crl_days = 7',
      ...(v2 ? ['crlnumber = $dir/crlnumber', 'crl_extensions = crl_ext'] : []),
      '[policy_anything]',
      'commonName = optional',
      '[crl_ext]',
      'authorityKeyIdentifier = keyid:always',
      '',
    ].join('\n'),
  );
  const certPath = join(caDir, 'ca.pem');
  const keyPath = join(caDir, 'ca.key');
  await openssl(
    [
      'req',
      '-x509',
      ...newKeyArgs(options.keyType),
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-subj',
      options.subject ?? `/CN=${name}/O=Gatehouse openssl test`,
      '-days',
      String(options.days ?? 2),
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    `req -x509 (CA ${name})`,
  );
  return {
    name,
    dir: caDir,
    certPath,
    keyPath,
    configPath,
    pem: readFileSync(certPath, 'utf8'),
    certDer: pemToDer(readFileSync(certPath, 'utf8')),
    queue: Promise.resolve(),
  };
}

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

/** `openssl ca` keeps a database: one command of a CA at a time. */
function queued<T>(ca: OpensslCa, job: () => Promise<T>): Promise<T> {
  const next = ca.queue.catch(() => undefined).then(job);
  ca.queue = next;
  return next;
}

/** A key and a leaf certificate signed by `ca` with `openssl ca`; see LeafOptions. */
export function makeLeaf(ca: OpensslCa, options: LeafOptions = {}): Promise<OpensslLeaf> {
  return queued(ca, () => signLeaf(ca, options));
}

/** `openssl ca -revoke`, with an RFC 5280 reason name, or null for an entry without a reason. */
export function revokeLeaf(ca: OpensslCa, certPath: string, reason: string | null): Promise<void> {
  return queued(ca, async () => {
    await openssl(
      ['ca', '-config', ca.configPath, '-revoke', certPath, ...(reason ? ['-crl_reason', reason] : [])],
      `ca -revoke (${certPath})`,
    );
  });
}

let crlCounter = 0;

/** `openssl ca -gencrl` over what was revoked so far; the CRL as PEM text. */
export function generateCrl(ca: OpensslCa, options: { crlDays?: number } = {}): Promise<string> {
  return queued(ca, async () => {
    const out = join(ca.dir, `crl-${++crlCounter}.pem`);
    const days = options.crlDays ? ['-crldays', String(options.crlDays)] : [];
    await openssl(['ca', '-config', ca.configPath, '-gencrl', '-out', out, ...days], 'ca -gencrl');
    return readFileSync(out, 'utf8');
  });
}

async function signLeaf(ca: OpensslCa, options: LeafOptions): Promise<OpensslLeaf> {
  const base = join(ca.dir, options.file ?? `leaf-${++fileCounter}`);
  const keyPath = `${base}.key`;
  const csrPath = `${base}.csr`;
  const certPath = `${base}.pem`;
  const extPath = `${base}.ext`;
  const subjectArgs: string[] = [];
  if (options.subjectConfig !== undefined) {
    const reqConfig = `${base}.req.cnf`;
    writeFileSync(
      reqConfig,
      `[req]\ndistinguished_name = dn\nprompt = no\nutf8 = yes\nstring_mask = utf8only\n[dn]\n${options.subjectConfig}\n`,
    );
    subjectArgs.push('-config', reqConfig);
  } else {
    subjectArgs.push('-utf8', '-subj', options.subject ?? `/CN=${options.cn ?? 'client'}`);
  }
  await openssl(
    ['req', '-new', ...newKeyArgs(options.keyType), '-nodes', '-keyout', keyPath, '-out', csrPath, ...subjectArgs],
    `req -new (${base})`,
  );

  const eku = options.eku === undefined ? 'clientAuth' : options.eku;
  const ext = [
    'basicConstraints = critical,CA:FALSE',
    `keyUsage = critical,digitalSignature${options.keyType === 'rsa' ? ',keyEncipherment' : ''}`,
  ];
  if (eku !== null) ext.push(`extendedKeyUsage = ${eku}`);
  if (options.san) ext.push(`subjectAltName = ${options.san}`);
  ext.push('subjectKeyIdentifier = hash', 'authorityKeyIdentifier = keyid');
  writeFileSync(extPath, `${ext.join('\n')}\n`);

  const notBefore = options.notBefore ?? new Date(Date.now() - 3_600_000);
  const notAfter = options.notAfter ?? new Date(Date.now() + (options.days ?? 1) * 86_400_000);
  await openssl(
    [
      'ca',
      '-batch',
      '-config',
      ca.configPath,
      '-cert',
      ca.certPath,
      '-keyfile',
      ca.keyPath,
      '-in',
      csrPath,
      '-out',
      certPath,
      '-startdate',
      opensslTime(notBefore),
      '-enddate',
      opensslTime(notAfter),
      '-extfile',
      extPath,
      '-notext',
      '-preserveDN',
      '-utf8',
    ],
    `ca (${base})`,
  );
  const pem = readFileSync(certPath, 'utf8');
  return { certPath, keyPath, pem, der: pemToDer(pem) };
}

/** The subject as OpenSSL prints it with `-nameopt RFC2253` (the text nginx logs), without `subject=`. */
export async function opensslSubjectRfc2253(certPath: string): Promise<string> {
  const r = await openssl(['x509', '-in', certPath, '-noout', '-subject', '-nameopt', 'RFC2253'], 'x509 -subject');
  return r.stdout.replace(/^subject=/, '').replace(/\n$/, '');
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
  const r = await openssl(
    ['crl', '-inform', inform, '-in', path, '-noout', '-text', '-nameopt', 'RFC2253'],
    'crl -text',
  );
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
