/**
 * `ca rotate root|status|finish|abort` on the directory of a running CA, with a gateway and
 * agents under continuous requests (new connections and kept-alive ones): no request fails from
 * start to finish, agents take the next root only as the cross-certificate allows, status counts
 * reach 100 %, a token pinning the old root is refused after the finish and a new one works, and
 * an abort puts everything back. Chains are checked by openssl against one root at a time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { Agent, request as httpsRequest } from 'node:https';
import { startCaFixture, enrollAgent, type CaFixture } from './helpers/ca-fixture.js';
import { gatehouse } from './helpers/cli.js';
import { run } from './helpers/run.js';
import { waitFor } from './helpers/procs.js';
import { CA_FILES } from '../src/ca/ca-dir.js';
import { parseGatewayConfig } from '../src/gateway/config.js';
import { runGateway } from '../src/gateway/run.js';
import { createLogger } from '../src/log/logger.js';
import { startEchoUpstream } from './helpers/echo-upstream.js';
import { renewOnce } from '../src/agent/renew.js';
import { checkRevocation } from '../src/agent/revocation.js';
import { loadIdentity } from '../src/agent/agent-state.js';
import { enroll } from '../src/agent/enroll.js';
import { isGatehouseError } from '../src/errors/errors.js';
import { parseCertificatePem, sha256Hex } from '../src/pki/certificate.js';
import { decodePem, toPem } from '../src/pki/pem.js';
import { initCa } from '../src/ca/init.js';
import { makeTempDir } from './helpers/tmp.js';

const rootsIn = (dir: string) =>
  decodePem(readFileSync(join(dir, 'ca.pem'), 'utf8'), 'CERTIFICATE').map((d) => sha256Hex(d));

/** openssl verifies DIR's leaf with only ROOT trusted and the chain DIR's cert.pem carries. */
async function chainVerifiesTo(
  fixture: CaFixture,
  dir: string,
  rootPem: string,
  purpose = 'sslclient',
): Promise<boolean> {
  const chain = parseCertificatePem(readFileSync(join(dir, 'cert.pem'), 'utf8'));
  const tag = `${Date.now()}-${Math.random().toString(16).slice(2)}`;
  const leaf = join(fixture.root, `leaf-${tag}.pem`);
  const anchor = join(fixture.root, `anchor-${tag}.pem`);
  const untrusted = join(fixture.root, `untrusted-${tag}.pem`);
  writeFileSync(leaf, toPem('CERTIFICATE', chain[0]!.der));
  writeFileSync(anchor, rootPem);
  writeFileSync(
    untrusted,
    chain
      .slice(1)
      .map((c) => toPem('CERTIFICATE', c.der))
      .join(''),
  );
  const r = await run('openssl', [
    'verify',
    '-x509_strict',
    '-purpose',
    purpose,
    '-CAfile',
    anchor,
    ...(chain.length > 1 ? ['-untrusted', untrusted] : []),
    leaf,
  ]);
  return r.status === 0;
}

async function cli(args: string[], expectExit = 0): Promise<{ stdout: string; stderr: string }> {
  const r = await gatehouse(args);
  assert.equal(r.status, expectExit, `gatehouse ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r;
}

interface Load {
  ok: number;
  failed: string[];
  stop(): Promise<void>;
}

/**
 * Requests in a loop from one client through the gateway until stopped, each reading the
 * identity files as they are now (an app that reloads), on a new connection or a kept-alive one.
 */
function startLoad(port: number, dir: string, keepAlive: boolean): Load {
  let stopped = false;
  const load: Load = {
    ok: 0,
    failed: [],
    stop: async () => {
      stopped = true;
      await loop;
      agent?.destroy();
    },
  };
  const files = () => ({
    cert: readFileSync(join(dir, 'cert.pem')),
    key: readFileSync(join(dir, 'key.pem')),
    ca: readFileSync(join(dir, 'ca.pem')),
  });
  // A kept-alive client keeps the files it started with, as a long-running process would.
  const agent = keepAlive ? new Agent({ keepAlive: true, maxSockets: 1, ...files() }) : null;
  const once = () =>
    new Promise<void>((resolve) => {
      const req = httpsRequest(
        { host: '127.0.0.1', port, path: '/', ...(agent ? { agent } : { agent: false, ...files() }), timeout: 10_000 },
        (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) load.ok++;
            else load.failed.push(`${dir} HTTP ${res.statusCode}`);
            resolve();
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
      req.on('error', (err) => {
        load.failed.push(`${dir} ${keepAlive ? 'kept-alive' : 'new connection'}: ${err.message}`);
        resolve();
      });
      req.end();
    });
  const loop = (async () => {
    while (!stopped) await once();
  })();
  return load;
}

test('a root rotation under continuous requests: no request fails, status reaches 100 %, old-pin tokens are refused after the finish', async () => {
  const fixture = await startCaFixture();
  const app = await startEchoUpstream();
  const gatewayLog: string[] = [];
  let loads: Load[] = [];
  let gateway: Awaited<ReturnType<typeof runGateway>> | null = null;
  try {
    const oldRootPem = readFileSync(join(fixture.caDir, CA_FILES.rootCert), 'utf8');
    const oldRoot = sha256Hex(decodePem(oldRootPem, 'CERTIFICATE')[0]!);
    const gw = await enrollAgent(fixture, 'gateway', 'gw-1', { dns: ['localhost'], ip: ['127.0.0.1'] });
    const clients = [
      await enrollAgent(fixture, 'web', 'web-1'),
      await enrollAgent(fixture, 'web', 'web-2'),
      await enrollAgent(fixture, 'web', 'web-3'),
    ];
    const oldPinToken = (await fixture.server.authority.createToken({ role: 'web', name: 'late-1' }, { actor: 'test' }))
      .token;
    gateway = await runGateway({
      config: parseGatewayConfig(
        {
          listen: '127.0.0.1:0',
          tls: { cert: join(gw.dir, 'cert.pem'), key: join(gw.dir, 'key.pem'), clientCa: join(gw.dir, 'ca.pem') },
          routes: [{ upstreams: [app.url] }],
          revocation: { crl: [`${fixture.url}/crls`], refreshInterval: '1h' },
        },
        'test',
        fixture.root,
      ),
      configFile: null,
      logger: createLogger({ level: 'info', write: (l) => void gatewayLog.push(l) }),
      serveAdmin: false,
    });
    const port = gateway.gateway.port;
    loads = clients.flatMap((c) => [startLoad(port, c.dir, false), startLoad(port, c.dir, true)]);
    const served = () => loads.reduce((n, l) => n + l.ok, 0);
    const progressed = async (what: string) => {
      const mark = served();
      await waitFor(() => served() >= mark + 30, 20_000, `requests to keep flowing ${what}`);
    };
    await progressed('before the rotation');

    // Start: the running CA serves both roots and issues from the new issuing CA.
    const started = JSON.parse((await cli(['ca', 'rotate', 'root', '--dir', fixture.caDir, '--json'])).stdout);
    assert.equal(started.previousRoot, oldRoot);
    await waitFor(
      () => fixture.server.authority.rotation?.state.phase === 'rotating',
      10_000,
      'the running CA to take up the rotation',
    );
    const roots = JSON.parse(
      (
        await run('curl', [
          '-sS',
          '--fail',
          '--cacert',
          join(fixture.caDir, CA_FILES.rootCert),
          `${fixture.url}/roots?format=json`,
        ])
      ).stdout,
    );
    assert.deepEqual(
      roots.roots.map((r: { fingerprint: string; status: string }) => [r.fingerprint, r.status]),
      [
        [oldRoot, 'current'],
        [started.nextRoot, 'next'],
      ],
    );
    const before = JSON.parse((await cli(['ca', 'rotate', 'status', '--dir', fixture.caDir, '--json'])).stdout);
    assert.deepEqual(before.identities, { total: 5, moved: 0 }, 'admin, gateway and three clients');
    await progressed('after the start');

    // Every identity renews (as its agent would at two thirds of its lifetime) and takes the next root.
    const finishRefused = await gatehouse(['ca', 'rotate', 'finish', '--dir', fixture.caDir]);
    assert.equal(finishRefused.status, 75, finishRefused.stderr);
    assert.match(finishRefused.stderr, /5 of 5 active identities have not moved to the new chain yet/);
    for (const dir of [fixture.adminDir, gw.dir, ...clients.map((c) => c.dir)]) {
      const { bundle } = await renewOnce({ dir, caUrl: fixture.url });
      assert.deepEqual(bundle.added, [started.nextRoot], dir);
      assert.deepEqual(rootsIn(dir), [oldRoot, started.nextRoot]);
      assert.ok(
        await chainVerifiesTo(fixture, dir, oldRootPem, dir === gw.dir ? 'sslserver' : 'sslclient'),
        `${dir}: its new chain verifies with the old root alone`,
      );
      await progressed(`after renewing ${dir}`);
    }
    await waitFor(
      () => gatewayLog.some((l) => l.includes('"gateway.reloaded"')),
      10_000,
      'the gateway to reload its certificate and trust bundle',
    );
    const moved = JSON.parse((await cli(['ca', 'rotate', 'status', '--dir', fixture.caDir, '--json'])).stdout);
    assert.deepEqual(moved.identities, { total: 5, moved: 5 });
    assert.deepEqual(moved.trustBundles, { total: 5, updated: 5 });

    // Finish: the next root is the root; chains now run to it.
    const finished = JSON.parse((await cli(['ca', 'rotate', 'finish', '--dir', fixture.caDir, '--json'])).stdout);
    assert.equal(finished.phase, 'finished');
    await waitFor(
      () => fixture.server.authority.rootFingerprint === started.nextRoot,
      10_000,
      'the running CA to take up the finish',
    );
    const nextRootPem = readFileSync(join(fixture.caDir, CA_FILES.rootCert), 'utf8');
    assert.equal(sha256Hex(decodePem(nextRootPem, 'CERTIFICATE')[0]!), started.nextRoot);
    await progressed('after the finish');
    for (const dir of [gw.dir, ...clients.map((c) => c.dir)]) {
      await renewOnce({ dir, caUrl: fixture.url });
      assert.ok(
        await chainVerifiesTo(fixture, dir, nextRootPem, dir === gw.dir ? 'sslserver' : 'sslclient'),
        `${dir}: its chain verifies with the next root alone`,
      );
      // The previous root stays until the chains handed out before the finish have expired.
      assert.deepEqual(rootsIn(dir), [oldRoot, started.nextRoot]);
      await progressed(`after renewing ${dir} on the new chain`);
    }
    // The agent's own revocation check follows the chain to whichever root of ca.pem it runs to.
    const check = await checkRevocation(loadIdentity(clients[0]!.dir), { now: new Date(), caUrl: fixture.url });
    assert.equal(check.source, 'ca', `${check.caProblem ?? ''} ${check.refused ?? ''}`);
    assert.equal(check.revoked, false);
    const agentStatus = await gatehouse(['agent', 'status', '--dir', clients[0]!.dir, '--ca', fixture.url]);
    assert.equal(agentStatus.status, 0, `agent status after the finish: ${agentStatus.stdout}${agentStatus.stderr}`);
    const served1 = JSON.parse(
      (
        await run('curl', [
          '-sS',
          '--fail',
          '--cacert',
          join(fixture.caDir, CA_FILES.rootCert),
          `${fixture.url}/roots?format=json`,
        ])
      ).stdout,
    );
    assert.deepEqual(
      served1.roots.map((r: { fingerprint: string }) => r.fingerprint),
      [started.nextRoot],
      '/roots serves only the new root',
    );

    // The old pin is refused, naming the rotation; a new token pins the new root and works.
    await assert.rejects(
      enroll({ caUrl: fixture.url, token: oldPinToken, dir: join(fixture.root, 'late-1'), name: 'late-1' }),
      (err: unknown) =>
        isGatehouseError(err, 'GH_CA_PIN_MISMATCH') &&
        err.message.includes(
          `pins the root ${oldRoot}, which the CA at ${fixture.url} says it replaced with ${started.nextRoot} in a root rotation finished at`,
        ),
    );
    // An agent that skipped the pin check would meet the same explanation at the CA.
    await assert.rejects(
      fixture.server.authority.enroll(oldPinToken, 'not a csr', { actor: 'test' }),
      (err: unknown) =>
        isGatehouseError(err, 'GH_TOKEN_INVALID') &&
        err.message.includes(
          `which the root rotation finished at ${finished.finishedAt} replaced with ${started.nextRoot}`,
        ),
    );
    const fresh = (await fixture.server.authority.createToken({ role: 'web', name: 'late-2' }, { actor: 'test' }))
      .token;
    assert.ok(fresh.startsWith(`GHTKN-1-${started.nextRoot}-`));
    await enroll({ caUrl: fixture.url, token: fresh, dir: join(fixture.root, 'late-2'), name: 'late-2' });
    assert.deepEqual(
      rootsIn(join(fixture.root, 'late-2')),
      [started.nextRoot, oldRoot],
      'a machine enrolled now also trusts the old root while older chains run (vouched for by the new one)',
    );
    const late = startLoad(port, join(fixture.root, 'late-2'), false);
    loads.push(late);
    await waitFor(() => late.ok >= 5, 20_000, 'the late machine to get through the gateway').catch((err) => {
      throw new Error(
        `${(err as Error).message}: ${late.failed.slice(0, 3).join('; ')}; others failed ${loads.flatMap((l) => l.failed).length}`,
      );
    });
    await progressed('at the end');

    // A revocation after the finish reaches the gateway: /crls now carries the issuing CA
    // certified by the next root, which the gateway believes because its trust bundle has it.
    const doomed = await enrollAgent(fixture, 'web', 'doomed-1');
    const ask = () =>
      new Promise<number>((resolve) => {
        const files = {
          cert: readFileSync(join(doomed.dir, 'cert.pem')),
          key: readFileSync(join(doomed.dir, 'key.pem')),
          ca: readFileSync(join(doomed.dir, 'ca.pem')),
        };
        const req = httpsRequest(
          { host: '127.0.0.1', port, path: '/', agent: false, ...files, timeout: 10_000 },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', () => resolve(0));
        req.end();
      });
    assert.equal(await ask(), 200);
    await fixture.server.authority.revokeCertificate(doomed.identity.serial, 'keyCompromise', { actor: 'test' });
    await fixture.server.crls.refresh();
    gateway.reload();
    await waitFor(
      async () => (await ask()) === 403,
      10_000,
      'the gateway to refuse the certificate revoked after the finish',
    );
    assert.ok(
      !gatewayLog.some((l) => l.includes('"gateway.crl_refused"')),
      `no CRL fetch was refused: ${gatewayLog.filter((l) => l.includes('crl_refused')).join('\n')}`,
    );
  } finally {
    await Promise.all(loads.map((l) => l.stop()));
    await gateway?.close();
    await app.close();
    await fixture.close();
  }
  const failed = loads.flatMap((l) => l.failed);
  assert.deepEqual(
    failed.slice(0, 10),
    [],
    `${failed.length} of ${failed.length + loads.reduce((n, l) => n + l.ok, 0)} requests failed`,
  );
  assert.ok(
    loads.every((l) => l.ok > 0),
    'every loop ran',
  );
});

test('an aborted root rotation: agents drop the next root, old tokens keep working, nothing issued during it stops verifying', async () => {
  const fixture = await startCaFixture();
  try {
    const oldRootPem = readFileSync(join(fixture.caDir, CA_FILES.rootCert), 'utf8');
    const oldRoot = sha256Hex(decodePem(oldRootPem, 'CERTIFICATE')[0]!);
    const client = await enrollAgent(fixture, 'web', 'web-1');
    const token = (await fixture.server.authority.createToken({ role: 'web', name: 'later-1' }, { actor: 'test' }))
      .token;
    const started = JSON.parse((await cli(['ca', 'rotate', 'root', '--dir', fixture.caDir, '--json'])).stdout);
    assert.ok(existsSync(started.nextRootKeyFile));
    await waitFor(
      () => fixture.server.authority.rotation?.state.phase === 'rotating',
      10_000,
      'the running CA to take up the rotation',
    );
    await renewOnce({ dir: client.dir });
    assert.deepEqual(rootsIn(client.dir), [oldRoot, started.nextRoot]);
    // The dashboard's overview says how far it has come (admin and web-1: one of two moved).
    const admin = fixture.adminDir;
    const overview = await run('curl', [
      '-sS',
      '--fail',
      '--cacert',
      join(fixture.caDir, CA_FILES.rootCert),
      '--cert',
      join(admin, 'cert.pem'),
      '--key',
      join(admin, 'key.pem'),
      `${fixture.url}/dashboard/`,
    ]);
    assert.equal(overview.status, 0, overview.stderr);
    assert.match(overview.stdout, /Root rotation in progress since .*<strong>1 of 2<\/strong> identities have moved/);

    // Twice, or an intermediate rotation meanwhile: refused.
    assert.match(
      (await cli(['ca', 'rotate', 'root', '--dir', fixture.caDir], 75)).stderr,
      /a root rotation is in progress since/,
    );
    assert.match(
      (await cli(['ca', 'rotate', 'intermediate', '--dir', fixture.caDir], 75)).stderr,
      /a root rotation is in progress/,
    );

    await cli(['ca', 'rotate', 'abort', '--dir', fixture.caDir]);
    assert.equal(existsSync(started.nextRootKeyFile), false, 'the next root key is deleted');
    await waitFor(
      () => fixture.server.authority.rotation?.state.phase === 'aborted',
      10_000,
      'the running CA to take up the abort',
    );
    const { bundle } = await renewOnce({ dir: client.dir });
    assert.deepEqual(bundle.removed, [started.nextRoot]);
    assert.deepEqual(rootsIn(client.dir), [oldRoot]);
    assert.ok(await chainVerifiesTo(fixture, client.dir, oldRootPem), 'the chain still runs to the old root');
    await enroll({ caUrl: fixture.url, token, dir: join(fixture.root, 'later-1'), name: 'later-1' });
    assert.equal(readFileSync(join(fixture.caDir, CA_FILES.rootCert), 'utf8'), oldRootPem);
    assert.match((await cli(['ca', 'rotate', 'finish', '--dir', fixture.caDir], 75)).stderr, /already aborted/);
    const events = (await fixture.store.listAudit({})).map((e) => e.type);
    assert.ok(events.includes('ca.root_rotation_started') && events.includes('ca.root_rotation_aborted'));
  } finally {
    await fixture.close();
  }
});

test('rotating to an imported root (made by openssl): its key is used, never copied, and asked for again at the finish', async () => {
  const fixture = await startCaFixture();
  try {
    const dir = fixture.root;
    writeFileSync(
      join(dir, 'next.cnf'),
      '[req]\ndistinguished_name=dn\nprompt=no\nx509_extensions=v3\n[dn]\nO=Corp\nCN=Corp Root 2031\n[v3]\nbasicConstraints=critical,CA:TRUE,pathlen:1\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n',
    );
    const made = await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(dir, 'next-key.pem'),
      '-out',
      join(dir, 'next.pem'),
      '-days',
      '3650',
      '-config',
      join(dir, 'next.cnf'),
    ]);
    assert.equal(made.status, 0, made.stderr);
    const nextFingerprint = sha256Hex(decodePem(readFileSync(join(dir, 'next.pem'), 'utf8'), 'CERTIFICATE')[0]!);

    // The current root given as the next one: refused, nothing started.
    const same = await gatehouse([
      'ca',
      'rotate',
      'root',
      '--dir',
      fixture.caDir,
      '--import-root',
      join(fixture.caDir, CA_FILES.rootCert),
      '--import-root-key',
      join(fixture.caDir, CA_FILES.rootKey),
    ]);
    assert.equal(same.status, 75, same.stderr);
    assert.match(same.stderr, /the next root has the same name as the current one/);
    assert.match(
      (await cli(['ca', 'rotate', 'root', '--dir', fixture.caDir, '--import-root', join(dir, 'next.pem')], 64)).stderr,
      /go together/,
    );

    const started = JSON.parse(
      (
        await cli([
          'ca',
          'rotate',
          'root',
          '--dir',
          fixture.caDir,
          '--json',
          '--import-root',
          join(dir, 'next.pem'),
          '--import-root-key',
          join(dir, 'next-key.pem'),
        ])
      ).stdout,
    );
    assert.equal(started.nextRoot, nextFingerprint);
    assert.equal(started.nextRootKey, 'offline');
    assert.equal(
      existsSync(join(fixture.caDir, 'rotation', 'next-root-key.pem')),
      false,
      'the imported key is not copied',
    );
    await waitFor(
      () => fixture.server.authority.rotation?.state.phase === 'rotating',
      10_000,
      'the running CA to take up the rotation',
    );
    await renewOnce({ dir: fixture.adminDir, caUrl: fixture.url });

    const noKey = await gatehouse(['ca', 'rotate', 'finish', '--dir', fixture.caDir]);
    assert.equal(noKey.status, 69, noKey.stderr);
    assert.match(noKey.stderr, /pass --next-root-key FILE/);
    await cli(['ca', 'rotate', 'finish', '--dir', fixture.caDir, '--next-root-key', join(dir, 'next-key.pem')]);
    assert.equal(
      readFileSync(join(fixture.caDir, CA_FILES.rootCert), 'utf8').replace(/\r\n/g, '\n'),
      readFileSync(join(dir, 'next.pem'), 'utf8').replace(/\r\n/g, '\n'),
    );
    assert.equal(existsSync(join(fixture.caDir, CA_FILES.rootKey)), false, 'the root key is offline from now on');
    assert.ok(existsSync(join(fixture.caDir, 'rotation', 'previous-root-key.pem')), 'the previous key is kept aside');
    await waitFor(
      () => fixture.server.authority.rootFingerprint === nextFingerprint,
      10_000,
      'the running CA to take up the finish',
    );
    // The next root's first CRL, signed with the imported key, verified by openssl.
    const crlPath = join(dir, 'root-crl.der');
    const fetched = await run('curl', [
      '-sS',
      '--fail',
      '--cacert',
      join(dir, 'next.pem'),
      '-o',
      crlPath,
      `${fixture.url}/crl/root`,
    ]);
    assert.equal(fetched.status, 0, fetched.stderr);
    const crl = await run('openssl', [
      'crl',
      '-inform',
      'DER',
      '-in',
      crlPath,
      '-CAfile',
      join(dir, 'next.pem'),
      '-noout',
    ]);
    assert.match(crl.stdout + crl.stderr, /verify OK/);
    await renewOnce({ dir: fixture.adminDir, caUrl: fixture.url });
    assert.ok(
      await chainVerifiesTo(fixture, fixture.adminDir, readFileSync(join(dir, 'next.pem'), 'utf8')),
      'the admin now chains to the imported root',
    );
  } finally {
    await fixture.close();
  }
});

test('with the root key offline: the rotation needs it, writes the next key where told (0600), and the finish asks for that', async () => {
  const tmp = makeTempDir();
  try {
    const caDir = join(tmp.dir, 'ca');
    const rootKey = join(tmp.dir, 'offline-root-key.pem');
    const nextKey = join(tmp.dir, 'next-root-key.pem');
    await initCa({ dir: caDir, org: 'Test Org', rootKeyOut: rootKey });
    const before = readFileSync(join(caDir, CA_FILES.intermediateCert), 'utf8');
    assert.match(
      (await cli(['ca', 'rotate', 'root', '--dir', caDir], 69)).stderr,
      /root key is kept offline; pass --root-key FILE/,
    );
    assert.match(
      (await cli(['ca', 'rotate', 'root', '--dir', caDir, '--root-key', rootKey], 64)).stderr,
      /pass --next-root-key-out FILE/,
    );
    assert.equal(readFileSync(join(caDir, CA_FILES.intermediateCert), 'utf8'), before, 'nothing changed');
    assert.equal(existsSync(join(caDir, 'rotation', 'root.json')), false);
    const started = JSON.parse(
      (
        await cli([
          'ca',
          'rotate',
          'root',
          '--dir',
          caDir,
          '--root-key',
          rootKey,
          '--next-root-key-out',
          nextKey,
          '--json',
        ])
      ).stdout,
    );
    assert.equal(statSync(nextKey).mode & 0o777, 0o600);
    assert.equal(started.nextRootKeyFile, nextKey);
    assert.match(
      (await cli(['ca', 'rotate', 'finish', '--dir', caDir, '--force'], 69)).stderr,
      /pass --next-root-key FILE/,
    );
    const finished = JSON.parse(
      (await cli(['ca', 'rotate', 'finish', '--dir', caDir, '--force', '--next-root-key', nextKey, '--json'])).stdout,
    );
    assert.deepEqual(finished.notMoved, ['spiffe://gatehouse.internal/admin/admin']);
    assert.equal(
      sha256Hex(decodePem(readFileSync(join(caDir, CA_FILES.rootCert), 'utf8'), 'CERTIFICATE')[0]!),
      started.nextRoot,
    );
    assert.equal(existsSync(join(caDir, CA_FILES.rootKey)), false, 'no root key in the CA directory, before or after');
    const verify = await run('openssl', [
      'verify',
      '-x509_strict',
      '-CAfile',
      join(caDir, CA_FILES.rootCert),
      join(caDir, CA_FILES.intermediateCert),
    ]);
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
  } finally {
    tmp.cleanup();
  }
});

test('through the admin API with an admin identity: start, status, finish refused, abort; key options stay on the CA machine', async () => {
  const fixture = await startCaFixture();
  try {
    const remote = ['--identity', fixture.adminDir, '--ca', fixture.url];
    assert.equal(JSON.parse((await cli(['ca', 'rotate', 'status', ...remote, '--json'])).stdout).phase, 'none');
    assert.match(
      (await cli(['ca', 'rotate', 'root', ...remote, '--root-key', join(fixture.caDir, CA_FILES.rootKey)], 64)).stderr,
      /work only on the CA machine \(--dir\): keys never travel to the admin API/,
    );
    const started = JSON.parse((await cli(['ca', 'rotate', 'root', ...remote, '--json'])).stdout);
    assert.equal(started.phase, 'rotating');
    await waitFor(
      () => fixture.server.authority.rotation?.state.phase === 'rotating',
      10_000,
      'the running CA to take up the rotation',
    );
    const status = JSON.parse((await cli(['ca', 'rotate', 'status', ...remote, '--json'])).stdout);
    assert.deepEqual(status.identities, { total: 1, moved: 0 });
    assert.deepEqual(
      status.pending.map((p: { spiffeId: string }) => p.spiffeId),
      ['spiffe://test.internal/admin/admin'],
    );
    const refused = await gatehouse(['ca', 'rotate', 'finish', ...remote]);
    assert.equal(refused.status, 75, refused.stderr);
    assert.match(refused.stderr, /1 of 1 active identities have not moved/);
    await cli(['ca', 'rotate', 'abort', ...remote]);
    await waitFor(
      () => fixture.server.authority.rotation?.state.phase === 'aborted',
      10_000,
      'the running CA to take up the abort',
    );
    const calls = await fixture.store.listAudit({ type: 'ca.root_rotation_started' });
    assert.equal(calls[0]!.actor, 'spiffe://test.internal/admin/admin', 'audited with the admin identity');
  } finally {
    await fixture.close();
  }
});

test('one rotation command at a time: a live holder of the lock refuses the next, a dead one is taken over', async () => {
  const tmp = makeTempDir();
  try {
    const caDir = join(tmp.dir, 'ca');
    await initCa({ dir: caDir, org: 'Test Org' });
    const lock = join(caDir, '.root-rotation.lock');
    const { hostname } = await import('node:os');
    writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname(), since: '2026-01-01T00:00:00.000Z' }));
    assert.match(
      (await cli(['ca', 'rotate', 'root', '--dir', caDir], 75)).stderr,
      new RegExp(`another rotation command holds .*\\.root-rotation\\.lock \\(pid ${process.pid}`),
    );
    assert.equal(existsSync(join(caDir, 'rotation', 'root.json')), false, 'nothing started');
    // A holder that is gone (a crash): its lock is taken over.
    writeFileSync(lock, JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), since: '2026-01-01T00:00:00.000Z' }));
    await cli(['ca', 'rotate', 'root', '--dir', caDir]);
    assert.equal(existsSync(lock), false, 'released');
  } finally {
    tmp.cleanup();
  }
});

test('a finish cut short completes when run again and loses no key; a new start waits for the previous root to leave; an aborted root stays retired', async () => {
  const tmp = makeTempDir();
  try {
    const caDir = join(tmp.dir, 'ca');
    await initCa({ dir: caDir, org: 'Test Org' });
    const keyFingerprint = (file: string) =>
      sha256Hex(createPublicKey(readFileSync(file, 'utf8')).export({ type: 'spki', format: 'der' }));
    // An aborted rotation first: its next root must stay retired through the next start.
    const aborted = JSON.parse((await cli(['ca', 'rotate', 'root', '--dir', caDir, '--json'])).stdout);
    await cli(['ca', 'rotate', 'abort', '--dir', caDir]);
    const started = JSON.parse((await cli(['ca', 'rotate', 'root', '--dir', caDir, '--json'])).stdout);
    assert.deepEqual(started.retiredRoots, [aborted.nextRoot]);
    const rootKey = join(caDir, CA_FILES.rootKey);
    const nextKey = join(caDir, 'rotation', 'next-root-key.pem');
    const previousKey = join(caDir, 'rotation', 'previous-root-key.pem');
    const previousFp = keyFingerprint(rootKey);
    const nextFp = keyFingerprint(nextKey);
    // A finish killed after moving both keys, before root.pem and root.json (what kill -9 leaves).
    renameSync(rootKey, previousKey);
    renameSync(nextKey, rootKey);
    const finished = JSON.parse((await cli(['ca', 'rotate', 'finish', '--dir', caDir, '--force', '--json'])).stdout);
    assert.equal(finished.phase, 'finished');
    assert.equal(keyFingerprint(rootKey), nextFp, "root-key.pem is the next root's key");
    assert.equal(keyFingerprint(previousKey), previousFp, 'the previous key is kept, not overwritten');
    assert.equal(
      sha256Hex(decodePem(readFileSync(join(caDir, CA_FILES.rootCert), 'utf8'), 'CERTIFICATE')[0]!),
      started.nextRoot,
    );
    // The previous root is still in agents' bundles: no new rotation until it has left them.
    assert.match(
      (await cli(['ca', 'rotate', 'root', '--dir', caDir], 75)).stderr,
      /is still moving agents off its previous root \(until /,
    );
  } finally {
    tmp.cleanup();
  }
});
