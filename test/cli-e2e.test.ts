/**
 * The built CLI, run as a user would, end to end: init → serve → token create → agent enroll →
 * whoami → renew → revoke → cert list, with openssl as the independent judge of the CRL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readdirSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { gatehouse } from './helpers/cli.js';
import { startCaProcess, type CaProcess } from './helpers/ca-process.js';
import { makeTempDir } from './helpers/tmp.js';
import { runSync } from './helpers/run.js';
import { decodePemBlocks } from '../src/pki/pem.js';
import * as pki from '../src/pki/index.js';
import { completeLines, findLog } from './helpers/log-lines.js';
import { waitFor } from './helpers/poll.js';

/** Directories 0700; certificates (*.pem but keys) and agent.json 0644; every other file 0600. */
function assertModes(dir: string): void {
  const seen: string[] = [];
  const walk = (path: string): void => {
    const st = statSync(path);
    const mode = st.mode & 0o777;
    if (st.isDirectory()) {
      assert.equal(mode, 0o700, `${path}: directory mode ${mode.toString(8)}`);
      for (const entry of readdirSync(path)) walk(join(path, entry));
      return;
    }
    seen.push(path);
    const base = path.slice(path.lastIndexOf('/') + 1);
    const isPublic = (base.endsWith('.pem') && !base.includes('key')) || base === 'agent.json';
    assert.equal(mode, isPublic ? 0o644 : 0o600, `${path}: mode ${mode.toString(8)}`);
  };
  walk(dir);
  assert.ok(seen.length > 0, `${dir} holds files`);
}

/** The PEM labels in a file, in order. */
const pemLabels = (path: string): string[] => decodePemBlocks(readFileSync(path, 'utf8')).map((b) => b.label);

test('cli-end-to-end-init-serve-enroll-whoami-renew-revoke-list', async () => {
  const tmp = makeTempDir();
  const caDir = join(tmp.dir, 'ca');
  const device = join(tmp.dir, 'device');
  let ca;
  try {
    const init = await gatehouse(['ca', 'init', '--dir', caDir, '--name', 'Acme', '--trust-domain', 'acme.test']);
    assert.equal(init.status, 0, init.stderr);
    const fingerprint = /root fingerprint \(SHA-256\):\s+([0-9a-f]{64})/.exec(init.stdout)?.[1];
    assert.ok(fingerprint, init.stdout);
    assert.equal(statSync(caDir).mode & 0o777, 0o700);
    for (const key of ['root-key.pem', 'intermediate-key.pem', 'admin/key.pem'])
      assert.equal(statSync(join(caDir, key)).mode & 0o777, 0o600, key);
    const whoamiAdmin = await gatehouse(['agent', 'whoami', '--dir', join(caDir, 'admin'), '--json']);
    assert.equal(JSON.parse(whoamiAdmin.stdout).role, 'admin');

    ca = await startCaProcess(caDir);
    const created = await gatehouse([
      'token',
      'create',
      '--dir',
      caDir,
      '--role',
      'web',
      '--name',
      'laptop-7',
      '--ttl',
      '10m',
    ]);
    assert.equal(created.status, 0, created.stderr);
    const token = created.stdout.trim();
    assert.match(token, new RegExp(`^GHTKN-1-${fingerprint}-[0-9a-f]{16}-[a-z2-7]{32}$`));

    const tokenFile = join(tmp.dir, 'token');
    writeFileSync(tokenFile, token, { mode: 0o600 });
    const enrolled = await gatehouse(['agent', 'enroll', '--ca', ca.url, '--token-file', tokenFile, '--dir', device]);
    assert.equal(enrolled.status, 0, enrolled.stderr);
    assert.equal(statSync(join(device, 'key.pem')).mode & 0o777, 0o600);
    assert.deepEqual(pemLabels(join(device, 'key.pem')), ['PRIVATE KEY']);

    const whoami = JSON.parse((await gatehouse(['agent', 'whoami', '--dir', device, '--json'])).stdout);
    assert.equal(whoami.name, 'laptop-7');
    assert.equal(whoami.role, 'web');
    assert.equal(whoami.spiffeId, 'spiffe://acme.test/web/laptop-7');
    const text = (await gatehouse(['agent', 'whoami', '--dir', device])).stdout;
    assert.match(text, /spiffe id:\s+spiffe:\/\/acme\.test\/web\/laptop-7/);
    assert.equal((await gatehouse(['agent', 'status', '--dir', device])).status, 0);

    const renewed = await gatehouse(['agent', 'renew', '--dir', device, '--json']);
    assert.equal(renewed.status, 0, renewed.stderr);
    const { previous, current } = JSON.parse(renewed.stdout);
    assert.notEqual(previous.serial, current.serial);
    const whoamiAfter = JSON.parse((await gatehouse(['agent', 'whoami', '--dir', device, '--json'])).stdout);
    assert.equal(whoamiAfter.serial, current.serial);
    // Every file the CA (serving, so with its -wal/-shm) and the agent created: public
    // certificates and agent.json may be read by others; everything else is the owner's alone.
    assertModes(caDir);
    assertModes(device);

    const revoked = await gatehouse([
      'cert',
      'revoke',
      current.serial,
      '--reason',
      'keyCompromise',
      '--identity',
      join(caDir, 'admin'),
      '--ca',
      ca.url,
    ]);
    assert.equal(revoked.status, 0, revoked.stderr);
    const list = JSON.parse((await gatehouse(['cert', 'list', '--dir', caDir, '--json'])).stdout) as Array<{
      serial: string;
      state: string;
      name: string;
    }>;
    assert.equal(list.find((c) => c.serial === current.serial)?.state, 'revoked');
    // The certificate it renewed (still unexpired) is of the same lineage: revoked with it.
    assert.equal(list.find((c) => c.serial === previous.serial)?.state, 'revoked');

    // openssl judges the CRL the CA now serves.
    const crlPath = join(tmp.dir, 'crl.der');
    const fetched = runSync('curl', [
      '-sS',
      '--fail',
      '--cacert',
      join(caDir, 'root.pem'),
      '-o',
      crlPath,
      `${ca.url}/crl`,
    ]);
    assert.equal(fetched.status, 0, fetched.stderr);
    const crl = runSync('openssl', [
      'crl',
      '-inform',
      'DER',
      '-in',
      crlPath,
      '-noout',
      '-text',
      '-CAfile',
      join(caDir, 'intermediate.pem'),
    ]);
    assert.equal(crl.status, 0, crl.stderr);
    assert.match(crl.stderr + crl.stdout, /verify OK/);
    assert.ok(crl.stdout.toUpperCase().includes(current.serial.toUpperCase()), 'revoked serial is in the CRL');
    assert.ok(crl.stdout.toUpperCase().includes(previous.serial.toUpperCase()), 'and so is the one it renewed');
    assert.match(crl.stdout, /Key Compromise/);

    // The revoked identity can no longer renew: the agent says to enroll again (exit 75).
    const renewRevoked = await gatehouse(['agent', 'renew', '--dir', device]);
    assert.equal(renewRevoked.status, 75, renewRevoked.stderr);
    assert.match(renewRevoked.stderr, /enroll again/);

    // The same token cannot be used twice.
    const again = await gatehouse([
      'agent',
      'enroll',
      '--ca',
      ca.url,
      '--token-file',
      tokenFile,
      '--dir',
      join(tmp.dir, 'other'),
    ]);
    assert.equal(again.status, 77);
    assert.match(again.stderr, /GH_TOKEN_USED/);
    assert.equal(existsSync(join(tmp.dir, 'other', 'key.pem')), false, 'nothing written on refusal');
  } finally {
    await ca?.stop();
    tmp.cleanup();
  }
});

test('cli-enroll-with-wrong-ca-pin-refused-and-writes-nothing', async () => {
  const tmp = makeTempDir();
  let ca;
  try {
    assert.equal((await gatehouse(['ca', 'init', '--dir', join(tmp.dir, 'a')])).status, 0);
    assert.equal((await gatehouse(['ca', 'init', '--dir', join(tmp.dir, 'b')])).status, 0);
    ca = await startCaProcess(join(tmp.dir, 'a'));
    const tokenForB = (
      await gatehouse(['token', 'create', '--dir', join(tmp.dir, 'b'), '--role', 'web'])
    ).stdout.trim();
    const r = await gatehouse([
      'agent',
      'enroll',
      '--ca',
      ca.url,
      '--token',
      tokenForB,
      '--name',
      'x',
      '--dir',
      join(tmp.dir, 'dev'),
    ]);
    assert.equal(r.status, 77);
    assert.match(r.stderr, /GH_CA_PIN_MISMATCH/);
    assert.match(r.stderr, /pins [0-9a-f]{64}/);
    assert.equal(existsSync(join(tmp.dir, 'dev', 'key.pem')), false);
  } finally {
    await ca?.stop();
    tmp.cleanup();
  }
});

test('cli-init-refuses-existing-ca-and-non-empty-dir', async () => {
  const tmp = makeTempDir();
  try {
    const dir = join(tmp.dir, 'ca');
    assert.equal((await gatehouse(['ca', 'init', '--dir', dir])).status, 0);
    const before = readFileSync(join(dir, 'root.pem'), 'utf8');
    const again = await gatehouse(['ca', 'init', '--dir', dir]);
    assert.equal(again.status, 73);
    assert.match(again.stderr, /already exists/);
    assert.equal(readFileSync(join(dir, 'root.pem'), 'utf8'), before, 'existing CA untouched');
    writeFileSync(join(tmp.dir, 'stray'), 'x');
    const nonEmpty = await gatehouse(['ca', 'init', '--dir', tmp.dir]);
    assert.equal(nonEmpty.status, 73);
    assert.match(nonEmpty.stderr, /not empty/);
  } finally {
    tmp.cleanup();
  }
});

test('cli-root-key-out-keeps-root-key-outside-ca-dir', async () => {
  const tmp = makeTempDir();
  let ca;
  try {
    const dir = join(tmp.dir, 'ca');
    const offline = join(tmp.dir, 'offline-root-key.pem');
    const r = await gatehouse(['ca', 'init', '--dir', dir, '--root-key-out', offline]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(existsSync(join(dir, 'root-key.pem')), false);
    assert.equal(statSync(offline).mode & 0o777, 0o600);
    // The CA runs without the root key and still serves a root CRL made at init.
    ca = await startCaProcess(dir);
    const crl = runSync('curl', ['-sS', '--fail', '--cacert', join(dir, 'root.pem'), `${ca.url}/crl/root?format=pem`]);
    assert.equal(crl.status, 0);
    const verify = runSync('openssl', ['crl', '-noout', '-CAfile', join(dir, 'root.pem')], { input: crl.stdout });
    assert.match(verify.stderr + verify.stdout, /verify OK/);
    const resign = await gatehouse(['ca', 'root-crl', '--dir', dir, '--root-key', offline]);
    assert.equal(resign.status, 0, resign.stderr);
    assert.match(resign.stdout, /root CRL #2/);
  } finally {
    await ca?.stop();
    tmp.cleanup();
  }
});

test('cli-passphrase-encrypts-ca-keys-and-serve-needs-it', async () => {
  const tmp = makeTempDir();
  let ca;
  try {
    const dir = join(tmp.dir, 'ca');
    const pass = join(tmp.dir, 'pass');
    writeFileSync(pass, 'correct horse battery staple\n', { mode: 0o600 });
    const wrong = join(tmp.dir, 'wrong');
    writeFileSync(wrong, 'not the passphrase\n', { mode: 0o600 });
    assert.equal((await gatehouse(['ca', 'init', '--dir', dir, '--passphrase-file', pass])).status, 0);
    assert.deepEqual(pemLabels(join(dir, 'intermediate-key.pem')), ['ENCRYPTED PRIVATE KEY']);
    assert.deepEqual(pemLabels(join(dir, 'root-key.pem')), ['ENCRYPTED PRIVATE KEY']);
    // openssl reads our encrypted PKCS#8 with the passphrase.
    assert.equal(
      runSync('openssl', ['pkey', '-in', join(dir, 'intermediate-key.pem'), '-passin', `file:${pass}`, '-noout'])
        .status,
      0,
    );
    const bad = await gatehouse(['ca', 'serve', '--dir', dir, '--listen', '127.0.0.1:0', '--passphrase-file', wrong]);
    assert.equal(bad.status, 77);
    assert.match(bad.stderr, /wrong passphrase/);
    ca = await startCaProcess(dir); // the config records the passphrase file given at init
  } finally {
    await ca?.stop();
    tmp.cleanup();
  }
});

test('cli-broken-config-and-wrong-permissions-refused-with-path', async () => {
  const tmp = makeTempDir();
  try {
    const dir = join(tmp.dir, 'ca');
    assert.equal((await gatehouse(['ca', 'init', '--dir', dir])).status, 0);
    const configPath = join(dir, 'gatehouse.yaml');
    const good = readFileSync(configPath, 'utf8');

    writeFileSync(configPath, good.replace('lifetime: 24h', 'lifetime: forever'));
    let r = await gatehouse(['ca', 'serve', '--dir', dir, '--listen', '127.0.0.1:0']);
    assert.equal(r.status, 78);
    assert.match(r.stderr, /roles\.admin\.lifetime: "forever" is not a duration/);

    writeFileSync(configPath, good + 'surprise: true\n');
    r = await gatehouse(['ca', 'serve', '--dir', dir, '--listen', '127.0.0.1:0']);
    assert.equal(r.status, 78);
    assert.match(r.stderr, /unknown key "surprise"/);

    writeFileSync(configPath, 'org: [unclosed\n');
    r = await gatehouse(['token', 'create', '--dir', dir, '--role', 'web']);
    assert.equal(r.status, 78);
    assert.match(r.stderr, /not valid YAML/);

    writeFileSync(configPath, good);
    runSync('chmod', ['755', dir]);
    r = await gatehouse(['token', 'create', '--dir', dir, '--role', 'web']);
    assert.equal(r.status, 77);
    assert.match(r.stderr, /mode 0755.*chmod 700/);
    runSync('chmod', ['700', dir]);
    runSync('chmod', ['644', join(dir, 'intermediate-key.pem')]);
    r = await gatehouse(['token', 'create', '--dir', dir, '--role', 'web']);
    assert.equal(r.status, 77);
    assert.match(r.stderr, /intermediate-key\.pem has mode 0644/);
  } finally {
    tmp.cleanup();
  }
});

test('cli-usage-errors-exit-64-and-every-command-has-help', async () => {
  const unknown = await gatehouse(['frobnicate']);
  assert.equal(unknown.status, 64);
  const missing = await gatehouse(['token', 'create', '--dir', '/nonexistent']);
  assert.equal(missing.status, 64);
  assert.match(missing.stderr, /--role is required/);
  const badFlag = await gatehouse(['agent', 'whoami', '--frob']);
  assert.equal(badFlag.status, 64);
  const help = await gatehouse(['agent', 'enroll', '--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^Usage: gatehouse agent enroll --ca URL/);
  // `help CMD` is `CMD --help`, not the top-level help.
  const helpCmd = await gatehouse(['help', 'agent', 'enroll']);
  assert.equal(helpCmd.status, 0);
  assert.equal(helpCmd.stdout, help.stdout);
  const helpGroup = await gatehouse(['help', 'name']);
  assert.equal(helpGroup.status, 0);
  assert.match(helpGroup.stdout, /^Usage: gatehouse name <list\|release>/);
  // --json: data as JSON, and a failure as one JSON object on stderr with nothing on stdout.
  const jsonError = await gatehouse(['token', 'list', '--dir', '/nonexistent', '--json']);
  assert.equal(jsonError.status, 66);
  assert.equal(jsonError.stdout, '');
  assert.deepEqual(Object.keys(JSON.parse(jsonError.stderr).error), ['code', 'message', 'fix', 'exit']);
  assert.equal(JSON.parse(jsonError.stderr).error.code, 'GH_CA_NOT_FOUND');
  const tmp = makeTempDir();
  try {
    const init = await gatehouse(['ca', 'init', '--dir', join(tmp.dir, 'ca'), '--json']);
    assert.equal(init.status, 0, init.stderr);
    const created = JSON.parse(init.stdout) as { rootFingerprint: string; adminDir: string };
    assert.match(created.rootFingerprint, /^[0-9a-f]{64}$/);
    assert.equal(created.adminDir, join(tmp.dir, 'ca', 'admin'));
    writeFileSync(
      join(tmp.dir, 'csr.pem'),
      await pki.buildCsrPem(pki.generatePrivateKey('p256'), { commonName: 'printer-1' }),
    );
    const signed = await gatehouse([
      'cert',
      'sign',
      '--dir',
      join(tmp.dir, 'ca'),
      '--csr',
      join(tmp.dir, 'csr.pem'),
      '--role',
      'web',
      '--json',
    ]);
    assert.equal(signed.status, 0, signed.stderr);
    const record = JSON.parse(signed.stdout) as { spiffeId: string; chain: string; state: string };
    assert.equal(record.spiffeId, 'spiffe://gatehouse.internal/web/printer-1');
    assert.equal(record.state, 'active');
    assert.match(record.chain, /^-----BEGIN CERTIFICATE-----/);
  } finally {
    tmp.cleanup();
  }
  const helpUnknown = await gatehouse(['help', 'frobnicate']);
  assert.equal(helpUnknown.status, 64);
  assert.match(helpUnknown.stderr, /unknown command "frobnicate";/);
});

test('cli-agent-run-renews-on-schedule-runs-hook-and-stops-on-sigterm', async () => {
  const { startCaFixture } = await import('./helpers/ca-fixture.js');
  const { spawn } = await import('node:child_process');
  const { CLI_PATH } = await import('./helpers/cli.js');
  // A 12 s lifetime puts the renewal 7–9 s after issuance.
  const fixture = await startCaFixture({
    configEdit: (yaml) => yaml.replace(/(web:\n\s+profile: client\n\s+lifetime: )24h/, '$112s'),
  });
  const dir = join(fixture.root, 'short');
  const hookLog = join(fixture.root, 'hook.log');
  try {
    const { token } = await fixture.server.authority.createToken({ role: 'web' }, { actor: 'test' });
    assert.equal(
      (await gatehouse(['agent', 'enroll', '--ca', fixture.url, '--token', token, '--name', 'short', '--dir', dir]))
        .status,
      0,
    );
    const first = JSON.parse((await gatehouse(['agent', 'whoami', '--dir', dir, '--json'])).stdout);
    assert.ok(
      (new Date(first.notAfter).getTime() - new Date(first.notBefore).getTime()) / 1000 <= 14,
      '12 s lifetime plus a backdate of at most a tenth of it (rounded to seconds)',
    );
    const child = spawn(
      process.execPath,
      [CLI_PATH, 'agent', 'run', '--dir', dir, '--on-renew', `echo "$GATEHOUSE_SERIAL" >> '${hookLog}'`],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let logs = '';
    child.stderr!.on('data', (d) => (logs += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const hookLines = () => (existsSync(hookLog) ? completeLines(readFileSync(hookLog, 'utf8')) : []);
    try {
      await waitFor(
        () => hookLines().length > 0,
        60_000,
        () => `the renewal hook to run:\n${logs.slice(-3000)}`,
        200,
      );
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, logs.slice(-3000));
    const renewedSerial = hookLines()[0];
    const now = JSON.parse((await gatehouse(['agent', 'whoami', '--dir', dir, '--json'])).stdout);
    assert.notEqual(now.serial, first.serial);
    assert.equal(renewedSerial, now.serial);
    assert.ok(findLog(logs, 'agent.cert_renewed'), logs.slice(-3000));
    assert.equal((await fixture.store.getCert(now.serial))?.renewedFrom, first.serial);
  } finally {
    await fixture.close();
  }
});

test('ca-serve-workers-share-port-store-and-crl', async () => {
  const tmp = makeTempDir();
  const caDir = join(tmp.dir, 'ca');
  let ca: CaProcess | undefined;
  try {
    assert.equal((await gatehouse(['ca', 'init', '--dir', caDir])).status, 0);
    ca = await startCaProcess(caDir, ['--workers', '2']);
    assert.equal(findLog(ca.output(), 'ca.listening')?.workers, 2);
    const token = (
      await gatehouse(['token', 'create', '--dir', caDir, '--role', 'web', '--uses', '6', '--names', 'w-*'])
    ).stdout.trim();
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        gatehouse([
          'agent',
          'enroll',
          '--ca',
          ca!.url,
          '--token',
          token,
          '--name',
          `w-${i}`,
          '--dir',
          join(tmp.dir, `w-${i}`),
          '--json',
        ]),
      ),
    );
    assert.deepEqual(
      results.map((r) => r.status),
      [0, 0, 0, 0, 0, 0],
      results.map((r) => r.stderr).join('\n'),
    );
    const serials = results.map((r) => JSON.parse(r.stdout).serial as string);
    const seventh = await gatehouse([
      'agent',
      'enroll',
      '--ca',
      ca.url,
      '--token',
      token,
      '--name',
      'w-7',
      '--dir',
      join(tmp.dir, 'w-7'),
    ]);
    assert.equal(seventh.status, 77, 'the shared store enforces the use count across workers');
    // Revoke through one worker; every worker serves a CRL with the serial within the poll interval.
    assert.equal(
      (await gatehouse(['cert', 'revoke', serials[0]!, '--identity', join(caDir, 'admin'), '--ca', ca.url])).status,
      0,
    );
    let listed = 0;
    const crlUrl = `${ca.url}/crl?format=pem`;
    await waitFor(
      () => {
        const crl = runSync('curl', ['-sS', '--fail', '--cacert', join(caDir, 'root.pem'), crlUrl]);
        const text = runSync('openssl', ['crl', '-noout', '-text'], { input: crl.stdout }).stdout.toUpperCase();
        listed = text.includes(serials[0]!.toUpperCase()) ? listed + 1 : 0;
        return listed === 6;
      },
      15_000,
      'six consecutive CRL fetches (spread over both workers) to list the revoked serial',
      100,
    );
    assert.equal(await ca.stop('SIGTERM'), 0);
  } finally {
    await ca?.stop('SIGKILL');
    tmp.cleanup();
  }
});

test('cli-cert-sign-offline-applies-role-rules-and-records-the-cert', async () => {
  const tmp = makeTempDir();
  try {
    const caDir = join(tmp.dir, 'ca');
    assert.equal((await gatehouse(['ca', 'init', '--dir', caDir, '--trust-domain', 'acme.test'])).status, 0);
    const key = join(tmp.dir, 'server.key');
    const csr = join(tmp.dir, 'server.csr');
    assert.equal(
      runSync('openssl', [
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        key,
        '-out',
        csr,
        '-subj',
        '/CN=legacy-web',
        '-addext',
        'subjectAltName=DNS:legacy.acme.test,IP:127.0.0.1',
      ]).status,
      0,
    );
    const out = join(tmp.dir, 'server.pem');
    const signed = await gatehouse(['cert', 'sign', '--dir', caDir, '--csr', csr, '--role', 'gateway', '--out', out]);
    assert.equal(signed.status, 0, signed.stderr);
    assert.match(signed.stderr, /spiffe:\/\/acme\.test\/gateway\/legacy-web/);
    const leafOnly = join(tmp.dir, 'leaf.pem');
    writeFileSync(leafOnly, readFileSync(out, 'utf8').split(/(?<=-----END CERTIFICATE-----\n)/)[0]!);
    const verify = runSync('openssl', [
      'verify',
      '-x509_strict',
      '-purpose',
      'sslserver',
      '-CAfile',
      join(caDir, 'root.pem'),
      '-untrusted',
      join(caDir, 'intermediate.pem'),
      leafOnly,
    ]);
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
    const list = JSON.parse(
      (await gatehouse(['cert', 'list', '--dir', caDir, '--role', 'gateway', '--json'])).stdout,
    ) as Array<{ name: string }>;
    assert.deepEqual(
      list.map((c) => c.name),
      ['legacy-web'],
    );

    // The same CSR for a client role asks for DNS/IP SANs the role does not allow.
    const refused = await gatehouse(['cert', 'sign', '--dir', caDir, '--csr', csr, '--role', 'web']);
    assert.equal(refused.status, 77);
    assert.match(refused.stderr, /DNS and IP SANs are issued only to server profiles.*GH_CSR_POLICY/);
    const garbage = join(tmp.dir, 'garbage.csr');
    writeFileSync(garbage, 'not a csr');
    const malformed = await gatehouse(['cert', 'sign', '--dir', caDir, '--csr', garbage, '--role', 'gateway']);
    assert.equal(malformed.status, 65);
    assert.match(malformed.stderr, /GH_CSR_MALFORMED/);
  } finally {
    tmp.cleanup();
  }
});
