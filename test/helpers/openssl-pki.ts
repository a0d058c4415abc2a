/**
 * A PKI made by the real `openssl` command line, independent of Gatehouse's own CA code: a
 * self-signed test CA and leaves signed by `openssl ca`, which (unlike `openssl x509 -req` in
 * OpenSSL 3.0) can set any notBefore/notAfter, including past and future windows, without
 * faketime. Subjects can be given as `-subj` text or as a raw `[dn]` config section, which is
 * the only way to put CR, LF, leading/trailing spaces or multi-valued RDNs into a name.
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
  /** The CA certificate, PEM. */
  pem: string;
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

/** A self-signed CA (basicConstraints CA:TRUE, keyCertSign) in `dir/<name>`, ready for `makeLeaf`. */
export async function makeCa(
  dir: string,
  name: string,
  options: { days?: number; keyType?: 'ec' | 'rsa' } = {},
): Promise<OpensslCa> {
  const caDir = join(dir, name.replace(/[^A-Za-z0-9._-]/g, '_'));
  mkdirSync(join(caDir, 'newcerts'), { recursive: true });
  writeFileSync(join(caDir, 'index.txt'), '');
  writeFileSync(join(caDir, 'serial'), '1000\n');
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
      '[policy_anything]',
      'commonName = optional',
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
      `/CN=${name}/O=Gatehouse openssl test`,
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
    queue: Promise.resolve(),
  };
}

/** A key and a leaf certificate signed by `ca` with `openssl ca`; see LeafOptions. */
export function makeLeaf(ca: OpensslCa, options: LeafOptions = {}): Promise<OpensslLeaf> {
  const job = ca.queue.catch(() => undefined).then(() => signLeaf(ca, options));
  ca.queue = job;
  return job;
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
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return { certPath, keyPath, pem, der };
}

/** The subject as OpenSSL prints it with `-nameopt RFC2253` (the text nginx logs), without `subject=`. */
export async function opensslSubjectRfc2253(certPath: string): Promise<string> {
  const r = await openssl(['x509', '-in', certPath, '-noout', '-subject', '-nameopt', 'RFC2253'], 'x509 -subject');
  return r.stdout.replace(/^subject=/, '').replace(/\n$/, '');
}
