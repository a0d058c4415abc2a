/**
 * Registration-authority mode end to end against a real `cfssl serve` with its own root: `ca
 * init --external-ca` signs the admin through it, agents enroll and renew through Gatehouse and
 * get cfssl-signed certificates that openssl verifies to cfssl's root, the inventory and audit
 * hold them, and a signer that returns anything but what was asked (an extra SAN, another key, a
 * repeated serial) is refused with nothing recorded and the token's use kept.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { run, runSync } from './helpers/run.js';
import { gatehouse } from './helpers/cli.js';
import { makeTempDir } from './helpers/tmp.js';
import {
  AUTHED_PROFILE,
  AUTHED_SERVER_PROFILE,
  issueTlsCredential,
  makeTestCa,
  startCfsslServer,
  type CfsslServer,
} from './helpers/cfssl-server.js';
import { startCaServerOnDir, type DirServer } from './helpers/ca-dir-server.js';
import { CA_FILES, loadCaMaterial } from '../src/ca/ca-dir.js';
import { externalCaFrom, type ExternalCa } from '../src/ca/external-ca.js';
import { startCaServer } from '../src/ca/server.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import { silentLogger } from '../src/log/logger.js';
import { enroll } from '../src/agent/enroll.js';
import { renewOnce } from '../src/agent/renew.js';
import { parseCertificate } from '../src/pki/certificate.js';
import { buildCsrPem } from '../src/pki/csr-build.js';
import { generatePrivateKey } from '../src/pki/keys.js';
import { decodePem, toPem } from '../src/pki/pem.js';
import { isGatehouseError } from '../src/errors/errors.js';

const TRUST_DOMAIN = 'ra.test';

function leafOf(dir: string): ReturnType<typeof parseCertificate> {
  return parseCertificate(decodePem(readFileSync(join(dir, 'cert.pem'), 'utf8'), 'CERTIFICATE')[0]!);
}

/** openssl, an independent verifier: the leaf chains to cfssl's root, strictly, for TLS clients. */
function opensslVerifies(tmpDir: string, rootPath: string, certPem: string, purpose: 'sslclient' | 'sslserver'): void {
  const leaf = join(tmpDir, `leaf-${Date.now()}-${Math.random().toString(16).slice(2)}.pem`);
  writeFileSync(leaf, toPem('CERTIFICATE', decodePem(certPem, 'CERTIFICATE')[0]!));
  const out = runSync('openssl', ['verify', '-x509_strict', '-purpose', purpose, '-CAfile', rootPath, leaf]);
  assert.equal(out.status, 0, `${out.stdout}${out.stderr}`);
}

async function auditTypes(caDir: string): Promise<Array<{ type: string; details: Record<string, unknown> }>> {
  const store = openSqliteStore(join(caDir, CA_FILES.database));
  try {
    return (await store.listAudit({ limit: 10_000 })).map((e) => ({
      type: e.type,
      details: e.details as Record<string, unknown>,
    }));
  } finally {
    await store.close();
  }
}

describe('registration-authority mode with cfssl serve', () => {
  const tmp = makeTempDir('gatehouse-ra-');
  let cfssl: CfsslServer;
  let rootPath: string;
  const caDir = join(tmp.dir, 'ca');
  let ca: DirServer;

  before(async () => {
    cfssl = await startCfsslServer({ dir: tmp.dir });
    rootPath = join(tmp.dir, 'cfssl-root.pem');
    writeFileSync(rootPath, cfssl.ca.certPem);
    const init = await gatehouse([
      'ca',
      'init',
      '--dir',
      caDir,
      '--name',
      'RA',
      '--trust-domain',
      TRUST_DOMAIN,
      '--json',
      '--external-ca',
      cfssl.url,
      '--import-root',
      rootPath,
    ]);
    assert.equal(init.status, 0, init.stderr);
    const created = JSON.parse(init.stdout);
    assert.equal(created.externalCa, `${cfssl.url}/api/v1/cfssl/sign`);
    ca = await startCaServerOnDir(caDir);
  });
  after(async () => {
    await ca?.close();
    await cfssl?.close();
    tmp.cleanup();
  });

  test('init keeps no signing key and signs the admin through cfssl', () => {
    assert.equal(existsSync(join(caDir, CA_FILES.intermediateKey)), false, 'no issuing key');
    assert.equal(existsSync(join(caDir, CA_FILES.rootKey)), false, 'no root key');
    const config = readFileSync(join(caDir, CA_FILES.config), 'utf8');
    assert.match(config, /intermediate: null/);
    assert.match(config, new RegExp(`externalCa:\\n  url: ${cfssl.url.replace(/[.]/g, '\\.')}`));
    const admin = readFileSync(join(caDir, 'admin', 'cert.pem'), 'utf8');
    opensslVerifies(tmp.dir, rootPath, admin, 'sslclient');
    const cert = parseCertificate(decodePem(admin, 'CERTIFICATE')[0]!);
    assert.deepEqual(cert.sans.uri, [`spiffe://${TRUST_DOMAIN}/admin/admin`]);
    assert.ok(cert.issuerNameDer.equals(parseCertificate(cfssl.ca.certDer).subjectNameDer), 'signed by cfssl');
  });

  test('enroll and renew through Gatehouse: cfssl signs, openssl verifies, inventory and audit hold both', async () => {
    const { token } = await ca.server.authority.createToken({ role: 'web' }, { actor: 'test' });
    const dir = join(tmp.dir, 'laptop-1');
    await enroll({ caUrl: ca.url, token, dir, name: 'laptop-1' });
    const enrolled = leafOf(dir);
    opensslVerifies(tmp.dir, rootPath, readFileSync(join(dir, 'cert.pem'), 'utf8'), 'sslclient');
    assert.deepEqual(enrolled.sans.uri, [`spiffe://${TRUST_DOMAIN}/web/laptop-1`]);
    assert.equal(
      readFileSync(join(dir, 'ca.pem'), 'utf8').trim(),
      cfssl.ca.certPem.trim(),
      'agents pin the external root',
    );

    const renewed = await renewOnce({ dir, caUrl: ca.url });
    const after = leafOf(dir);
    assert.notEqual(after.serial, enrolled.serial);
    assert.equal(renewed.current.serial, after.serial);
    opensslVerifies(tmp.dir, rootPath, readFileSync(join(dir, 'cert.pem'), 'utf8'), 'sslclient');

    const list = await gatehouse(['cert', 'list', '--dir', caDir, '--json']);
    assert.equal(list.status, 0, list.stderr);
    const certs = JSON.parse(list.stdout) as Array<{
      serial: string;
      fingerprint: string;
      state: string;
      renewedFrom: string | null;
    }>;
    const inInventory = (serial: string) => certs.find((c) => c.serial === serial);
    assert.equal(inInventory(enrolled.serial)?.fingerprint, enrolled.fingerprint);
    assert.equal(inInventory(after.serial)?.fingerprint, after.fingerprint);
    const events = await auditTypes(caDir);
    assert.ok(events.some((e) => e.type === 'ca.cert_issued' && e.details.name === 'laptop-1'));
    assert.ok(events.some((e) => e.type === 'ca.cert_renewed' && e.details.renewedFrom === enrolled.serial));
    const verify = await gatehouse(['audit', 'verify', '--dir', caDir]);
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);

    // The CA's own HTTPS certificate came from cfssl too: curl trusting only cfssl's root reaches it.
    const curl = await run('curl', ['-sS', '--cacert', rootPath, `${ca.url}/crl`]);
    assert.equal(curl.status, 0, curl.stderr);
    const body = JSON.parse(curl.stdout);
    assert.equal(body.error.code, 'GH_NOT_FOUND');
    assert.match(body.error.message, /an external CA signs them/);
  });

  test('revocation: the lineage can no longer renew; no CRL is claimed; check passes', async () => {
    const { token } = await ca.server.authority.createToken({ role: 'web' }, { actor: 'test' });
    const dir = join(tmp.dir, 'laptop-2');
    await enroll({ caUrl: ca.url, token, dir, name: 'laptop-2' });
    const revoke = await gatehouse(['cert', 'revoke', leafOf(dir).serial, '--dir', caDir, '--reason', 'keyCompromise']);
    assert.equal(revoke.status, 0, revoke.stderr);
    await assert.rejects(
      renewOnce({ dir, caUrl: ca.url }),
      (err: unknown) => isGatehouseError(err) && /revoked/.test(err.message),
    );
    const crls = await run('curl', ['-sS', '--cacert', rootPath, `${ca.url}/crls`]);
    assert.match(crls.stdout, /this CA signs no CRL/);
    const check = await gatehouse(['check', '--dir', caDir, '--expiring-within', '1h', '--json']);
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.deepEqual(JSON.parse(check.stdout).checked.crls, [], 'no CRL is expected of this CA');
    const rotate = await gatehouse(['ca', 'rotate', 'intermediate', '--dir', caDir]);
    assert.notEqual(rotate.status, 0);
    assert.match(rotate.stderr, /the external CA at .* signs this CA's certificates .*GH_CA_ROTATION/);
  });
});

/** A signer in front of the real cfssl that changes the request in one way before passing it on. */
function tampering(
  real: ExternalCa,
  change: 'extra-san' | 'other-key' | 'same-serial',
): ExternalCa & { calls: number } {
  let first: Buffer | null = null;
  const otherCsr = buildCsrPem(generatePrivateKey('p256'), { commonName: 'web-x' });
  const signer = {
    calls: 0,
    displayUrl: real.displayUrl,
    profileFor: real.profileFor,
    async sign(request: Parameters<ExternalCa['sign']>[0]): Promise<Buffer> {
      // The CA's own server certificate is signed as asked: only the enrollment under test is changed.
      if (request.subject.organizationalUnit !== 'web') return real.sign(request);
      signer.calls++;
      if (change === 'extra-san') return real.sign({ ...request, hosts: [...request.hosts, 'evil.example'] });
      if (change === 'other-key') return real.sign({ ...request, csrPem: await otherCsr });
      // A signer that answers every request with the first certificate it made.
      first ??= await real.sign(request);
      return first;
    },
  };
  return signer;
}

test('a signer that returns something else is refused: nothing recorded, the token keeps its use, the refusal is audited', async () => {
  const tmp = makeTempDir('gatehouse-ra-bad-');
  const cfssl = await startCfsslServer({ dir: tmp.dir });
  try {
    const rootPath = join(tmp.dir, 'cfssl-root.pem');
    writeFileSync(rootPath, cfssl.ca.certPem);
    const caDir = join(tmp.dir, 'ca');
    const init = await gatehouse([
      'ca',
      'init',
      '--dir',
      caDir,
      '--trust-domain',
      TRUST_DOMAIN,
      '--external-ca',
      cfssl.url,
      '--import-root',
      rootPath,
    ]);
    assert.equal(init.status, 0, init.stderr);
    const material = loadCaMaterial(caDir);
    const real = externalCaFrom(material.config, caDir)!;

    for (const [change, message] of [
      ['extra-san', /SAN DNS:evil\.example that was not requested/],
      ['other-key', /for another public key/],
    ] as const) {
      const signer = tampering(real, change);
      const store = openSqliteStore(join(caDir, CA_FILES.database));
      const server = await startCaServer({
        material,
        store,
        logger: silentLogger,
        listen: '127.0.0.1:0',
        externalCa: signer,
      });
      try {
        const before = await store.listCerts({});
        const { token, record } = await server.authority.createToken({ role: 'web' }, { actor: 'test' });
        const dir = join(tmp.dir, `victim-${change}`);
        // The client learns the code; the signer's details (its URL, what differed) stay in the log and audit trail.
        await assert.rejects(enroll({ caUrl: server.url, token, dir, name: `victim-${change}` }), (err: unknown) => {
          assert.ok(isGatehouseError(err, 'GH_EXTERNAL_CA_MISMATCH'), `${change}: ${String(err)}`);
          assert.ok(!(err as Error).message.includes(cfssl.url), (err as Error).message);
          return true;
        });
        assert.ok(signer.calls >= 1, 'the signer was asked');
        assert.equal(existsSync(join(dir, 'cert.pem')), false, 'the client got no certificate');
        const afterCerts = await store.listCerts({});
        assert.deepEqual(
          afterCerts.map((c) => c.serial).sort(),
          before.map((c) => c.serial).sort(),
          `${change}: nothing was recorded`,
        );
        assert.equal((await store.getToken(record.id))!.uses, 0, `${change}: the token keeps its use`);
        const refusal = (await store.listAudit({ limit: 10_000 }))
          .filter((e) => e.type === 'ca.external_ca_failed')
          .at(-1);
        assert.ok(refusal, `${change}: audited`);
        assert.equal((refusal.details as Record<string, unknown>).code, 'GH_EXTERNAL_CA_MISMATCH');
        assert.match(String((refusal.details as Record<string, unknown>).reason), message);
        assert.equal(
          (refusal.details as Record<string, unknown>).spiffeId,
          `spiffe://${TRUST_DOMAIN}/web/victim-${change}`,
        );
        assert.equal(refusal.tokenId, record.id);
      } finally {
        await server.close();
        await store.close();
      }
    }

    // A signer that answers with a certificate it made before (here: for this very CSR, so every
    // other check passes): the serial is the inventory's key, so the second answer is refused.
    const replaying = tampering(real, 'same-serial');
    const store = openSqliteStore(join(caDir, CA_FILES.database));
    const server = await startCaServer({
      material,
      store,
      logger: silentLogger,
      listen: '127.0.0.1:0',
      externalCa: replaying,
    });
    try {
      const csr = await buildCsrPem(generatePrivateKey('p256'), { commonName: 'dup-1' });
      const first = await server.authority.signCsr(csr, 'web', 'dup-1', { actor: 'test' });
      const count = (await store.listCerts({})).length;
      await assert.rejects(
        server.authority.signCsr(csr, 'web', 'dup-1', { actor: 'test' }),
        (err: unknown) =>
          isGatehouseError(err, 'GH_EXTERNAL_CA_MISMATCH') &&
          new RegExp(`serial ${first.record.serial}, which another certificate in the inventory already has`).test(
            err.message,
          ),
      );
      assert.equal(replaying.calls, 2);
      assert.equal((await store.listCerts({})).length, count, 'nothing more was recorded');
    } finally {
      await server.close();
      await store.close();
    }
  } finally {
    await cfssl.close();
    tmp.cleanup();
  }
});

test('init refuses what cannot work and creates nothing: no root, a key given, a signer that is down', async () => {
  const tmp = makeTempDir('gatehouse-ra-init-');
  const cfssl = await startCfsslServer({ dir: tmp.dir });
  // A port that refuses connections: listened on, then closed.
  const closed: Server = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const deadPort = (closed.address() as { port: number }).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  try {
    const rootPath = join(tmp.dir, 'cfssl-root.pem');
    writeFileSync(rootPath, cfssl.ca.certPem);
    const keyPath = join(tmp.dir, 'cfssl-root-key.pem');
    writeFileSync(keyPath, cfssl.ca.keyPem, { mode: 0o600 });
    const cases: Array<{ args: string[]; exit: number; message: RegExp }> = [
      { args: ['--external-ca', cfssl.url], exit: 64, message: /--external-ca needs --import-root FILE/ },
      {
        args: ['--external-ca', cfssl.url, '--import-root', rootPath, '--import-root-key', keyPath],
        exit: 65,
        message: /the external CA holds the signing keys; give its certificates only \(leave out --import-root-key\)/,
      },
      {
        args: ['--external-ca', 'ftp://signer', '--import-root', rootPath],
        exit: 64,
        message: /must be an http:\/\/ or https:\/\/ URL/,
      },
      {
        args: ['--external-ca-auth-key', keyPath, '--import-root', rootPath, '--import-root-key', keyPath],
        exit: 64,
        message: /the --external-ca-\* options need --external-ca URL/,
      },
      {
        args: ['--external-ca', `http://127.0.0.1:${deadPort}`, '--import-root', rootPath],
        exit: 69,
        message: /GH_EXTERNAL_CA_UNREACHABLE/,
      },
    ];
    for (const [i, c] of cases.entries()) {
      const dir = join(tmp.dir, `ca-${i}`);
      const r = await gatehouse(['ca', 'init', '--dir', dir, ...c.args]);
      assert.equal(r.status, c.exit, `${c.args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, c.message);
      assert.equal(existsSync(dir), false, `${c.args.join(' ')}: nothing created`);
    }
  } finally {
    await cfssl.close();
    tmp.cleanup();
  }
});

test('over https with mutual TLS and authsign, as gatehouse.yaml configures them: enroll works; a client certificate the signer does not trust fails init', async () => {
  const tmp = makeTempDir('gatehouse-ra-tls-');
  const tlsCa = await makeTestCa('signer TLS CA');
  const clientCa = await makeTestCa('signer client CA');
  const cfssl = await startCfsslServer({
    dir: tmp.dir,
    tls: issueTlsCredential(tlsCa, 'signer', 'server'),
    mutualTlsCaPem: clientCa.certPem,
  });
  let ca: DirServer | null = null;
  try {
    const file = (name: string, text: string, mode = 0o644) => {
      const path = join(tmp.dir, name);
      writeFileSync(path, text, { mode });
      return path;
    };
    const rootPath = file('cfssl-root.pem', cfssl.ca.certPem);
    const client = issueTlsCredential(clientCa, 'gatehouse', 'client');
    const stranger = issueTlsCredential(await makeTestCa('someone else'), 'gatehouse', 'client');
    const args = (dir: string, cred: { certPem: string; keyPem: string }) => [
      'ca',
      'init',
      '--dir',
      dir,
      '--trust-domain',
      TRUST_DOMAIN,
      '--import-root',
      rootPath,
      '--external-ca',
      cfssl.url,
      '--external-ca-auth-key',
      file('auth.key', cfssl.authKeyHex, 0o600),
      '--external-ca-tls-ca',
      file('tls-ca.pem', tlsCa.certPem),
      '--external-ca-tls-cert',
      file(`${dir.split('/').pop()}-client.pem`, cred.certPem),
      '--external-ca-tls-key',
      file(`${dir.split('/').pop()}-client-key.pem`, cred.keyPem, 0o600),
      '--external-ca-profile',
      `admin=${AUTHED_PROFILE}`,
      '--external-ca-profile',
      `web=${AUTHED_PROFILE}`,
      '--external-ca-profile',
      `ca-server=${AUTHED_SERVER_PROFILE}`,
    ];

    const refused = await gatehouse(args(join(tmp.dir, 'ca-stranger'), stranger));
    assert.equal(refused.status, 69, refused.stderr);
    assert.match(refused.stderr, /GH_EXTERNAL_CA_UNREACHABLE/);
    assert.equal(existsSync(join(tmp.dir, 'ca-stranger')), false);

    const caDir = join(tmp.dir, 'ca');
    const init = await gatehouse([...args(caDir, client), '--json']);
    assert.equal(init.status, 0, init.stderr);
    assert.equal(JSON.parse(init.stdout).externalCa, `${cfssl.url}/api/v1/cfssl/authsign`);
    const config = readFileSync(join(caDir, CA_FILES.config), 'utf8');
    assert.match(config, /profiles:\n\s+admin: authed\n\s+web: authed\n\s+ca-server: authed-server/);
    ca = await startCaServerOnDir(caDir);
    const { token } = await ca.server.authority.createToken({ role: 'web' }, { actor: 'test' });
    const dir = join(tmp.dir, 'laptop');
    await enroll({ caUrl: ca.url, token, dir, name: 'laptop-9' });
    opensslVerifies(tmp.dir, rootPath, readFileSync(join(dir, 'cert.pem'), 'utf8'), 'sslclient');
    assert.deepEqual(leafOf(dir).sans.uri, [`spiffe://${TRUST_DOMAIN}/web/laptop-9`]);
  } finally {
    await ca?.close();
    await cfssl.close();
    tmp.cleanup();
  }
});
