/**
 * `ca rotate intermediate` on the directory of a running CA: the server puts the new issuing CA
 * in force by itself, certificates of both verify with openssl to the unchanged root, the
 * retired CA keeps signing its CRL (served at /crl/<id> and in /crls), and an agent holding an
 * old certificate still checks its revocation and renews onto the new CA.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCaFixture, enrollAgent } from './helpers/ca-fixture.js';
import { gatehouse } from './helpers/cli.js';
import { run } from './helpers/run.js';
import { waitFor } from './helpers/procs.js';
import { CA_FILES } from '../src/ca/ca-dir.js';
import { issuerIdOf, RETIRED_DIR } from '../src/ca/issuers.js';
import { initCa } from '../src/ca/init.js';
import { request as httpsRequest } from 'node:https';
import { parseGatewayConfig } from '../src/gateway/config.js';
import { runGateway } from '../src/gateway/run.js';
import { createLogger } from '../src/log/logger.js';
import { startEchoUpstream } from './helpers/echo-upstream.js';
import { makeTempDir } from './helpers/tmp.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import { renewOnce } from '../src/agent/renew.js';
import { loadIdentity } from '../src/agent/agent-state.js';
import { checkRevocation } from '../src/agent/revocation.js';
import { parseCertificatePem } from '../src/pki/certificate.js';
import { decodePemBlocks, toPem } from '../src/pki/pem.js';

async function opensslOk(args: string[]): Promise<string> {
  const r = await run('openssl', args);
  assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout + r.stderr;
}

test('rotating the issuing CA of a running CA: new certificates from the new one, the old one keeps its CRL, nothing changes for clients', async () => {
  const fixture = await startCaFixture();
  try {
    const rootPath = join(fixture.caDir, CA_FILES.rootCert);
    const oldIntermediatePem = readFileSync(join(fixture.caDir, CA_FILES.intermediateCert), 'utf8');
    const oldId = issuerIdOf(parseCertificatePem(oldIntermediatePem)[0]!.der);
    const before = await enrollAgent(fixture, 'web', 'before-1');
    const revokedLater = await enrollAgent(fixture, 'web', 'before-2');
    assert.match(
      parseCertificatePem(readFileSync(join(before.dir, 'cert.pem'), 'utf8'))[0]!.crlUrls[0]!,
      new RegExp(`/crl/${oldId}$`),
    );

    const rotated = await gatehouse(['ca', 'rotate', 'intermediate', '--dir', fixture.caDir, '--json']);
    assert.equal(rotated.status, 0, rotated.stderr);
    const result = JSON.parse(rotated.stdout);
    assert.equal(result.previous.id, oldId);
    assert.notEqual(result.next.id, oldId);
    assert.ok(
      new Date(result.previous.crlUntil) >= before.identity.notAfter,
      'the old CRL outlives the old certificates',
    );
    const newIntermediatePem = readFileSync(join(fixture.caDir, CA_FILES.intermediateCert), 'utf8');
    assert.equal(issuerIdOf(parseCertificatePem(newIntermediatePem)[0]!.der), result.next.id);

    // The running server notices by itself, with no restart and no signal.
    await waitFor(
      () => issuerIdOf(fixture.server.authority.issuer.certDer) === result.next.id,
      10_000,
      'the running CA to use the new issuing CA',
    );
    assert.ok(fixture.logLines.some((l) => l.includes('"ca.issuers_reloaded"')));

    const after = await enrollAgent(fixture, 'web', 'after-1');
    const chain = parseCertificatePem(readFileSync(join(after.dir, 'cert.pem'), 'utf8'));
    assert.equal(
      chain[1]!.fingerprint,
      parseCertificatePem(newIntermediatePem)[0]!.fingerprint,
      'the chain sent is leaf + new issuing CA',
    );
    assert.match(chain[0]!.crlUrls[0]!, new RegExp(`/crl/${result.next.id}$`));
    const leafPath = join(fixture.root, 'after-leaf.pem');
    writeFileSync(leafPath, toPem('CERTIFICATE', chain[0]!.der));
    writeFileSync(join(fixture.root, 'new-int.pem'), newIntermediatePem);
    writeFileSync(join(fixture.root, 'old-int.pem'), oldIntermediatePem);
    await opensslOk([
      'verify',
      '-x509_strict',
      '-purpose',
      'sslclient',
      '-CAfile',
      rootPath,
      '-untrusted',
      join(fixture.root, 'new-int.pem'),
      leafPath,
    ]);
    assert.equal(
      readFileSync(join(after.dir, 'ca.pem'), 'utf8'),
      readFileSync(join(before.dir, 'ca.pem'), 'utf8'),
      'clients keep the same trust: the root',
    );

    // A certificate of the retired CA is revoked: its CRL (at its own URL) lists it, signed by the old key.
    await fixture.server.authority.revokeCertificate(revokedLater.identity.serial, 'keyCompromise', { actor: 'test' });
    await fixture.server.crls.refresh();
    const oldCrlPath = join(fixture.root, 'old-crl.der');
    const fetched = await run('curl', [
      '-sS',
      '--fail',
      '--cacert',
      rootPath,
      '-o',
      oldCrlPath,
      `${fixture.url}/crl/${oldId}`,
    ]);
    assert.equal(fetched.status, 0, fetched.stderr);
    const oldCrl = await opensslOk([
      'crl',
      '-inform',
      'DER',
      '-in',
      oldCrlPath,
      '-CAfile',
      join(fixture.root, 'old-int.pem'),
      '-noout',
      '-text',
    ]);
    assert.match(oldCrl, /verify OK/);
    assert.match(oldCrl, new RegExp(revokedLater.identity.serial.toUpperCase()));

    // /crls: each issuing CA and the root, each certificate followed by the CRL it signs.
    const bundle = await run('curl', ['-sS', '--fail', '--cacert', rootPath, `${fixture.url}/crls`]);
    assert.equal(bundle.status, 0, bundle.stderr);
    const blocks = decodePemBlocks(bundle.stdout);
    assert.deepEqual(
      blocks.map((b) => b.label),
      ['CERTIFICATE', 'X509 CRL', 'CERTIFICATE', 'X509 CRL', 'CERTIFICATE', 'X509 CRL'],
    );
    const signers = blocks.filter((b) => b.label === 'CERTIFICATE').map((b) => issuerIdOf(b.der));
    assert.deepEqual(
      signers,
      [result.next.id, oldId, issuerIdOf(fixture.server.authority.rootDer)],
      'the current issuing CA first, then the retired one, then the root',
    );

    // A gateway that trusts only the root and reads /crls lets in clients of both issuing CAs and
    // refuses the revoked one: the new CA's CRL verifies with the signer certificate /crls carries.
    const gw = await enrollAgent(fixture, 'gateway', 'gw-1', { dns: ['localhost'], ip: ['127.0.0.1'] });
    const app = await startEchoUpstream();
    const gatewayLog: string[] = [];
    const gateway = await runGateway({
      config: parseGatewayConfig(
        {
          listen: '127.0.0.1:0',
          tls: { cert: join(gw.dir, 'cert.pem'), key: join(gw.dir, 'key.pem'), clientCa: rootPath },
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
    try {
      await waitFor(
        () => gatewayLog.some((l) => l.includes('"gateway.crl_loaded"')),
        10_000,
        'the gateway to load /crls',
      );
      const call = (dir: string) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = httpsRequest(
            {
              host: '127.0.0.1',
              port: gateway.gateway.port,
              path: '/',
              agent: false,
              ca: readFileSync(rootPath),
              timeout: 10_000,
              cert: readFileSync(join(dir, 'cert.pem')),
              key: readFileSync(join(dir, 'key.pem')),
            },
            (res) => {
              let body = '';
              res.on('data', (d: Buffer) => {
                body += d.toString();
              });
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
            },
          );
          req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
          req.on('error', reject);
          req.end();
        });
      assert.equal((await call(before.dir)).status, 200, 'a client of the retired issuing CA');
      assert.equal((await call(after.dir)).status, 200, 'a client of the new issuing CA');
      const refused = await call(revokedLater.dir);
      assert.equal(refused.status, 403, refused.body);
      assert.match(refused.body, /revoked/i);
    } finally {
      await gateway.close();
      await app.close();
    }

    // An agent on an old certificate checks its revocation against its own CA's CRL, then renews onto the new CA.
    const check = await checkRevocation(loadIdentity(before.dir), { now: new Date(), caUrl: fixture.url });
    assert.equal(check.source, 'ca', `${check.caProblem ?? ''} ${check.refused ?? ''}`);
    assert.equal(check.revoked, false);
    const renewed = await renewOnce({ dir: before.dir, caUrl: fixture.url });
    const renewedChain = parseCertificatePem(readFileSync(join(before.dir, 'cert.pem'), 'utf8'));
    assert.equal(issuerIdOf(renewedChain[1]!.der), result.next.id);
    assert.notEqual(renewed.current.serial, before.identity.serial);
    // The revoked one of the old CA cannot renew.
    await assert.rejects(renewOnce({ dir: revokedLater.dir, caUrl: fixture.url }));

    const audit = await fixture.store.listAudit({ type: 'ca.intermediate_rotated' });
    assert.equal(audit.length, 1);
  } finally {
    await fixture.close();
  }
});

test('rotating with the root key offline needs --root-key; without it nothing changes', async () => {
  const tmp = makeTempDir();
  try {
    const caDir = join(tmp.dir, 'ca');
    const rootKey = join(tmp.dir, 'offline-root-key.pem');
    await initCa({ dir: caDir, org: 'Test Org', rootKeyOut: rootKey });
    const before = readFileSync(join(caDir, CA_FILES.intermediateCert), 'utf8');
    const refused = await gatehouse(['ca', 'rotate', 'intermediate', '--dir', caDir]);
    assert.equal(refused.status, 69, refused.stderr);
    assert.match(refused.stderr, /root key is kept offline; pass --root-key FILE/);
    assert.equal(readFileSync(join(caDir, CA_FILES.intermediateCert), 'utf8'), before);
    assert.equal(existsSync(join(caDir, RETIRED_DIR)), false);
    const done = await gatehouse(['ca', 'rotate', 'intermediate', '--dir', caDir, '--root-key', rootKey]);
    assert.equal(done.status, 0, done.stderr);
    assert.notEqual(readFileSync(join(caDir, CA_FILES.intermediateCert), 'utf8'), before);
    await opensslOk([
      'verify',
      '-x509_strict',
      '-CAfile',
      join(caDir, CA_FILES.rootCert),
      join(caDir, CA_FILES.intermediateCert),
    ]);
  } finally {
    tmp.cleanup();
  }
});

test('an intermediate rotation waits its turn behind a root rotation command: the lock refuses it, nothing changes', async () => {
  const tmp = makeTempDir();
  try {
    const caDir = join(tmp.dir, 'ca');
    await initCa({ dir: caDir, org: 'Test Org' });
    const before = readFileSync(join(caDir, CA_FILES.intermediateCert), 'utf8');
    // Held by a live process on this host (this one), as `ca rotate root` or the admin API holds it.
    const lock = join(caDir, '.root-rotation.lock');
    const { hostname, userInfo } = await import('node:os');
    writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname(), since: '2026-01-01T00:00:00.000Z' }));
    const refused = await gatehouse(['ca', 'rotate', 'intermediate', '--dir', caDir]);
    assert.equal(refused.status, 75, refused.stderr);
    assert.match(
      refused.stderr,
      new RegExp(`another rotation command holds .*\\.root-rotation\\.lock \\(pid ${process.pid}`),
    );
    assert.equal(readFileSync(join(caDir, CA_FILES.intermediateCert), 'utf8'), before, 'nothing rotated');
    assert.equal(existsSync(join(caDir, RETIRED_DIR)), false);
    assert.equal(existsSync(lock), true, "the holder's lock is left alone");
    writeFileSync(lock, JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), since: '2026-01-01T00:00:00.000Z' }));
    const done = await gatehouse(['ca', 'rotate', 'intermediate', '--dir', caDir]);
    assert.equal(done.status, 0, done.stderr);
    assert.notEqual(readFileSync(join(caDir, CA_FILES.intermediateCert), 'utf8'), before);
    assert.equal(existsSync(lock), false, 'released');
    // A wrong --dir is refused as such, before any lock file is written into it.
    const nowhere = join(tmp.dir, 'no-such-ca');
    const wrong = await gatehouse(['ca', 'rotate', 'intermediate', '--dir', nowhere]);
    assert.equal(wrong.status, 66, wrong.stderr);
    assert.match(wrong.stderr, /CA directory .*no-such-ca does not exist/);
    // The audit trail names who rotated, as every local command does.
    const store = openSqliteStore(join(caDir, CA_FILES.database));
    try {
      const [event] = await store.listAudit({ type: 'ca.intermediate_rotated' });
      assert.equal(event?.actor, `local:${userInfo().username}`);
    } finally {
      await store.close();
    }
  } finally {
    tmp.cleanup();
  }
});
