/**
 * `ca init --import-*`: an existing PKI made by the real `openssl` command line is used as it is
 * (enroll, renew, revoke, CRL checked by openssl), and each kind of unusable import is refused
 * with its reason before anything is created.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { run, runSync } from './helpers/run.js';
import { gatehouse } from './helpers/cli.js';
import { makeTempDir } from './helpers/tmp.js';
import { CA_FILES, loadCaMaterial } from '../src/ca/ca-dir.js';
import { startCaServer } from '../src/ca/server.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import { silentLogger } from '../src/log/logger.js';
import { enroll } from '../src/agent/enroll.js';
import { renewOnce } from '../src/agent/renew.js';
import { decodePem } from '../src/pki/pem.js';
import { buildIntermediateCertificate } from '../src/pki/ca-certificates.js';
import { loadPrivateKey } from '../src/pki/keys.js';
import { toPem } from '../src/pki/pem.js';

function openssl(args: string[], cwd: string): string {
  const r = runSync('openssl', args, { cwd });
  assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout + r.stderr;
}

/** A self-signed CA certificate and key in DIR/NAME.pem, NAME-key.pem, with the given extensions. */
function opensslRoot(dir: string, name: string, ext: string): void {
  writeFileSync(
    join(dir, `${name}.cnf`),
    `[req]\ndistinguished_name=dn\nprompt=no\nx509_extensions=v3\n[dn]\nO=Corp\nCN=${name}\n[v3]\n${ext}\nsubjectKeyIdentifier=hash\n`,
  );
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      `${name}-key.pem`,
      '-out',
      `${name}.pem`,
      '-days',
      '3650',
      '-config',
      `${name}.cnf`,
    ],
    dir,
  );
}

/** A certificate for a new key, signed by ISSUER, with the given extensions. */
function opensslSigned(dir: string, name: string, issuer: string, ext: string, days = 1825): void {
  writeFileSync(join(dir, `${name}.ext`), `${ext}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n`);
  openssl(
    [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      `${name}-key.pem`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/O=Corp/CN=${name}`,
    ],
    dir,
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${issuer}.pem`,
      '-CAkey',
      `${issuer}-key.pem`,
      '-CAcreateserial',
      '-days',
      String(days),
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.pem`,
    ],
    dir,
  );
}

const CA_EXT = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign';

function corporatePki(dir: string): void {
  opensslRoot(dir, 'corp-root', `${CA_EXT}\nbasicConstraints=critical,CA:TRUE,pathlen:1`);
  opensslSigned(
    dir,
    'corp-issuing',
    'corp-root',
    'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign',
  );
}

function rootFingerprint(pemPath: string): string {
  return createHash('sha256')
    .update(decodePem(readFileSync(pemPath, 'utf8'), 'CERTIFICATE')[0]!)
    .digest('hex');
}

async function serve(caDir: string) {
  const material = loadCaMaterial(caDir);
  const store = openSqliteStore(join(caDir, CA_FILES.database));
  const server = await startCaServer({ material, store, logger: silentLogger, listen: '127.0.0.1:0' });
  return {
    server,
    close: async () => {
      await server.close();
      await store.close();
    },
  };
}

test('an imported root and issuing CA (made by openssl) enroll, renew and revoke; openssl verifies the certificates and the CRL', async () => {
  const tmp = makeTempDir();
  try {
    corporatePki(tmp.dir);
    const caDir = join(tmp.dir, 'ca');
    const init = await gatehouse([
      'ca',
      'init',
      '--dir',
      caDir,
      '--name',
      'Corp',
      '--json',
      '--import-root',
      join(tmp.dir, 'corp-root.pem'),
      '--import-intermediate',
      join(tmp.dir, 'corp-issuing.pem'),
      '--import-intermediate-key',
      join(tmp.dir, 'corp-issuing-key.pem'),
    ]);
    assert.equal(init.status, 0, init.stderr);
    const created = JSON.parse(init.stdout);
    assert.equal(created.rootFingerprint, rootFingerprint(join(tmp.dir, 'corp-root.pem')));
    assert.deepEqual(created.imported, { root: true, intermediate: true });
    assert.equal(created.rootKey, null);
    assert.equal(existsSync(join(caDir, CA_FILES.rootKey)), false, 'no root key in the CA directory');
    assert.equal((await import('node:fs')).statSync(join(caDir, CA_FILES.intermediateKey)).mode & 0o777, 0o600);
    assert.match(readFileSync(join(caDir, CA_FILES.config), 'utf8'), /rootCrl: external/);

    const ca = await serve(caDir);
    try {
      const { token } = await ca.server.authority.createToken({ role: 'web' }, { actor: 'test' });
      assert.ok(token.startsWith(`GHTKN-1-${created.rootFingerprint}-`), 'join tokens pin the imported root');
      const dir = join(tmp.dir, 'laptop');
      await enroll({ caUrl: ca.server.url, token, dir, name: 'laptop-1' });
      const verify = (label: string) => {
        const leaf = join(tmp.dir, `${label}.pem`);
        writeFileSync(
          leaf,
          toPem('CERTIFICATE', decodePem(readFileSync(join(dir, 'cert.pem'), 'utf8'), 'CERTIFICATE')[0]!),
        );
        const out = runSync('openssl', [
          'verify',
          '-x509_strict',
          '-purpose',
          'sslclient',
          '-CAfile',
          join(tmp.dir, 'corp-root.pem'),
          '-untrusted',
          join(tmp.dir, 'corp-issuing.pem'),
          leaf,
        ]);
        assert.equal(out.status, 0, `${label}: ${out.stdout}${out.stderr}`);
      };
      verify('enrolled');
      const renewed = await renewOnce({ dir, caUrl: ca.server.url });
      verify('renewed');
      assert.equal(
        readFileSync(join(dir, 'ca.pem'), 'utf8'),
        readFileSync(join(tmp.dir, 'corp-root.pem'), 'utf8').replace(/\r\n/g, '\n'),
      );

      await ca.server.authority.revokeCertificate(renewed.current.serial, 'keyCompromise', { actor: 'test' });
      await ca.server.crls.refresh(true);
      const crlPath = join(tmp.dir, 'crl.pem');
      writeFileSync(crlPath, ca.server.crls.current('intermediate').pem);
      const crl = openssl(
        ['crl', '-in', crlPath, '-CAfile', join(tmp.dir, 'corp-issuing.pem'), '-noout', '-text'],
        tmp.dir,
      );
      assert.match(crl, /verify OK/);
      assert.match(crl, new RegExp(renewed.current.serial.toUpperCase()));

      // curl trusts only the imported root: the CA's own server certificate chains to it too.
      const rootCrl = await run('curl', [
        '-sS',
        '--cacert',
        join(tmp.dir, 'corp-root.pem'),
        `${ca.server.url}/crl/root`,
      ]);
      assert.equal(rootCrl.status, 0, rootCrl.stderr);
      assert.equal(JSON.parse(rootCrl.stdout).error.code, 'GH_NOT_FOUND');
      assert.match(JSON.parse(rootCrl.stdout).error.message, /its own PKI publishes it/);
    } finally {
      await ca.close();
    }
  } finally {
    tmp.cleanup();
  }
});

test('an imported root with its key: Gatehouse makes its issuing CA under it, signs the root CRL, and does not keep the root key', async () => {
  const tmp = makeTempDir();
  try {
    opensslRoot(tmp.dir, 'corp-root', `${CA_EXT}\nbasicConstraints=critical,CA:TRUE,pathlen:1`);
    const caDir = join(tmp.dir, 'ca');
    const init = await gatehouse([
      'ca',
      'init',
      '--dir',
      caDir,
      '--name',
      'Corp',
      '--import-root',
      join(tmp.dir, 'corp-root.pem'),
      '--import-root-key',
      join(tmp.dir, 'corp-root-key.pem'),
    ]);
    assert.equal(init.status, 0, init.stderr);
    assert.match(init.stdout, /used once, not copied/);
    assert.equal(existsSync(join(caDir, CA_FILES.rootKey)), false);
    const made = openssl(
      ['verify', '-x509_strict', '-CAfile', join(tmp.dir, 'corp-root.pem'), join(caDir, CA_FILES.intermediateCert)],
      tmp.dir,
    );
    assert.match(made, /OK/);
    const ca = await serve(caDir);
    try {
      const crlPath = join(tmp.dir, 'root-crl.pem');
      writeFileSync(crlPath, ca.server.crls.current('root').pem);
      assert.match(
        openssl(['crl', '-in', crlPath, '-CAfile', join(tmp.dir, 'corp-root.pem'), '-noout'], tmp.dir),
        /verify OK/,
      );
    } finally {
      await ca.close();
    }
  } finally {
    tmp.cleanup();
  }
});

test('each kind of unusable import is refused with its reason, exit 65, and nothing is created', async () => {
  const tmp = makeTempDir();
  try {
    const d = tmp.dir;
    corporatePki(d);
    opensslRoot(d, 'other-root', CA_EXT);
    opensslSigned(d, 'foreign-issuing', 'other-root', `${CA_EXT}`);
    opensslRoot(d, 'pathlen0-root', `${CA_EXT}\nbasicConstraints=critical,CA:TRUE,pathlen:0`);
    opensslSigned(d, 'under-pathlen0', 'pathlen0-root', CA_EXT);
    opensslRoot(d, 'not-a-ca', 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature');
    opensslSigned(d, 'no-crlsign', 'corp-root', 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign');
    opensslSigned(d, 'email-only', 'corp-root', `${CA_EXT}\nextendedKeyUsage=emailProtection`);
    opensslSigned(
      d,
      'not-ca-issuing',
      'corp-root',
      'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature',
    );
    writeFileSync(
      join(d, 'two.pem'),
      readFileSync(join(d, 'corp-root.pem'), 'utf8') + readFileSync(join(d, 'other-root.pem'), 'utf8'),
    );
    // An issuing CA that expires in two hours, shorter than the 24 h leaves the roles issue.
    const rootKey = loadPrivateKey(readFileSync(join(d, 'corp-root-key.pem'), 'utf8'));
    const issuingKey = loadPrivateKey(readFileSync(join(d, 'corp-issuing-key.pem'), 'utf8'));
    const shortDer = await buildIntermediateCertificate(
      issuingKey,
      { certDer: decodePem(readFileSync(join(d, 'corp-root.pem'), 'utf8'), 'CERTIFICATE')[0]!, key: rootKey },
      {
        commonName: 'short',
        organization: 'Corp',
        notBefore: new Date(Date.now() - 60_000),
        notAfter: new Date(Date.now() + 2 * 3_600_000),
      },
    );
    writeFileSync(join(d, 'short.pem'), toPem('CERTIFICATE', shortDer));

    const f = (name: string) => join(d, name);
    const cases: Array<[string, string[], RegExp]> = [
      [
        'issuing CA of another root',
        [
          '--import-root',
          f('corp-root.pem'),
          '--import-intermediate',
          f('foreign-issuing.pem'),
          '--import-intermediate-key',
          f('foreign-issuing-key.pem'),
        ],
        /is not signed by the imported root/,
      ],
      [
        'root that is not self-signed',
        [
          '--import-root',
          f('corp-issuing.pem'),
          '--import-intermediate',
          f('corp-issuing.pem'),
          '--import-intermediate-key',
          f('corp-issuing-key.pem'),
        ],
        /is not a self-signed root: it is issued by CN=corp-root/,
      ],
      [
        'root that is not a CA',
        ['--import-root', f('not-a-ca.pem'), '--import-root-key', f('not-a-ca-key.pem')],
        /is not a CA certificate/,
      ],
      [
        'root with pathlen 0',
        [
          '--import-root',
          f('pathlen0-root.pem'),
          '--import-intermediate',
          f('under-pathlen0.pem'),
          '--import-intermediate-key',
          f('under-pathlen0-key.pem'),
        ],
        /pathLenConstraint 0/,
      ],
      [
        'issuing CA without cRLSign',
        [
          '--import-root',
          f('corp-root.pem'),
          '--import-intermediate',
          f('no-crlsign.pem'),
          '--import-intermediate-key',
          f('no-crlsign-key.pem'),
        ],
        /lacks the cRLSign key usage/,
      ],
      [
        'issuing CA restricted to e-mail',
        [
          '--import-root',
          f('corp-root.pem'),
          '--import-intermediate',
          f('email-only.pem'),
          '--import-intermediate-key',
          f('email-only-key.pem'),
        ],
        /leaves out clientAuth and serverAuth/,
      ],
      [
        'issuing "CA" that is not a CA',
        [
          '--import-root',
          f('corp-root.pem'),
          '--import-intermediate',
          f('not-ca-issuing.pem'),
          '--import-intermediate-key',
          f('not-ca-issuing-key.pem'),
        ],
        /not-ca-issuing.* is not a CA certificate/,
      ],
      [
        'key of another certificate',
        [
          '--import-root',
          f('corp-root.pem'),
          '--import-intermediate',
          f('corp-issuing.pem'),
          '--import-intermediate-key',
          f('other-root-key.pem'),
        ],
        /is not the key of .*corp-issuing\.pem/,
      ],
      [
        'root key of another root',
        ['--import-root', f('corp-root.pem'), '--import-root-key', f('other-root-key.pem')],
        /is not the key of .*corp-root\.pem/,
      ],
      [
        'issuing CA expiring too soon',
        [
          '--import-root',
          f('corp-root.pem'),
          '--import-intermediate',
          f('short.pem'),
          '--import-intermediate-key',
          f('corp-issuing-key.pem'),
        ],
        /expires at .* sooner than the longest certificate lifetime configured \(24 h\)/,
      ],
      [
        'two certificates in the root file',
        ['--import-root', f('two.pem'), '--import-root-key', f('corp-root-key.pem')],
        /holds 2 certificates; give only the root certificate/,
      ],
      [
        'a file that is not a certificate',
        ['--import-root', f('corp-root-key.pem'), '--import-root-key', f('corp-root-key.pem')],
        /holds no PEM certificate/,
      ],
      [
        'a root without key or issuing CA',
        ['--import-root', f('corp-root.pem')],
        /give --import-root-key .* or --import-intermediate/,
      ],
      [
        'an issuing CA without its key',
        ['--import-root', f('corp-root.pem'), '--import-intermediate', f('corp-issuing.pem')],
        /--import-intermediate needs --import-intermediate-key/,
      ],
    ];
    for (const [label, args, message] of cases) {
      const caDir = join(d, `ca-${label.replace(/\W+/g, '-')}`);
      const r = await gatehouse(['ca', 'init', '--dir', caDir, ...args]);
      assert.equal(r.status, 65, `${label}: exit ${r.status}: ${r.stderr}`);
      assert.match(r.stderr, message, label);
      assert.match(r.stderr, /GH_CA_IMPORT_INVALID/, label);
      assert.equal(existsSync(caDir), false, `${label}: nothing created`);
    }
    const usage = await gatehouse([
      'ca',
      'init',
      '--dir',
      join(d, 'ca-usage'),
      '--import-intermediate',
      f('corp-issuing.pem'),
      '--import-intermediate-key',
      f('corp-issuing-key.pem'),
    ]);
    assert.equal(usage.status, 64, usage.stderr);
    assert.match(usage.stderr, /--import-root FILE is needed/);
  } finally {
    tmp.cleanup();
  }
});
