/**
 * The agent's secrets folder: every secret the CA grants this identity, as a file of its own
 * (mode 0400, written atomically), and nothing else that the agent put there. One sync asks the
 * CA for the list (`GET /v1/secrets`, mutual TLS with the current certificate), fetches what is
 * new or changed (`GET /v1/secrets/NAME`), removes the files of secrets no longer granted, and
 * says whether anything changed, so the hook runs only then.
 *
 * The folder is the agent's: files it did not write are left alone (a state file records what it
 * wrote). Names from the CA are checked again here, so a CA bug cannot write outside the folder.
 * On a tmpfs (systemd's RuntimeDirectory=) the values never touch a disk.
 */
import {
  existsSync,
  lstatSync,
  mkdirSync,
  chmodSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  renameSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { GatehouseError } from '../errors/errors.js';
import { tempPathFor, writeFileAtomic } from '../files/atomic-write.js';
import { IDENTITY_FILES } from '../files/identity-dir.js';
import { CaClient } from './ca-client.js';
import { loadIdentity, readAgentSettings } from './agent-state.js';

export const DEFAULT_SECRETS_SUBDIR = 'secrets';
/** What the agent wrote, so it removes only its own files. Hidden, 0600. */
export const SECRETS_STATE_FILE = '.gatehouse-secrets.json';
/** The same rule as the CA's (src/secrets/names.ts): a name is a file name, never a path. */
const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const IDENTITY_LINKS = [IDENTITY_FILES.cert, IDENTITY_FILES.key, IDENTITY_FILES.ca] as const;

export interface SecretListing {
  name: string;
  version: number;
  checksum: string;
  size: number;
}

interface SyncState {
  secrets: Record<string, { version: number; checksum: string }>;
}

export interface SecretsSyncOptions {
  /** The identity directory. */
  dir: string;
  /** Default: DIR/secrets. */
  secretsDir?: string;
  caUrl?: string;
  /** Also put cert.pem, key.pem and ca.pem in the folder, as symbolic links to the identity's files. */
  linkIdentity?: boolean;
}

export interface SecretsSyncResult {
  secretsDir: string;
  written: Array<{ name: string; version: number }>;
  removed: string[];
  unchanged: string[];
  changed: boolean;
}

export function secretsDirOf(options: Pick<SecretsSyncOptions, 'dir' | 'secretsDir'>): string {
  return resolve(options.secretsDir ?? join(options.dir, DEFAULT_SECRETS_SUBDIR));
}

export async function syncSecrets(options: SecretsSyncOptions): Promise<SecretsSyncResult> {
  const identity = loadIdentity(options.dir);
  const caUrl = options.caUrl ?? readAgentSettings(options.dir)?.caUrl;
  if (!caUrl)
    throw new GatehouseError(
      'GH_USAGE',
      `no CA URL: pass --ca, or enroll ${options.dir} with \`gatehouse agent enroll\` so agent.json records it`,
    );
  const secretsDir = secretsDirOf(options);
  const client = new CaClient({
    baseUrl: caUrl,
    rootPem: identity.caPem,
    identity: { keyPem: identity.keyPem, certPem: identity.certPem },
  });
  try {
    const { secrets } = await client.getJson<{ secrets: SecretListing[] }>('v1/secrets');
    const listed = validListing(secrets);
    const result: SecretsSyncResult = { secretsDir, written: [], removed: [], unchanged: [], changed: false };
    // An identity with no secrets gets no folder, unless it asked for one with its identity linked.
    if (listed.length === 0 && !options.linkIdentity && !existsSync(secretsDir)) return result;
    ensureSecretsDir(secretsDir);
    const state = readState(secretsDir);
    const next: SyncState = { secrets: {} };
    for (const secret of listed) {
      const had = state.secrets[secret.name];
      if (
        had &&
        had.version === secret.version &&
        had.checksum === secret.checksum &&
        existsSync(join(secretsDir, secret.name))
      ) {
        next.secrets[secret.name] = had;
        result.unchanged.push(secret.name);
        continue;
      }
      const { body, version } = await client.getBytesWithHeaders(
        `v1/secrets/${encodeURIComponent(secret.name)}`,
        'application/octet-stream',
      );
      if (version !== String(secret.version) || body.length !== secret.size) {
        // The secret was rotated between the list and the read: the next sync takes the new one.
        throw new GatehouseError(
          'GH_CA_UNREACHABLE',
          `the CA changed secret ${secret.name} during the sync (listed version ${secret.version}, ${secret.size} bytes; got version ${version}, ${body.length} bytes); the next sync retries`,
        );
      }
      replaceSecretFile(join(secretsDir, secret.name), body);
      next.secrets[secret.name] = { version: secret.version, checksum: secret.checksum };
      result.written.push({ name: secret.name, version: secret.version });
    }
    for (const name of Object.keys(state.secrets)) {
      if (next.secrets[name] || !SECRET_NAME.test(name)) continue;
      rmSync(join(secretsDir, name), { force: true });
      result.removed.push(name);
    }
    if (options.linkIdentity) linkIdentityFiles(secretsDir, options.dir);
    writeFileAtomic(join(secretsDir, SECRETS_STATE_FILE), `${JSON.stringify(next, null, 2)}\n`, 0o600);
    result.changed = result.written.length > 0 || result.removed.length > 0;
    return result;
  } finally {
    client.close();
  }
}

function validListing(secrets: unknown): SecretListing[] {
  if (!Array.isArray(secrets))
    throw new GatehouseError('GH_CA_UNREACHABLE', 'the CA answered /v1/secrets without a list of secrets');
  const seen = new Set<string>();
  return secrets.map((s: Partial<SecretListing>) => {
    if (typeof s.name !== 'string' || !SECRET_NAME.test(s.name) || isIdentityFile(s.name) || seen.has(s.name)) {
      throw new GatehouseError(
        'GH_CA_UNREACHABLE',
        `the CA listed a secret whose name cannot be a file in the secrets folder: ${JSON.stringify(String(s.name)).slice(0, 140)}`,
      );
    }
    if (!Number.isSafeInteger(s.version) || typeof s.checksum !== 'string' || !Number.isSafeInteger(s.size)) {
      throw new GatehouseError(
        'GH_CA_UNREACHABLE',
        `the CA listed secret ${s.name} without a version, checksum and size`,
      );
    }
    seen.add(s.name);
    return { name: s.name, version: s.version!, checksum: s.checksum, size: s.size! };
  });
}

const isIdentityFile = (name: string) => (IDENTITY_LINKS as readonly string[]).includes(name) || name === 'crl.pem';

/** The folder is 0700 and a real directory (not a symbolic link someone else could point elsewhere). */
function ensureSecretsDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const stat = lstatSync(dir);
    if (!stat.isDirectory()) throw new GatehouseError('GH_FILE_IO', `${dir} is not a directory`);
    chmodSync(dir, 0o700);
  } catch (cause) {
    if (cause instanceof GatehouseError) throw cause;
    throw new GatehouseError(
      'GH_FILE_IO',
      `cannot use ${dir} as the secrets folder: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`,
      { cause },
    );
  }
}

function readState(dir: string): SyncState {
  const path = join(dir, SECRETS_STATE_FILE);
  if (!existsSync(path)) return { secrets: {} };
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<SyncState>;
    return { secrets: typeof parsed.secrets === 'object' && parsed.secrets ? parsed.secrets : {} };
  } catch {
    // An unreadable state only costs a full fetch; every granted secret is written again.
    return { secrets: {} };
  }
}

/** 0400: the app reads it, nobody (the agent included) writes it in place; a rotation renames a new file over it. */
function replaceSecretFile(path: string, value: Buffer): void {
  writeFileAtomic(path, value, 0o400);
}

function linkIdentityFiles(secretsDir: string, identityDir: string): void {
  for (const file of IDENTITY_LINKS) {
    const link = join(secretsDir, file);
    const target = resolve(identityDir, file);
    if (existsSync(link) || isDanglingLink(link)) {
      if (!lstatSync(link).isSymbolicLink())
        throw new GatehouseError(
          'GH_FILE_IO',
          `${link} exists and is not a link to ${target}: the agent does not replace a file it did not write; move it away`,
        );
      if (readlinkSync(link) === target) continue;
    }
    // A new link renamed over the old path, so the name is never missing.
    const temp = tempPathFor(link);
    symlinkSync(target, temp);
    renameSync(temp, link);
  }
}

function isDanglingLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
