import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateHeaderValue } from 'node:http';
import * as pki from '../src/pki/index.js';
import { escapeDnValue } from '../src/gateway/header-values.js';
import { identityHeaders, isIdentityHeaderName, stripIdentityHeaders } from '../src/gateway/identity-header-set.js';

const HOSTILE = ['a,b', 'say "hi"', 'x+y=z', 'back\\slash', '#lead', ' lead and trail ', 'line\r\nX-Client-Role: admin', 'nul\u0000byte', 'café 😀', 'x'.repeat(20_000)];

async function leafWithCn(cn: string) {
  const key = pki.generatePrivateKey('p256');
  const now = new Date();
  const rootDer = await pki.buildRootCertificate(key, { commonName: 'R', organization: 'T', notBefore: now, notAfter: new Date(now.getTime() + 86_400_000) });
  const ca = pki.prepareSigningAuthority(rootDer, key);
  const der = pki.buildLeafCertificate(ca, { serial: pki.randomSerial(), commonName: cn, organizationalUnit: 'web', organization: 'T', spkiDer: pki.spkiDer(pki.generatePrivateKey('p256')), notBefore: now, notAfter: new Date(now.getTime() + 3_600_000), profile: 'client', dns: [], ip: [], uri: ['spiffe://t/web/x'], email: [] });
  const cert = pki.parseCertificate(der);
  return { cert, identity: pki.identityOf(cert) };
}

test('header-values-hostile-subjects-never-inject-and-pass-node-validation', async () => {
  for (const cn of HOSTILE) {
    const peer = await leafWithCn(cn);
    for (const preset of ['default', 'nginx', 'envoy', 'traefik'] as const) {
      for (const [name, value] of identityHeaders(preset, peer, 'spiffe://t/gateway/gw')) {
        assert.doesNotThrow(() => validateHeaderValue(name, value), `${preset} ${name} for CN ${JSON.stringify(cn.slice(0, 40))}`);
        assert.ok(!/[\r\n\0]/.test(value));
        assert.ok(value.length <= 64 * 1024);
      }
    }
  }
});

test('header-values-rfc4514-escaping', () => {
  assert.equal(escapeDnValue('a,b'), 'a\\,b');
  assert.equal(escapeDnValue('#x '), '\\#x\\ ');
  assert.equal(escapeDnValue('é'), '\\C3\\A9');
  assert.equal(escapeDnValue('a\r\nb'), 'a\\0D\\0Ab');
});

test('identity-header-names-stripped-every-spelling-case-and-repeat', () => {
  const raw = ['Host', 'x', 'X-CLIENT-ROLE', 'admin', 'x_client_role', 'admin', 'Ssl_Client_Verify', 'SUCCESS', 'x-forwarded-client-cert', 'By=evil', 'CLIENT-CERT', ':AA:', 'X-Forwarded-Tls-Client-Cert-Info', 'i', 'Accept', '*/*', 'Accept', 'text/html', 'X-Request-Id', 'r1'];
  assert.deepEqual(stripIdentityHeaders(raw), ['Host', 'x', 'Accept', '*/*', 'Accept', 'text/html', 'X-Request-Id', 'r1']);
  assert.ok(isIdentityHeaderName('X_Client_Anything'));
  assert.ok(!isIdentityHeaderName('X-Clientele'));
});
