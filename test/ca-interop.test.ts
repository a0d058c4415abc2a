/**
 * Certificates issued by the running CA (not just the PKI module) verify with three independent
 * implementations: OpenSSL, Go's crypto/x509 and GnuTLS. The PKCS#12 export opens in OpenSSL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { enroll } from '../src/agent/enroll.js';
import { decodePem, decodePemBlocks, toPem } from '../src/pki/index.js';
import { startCaFixture } from './helpers/ca-fixture.js';
import { goVerify } from './helpers/goverify.js';
import { gatehouse } from './helpers/cli.js';
import { runSync } from './helpers/run.js';

test('ca-issued-client-and-server-certs-verify-with-openssl-go-certtool', async (t) => {
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const cases = [
    {
      role: 'web',
      name: 'client-1',
      purpose: 'sslclient',
      usage: 'client',
      oid: '1.3.6.1.5.5.7.3.2',
      dns: [] as string[],
      ip: [] as string[],
    },
    {
      role: 'gateway',
      name: 'gw-1',
      purpose: 'sslserver',
      usage: 'server',
      oid: '1.3.6.1.5.5.7.3.1',
      dns: ['localhost', 'gw.test.internal'],
      ip: ['127.0.0.1'],
    },
  ];
  for (const c of cases) {
    const { token } = await fixture.server.authority.createToken({ role: c.role }, { actor: 'test' });
    const dir = join(fixture.root, c.name);
    await enroll({ caUrl: fixture.url, token, dir, name: c.name, dns: c.dns, ip: c.ip });
    const chain = decodePem(readFileSync(join(dir, 'cert.pem'), 'utf8'), 'CERTIFICATE');
    const leaf = join(dir, 'leaf.pem');
    const intermediate = join(dir, 'intermediate.pem');
    writeFileSync(leaf, toPem('CERTIFICATE', chain[0]!));
    writeFileSync(intermediate, toPem('CERTIFICATE', chain[1]!));
    const root = join(dir, 'ca.pem');

    const ossl = runSync('openssl', [
      'verify',
      '-x509_strict',
      '-purpose',
      c.purpose,
      '-CAfile',
      root,
      '-untrusted',
      intermediate,
      leaf,
    ]);
    assert.equal(ossl.status, 0, ossl.stdout + ossl.stderr);
    const go = await goVerify([
      '-roots',
      root,
      '-intermediates',
      intermediate,
      '-usage',
      c.usage,
      ...(c.dns[1] ? ['-dns', c.dns[1]] : []),
      leaf,
    ]);
    assert.equal(go.status, 0, go.stdout + go.stderr);
    const gnutls = runSync('certtool', [
      '--verify',
      '--load-ca-certificate',
      root,
      '--infile',
      join(dir, 'cert.pem'),
      '--verify-profile',
      'high',
      '--verify-purpose',
      c.oid,
    ]);
    assert.equal(gnutls.status, 0, gnutls.stdout + gnutls.stderr);
    if (c.usage === 'server') {
      const ipCheck = await goVerify([
        '-roots',
        root,
        '-intermediates',
        intermediate,
        '-usage',
        'server',
        '-dns',
        '127.0.0.1',
        leaf,
      ]);
      assert.equal(ipCheck.status, 0, ipCheck.stdout);
      const wrongName = await goVerify([
        '-roots',
        root,
        '-intermediates',
        intermediate,
        '-usage',
        'server',
        '-dns',
        'evil.example',
        leaf,
      ]);
      assert.notEqual(wrongName.status, 0);
    }
  }
});

test('agent-export-p12-opens-in-openssl-with-key-and-chain', async (t) => {
  const fixture = await startCaFixture();
  t.after(() => fixture.close());
  const { token } = await fixture.server.authority.createToken({ role: 'admin', name: 'ops-1' }, { actor: 'test' });
  const dir = join(fixture.root, 'ops-1');
  await enroll({ caUrl: fixture.url, token, dir });
  const pass = join(fixture.root, 'p12-pass');
  writeFileSync(pass, 'export passphrase\n', { mode: 0o600 });
  const out = join(fixture.root, 'ops-1.p12');
  const r = await gatehouse(['agent', 'export', '--dir', dir, '--p12', out, '--passphrase-file', pass]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(statSync(out).mode & 0o777, 0o600);
  const parsed = runSync('openssl', ['pkcs12', '-in', out, '-passin', `file:${pass}`, '-nodes']);
  assert.equal(parsed.status, 0, parsed.stderr);
  assert.equal((parsed.stdout.match(/BEGIN CERTIFICATE/g) ?? []).length, 3, 'leaf, intermediate and root');
  assert.ok(
    decodePemBlocks(parsed.stdout).some((b) => b.label === 'PRIVATE KEY'),
    'the unencrypted PKCS#8 key is in the bundle',
  );
  assert.match(parsed.stdout, /friendlyName: spiffe:\/\/test\.internal\/admin\/ops-1/);
  const noPass = await gatehouse(['agent', 'export', '--dir', dir, '--p12', join(fixture.root, 'x.p12')]);
  assert.equal(noPass.status, 64, 'an export without a passphrase is refused');
});
