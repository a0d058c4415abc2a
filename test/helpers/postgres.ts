/**
 * A throwaway PostgreSQL server for one test file: initdb into a temp dir, listening on
 * 127.0.0.1 at a free port (its socket inside that dir), one fresh database per test, removed
 * by stop(). Durability is switched off here only, for speed: these clusters die with the test.
 * A missing PostgreSQL fails loudly; the tests that need it are never skipped.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface TestPostgres {
  port: number;
  /** A new empty database, as the trusted superuser: its URL. */
  createDatabase(): Promise<string>;
  /** A role that must log in with this password over TCP (scram-sha-256), for the redaction tests. */
  passwordRole: { user: string; password: string };
  /** Stops the server and keeps its data, as an outage does; `resume()` starts it again on the same port. */
  halt(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
}

const SUPERUSER = 'gatehouse';
const PASSWORD_ROLE = { user: 'gatehouse_pw', password: 'Sw0rdfish-not-in-messages' };

/** The newest /usr/lib/postgresql/N/bin that has initdb (Debian's layout). */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a)) : [];
  if (versions.length === 0) throw new Error('PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin: apt-get install -y postgresql');
  return join(root, versions[0]!, 'bin');
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** PostgreSQL refuses to run as root: then its tools run as the `postgres` user the Debian package creates. */
function run(bin: string, tool: string, args: string[], cwd: string): void {
  const asRoot = process.getuid?.() === 0;
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args];
  const r = spawnSync(cmd, argv, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${tool} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout || r.error?.message}`);
}

export async function startPostgres(): Promise<TestPostgres> {
  const bin = postgresBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pg-'));
  const data = join(dir, 'data');
  const sockets = join(dir, 'sock');
  mkdirSync(sockets);
  if (process.getuid?.() === 0) for (const path of [dir, sockets]) chownSync(path, Number(idOf('-u')), Number(idOf('-g')));
  try {
    run(bin, 'initdb', ['-D', data, '-U', SUPERUSER, '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'], dir);
    // First match wins: the password role must authenticate over TCP; everyone else is trusted.
    writeFileSync(join(data, 'pg_hba.conf'), `local all all trust\nhost all ${PASSWORD_ROLE.user} 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 trust\n`);
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      appendFileSync(join(data, 'postgresql.conf'), `\nlisten_addresses = '127.0.0.1'\nport = ${port}\nunix_socket_directories = '${sockets}'\n`
        + 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n');
      try {
        // -w waits until the server accepts connections (or -t seconds pass).
        run(bin, 'pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start'], dir);
        break;
      } catch (err) {
        if (attempt === 3) throw err; // another process took the port meanwhile: try another
      }
    }
    const connectAdmin = async () => {
      const client = new pg.Client({ host: '127.0.0.1', port, user: SUPERUSER, database: 'postgres' });
      client.on('error', () => undefined); // the connection dies with a halt: the next use reports it
      await client.connect();
      return client;
    };
    let admin = await connectAdmin();
    await admin.query(`CREATE ROLE ${PASSWORD_ROLE.user} LOGIN PASSWORD '${PASSWORD_ROLE.password}'`);
    let databases = 0;
    return {
      port,
      passwordRole: PASSWORD_ROLE,
      async createDatabase() {
        const name = `t_${++databases}`;
        await admin.query(`CREATE DATABASE ${name} OWNER ${PASSWORD_ROLE.user}`);
        return `postgres://${SUPERUSER}@127.0.0.1:${port}/${name}`;
      },
      async halt() {
        await admin.end().catch(() => undefined);
        run(bin, 'pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop'], dir);
      },
      async resume() {
        run(bin, 'pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start'], dir);
        admin = await connectAdmin();
      },
      async stop() {
        await admin.end().catch(() => undefined);
        if (existsSync(join(data, 'postmaster.pid'))) run(bin, 'pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop'], dir);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    if (existsSync(join(data, 'postmaster.pid'))) {
      try { run(bin, 'pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'], dir); } catch { /* reported below: the start's error */ }
    }
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

function idOf(flag: '-u' | '-g'): string {
  const r = spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error('running as root, PostgreSQL needs the `postgres` system user to run as: apt-get install -y postgresql');
  return r.stdout.trim();
}
