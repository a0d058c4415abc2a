/**
 * What of the CA directory a backup holds (planCaDir: what is left out and why), and the copy
 * of it taken around the database snapshot so that every file held still while it was taken
 * (copyConsistently): a renewal of the admin identity in the middle cannot pair a key with
 * another key's certificate.
 */
import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { GatehouseError } from '../errors/errors.js';
import { snapshotSqlite } from '../store/sqlite-backup.js';
import { digestFile, ioError, mkdirPrivate, type FileDigest } from './backup-files.js';
import { CA_FILES } from './ca-dir.js';

/** How often the copy is redone when a file of the CA directory changed while it was taken. */
const MAX_ATTEMPTS = 3;
/** A temp file of files/atomic-write.ts: `.NAME.<12 hex>.tmp`, an unfinished write. */
const ATOMIC_TEMP = /^\..+\.[0-9a-f]{12}\.tmp$/;
/** The staging folder of files/identity-dir.ts: a replacement in progress, not the identity in force. */
const IDENTITY_STAGE = '.staged';
const SQLITE_SIDE_FILE = new RegExp(`^${CA_FILES.database.replace(/\./g, '\\.')}-(wal|shm|journal)$`);

interface Excluded {
  path: string;
  reason: string;
}

export interface CaDirPlan {
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
export function copyConsistently(
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
