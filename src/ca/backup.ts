/**
 * `gatehouse ca backup` and `gatehouse ca restore`.
 *
 * A backup is a new directory (0700, every file 0600, no dependency needed to read it):
 *
 *   BACKUP/manifest.json   what is in it: every file with its size and SHA-256, what was left
 *                          out and why, the audit head, the root fingerprint, the versions
 *   BACKUP/ca/…            the CA directory: the database as one consistent snapshot, the keys
 *                          byte for byte (still encrypted when they were), certificates, config,
 *                          the admin identity
 *
 * It is written into a hidden sibling and renamed into place, so PATH either holds a complete
 * backup or does not exist. The database is never copied as a file (see store/sqlite-backup.ts);
 * the other files are copied around the snapshot and read again after it, so a renewal of the
 * admin identity in the middle cannot pair a key with another key's certificate.
 *
 * A restore checks everything before it writes anything, then writes into a hidden sibling of
 * the new directory, checks the database there (integrity, the audit chain, the root) and renames
 * it into place. A changed byte anywhere, the manifest included, is refused naming the file.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  existsSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { z } from 'zod';
import { GatehouseError, isGatehouseError } from '../errors/errors.js';
import { fsyncDir, writeNewFile } from '../files/atomic-write.js';
import { gatehouseVersion } from '../metrics/process-metrics.js';
import { sha256Hex } from '../pki/certificate.js';
import { isEncryptedKeyPem } from '../pki/keys.js';
import { decodePem } from '../pki/pem.js';
import { verifyAuditTrail, type TrailReport } from '../store/audit-verify.js';
import { SQLITE_SCHEMA_VERSION, inspectSqliteFile, raiseCrlNumbers, snapshotSqlite } from '../store/sqlite-backup.js';
import { openSqliteStore } from '../store/sqlite.js';
import type { CertState } from '../store/store-certificates.js';
import { CA_FILES, caPath, loadCaPublic } from './ca-dir.js';
import { describeStore } from './store-open.js';

export const BACKUP_FORMAT = 'gatehouse-ca-backup/1';
export const BACKUP_MANIFEST = 'manifest.json';
/** The CA directory's files live under this folder of a backup. */
const CA_SUBDIR = 'ca';
/** How often the copy is redone when a file of the CA directory changed while it was taken. */
const MAX_ATTEMPTS = 3;
const ZERO_CHECKSUM = '0'.repeat(64);
const CHUNK = 1 << 20;

/** A temp file of files/atomic-write.ts: `.NAME.<12 hex>.tmp`, an unfinished write. */
const ATOMIC_TEMP = /^\..+\.[0-9a-f]{12}\.tmp$/;
/** The staging folder of files/identity-dir.ts: a replacement in progress, not the identity in force. */
const IDENTITY_STAGE = '.staged';
const SQLITE_SIDE_FILE = new RegExp(`^${CA_FILES.database.replace(/\./g, '\\.')}-(wal|shm|journal)$`);

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const manifestSchema = z.object({
  format: z.literal(BACKUP_FORMAT),
  createdAt: z.string(),
  gatehouseVersion: z.string(),
  source: z.string(),
  rootFingerprint: hex64,
  schemaVersion: z.number().int().min(0),
  audit: z.object({
    head: z.string().nullable(),
    events: z.number().int().min(0),
    intact: z.boolean(),
    problem: z.string().nullable(),
  }),
  rows: z.object({
    certificates: z.number().int(),
    tokens: z.number().int(),
    auditEvents: z.number().int(),
    names: z.number().int(),
  }),
  keys: z.object({ encrypted: z.boolean(), rootKeyIncluded: z.boolean(), passphraseFile: z.string().nullable() }),
  dirs: z.array(z.string()),
  files: z.array(z.object({ path: z.string(), size: z.number().int().min(0), sha256: hex64 })),
  excluded: z.array(z.object({ path: z.string(), reason: z.string() })),
  checksum: hex64,
});
export type BackupManifest = z.output<typeof manifestSchema>;

export interface FileDigest {
  size: number;
  sha256: string;
}

// ---------------------------------------------------------------- files

function ioError(what: string, path: string, cause: unknown): GatehouseError {
  return new GatehouseError(
    'GH_FILE_IO',
    `cannot ${what} ${path}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`,
    { cause },
  );
}

/** Streams `path` (never following a symlink) through SHA-256, copying it to `dest` when given (created exclusively, 0600, fsync'd). */
function digestFile(path: string, dest?: string): FileDigest {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(CHUNK);
  let size = 0;
  let src: number | undefined;
  let out: number | undefined;
  try {
    src = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    if (dest !== undefined) out = openSync(dest, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    for (;;) {
      const n = readSync(src, buf, 0, CHUNK, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      size += n;
      if (out !== undefined) {
        let written = 0;
        while (written < n) written += writeSync(out, buf, written, n - written);
      }
    }
    if (out !== undefined) fsyncSync(out);
  } catch (cause) {
    throw ioError(dest !== undefined ? 'copy' : 'read', path, cause);
  } finally {
    if (src !== undefined) closeSync(src);
    if (out !== undefined) closeSync(out);
  }
  return { size, sha256: hash.digest('hex') };
}

function mkdirPrivate(path: string): void {
  try {
    mkdirSync(path, { mode: 0o700 });
  } catch (cause) {
    throw ioError('create', path, cause);
  }
}

function isEmptyDir(path: string): boolean {
  return statSync(path).isDirectory() && readdirSync(path).length === 0;
}

/** A hidden sibling of `path` to build into, renamed to `path` once complete. */
function stagingSibling(path: string, suffix: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.${suffix}`);
}

/** The directories under `root` (relative, parents first), for an fsync of each after writing. */
function fsyncTree(root: string, dirs: readonly string[]): void {
  for (const d of [...dirs].reverse()) fsyncDir(join(root, d));
  fsyncDir(root);
}

// ---------------------------------------------------------------- what a backup holds

interface Excluded {
  path: string;
  reason: string;
}

interface CaDirPlan {
  /** Relative paths, `/`-separated, parents before children. */
  dirs: string[];
  /** Regular files to copy as they are (the database is not one of them). */
  files: string[];
  excluded: Excluded[];
}

/** What of the CA directory goes into a backup, and what is left out and why. */
function planCaDir(dir: string, passphrasePath: string | null): CaDirPlan {
  const plan: CaDirPlan = { dirs: [], files: [], excluded: [] };
  const walk = (relDir: string) => {
    const abs = relDir ? join(dir, ...relDir.split('/')) : dir;
    let names: string[];
    try {
      names = readdirSync(abs).sort();
    } catch (cause) {
      throw ioError('read the folder', abs, cause);
    }
    for (const name of names) {
      const rel = relDir ? `${relDir}/${name}` : name;
      const path = join(abs, name);
      let stat;
      try {
        stat = lstatSync(path);
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code === 'ENOENT') continue; // gone since the listing: a temp file renamed away
        throw ioError('read', path, cause);
      }
      if (stat.isSymbolicLink())
        plan.excluded.push({ path: rel, reason: 'a symbolic link: not followed (back up what it points to yourself)' });
      else if (stat.isDirectory()) {
        if (name === IDENTITY_STAGE)
          plan.excluded.push({
            path: rel,
            reason: 'an identity replacement in progress (agent renewal); the identity in force is backed up',
          });
        else {
          plan.dirs.push(rel);
          walk(rel);
        }
      } else if (!stat.isFile())
        plan.excluded.push({ path: rel, reason: 'not a regular file (a socket, FIFO or device)' });
      else if (rel === CA_FILES.database)
        continue; // copied as a snapshot
      else if (!relDir && SQLITE_SIDE_FILE.test(name))
        plan.excluded.push({
          path: rel,
          reason:
            "SQLite's write-ahead log, shared-memory index or journal: their committed content is in the database snapshot",
        });
      else if (ATOMIC_TEMP.test(name)) plan.excluded.push({ path: rel, reason: 'an unfinished atomic write' });
      else if (passphrasePath !== null && path === passphrasePath)
        plan.excluded.push({
          path: rel,
          reason: 'the passphrase of the CA keys: a backup never holds it next to the keys',
        });
      else plan.files.push(rel);
    }
  };
  walk('');
  return plan;
}

const samePlan = (a: CaDirPlan, b: CaDirPlan) =>
  a.files.join('\n') === b.files.join('\n') && a.dirs.join('\n') === b.dirs.join('\n');

/**
 * Copies the CA directory into `dest`: the files, the database snapshot, then the files read
 * again. When any changed meanwhile the copy is thrown away and redone, so what is kept held
 * still for the whole time the snapshot was taken.
 */
function copyConsistently(
  dir: string,
  dest: string,
  passphrasePath: string | null,
): { plan: CaDirPlan; digests: Map<string, FileDigest> } {
  let changed = '';
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    rmSync(dest, { recursive: true, force: true });
    mkdirPrivate(dest);
    const plan = planCaDir(dir, passphrasePath);
    for (const d of plan.dirs) mkdirPrivate(join(dest, ...d.split('/')));
    const digests = new Map<string, FileDigest>();
    let vanished: string | null = null;
    for (const f of plan.files) {
      try {
        digests.set(f, digestFile(join(dir, ...f.split('/')), join(dest, ...f.split('/'))));
      } catch (err) {
        // Renamed away since the listing (a pending renewal key finished, say): start over.
        if (((err as GatehouseError).cause as NodeJS.ErrnoException | undefined)?.code !== 'ENOENT') throw err;
        vanished = f;
        break;
      }
    }
    if (vanished === null) {
      snapshotSqlite(join(dir, CA_FILES.database), join(dest, CA_FILES.database));
      digests.set(CA_FILES.database, digestFile(join(dest, CA_FILES.database)));
      const again = planCaDir(dir, passphrasePath);
      const moved = !samePlan(plan, again)
        ? 'the list of files'
        : plan.files.find((f) => {
            try {
              return digestFile(join(dir, ...f.split('/'))).sha256 !== digests.get(f)!.sha256;
            } catch {
              return true;
            }
          });
      if (!moved) return { plan, digests };
      changed = moved;
    } else changed = vanished;
  }
  throw new GatehouseError(
    'GH_FILE_IO',
    `${changed} in ${dir} kept changing during ${MAX_ATTEMPTS} attempts to copy it consistently; try again (is an agent renewing the identity in ${join(dir, CA_FILES.adminDir)} right now?)`,
  );
}

// ---------------------------------------------------------------- the manifest

/** The manifest's text, with `checksum` the SHA-256 of that same text in which the checksum is 64 zeros. */
function manifestText(manifest: Omit<BackupManifest, 'checksum'>): string {
  const draft = `${JSON.stringify({ ...manifest, checksum: ZERO_CHECKSUM }, null, 2)}\n`;
  const checksum = createHash('sha256').update(draft).digest('hex');
  return draft.replace(`"checksum": "${ZERO_CHECKSUM}"`, `"checksum": "${checksum}"`);
}

const CHECKSUM_LINE = /\n {2}"checksum": "([0-9a-f]{64})"\n\}\n$/;

/** Reads and checks the manifest: its own checksum covers every other byte of it. */
function readManifest(from: string): { manifest: BackupManifest; text: string } {
  const path = join(from, BACKUP_MANIFEST);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new GatehouseError(
        'GH_BACKUP_CORRUPT',
        `${from} is not a Gatehouse CA backup: it has no ${BACKUP_MANIFEST}`,
        { cause },
      );
    throw ioError('read', path, cause);
  }
  const line = CHECKSUM_LINE.exec(text);
  if (!line)
    throw new GatehouseError(
      'GH_BACKUP_CORRUPT',
      `${path} was changed or damaged: its last entry is not the "checksum" line \`ca backup\` writes`,
    );
  const expected = line[1]!;
  const actual = createHash('sha256')
    .update(text.slice(0, line.index) + text.slice(line.index).replace(expected, ZERO_CHECKSUM))
    .digest('hex');
  if (actual !== expected)
    throw new GatehouseError(
      'GH_BACKUP_CORRUPT',
      `${path} was changed or damaged: its checksum is ${expected.slice(0, 16)}…, its content hashes to ${actual.slice(0, 16)}…`,
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new GatehouseError('GH_BACKUP_CORRUPT', `${path} is not JSON: ${(cause as Error).message}`, { cause });
  }
  const result = manifestSchema.safeParse(parsed);
  if (!result.success) {
    const format = (parsed as { format?: unknown } | null)?.format;
    if (typeof format === 'string' && format !== BACKUP_FORMAT)
      throw new GatehouseError(
        'GH_BACKUP_CORRUPT',
        `${path} is a backup of format "${format}"; this Gatehouse reads "${BACKUP_FORMAT}": restore it with the Gatehouse version that made it`,
      );
    throw new GatehouseError(
      'GH_BACKUP_CORRUPT',
      `${path} is not a manifest this Gatehouse can read: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return { manifest: result.data, text };
}

/** `ca/…` with plain segments only: nothing in a manifest may point outside the backup or the new directory. */
function assertSafeBackupPath(path: string, manifestPath: string): string[] {
  const segments = path.split('/');
  if (
    segments[0] !== CA_SUBDIR ||
    segments.length < 2 ||
    segments.some((s) => s === '' || s === '.' || s === '..' || s.includes('\\') || s.includes('\0'))
  ) {
    throw new GatehouseError(
      'GH_BACKUP_CORRUPT',
      `${manifestPath} names the path "${path}", which is not a plain path under ${CA_SUBDIR}/: refusing to restore it`,
    );
  }
  return segments.slice(1);
}

// ---------------------------------------------------------------- backup

export interface BackupOptions {
  dir: string;
  out: string;
  /** Who made it, for the audit event (`local:<user>`). */
  actor: string;
  env?: NodeJS.ProcessEnv;
  now?: () => Date;
}

export interface BackupResult {
  path: string;
  manifest: BackupManifest;
  /** SHA-256 of manifest.json as written: keep it off the machine to tell a rewritten backup later. */
  manifestSha256: string;
  bytes: number;
  durationMs: number;
  audit: TrailReport;
}

export async function createCaBackup(options: BackupOptions): Promise<BackupResult> {
  const started = process.hrtime.bigint();
  const now = options.now ?? (() => new Date());
  const ca = loadCaPublic(options.dir, options.env ? { env: options.env } : {});
  if (ca.config.store.kind === 'postgres') {
    throw new GatehouseError(
      'GH_USAGE',
      `this CA's state is in PostgreSQL (${describeStore(ca.dir, ca.config, options.env)}): back the database up with PostgreSQL's own tools (pg_dump, or base backups with WAL archiving), and the CA directory's keys and config as files; \`ca backup\` snapshots the embedded SQLite store only`,
    );
  }
  const dir = ca.dir;
  const dbPath = join(dir, CA_FILES.database);
  if (!existsSync(dbPath)) throw new GatehouseError('GH_CA_NOT_FOUND', `no CA database at ${dbPath}`);

  const out = resolve(options.out);
  if (lstatExists(out))
    throw new GatehouseError(
      'GH_BACKUP_EXISTS',
      `${out} already exists; a backup goes into a new path and never overwrites anything`,
    );
  const parent = dirname(out);
  let realParent: string;
  try {
    realParent = realpathSync(parent);
  } catch (cause) {
    throw ioError('use the folder', parent, cause);
  }
  const realDir = realpathSync(dir);
  if (`${realParent}${sep}`.startsWith(`${realDir}${sep}`)) {
    throw new GatehouseError(
      'GH_USAGE',
      `--out ${out} is inside the CA directory ${dir}; keep backups elsewhere (another disk, or off this machine)`,
    );
  }

  const passphrasePath = ca.config.keys.passphraseFile ? caPath(dir, ca.config.keys.passphraseFile) : null;
  const temp = stagingSibling(out, 'partial');
  mkdirPrivate(temp);
  let manifest: BackupManifest;
  let manifestSha256: string;
  let audit: TrailReport;
  let bytes: number;
  try {
    const caCopy = join(temp, CA_SUBDIR);
    const { plan, digests } = copyConsistently(dir, caCopy, passphrasePath);
    const snapshot = join(caCopy, CA_FILES.database);
    const report = inspectSqliteFile(snapshot);
    if (report.integrity.join() !== 'ok')
      throw new GatehouseError(
        'GH_STORE_IO',
        `the database ${dbPath} fails SQLite's integrity check: ${report.integrity.slice(0, 5).join('; ')}`,
      );
    // Recording ca.backup_created opens the live store, which would apply this version's
    // migrations under the `ca serve` that runs it: a backup must never upgrade the CA.
    if (report.schemaVersion !== SQLITE_SCHEMA_VERSION) {
      throw new GatehouseError(
        'GH_STORE_IO',
        `the database ${dbPath} has schema version ${report.schemaVersion} and this Gatehouse (${gatehouseVersion()}) uses version ${SQLITE_SCHEMA_VERSION}: back it up with the Gatehouse version that runs this CA (before an upgrade, not after installing the new version); nothing was written`,
      );
    }
    const store = openSqliteStore(snapshot, { readonly: true });
    try {
      audit = await verifyAuditTrail(store);
    } finally {
      await store.close();
    }
    const intermediateKey = ca.config.keys.intermediate === null ? null : caPath(dir, ca.config.keys.intermediate);
    const rootKeyRel = ca.config.keys.root ? relInside(dir, caPath(dir, ca.config.keys.root)) : null;
    const files = [...digests]
      .map(([rel, d]) => ({ path: `${CA_SUBDIR}/${rel}`, size: d.size, sha256: d.sha256 }))
      .sort((a, b) => (a.path < b.path ? -1 : 1));
    bytes = files.reduce((sum, f) => sum + f.size, 0);
    const body: Omit<BackupManifest, 'checksum'> = {
      format: BACKUP_FORMAT,
      createdAt: now().toISOString(),
      gatehouseVersion: gatehouseVersion(),
      source: dir,
      rootFingerprint: sha256Hex(ca.rootDer),
      schemaVersion: report.schemaVersion,
      audit: {
        head: audit.last ? `${audit.last.seq}:${audit.last.hash}` : null,
        events: audit.count,
        intact: audit.ok,
        problem: audit.broken?.reason ?? null,
      },
      rows: report.rows,
      keys: {
        encrypted:
          intermediateKey !== null
            ? existsSync(intermediateKey) && isEncryptedKeyPem(readFileSync(intermediateKey, 'utf8'))
            : ca.config.keys.passphraseFile !== null,
        rootKeyIncluded: rootKeyRel !== null && digests.has(rootKeyRel),
        passphraseFile: ca.config.keys.passphraseFile,
      },
      dirs: plan.dirs.map((d) => `${CA_SUBDIR}/${d}`),
      files,
      excluded: plan.excluded,
    };
    const text = manifestText(body);
    manifestSha256 = createHash('sha256').update(text).digest('hex');
    writeNewFile(join(temp, BACKUP_MANIFEST), text, 0o600);
    manifest = JSON.parse(text) as BackupManifest;
    fsyncTree(caCopy, plan.dirs);
    fsyncDir(temp);
    // Every backup is in the audit trail of the CA it copies: a copy of the CA keys nobody can
    // account for is worse than none. Recorded before the rename, so even a backup killed right
    // after it is accounted for; written through the store, like every local command.
    await recordBackup(dbPath, {
      time: now(),
      actor: options.actor,
      details: { path: out, manifestSha256, auditHead: manifest.audit.head, files: manifest.files.length, bytes },
    });
    // Checked again at the last moment: rename(2) would silently replace an empty directory.
    if (lstatExists(out))
      throw new GatehouseError(
        'GH_BACKUP_EXISTS',
        `${out} appeared while the backup was being made; it was left as it is (the audit trail records ca.backup_created for this attempt)`,
      );
    renameSync(temp, out);
    fsyncDir(parent);
  } catch (err) {
    rmSync(temp, { recursive: true, force: true });
    throw err;
  }
  return {
    path: out,
    manifest,
    manifestSha256,
    bytes,
    durationMs: Number(process.hrtime.bigint() - started) / 1e6,
    audit,
  };
}

async function recordBackup(
  dbPath: string,
  event: { time: Date; actor: string; details: Record<string, unknown> },
): Promise<void> {
  try {
    const live = openSqliteStore(dbPath);
    try {
      await live.appendAudit([{ ...event, type: 'ca.backup_created' }]);
    } finally {
      await live.close();
    }
  } catch (err) {
    const cause = err as Error;
    throw new GatehouseError(
      isGatehouseError(err) ? err.code : 'GH_STORE_IO',
      `could not record ca.backup_created in the audit trail, so no backup was made: ${cause.message}`,
      { cause },
    );
  }
}

function lstatExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** `path` relative to `dir`, `/`-separated, or null when it is not inside it. */
function relInside(dir: string, path: string): string | null {
  const prefix = `${dir}${sep}`;
  return path.startsWith(prefix) ? path.slice(prefix.length).split(sep).join('/') : null;
}

// ---------------------------------------------------------------- restore

export interface RestoreOptions {
  from: string;
  dir: string;
  now?: () => Date;
}

export interface RestoreResult {
  dir: string;
  from: string;
  manifest: BackupManifest;
  manifestSha256: string;
  rootFingerprint: string;
  schemaVersion: number;
  auditHead: string | null;
  auditEvents: number;
  certificates: Record<CertState, number>;
  tokens: number;
  names: number;
  files: number;
  bytes: number;
  /** The CRL numbers the restored CA continues from. */
  crlNumberFloor: string;
  /** The passphrase file the config names, and whether it is on this machine (null: the keys are not encrypted). */
  passphraseFile: { path: string; present: boolean } | null;
}

/** CRL number scopes of crl-publisher.ts. */
const CRL_SCOPES = ['intermediate', 'root'] as const;

export async function restoreCaBackup(options: RestoreOptions): Promise<RestoreResult> {
  const now = options.now ?? (() => new Date());
  const from = resolve(options.from);
  const target = resolve(options.dir);
  if (!existsSync(from) || !statSync(from).isDirectory())
    throw new GatehouseError(
      'GH_FILE_IO',
      `no backup at ${from}: pass the directory \`gatehouse ca backup --out\` made`,
    );
  const { manifest, text } = readManifest(from);
  const manifestPath = join(from, BACKUP_MANIFEST);

  // 1. Everything is checked before anything is written: the backup holds exactly the manifest's files, unchanged.
  const expected = new Map(manifest.files.map((f) => [f.path, f]));
  const expectedDirs = new Set(manifest.dirs);
  if (expected.size !== manifest.files.length)
    throw new GatehouseError('GH_BACKUP_CORRUPT', `${manifestPath} lists a file twice`);
  for (const path of [...expected.keys(), ...expectedDirs]) assertSafeBackupPath(path, manifestPath);
  if (!expected.has(`${CA_SUBDIR}/${CA_FILES.database}`))
    throw new GatehouseError(
      'GH_BACKUP_CORRUPT',
      `${manifestPath} lists no database (${CA_SUBDIR}/${CA_FILES.database})`,
    );
  const found = listBackup(from);
  for (const path of found.files)
    if (!expected.has(path))
      throw new GatehouseError(
        'GH_BACKUP_CORRUPT',
        `${join(from, path)} is not in the manifest: something was added to the backup`,
      );
  for (const path of found.dirs)
    if (path !== CA_SUBDIR && !expectedDirs.has(path))
      throw new GatehouseError(
        'GH_BACKUP_CORRUPT',
        `${join(from, path)}/ is not in the manifest: something was added to the backup`,
      );
  for (const path of expectedDirs)
    if (!found.dirs.includes(path))
      throw new GatehouseError('GH_BACKUP_CORRUPT', `${join(from, path)}/ is missing from the backup`);
  for (const f of manifest.files) {
    if (!found.files.includes(f.path))
      throw new GatehouseError('GH_BACKUP_CORRUPT', `${join(from, f.path)} is missing from the backup`);
    assertDigest(join(from, f.path), digestFile(join(from, f.path)), f);
  }

  if (existsSync(target) && (!statSync(target).isDirectory() || !isEmptyDir(target))) {
    throw new GatehouseError(
      'GH_CA_EXISTS',
      existsSync(join(target, CA_FILES.config))
        ? `a CA already exists in ${target}; restore into a new or empty directory`
        : `${target} is not empty; restore into a new or empty directory`,
    );
  }
  if (!existsSync(dirname(target)))
    throw new GatehouseError('GH_FILE_IO', `the folder ${dirname(target)} does not exist`);

  // 2. Written into a hidden sibling, re-hashed while copying (the backup could change under us), checked, then renamed.
  const temp = stagingSibling(target, 'restoring');
  mkdirPrivate(temp);
  try {
    const relOf = (path: string) => assertSafeBackupPath(path, manifestPath);
    for (const d of manifest.dirs) mkdirPrivate(join(temp, ...relOf(d)));
    for (const f of manifest.files)
      assertDigest(join(from, f.path), digestFile(join(from, f.path), join(temp, ...relOf(f.path))), f);

    const rootPem = readFileSync(join(temp, CA_FILES.rootCert), 'utf8');
    const [rootDer] = decodePem(rootPem, 'CERTIFICATE');
    if (!rootDer || sha256Hex(rootDer) !== manifest.rootFingerprint) {
      throw new GatehouseError(
        'GH_BACKUP_CORRUPT',
        `${join(from, CA_SUBDIR, CA_FILES.rootCert)} does not hold the root ${manifest.rootFingerprint} the manifest names`,
      );
    }
    const dbPath = join(temp, CA_FILES.database);
    const report = inspectSqliteFile(dbPath);
    if (report.integrity.join() !== 'ok')
      throw new GatehouseError(
        'GH_BACKUP_CORRUPT',
        `${join(from, CA_SUBDIR, CA_FILES.database)} fails SQLite's integrity check: ${report.integrity.slice(0, 5).join('; ')}`,
      );

    // Opening applies this Gatehouse's pending migrations (and refuses a newer schema), as `ca serve` would.
    const store = openSqliteStore(dbPath);
    let trail: TrailReport;
    let certificates: Record<CertState, number>;
    let tokens: number;
    let names: number;
    try {
      trail = await verifyAuditTrail(store);
      if (!trail.ok) {
        const b = trail.broken!;
        throw new GatehouseError(
          'GH_AUDIT_BROKEN',
          `the audit trail in ${join(from, CA_SUBDIR, CA_FILES.database)} is broken${b.seq === null ? '' : ` at event ${b.seq}`}: ${b.reason}; nothing was restored`,
        );
      }
      const initialized = (await store.listAudit({ type: 'ca.initialized', limit: 1 }))[0];
      const recorded = initialized?.details.rootFingerprint;
      if (typeof recorded === 'string' && recorded !== manifest.rootFingerprint) {
        throw new GatehouseError(
          'GH_BACKUP_CORRUPT',
          `${join(from, CA_SUBDIR, CA_FILES.database)} belongs to the CA with root ${recorded}, not to root ${manifest.rootFingerprint} of this backup`,
        );
      }
      certificates = await store.countCertsByState(now());
      tokens = (await store.listTokens()).length;
      names = (await store.listNameReservations()).length;
    } finally {
      await store.close();
    }
    // The lost CA may have signed CRLs after this backup; relying parties refuse lower numbers.
    const crlNumberFloor = BigInt(Math.floor(now().getTime() / 1000));
    raiseCrlNumbers(dbPath, crlNumberFloor, CRL_SCOPES);
    // The config and certificates must load as `ca serve` loads them.
    const ca = loadCaPublic(temp);

    fsyncTree(
      temp,
      manifest.dirs.map((d) => relOf(d).join('/')),
    );
    if (existsSync(target) && !isEmptyDir(target))
      throw new GatehouseError('GH_CA_EXISTS', `${target} was filled while the restore ran; it was left as it is`);
    // rename(2) replaces an empty directory, so an empty NEW_DIR made beforehand is fine.
    renameSync(temp, target);
    fsyncDir(dirname(target));
    const passphrase = ca.config.keys.passphraseFile;
    return {
      dir: target,
      from,
      manifest,
      manifestSha256: createHash('sha256').update(text).digest('hex'),
      rootFingerprint: manifest.rootFingerprint,
      schemaVersion: Math.max(report.schemaVersion, SQLITE_SCHEMA_VERSION),
      auditHead: trail.last ? `${trail.last.seq}:${trail.last.hash}` : null,
      auditEvents: trail.count,
      certificates,
      tokens,
      names,
      files: manifest.files.length,
      bytes: manifest.files.reduce((s, f) => s + f.size, 0),
      crlNumberFloor: crlNumberFloor.toString(),
      passphraseFile: passphrase ? { path: passphrase, present: existsSync(caPath(target, passphrase)) } : null,
    };
  } catch (err) {
    rmSync(temp, { recursive: true, force: true });
    throw err;
  }
}

function assertDigest(path: string, actual: FileDigest, recorded: FileDigest): void {
  if (actual.size !== recorded.size) {
    throw new GatehouseError(
      'GH_BACKUP_CORRUPT',
      `${path} was changed or damaged: it has ${actual.size} bytes, the manifest recorded ${recorded.size}`,
    );
  }
  if (actual.sha256 !== recorded.sha256) {
    throw new GatehouseError(
      'GH_BACKUP_CORRUPT',
      `${path} was changed or damaged: its SHA-256 is ${actual.sha256}, the manifest recorded ${recorded.sha256}`,
    );
  }
}

/** Every file and folder of a backup (relative, `/`-separated), the manifest aside; anything but plain files and folders is refused. */
function listBackup(from: string): { files: string[]; dirs: string[] } {
  const files: string[] = [];
  const dirs: string[] = [];
  const walk = (rel: string) => {
    const abs = rel ? join(from, ...rel.split('/')) : from;
    for (const name of readdirSync(abs).sort()) {
      const childRel = rel ? `${rel}/${name}` : name;
      const stat = lstatSync(join(abs, name));
      if (stat.isDirectory()) {
        dirs.push(childRel);
        walk(childRel);
      } else if (stat.isFile()) {
        if (childRel !== BACKUP_MANIFEST) files.push(childRel);
      } else {
        throw new GatehouseError(
          'GH_BACKUP_CORRUPT',
          `${join(abs, name)} is not a regular file or folder (a symbolic link?), which a backup never holds`,
        );
      }
    }
  };
  walk('');
  return { files, dirs };
}
