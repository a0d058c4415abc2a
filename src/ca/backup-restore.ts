/**
 * `gatehouse ca restore`: a backup (backup.ts) into a new CA directory.
 *
 * A restore checks everything before it writes anything, then writes into a hidden sibling of
 * the new directory, checks the database there (integrity, the audit chain, the root) and renames
 * it into place. A changed byte anywhere, the manifest included, is refused naming the file.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { GatehouseError } from '../errors/errors.js';
import { fsyncDir } from '../files/atomic-write.js';
import { sha256Hex } from '../pki/certificate.js';
import { decodePem } from '../pki/pem.js';
import { verifyAuditTrail, type TrailReport } from '../store/audit-verify.js';
import {
  SQLITE_SCHEMA_VERSION,
  inspectSqliteFile,
  raiseCrlNumbers,
  type SqliteFileReport,
} from '../store/sqlite-backup.js';
import { openSqliteStore } from '../store/sqlite.js';
import type { CertState } from '../store/store-certificates.js';
import { assertDigest, digestFile, fsyncTree, isEmptyDir, mkdirPrivate, stagingSibling } from './backup-files.js';
import {
  BACKUP_MANIFEST,
  CA_SUBDIR,
  assertSafeBackupPath,
  readManifest,
  type BackupManifest,
} from './backup-manifest.js';
import { CA_FILES, caPath, loadCaPublic } from './ca-dir.js';

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
  assertBackupIntact(from, manifest, manifestPath);
  assertRestoreTarget(target);

  // 2. Written into a hidden sibling, re-hashed while copying (the backup could change under us), checked, then renamed.
  const temp = stagingSibling(target, 'restoring');
  mkdirPrivate(temp);
  try {
    const relOf = (path: string) => assertSafeBackupPath(path, manifestPath);
    for (const d of manifest.dirs) mkdirPrivate(join(temp, ...relOf(d)));
    for (const f of manifest.files)
      assertDigest(join(from, f.path), digestFile(join(from, f.path), join(temp, ...relOf(f.path))), f);

    const dbPath = join(temp, CA_FILES.database);
    const { report, trail, certificates, tokens, names } = await checkRestoredDatabase(temp, from, manifest, now);
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

/** The backup holds exactly the files and folders its manifest lists, each unchanged, the database among them. */
function assertBackupIntact(from: string, manifest: BackupManifest, manifestPath: string): void {
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
}

/** A restore goes into a new or empty directory whose parent exists. */
function assertRestoreTarget(target: string): void {
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
}

/**
 * The copied CA's root is the manifest's, its database passes SQLite's integrity check and has
 * an unbroken audit trail of that same root; what it holds, counted for the report.
 */
async function checkRestoredDatabase(
  temp: string,
  from: string,
  manifest: BackupManifest,
  now: () => Date,
): Promise<{
  report: SqliteFileReport;
  trail: TrailReport;
  certificates: Record<CertState, number>;
  tokens: number;
  names: number;
}> {
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
  try {
    const trail = await verifyAuditTrail(store);
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
    return {
      report,
      trail,
      certificates: await store.countCertsByState(now()),
      tokens: (await store.listTokens()).length,
      names: (await store.listNameReservations()).length,
    };
  } finally {
    await store.close();
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
