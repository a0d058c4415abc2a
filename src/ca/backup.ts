/**
 * `gatehouse ca backup` (`ca restore` is backup-restore.ts).
 *
 * A backup is a new directory (0700, every file 0600, no dependency needed to read it):
 *
 *   BACKUP/manifest.json   what is in it: every file with its size and SHA-256, what was left
 *                          out and why, the audit head, the root fingerprint, the versions
 *                          (backup-manifest.ts)
 *   BACKUP/ca/…            the CA directory: the database as one consistent snapshot, the keys
 *                          byte for byte (still encrypted when they were), certificates, config,
 *                          the admin identity
 *
 * It is written into a hidden sibling and renamed into place, so PATH either holds a complete
 * backup or does not exist. The database is never copied as a file (see store/sqlite-backup.ts);
 * the other files are copied around the snapshot and read again after it, so a renewal of the
 * admin identity in the middle cannot pair a key with another key's certificate (backup-copy.ts).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { GatehouseError, isGatehouseError } from '../errors/errors.js';
import { fsyncDir, writeNewFile } from '../files/atomic-write.js';
import { gatehouseVersion } from '../metrics/process-metrics.js';
import { sha256Hex } from '../pki/certificate.js';
import { isEncryptedKeyPem } from '../pki/keys.js';
import { verifyAuditTrail, type TrailReport } from '../store/audit-verify.js';
import { SQLITE_SCHEMA_VERSION, inspectSqliteFile, type SqliteFileReport } from '../store/sqlite-backup.js';
import { openSqliteStore } from '../store/sqlite.js';
import { copyConsistently, type CaDirPlan } from './backup-copy.js';
import { fsyncTree, ioError, lstatExists, mkdirPrivate, stagingSibling, type FileDigest } from './backup-files.js';
import { BACKUP_FORMAT, BACKUP_MANIFEST, CA_SUBDIR, manifestText, type BackupManifest } from './backup-manifest.js';
import { CA_FILES, caPath, loadCaPublic, type CaPublicMaterial } from './ca-dir.js';
import { describeStore } from './store-open.js';

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
  const parent = assertNewPathOutside(out, dir);

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
    const report = checkSnapshot(snapshot, dbPath);
    const store = openSqliteStore(snapshot, { readonly: true });
    try {
      audit = await verifyAuditTrail(store);
    } finally {
      await store.close();
    }
    const body = manifestBody(ca, now(), report, audit, plan, digests);
    bytes = body.files.reduce((sum, f) => sum + f.size, 0);
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

/** A backup goes into a new path, outside the CA directory: nothing is overwritten, nothing copies itself. Its parent folder. */
function assertNewPathOutside(out: string, dir: string): string {
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
  return parent;
}

/** The snapshot passes SQLite's integrity check and has this Gatehouse's schema version. */
function checkSnapshot(snapshot: string, dbPath: string): SqliteFileReport {
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
  return report;
}

function manifestBody(
  ca: CaPublicMaterial,
  createdAt: Date,
  report: SqliteFileReport,
  audit: TrailReport,
  plan: CaDirPlan,
  digests: Map<string, FileDigest>,
): Omit<BackupManifest, 'checksum'> {
  const dir = ca.dir;
  const intermediateKey = ca.config.keys.intermediate === null ? null : caPath(dir, ca.config.keys.intermediate);
  const rootKeyRel = ca.config.keys.root ? relInside(dir, caPath(dir, ca.config.keys.root)) : null;
  const files = [...digests]
    .map(([rel, d]) => ({ path: `${CA_SUBDIR}/${rel}`, size: d.size, sha256: d.sha256 }))
    .sort((a, b) => (a.path < b.path ? -1 : 1));
  return {
    format: BACKUP_FORMAT,
    createdAt: createdAt.toISOString(),
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

/** `path` relative to `dir`, `/`-separated, or null when it is not inside it. */
function relInside(dir: string, path: string): string | null {
  const prefix = `${dir}${sep}`;
  return path.startsWith(prefix) ? path.slice(prefix.length).split(sep).join('/') : null;
}
