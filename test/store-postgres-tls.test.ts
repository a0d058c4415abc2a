/**
 * TLS from the PostgreSQL store to its database, against two real PostgreSQL servers speaking TLS
 * with certificates made by openssl (test/helpers/postgres.ts):
 * - `strict` has a certificate for IP:127.0.0.1 and DNS:localhost signed by `dbCa`, and refuses
 *   every TCP connection without TLS (`hostnossl … reject`), so a store that works there used TLS;
 * - `loose` has a certificate signed by the same CA for another name only, and allows plain TCP.
 * What the URL's sslmode means is node-postgres's (pg-connection-string 2.x), not libpq's: see
 * docs/config.md (`store.url`), which these tests hold to.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { openPostgresStore } from '../src/store/postgres.js';
import { GatehouseError, isGatehouseError } from '../src/errors/errors.js';
import { gatehouse } from './helpers/cli.js';
import { issueServerCert, makeTestCa, startPostgres, type TestPostgres } from './helpers/postgres.js';
import { makeTempDir } from './helpers/tmp.js';

const tmp = makeTempDir();
const dbCa = makeTestCa(tmp.dir, 'db-ca');
const otherCa = makeTestCa(tmp.dir, 'other-ca');
const strict = await startPostgres({
  tls: { ...issueServerCert(dbCa, tmp.dir, 'db', 'IP:127.0.0.1,DNS:localhost'), requireTls: true },
});
// Declared before after() so a failed start of `loose` still stops `strict`.
// eslint-disable-next-line prefer-const -- assigned once, but after the hook that reads it
let loose: TestPostgres | undefined;
after(async () => {
  await strict.stop();
  await loose?.stop();
  tmp.cleanup();
});
loose = await startPostgres({ tls: issueServerCert(dbCa, tmp.dir, 'elsewhere', 'DNS:db.elsewhere.internal') });

const verifyFull = `sslmode=verify-full&sslrootcert=${dbCa.certFile}`;
const { password } = strict.passwordRole;

/** The URL with the password role and its password in it, for the redaction checks. */
function withPassword(server: TestPostgres, url: string): string {
  return url.replace(
    '//gatehouse@',
    `//${server.passwordRole.user}:${encodeURIComponent(server.passwordRole.password)}@`,
  );
}

/** One statement on a session of its own opened with `url` (a plain node-postgres client, as the store's pool makes). */
async function sql(url: string, text: string): Promise<Array<Record<string, unknown>>> {
  const client = new pg.Client({ connectionString: url, application_name: 'probe' });
  await client.connect();
  try {
    return (await client.query(text)).rows;
  } finally {
    await client.end();
  }
}

/** What pg_stat_ssl says of a session opened with `url`. */
async function sessionTls(url: string): Promise<{ ssl: boolean; version: string | null }> {
  return (await sql(url, 'SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()'))[0] as {
    ssl: boolean;
    version: string | null;
  };
}

/** Opens the store with `url` and requires a refusal; returns it. */
async function refused(url: string): Promise<GatehouseError> {
  const err = await openPostgresStore({ url, migrate: true, connectTimeoutMs: 10_000 }).then(
    async (store) => {
      await store.close();
      return null;
    },
    (e: unknown) => e,
  );
  assert.ok(
    err instanceof GatehouseError,
    `expected a refusal of ${url.replace(encodeURIComponent(password), '***')}, got ${err === null ? 'a working store' : String(err)}`,
  );
  return err;
}

const unavailable = (err: GatehouseError, pattern: RegExp) => {
  assert.equal(err.code, 'GH_STORE_UNAVAILABLE', err.message);
  assert.match(err.message, pattern);
};

test('verify-full to 127.0.0.1 with the CA as sslrootcert: the store works, each of its sessions over TLS', async () => {
  const url = `${await strict.createDatabase()}?${verifyFull}`;
  const store = await openPostgresStore({ url, migrate: true });
  try {
    await store.setMeta('k', 'v');
    assert.equal(await store.getMeta('k'), 'v');
    // The pool's own sessions, still open (idle), as the server sees them.
    const sessions = await sql(
      url,
      `SELECT s.ssl, s.version FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
      WHERE a.application_name = 'gatehouse' AND a.datname = current_database()`,
    );
    assert.ok(sessions.length >= 1, 'the store has sessions open');
    assert.deepEqual(
      sessions.map((s) => s.ssl),
      sessions.map(() => true),
      'every session of the store is TLS',
    );
    assert.match(String(sessions[0]!.version), /^TLSv1\.[23]$/);
  } finally {
    await store.close();
  }
});

test('verify-full to localhost (the DNS name in the certificate) with a password: scram over TLS', async () => {
  const url = `${withPassword(strict, await strict.createDatabase()).replace('@127.0.0.1:', '@localhost:')}?${verifyFull}`;
  const store = await openPostgresStore({ url, migrate: true });
  await store.setMeta('k', 'v');
  assert.equal(await store.getMeta('k'), 'v');
  await store.close();
  assert.equal((await sessionTls(url)).ssl, true);
});

test('a root that did not sign the server certificate: GH_STORE_UNAVAILABLE naming TLS, never the password', async () => {
  const db = withPassword(strict, await strict.createDatabase());
  const err = await refused(`${db}?sslmode=verify-full&sslrootcert=${otherCa.certFile}`);
  unavailable(
    err,
    /^cannot use the PostgreSQL store at 127\.0\.0\.1:\d+\/t_\d+ as user gatehouse_pw: TLS to the database failed: unable to verify the first certificate \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\); check the URL's sslmode, that sslrootcert is the CA that signed the server's certificate/,
  );
  assert.ok(!err.message.includes(password) && !err.message.includes(encodeURIComponent(password)), err.message);
  // node-postgres's sslmode=require is verify-full: with the wrong root, or with none (Node's
  // built-in roots), it refuses too rather than encrypting unverified.
  unavailable(
    await refused(`${db}?sslmode=require&sslrootcert=${otherCa.certFile}`),
    /UNABLE_TO_VERIFY_LEAF_SIGNATURE/,
  );
  unavailable(await refused(`${db}?sslmode=require`), /UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  // The guard: the same URL with verification off connects, over TLS. So the refusal above is the
  // certificate check alone, and the test would fail if verify-full did not verify.
  assert.equal((await sessionTls(`${db}?sslmode=no-verify&sslrootcert=${otherCa.certFile}`)).ssl, true);
});

test('a host the certificate does not name: verify-full refused (node-postgres checks it), verify-ca too unless uselibpqcompat', async () => {
  const db = await loose!.createDatabase();
  unavailable(
    await refused(`${db}?${verifyFull}`),
    /TLS to the database failed: Hostname\/IP does not match certificate's altnames: IP: 127\.0\.0\.1 is not in the cert's list.*\(ERR_TLS_CERT_ALTNAME_INVALID\)/,
  );
  unavailable(
    await refused(`${db.replace('@127.0.0.1:', '@localhost:')}?${verifyFull}`),
    /Host: localhost\. is not in the cert's altnames: DNS:db\.elsewhere\.internal.*\(ERR_TLS_CERT_ALTNAME_INVALID\)/,
  );
  // Without uselibpqcompat, verify-ca is an alias of verify-full: the host is checked as well.
  unavailable(await refused(`${db}?sslmode=verify-ca&sslrootcert=${dbCa.certFile}`), /ERR_TLS_CERT_ALTNAME_INVALID/);
  // libpq's verify-ca checks the chain and not the host: the chain is right, so it connects…
  const libpqVerifyCa = `${db}?uselibpqcompat=true&sslmode=verify-ca&sslrootcert=${dbCa.certFile}`;
  const store = await openPostgresStore({ url: libpqVerifyCa, migrate: true });
  await store.close();
  assert.equal((await sessionTls(libpqVerifyCa)).ssl, true);
  // …and refuses a chain to another root.
  unavailable(
    await refused(`${db}?uselibpqcompat=true&sslmode=verify-ca&sslrootcert=${otherCa.certFile}`),
    /UNABLE_TO_VERIFY_LEAF_SIGNATURE/,
  );
});

test('no TLS to a server that requires it: sslmode=disable and no sslmode are refused, naming the missing encryption', async () => {
  const db = await strict.createDatabase();
  for (const url of [`${db}?sslmode=disable`, db]) {
    unavailable(
      await refused(url),
      /as user gatehouse: pg_hba\.conf rejects connection for host "127\.0\.0\.1", user "gatehouse", database "t_\d+", no encryption$/,
    );
  }
  // The guard of the pg_stat_ssl probe: a server that allows plain TCP takes sslmode=disable in clear.
  const plain = `${await loose!.createDatabase()}?sslmode=disable`;
  assert.deepEqual(await sessionTls(plain), { ssl: false, version: null });
  const store = await openPostgresStore({ url: plain, migrate: true });
  await store.close();
});

test('uselibpqcompat=true&sslmode=require is libpq require: encrypted, the certificate not checked', async () => {
  const url = `${await strict.createDatabase()}?uselibpqcompat=true&sslmode=require`;
  const store = await openPostgresStore({ url, migrate: true });
  await store.close();
  assert.equal((await sessionTls(url)).ssl, true);
});

test('PGSSLMODE fills a URL without sslmode; PGSSLROOTCERT is not read by node-postgres', async () => {
  const db = await strict.createDatabase();
  const saved = { PGSSLMODE: process.env.PGSSLMODE, PGSSLROOTCERT: process.env.PGSSLROOTCERT };
  try {
    process.env.PGSSLROOTCERT = dbCa.certFile;
    process.env.PGSSLMODE = 'verify-full';
    // TLS, verified against Node's built-in roots: the right root in PGSSLROOTCERT does not help.
    unavailable(await refused(db), /UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    // In the URL it does, and the URL's sslmode wins over PGSSLMODE.
    const store = await openPostgresStore({ url: `${db}?${verifyFull}`, migrate: true });
    await store.close();
    process.env.PGSSLMODE = 'disable';
    unavailable(await refused(db), /no encryption$/);
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
});

test('an sslrootcert that cannot be read: GH_CONFIG_INVALID naming the file, before any connection', async () => {
  const missing = join(tmp.dir, 'no-such-ca.pem');
  const url = `${withPassword(strict, await strict.createDatabase())}?sslmode=verify-full&sslrootcert=${missing}`;
  await assert.rejects(
    openPostgresStore({ url }),
    (err) =>
      isGatehouseError(err, 'GH_CONFIG_INVALID') &&
      err.message.startsWith(
        `the PostgreSQL store URL cannot be used: ENOENT: no such file or directory, open '${missing}'`,
      ) &&
      !err.message.includes(password),
  );
});

test('cli: ca init --store-url with verify-full keeps the CA there; a wrong root exits 69 and a missing one 78, never printing the password', async () => {
  const db = await strict.createDatabase();
  const dir = join(tmp.dir, 'ca');
  const init = await gatehouse([
    'ca',
    'init',
    '--dir',
    dir,
    '--name',
    'Acme',
    '--trust-domain',
    'acme.internal',
    '--store-url',
    `${db}?${verifyFull}`,
  ]);
  assert.equal(init.status, 0, init.stderr);
  const verified = await gatehouse(['audit', 'verify', '--dir', dir, '--json']);
  assert.equal(verified.status, 0, verified.stderr);
  assert.equal(JSON.parse(verified.stdout).ok, true, 'gatehouse.yaml carried the URL, sslrootcert and all');

  const secret = withPassword(strict, await strict.createDatabase());
  const wrongRoot = await gatehouse([
    'ca',
    'init',
    '--dir',
    join(tmp.dir, 'ca-wrong-root'),
    '--store-url',
    `${secret}?sslmode=verify-full&sslrootcert=${otherCa.certFile}`,
  ]);
  assert.equal(wrongRoot.status, 69, wrongRoot.stderr);
  assert.match(
    wrongRoot.stderr,
    /TLS to the database failed: unable to verify the first certificate \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\).*\[GH_STORE_UNAVAILABLE\]/,
  );
  const noRoot = await gatehouse([
    'ca',
    'init',
    '--dir',
    join(tmp.dir, 'ca-no-root'),
    '--store-url',
    `${secret}?sslmode=verify-full&sslrootcert=${join(tmp.dir, 'absent.pem')}`,
  ]);
  assert.equal(noRoot.status, 78, noRoot.stderr);
  assert.match(
    noRoot.stderr,
    /the PostgreSQL store URL cannot be used: ENOENT: no such file or directory, open '.*absent\.pem'.*\[GH_CONFIG_INVALID\]/,
  );
  for (const r of [wrongRoot, noRoot]) {
    assert.ok(
      !`${r.stdout}${r.stderr}`.includes(password) && !`${r.stdout}${r.stderr}`.includes(encodeURIComponent(password)),
      r.stderr,
    );
    assert.doesNotMatch(r.stderr, /GH_INTERNAL|\n\s+at /, 'a store error, not a crash');
  }
  assert.ok(
    !existsSync(join(tmp.dir, 'ca-wrong-root', 'gatehouse.yaml')) &&
      !existsSync(join(tmp.dir, 'ca-no-root', 'gatehouse.yaml')),
    'a refused init leaves no CA',
  );
});
