/**
 * The CA directory: config, certificates, keys and the database, all in one 0700 folder.
 *
 *   gatehouse.yaml  root.pem  intermediate.pem  intermediate-key.pem  [root-key.pem]  gatehouse.db  admin/
 *   secrets-master-key.json (src/secrets/master-key.ts)
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { GatehouseError } from '../errors/errors.js';
import { CA_CONFIG_FILE, loadCaConfig, type CaConfig } from '../config/ca-config.js';
import { assertPrivateFile } from '../files/identity-dir.js';
import { loadPrivateKey, spkiDer } from '../pki/keys.js';
import { parseCertificate } from '../pki/certificate.js';
import { loadRootRotation, type RootRotation } from './root-rotation.js';
import { decodePem } from '../pki/pem.js';
import { loadRetiredIssuers, type RetiredIssuer } from './issuers.js';

export const CA_FILES = {
  config: CA_CONFIG_FILE,
  rootCert: 'root.pem',
  rootKey: 'root-key.pem',
  intermediateCert: 'intermediate.pem',
  intermediateKey: 'intermediate-key.pem',
  database: 'gatehouse.db',
  adminDir: 'admin',
} as const;

export function caPath(dir: string, file: string): string {
  return isAbsolute(file) ? file : join(dir, file);
}

/**
 * A CA directory is a directory holding gatehouse.yaml, and must not be readable by others: it
 * holds the online issuing key. A wrong --dir is said to be wrong before any advice about modes.
 */
export function assertCaDirPermissions(dir: string): void {
  let stat;
  try {
    stat = statSync(dir);
  } catch (cause) {
    throw new GatehouseError(
      'GH_CA_NOT_FOUND',
      `CA directory ${dir} does not exist; run \`gatehouse ca init --dir ${dir}\``,
      { cause },
    );
  }
  if (!stat.isDirectory())
    throw new GatehouseError(
      'GH_CA_NOT_FOUND',
      `CA directory ${dir} is not a directory; pass the directory made by \`gatehouse ca init --dir DIR\``,
    );
  if (!existsSync(join(dir, CA_FILES.config)))
    throw new GatehouseError(
      'GH_CA_NOT_FOUND',
      `${dir} is not a Gatehouse CA directory (it has no ${CA_FILES.config}); pass the directory made by \`gatehouse ca init --dir DIR\``,
    );
  const mode = stat.mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new GatehouseError(
      'GH_CA_DIR_PERMS',
      `CA directory ${dir} has mode ${mode.toString(8).padStart(4, '0')}; it must not be accessible to other users (chmod 700 ${dir})`,
    );
  }
}

export function readPassphrase(path: string | null | undefined): string | undefined {
  if (!path) return undefined;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new GatehouseError(
      'GH_CA_KEY_LOCKED',
      `cannot read passphrase file ${path}: ${(cause as NodeJS.ErrnoException).code}`,
      { cause },
    );
  }
  const passphrase = text.replace(/\r?\n$/, '');
  if (passphrase.length < 8)
    throw new GatehouseError('GH_CA_KEY_LOCKED', `passphrase in ${path} is shorter than 8 characters`);
  return passphrase;
}

export interface CaMaterial {
  dir: string;
  config: Readonly<CaConfig>;
  rootDer: Buffer;
  /** The certificate the issuing CA signs with: the external CA's in registration-authority mode (the root itself, when it signs with its root). */
  intermediateDer: Buffer;
  /** Null in registration-authority mode (config.externalCa): the external CA holds it. */
  intermediateKey: KeyObject | null;
  /** Retired issuing CAs whose CRL is still needed (issuers.ts). */
  retired: RetiredIssuer[];
  /** Null when the root key is kept offline. */
  rootKey: KeyObject | null;
  /** The passphrase of the CA keys, when they are encrypted: it also opens the secrets master key (src/secrets/master-key.ts). */
  passphrase?: string;
}

/** What monitoring needs: the config and the CA certificates, without the keys or their passphrase. */
export interface CaPublicMaterial {
  dir: string;
  config: Readonly<CaConfig>;
  rootDer: Buffer;
  intermediateDer: Buffer;
  /** The root key file is in the CA directory (so `ca serve` can re-sign the root CRL). */
  rootKeyOnline: boolean;
}

export function loadCaPublic(caDir: string, options: { env?: NodeJS.ProcessEnv } = {}): CaPublicMaterial {
  const dir = resolve(caDir);
  assertCaDirPermissions(dir);
  const config = loadCaConfig(join(dir, CA_FILES.config), options.env);
  return {
    dir,
    config,
    rootDer: readCertFile(caPath(dir, CA_FILES.rootCert)),
    intermediateDer: readCertFile(caPath(dir, CA_FILES.intermediateCert)),
    rootKeyOnline: config.keys.root !== null && existsSync(caPath(dir, config.keys.root)),
  };
}

function readCertFile(path: string): Buffer {
  const [der] = decodePem(readText(path), 'CERTIFICATE');
  if (!der) throw new GatehouseError('GH_CONFIG_INVALID', `${path} holds no certificate`);
  return der;
}

export function loadCaMaterial(
  caDir: string,
  options: { passphraseFile?: string | undefined; env?: NodeJS.ProcessEnv } = {},
): CaMaterial {
  const dir = resolve(caDir);
  assertCaDirPermissions(dir);
  const config = loadCaConfig(join(dir, CA_FILES.config), options.env);
  const passphrase = readPassphrase(options.passphraseFile ?? config.keys.passphraseFile);
  const readCert = (file: string) => readCertFile(caPath(dir, file));
  const readKey = (file: string) => {
    const path = caPath(dir, file);
    assertPrivateFile(path);
    return loadPrivateKey(readText(path), passphrase, path);
  };
  const rootKeyPath = config.keys.root ? caPath(dir, config.keys.root) : null;
  return {
    dir,
    config,
    rootDer: readCert(CA_FILES.rootCert),
    intermediateDer: readCert(CA_FILES.intermediateCert),
    intermediateKey: config.keys.intermediate ? readKey(config.keys.intermediate) : null,
    retired: loadRetiredIssuers(dir, passphrase, new Date()),
    rootKey: rootKeyPath && existsSync(rootKeyPath) ? readKey(rootKeyPath) : null,
    ...(passphrase !== undefined ? { passphrase } : {}),
  };
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new GatehouseError(code === 'ENOENT' ? 'GH_CA_NOT_FOUND' : 'GH_FILE_IO', `cannot read ${path}: ${code}`, {
      cause,
    });
  }
}

/** The issuing CAs as the CA directory holds them now: what a running `ca serve` reloads after a rotation. */
export function loadIssuerMaterial(
  material: CaMaterial,
  now = new Date(),
): { intermediateDer: Buffer; intermediateKey: KeyObject; retired: RetiredIssuer[] } {
  const { dir, config, passphrase } = material;
  if (config.keys.intermediate === null)
    throw new GatehouseError(
      'GH_CA_ROTATION',
      'the external CA holds the issuing key (externalCa): there is no issuing CA here to reload',
    );
  const keyPath = caPath(dir, config.keys.intermediate);
  assertPrivateFile(keyPath);
  return {
    intermediateDer: readCertFile(caPath(dir, CA_FILES.intermediateCert)),
    intermediateKey: loadPrivateKey(readText(keyPath), passphrase, keyPath),
    retired: loadRetiredIssuers(dir, passphrase, now),
  };
}

/** The root in force, its key when kept here, and the state of a root rotation: what a running `ca serve` reloads. */
export function loadRootMaterial(material: CaMaterial): {
  rootDer: Buffer;
  rootKey: KeyObject | null;
  rotation: RootRotation | null;
} {
  const { dir, config, passphrase } = material;
  const rootKeyPath = config.keys.root ? caPath(dir, config.keys.root) : null;
  let rootKey: KeyObject | null = null;
  if (rootKeyPath && existsSync(rootKeyPath)) {
    assertPrivateFile(rootKeyPath);
    rootKey = loadPrivateKey(readText(rootKeyPath), passphrase, rootKeyPath);
  }
  const rootDer = readCertFile(caPath(dir, CA_FILES.rootCert));
  // A finish in progress (root.pem written before root.json, or the other way round): the key must match.
  if (rootKey && !spkiDer(rootKey).equals(parseCertificate(rootDer).spkiDer)) {
    throw new GatehouseError(
      'GH_CA_ROTATION',
      `${rootKeyPath} is not the key of ${caPath(dir, CA_FILES.rootCert)} (a root rotation finishing?); tried again`,
    );
  }
  return { rootDer, rootKey, rotation: loadRootRotation(dir) };
}

/** A key file named on the command line (an offline root key), read with the CA's passphrase; a missing file is a clear error. */
export function readKeyFile(path: string, passphrase: string | undefined): KeyObject {
  return loadPrivateKey(readText(path), passphrase, path);
}
