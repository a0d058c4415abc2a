/**
 * A PostgreSQL server for the issuance bench's PostgreSQL-store variants: initdb into the temp
 * dir, 127.0.0.1 at a free port, one database for the CA replicas. Unlike the test suite's
 * throwaway clusters (test/helpers/postgres.ts turns fsync and synchronous_commit off), the
 * durability settings stay at PostgreSQL's defaults (fsync on, synchronous_commit on,
 * full_page_writes on): the SQLite store it is compared with commits with synchronous=FULL.
 * The postmaster's PID is returned so that the load generator can read the CPU of the whole
 * server (postmaster, every backend, WAL writer, checkpointer: all its children) from /proc.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, postgresBinDir } from '../test/helpers/postgres.js';

export interface BenchPostgres {
  /** postgres:// URL of the bench database (trusted superuser over TCP, no password). */
  url: string;
  /** The postmaster; its descendants are the backends and auxiliary processes. */
  pid: number;
  version: string;
  stop(): Promise<void>;
}

const SUPERUSER = 'gatehouse';
const DATABASE = 'gatehouse_bench';
const INSTALL = 'apt-get install -y postgresql';

function asRoot(): boolean {
  return process.getuid?.() === 0;
}

function postgresIds(): { uid: number; gid: number } {
  const id = (flag: string) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  const u = id('-u'),
    g = id('-g');
  if (u.status !== 0 || g.status !== 0)
    throw new Error(`running as root, PostgreSQL needs the \`postgres\` system user to run as: ${INSTALL}`);
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** PostgreSQL refuses to run as root: then its tools run as the `postgres` user the Debian package creates. */
function run(bin: string, tool: string, args: string[], cwd: string): string {
  const [cmd, argv] = asRoot()
    ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]]
    : [join(bin, tool), args];
  const r = spawnSync(cmd, argv, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0)
    throw new Error(
      `${tool} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout || r.error?.message}`,
    );
  return r.stdout;
}

/** Fails before anything is measured when the server binaries (or, as root, the `postgres` user) are missing. */
export function postgresPreflight(): string {
  let bin: string;
  try {
    bin = postgresBinDir();
  } catch {
    throw new Error(
      `the PostgreSQL store variants need the PostgreSQL server (initdb, pg_ctl under /usr/lib/postgresql/*/bin): ${INSTALL}  (or leave postgres out of BENCH_STORES)`,
    );
  }
  if (asRoot()) postgresIds();
  return spawnSync(join(bin, 'postgres'), ['--version'], { encoding: 'utf8' }).stdout.trim();
}

export async function startBenchPostgres(tmp: string, maxConnections: number): Promise<BenchPostgres> {
  const version = postgresPreflight();
  const bin = postgresBinDir();
  const dir = join(tmp, 'postgres');
  const data = join(dir, 'data');
  const sockets = join(dir, 'sock');
  mkdirSync(sockets, { recursive: true });
  if (asRoot()) {
    const { uid, gid } = postgresIds();
    chmodSync(tmp, 0o711); // the postgres user must reach its own dir inside the bench's temp root
    for (const path of [dir, sockets]) chownSync(path, uid, gid);
  }
  // --no-sync only skips initdb's own flush of the new cluster; the server below runs with its defaults.
  run(bin, 'initdb', ['-D', data, '-U', SUPERUSER, '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'], dir);
  writeFileSync(join(data, 'pg_hba.conf'), 'local all all trust\nhost all all 127.0.0.1/32 trust\n');
  let port: number;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    // Durability stays at the defaults (fsync, synchronous_commit, full_page_writes all on).
    appendFileSync(
      join(data, 'postgresql.conf'),
      `\nlisten_addresses = '127.0.0.1'\nport = ${port}\nunix_socket_directories = '${sockets}'\nmax_connections = ${maxConnections}\n`,
    );
    try {
      run(bin, 'pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start'], dir);
      break;
    } catch (err) {
      if (attempt === 3) throw err; // another process took the port meanwhile: try another
    }
  }
  const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n', 1)[0]);
  // The postmaster is not a child the bench tracks (pg_ctl detaches it): on any exit, SIGINT (fast shutdown) it.
  const onExit = () => {
    try {
      process.kill(pid, 'SIGINT');
    } catch {
      /* already gone */
    }
  };
  process.on('exit', onExit);
  const stop = async () => {
    process.off('exit', onExit);
    if (existsSync(join(data, 'postmaster.pid'))) run(bin, 'pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop'], dir);
  };
  try {
    const admin = new pg.Client({ host: '127.0.0.1', port, user: SUPERUSER, database: 'postgres' });
    await admin.connect();
    try {
      const settings = await admin.query<{ name: string; setting: string }>(
        `SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes')`,
      );
      const off = settings.rows.filter((r) => r.setting !== 'on');
      if (off.length)
        throw new Error(
          `bench PostgreSQL must run with default durability, but ${off.map((r) => `${r.name}=${r.setting}`).join(', ')}`,
        );
      await admin.query(`CREATE DATABASE ${DATABASE}`);
    } finally {
      await admin.end();
    }
    return { url: `postgres://${SUPERUSER}@127.0.0.1:${port}/${DATABASE}`, pid, version, stop };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
