/**
 * The issuing CAs of a CA directory: the current one (intermediate.pem and its key, which sign
 * every new certificate) and the retired ones under retired/, kept only to sign the CRL of the
 * certificates they issued until the last of those expires. `ca rotate intermediate` moves the
 * current one to retired/ and puts a new one, under the same root, in its place.
 *
 *   retired/intermediate-<id>.pem  retired/intermediate-<id>-key.pem  retired/intermediate-<id>.json
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { GatehouseError } from '../errors/errors.js';
import { writeFileAtomic, writeNewFile } from '../files/atomic-write.js';
import { assertPrivateFile } from '../files/identity-dir.js';
import type { CaConfig } from '../config/ca-config.js';
import { buildIntermediateCertificate } from '../pki/ca-certificates.js';
import { parseCertificate, sha256Hex } from '../pki/certificate.js';
import { generatePrivateKey, loadPrivateKey, privateKeyToPem, spkiDer, type KeyType } from '../pki/keys.js';
import { keyIdentifier } from '../pki/leaf-certificate.js';
import { decodePem, toPem } from '../pki/pem.js';

export const RETIRED_DIR = 'retired';

/** A retired issuing CA: its key signs its CRL until `crlUntil`, when its last certificate has expired. */
export interface RetiredIssuer {
  der: Buffer;
  key: KeyObject;
  retiredAt: Date;
  crlUntil: Date;
}

/** The short, URL-safe name of an issuing CA (/crl/<id>): 16 hex digits of its key identifier. */
export function issuerIdOf(certDer: Buffer): string {
  const cert = parseCertificate(certDer);
  return (cert.subjectKeyId ?? keyIdentifier(cert.spkiDer)).toString('hex').slice(0, 16);
}

/** The retired issuers whose CRL is still needed at `now`; older ones are left on disk, unused. */
export function loadRetiredIssuers(dir: string, passphrase: string | undefined, now: Date): RetiredIssuer[] {
  const retiredDir = join(dir, RETIRED_DIR);
  if (!existsSync(retiredDir)) return [];
  const issuers: RetiredIssuer[] = [];
  for (const entry of readdirSync(retiredDir)
    .filter((e) => /^intermediate-[0-9a-f]{16}\.json$/.test(e))
    .sort()) {
    const base = join(retiredDir, entry.replace(/\.json$/, ''));
    const meta = JSON.parse(readFileSync(`${base}.json`, 'utf8')) as { retiredAt: string; crlUntil: string };
    const crlUntil = new Date(meta.crlUntil);
    if (!(crlUntil > now)) continue;
    const [der] = decodePem(readFileSync(`${base}.pem`, 'utf8'), 'CERTIFICATE');
    if (!der) throw new GatehouseError('GH_CONFIG_INVALID', `${base}.pem holds no certificate`);
    assertPrivateFile(`${base}-key.pem`);
    issuers.push({
      der,
      key: loadPrivateKey(readFileSync(`${base}-key.pem`, 'utf8'), passphrase, `${base}-key.pem`),
      retiredAt: new Date(meta.retiredAt),
      crlUntil,
    });
  }
  return issuers;
}

/**
 * A cheap signature of the issuer files, compared by a running `ca serve` every few seconds to
 * notice a rotation made by another process (the CLI) without a restart.
 */
export function issuerFilesStamp(dir: string, intermediateCert: string, intermediateKey: string): string {
  const retiredDir = join(dir, RETIRED_DIR);
  const retired = existsSync(retiredDir) ? readdirSync(retiredDir).sort().join(',') : '';
  return [fileStamp(intermediateCert), fileStamp(intermediateKey), retired].join('|');
}

/** A file's modification time, size and inode, or "missing": changes whenever it is rewritten or replaced. */
export function fileStamp(path: string): string {
  try {
    const s = statSync(path);
    return `${s.mtimeMs}:${s.size}:${s.ino}`;
  } catch {
    return 'missing';
  }
}

export interface RotationInput {
  dir: string;
  config: Readonly<CaConfig>;
  rootDer: Buffer;
  rootKey: KeyObject;
  current: { der: Buffer; key: KeyObject; certPath: string; keyPath: string };
  passphrase: string | undefined;
  /** When the newest certificate the current issuer signed expires: its CRL is needed until then. */
  lastLeafNotAfter: Date;
  now: Date;
  keyType?: KeyType;
}

export interface RotationResult {
  previous: { id: string; fingerprint: string; crlUntil: Date };
  next: { id: string; fingerprint: string; notAfter: Date; der: Buffer; key: KeyObject };
}

const YEAR_MS = 365 * 86_400_000;

/**
 * Retires the current issuing CA and makes a new one under the same root. The retired copy is
 * written first, so a crash at any point leaves the old issuer usable; the key is replaced
 * before the certificate, and a reader that sees the new key with the old certificate (a few
 * microseconds) refuses the pair and reads again (prepareSigningAuthority checks they match).
 */
export async function rotateIntermediate(input: RotationInput): Promise<RotationResult> {
  const { dir, config, rootDer, rootKey, current, passphrase, now } = input;
  const root = parseCertificate(rootDer);
  const previousId = issuerIdOf(current.der);
  const key = generatePrivateKey(input.keyType ?? keyTypeOf(current.key));
  const notAfter = new Date(Math.min(now.getTime() + 5 * YEAR_MS, root.notAfter.getTime()));
  if (notAfter.getTime() - now.getTime() < 2 * 86_400_000) {
    throw new GatehouseError(
      'GH_CA_ROTATION',
      `the root expires at ${root.notAfter.toISOString()}: an issuing CA under it would live less than two days; rotate the root instead`,
    );
  }
  // A distinct name per issuing CA: CRLs are matched to their issuer by name first (RFC 5280
  // §6.3.3 (b)), and two CAs sharing one name would have verifiers try the wrong CRL.
  const provisional = await buildIntermediateCertificate(
    key,
    { certDer: rootDer, key: rootKey },
    {
      commonName: `${config.org} Issuing CA ${keyIdentifier(spkiDer(key)).toString('hex').slice(0, 8)}`,
      organization: config.org,
      notBefore: new Date(now.getTime() - config.limits.backdate),
      notAfter,
    },
  );
  const nextId = issuerIdOf(provisional);
  const crlUntil = new Date(Math.max(input.lastLeafNotAfter.getTime(), now.getTime()) + 60_000);

  const retiredDir = join(dir, RETIRED_DIR);
  mkdirSync(retiredDir, { recursive: true, mode: 0o700 });
  const base = join(retiredDir, `intermediate-${previousId}`);
  if (existsSync(`${base}.json`))
    throw new GatehouseError(
      'GH_CA_ROTATION',
      `${base}.json exists: this issuing CA was retired before; the CA directory is inconsistent`,
    );
  writeNewFile(`${base}.pem`, toPem('CERTIFICATE', current.der), 0o644);
  writeNewFile(`${base}-key.pem`, privateKeyToPem(current.key, passphrase), 0o600);
  writeNewFile(
    `${base}.json`,
    `${JSON.stringify({ retiredAt: now.toISOString(), crlUntil: crlUntil.toISOString(), fingerprint: sha256Hex(current.der) }, null, 2)}\n`,
    0o600,
  );
  writeFileAtomic(current.keyPath, privateKeyToPem(key, passphrase), 0o600);
  writeFileAtomic(current.certPath, toPem('CERTIFICATE', provisional), 0o644);
  return {
    previous: { id: previousId, fingerprint: sha256Hex(current.der), crlUntil },
    next: { id: nextId, fingerprint: sha256Hex(provisional), notAfter, der: provisional, key },
  };
}

export function keyTypeOf(key: KeyObject): KeyType {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'ec':
      return details.namedCurve === 'secp384r1' ? 'p384' : 'p256';
    case 'rsa':
      return details.modulusLength && details.modulusLength >= 4096
        ? 'rsa4096'
        : details.modulusLength && details.modulusLength >= 3072
          ? 'rsa3072'
          : 'rsa2048';
    case 'ed25519':
      return 'ed25519';
    default:
      return 'p256';
  }
}
