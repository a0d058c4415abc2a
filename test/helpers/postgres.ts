/**
 * A throwaway PostgreSQL server for one test file: initdb into a temp dir, listening on
 * 127.0.0.1 at a free port (its socket inside that dir), one fresh database per test, removed
 * by stop(). Durability is switched off here only, for speed: these clusters die with the test.
 * A missing PostgreSQL fails loudly; the tests that need it are never skipped.
 * With `tls`, the server speaks TLS with a certificate made by real openssl (makeTestCa,
 * issueServerCert), and with `requireTls` refuses every TCP connection without it.
 */
import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { after, before } from 'node:test';

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

export interface PostgresTls {
  /** PEM server certificate (its chain, if any, after it) and its unencrypted key: copied into the cluster, the key 0600 and owned by the server's user, as PostgreSQL requires. */
  certFile: string;
  keyFile: string;
  /** `hostnossl … reject` first in pg_hba.conf: every TCP connection without TLS is refused (28000 "no encryption"). The helper's own admin connection then goes over the Unix socket. */
  requireTls?: boolean;
}

export interface StartPostgresOptions {
  tls?: PostgresTls;
}

const SUPERUSER = 'gatehouse';
const PASSWORD_ROLE = { user: 'gatehouse_pw', password: 'Sw0rdfish-not-in-messages' };

/** The newest /usr/lib/postgresql/N/bin that has initdb (Debian's layout). */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0)
    throw new Error(
      'PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin: apt-get install -y postgresql',
    );
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
  const [cmd, argv] = asRoot
    ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]]
    : [join(bin, tool), args];
  const r = spawnSync(cmd, argv, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0)
    throw new Error(
      `${tool} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout || r.error?.message}`,
    );
}

export async function startPostgres(options: StartPostgresOptions = {}): Promise<TestPostgres> {
  const { tls } = options;
  const bin = postgresBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pg-'));
  const data = join(dir, 'data');
  const sockets = join(dir, 'sock');
  mkdirSync(sockets);
  if (process.getuid?.() === 0)
    for (const path of [dir, sockets]) chownSync(path, Number(idOf('-u')), Number(idOf('-g')));
  try {
    run(bin, 'initdb', ['-D', data, '-U', SUPERUSER, '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'], dir);
    // First match wins: the password role must authenticate over TCP; everyone else is trusted.
    // `host` lines match TLS and plain TCP alike; with requireTls plain TCP is rejected first.
    const host = tls?.requireTls ? 'hostssl' : 'host';
    writeFileSync(
      join(data, 'pg_hba.conf'),
      `local all all trust\n${tls?.requireTls ? 'hostnossl all all 127.0.0.1/32 reject\n' : ''}` +
        `${host} all ${PASSWORD_ROLE.user} 127.0.0.1/32 scram-sha-256\n${host} all all 127.0.0.1/32 trust\n`,
    );
    if (tls) {
      // PostgreSQL refuses a key file that its group or others can read, or that another user owns.
      copyFileSync(tls.certFile, join(data, 'server.crt'));
      copyFileSync(tls.keyFile, join(data, 'server.key'));
      chmodSync(join(data, 'server.key'), 0o600);
      if (process.getuid?.() === 0)
        for (const file of ['server.crt', 'server.key'])
          chownSync(join(data, file), Number(idOf('-u')), Number(idOf('-g')));
      appendFileSync(
        join(data, 'postgresql.conf'),
        `\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n`,
      );
    }
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      appendFileSync(
        join(data, 'postgresql.conf'),
        `\nlisten_addresses = '127.0.0.1'\nport = ${port}\nunix_socket_directories = '${sockets}'\n` +
          'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n',
      );
      try {
        // -w waits until the server accepts connections (or -t seconds pass).
        run(bin, 'pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start'], dir);
        break;
      } catch (err) {
        if (attempt === 3) throw err; // another process took the port meanwhile: try another
      }
    }
    const connectAdmin = async () => {
      // requireTls refuses plain TCP: the admin then uses the Unix socket, which pg_hba trusts.
      const client = new pg.Client({
        host: tls?.requireTls ? sockets : '127.0.0.1',
        port,
        user: SUPERUSER,
        database: 'postgres',
      });
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
      try {
        run(bin, 'pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'], dir);
      } catch {
        /* reported below: the start's error */
      }
    }
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Runs openssl in `dir`; a failure throws with its stderr. */
function openssl(args: string[], dir: string): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0)
    throw new Error(`openssl ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr || r.error?.message}`);
}

export interface PemPair {
  certFile: string;
  keyFile: string;
}

/** A throwaway root CA (P-256, one day) made by openssl in `dir`: `<name>.pem` and `<name>-key.pem`. */
export function makeTestCa(dir: string, name: string): PemPair {
  const cnf = join(dir, `${name}.cnf`);
  writeFileSync(
    cnf,
    `[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = ${name}\n` +
      '[ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n',
  );
  const pair = { certFile: join(dir, `${name}.pem`), keyFile: join(dir, `${name}-key.pem`) };
  openssl(
    [
      'req',
      '-x509',
      '-config',
      cnf,
      '-extensions',
      'ca',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-keyout',
      pair.keyFile,
      '-out',
      pair.certFile,
    ],
    dir,
  );
  return pair;
}

/** A TLS server certificate signed by `ca` for `san` (openssl syntax: `IP:127.0.0.1,DNS:localhost`); the key is 0600. */
export function issueServerCert(ca: PemPair, dir: string, name: string, san: string): PemPair {
  const ext = join(dir, `${name}.ext`);
  writeFileSync(
    ext,
    `basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\nsubjectAltName = ${san}\n` +
      'authorityKeyIdentifier = keyid\n',
  );
  const pair = { certFile: join(dir, `${name}.pem`), keyFile: join(dir, `${name}-key.pem`) };
  const csr = join(dir, `${name}.csr`);
  openssl(
    [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      pair.keyFile,
      '-out',
      csr,
    ],
    dir,
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.certFile,
      '-CAkey',
      ca.keyFile,
      '-set_serial',
      `0x${randomBytes(8).toString('hex')}`,
      '-days',
      '1',
      '-extfile',
      ext,
      '-out',
      pair.certFile,
    ],
    dir,
  );
  chmodSync(pair.keyFile, 0o600);
  return pair;
}

function idOf(flag: '-u' | '-g'): string {
  const r = spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error(
      'running as root, PostgreSQL needs the `postgres` system user to run as: apt-get install -y postgresql',
    );
  return r.stdout.trim();
}

/** One PostgreSQL server for the calling test file: started before its tests, stopped after them. */
export function postgresForFile(options: StartPostgresOptions = {}): { readonly server: TestPostgres } {
  let server: TestPostgres | undefined;
  before(async () => {
    server = await startPostgres(options);
  });
  after(async () => {
    await server?.stop();
  });
  return {
    get server(): TestPostgres {
      if (!server) throw new Error('the PostgreSQL server is not started yet: use it inside a test');
      return server;
    },
  };
}
