/**
 * What an agent does with the roots a CA offers during a root rotation (src/agent/trust-bundle.ts),
 * and why a rotation chains new certificates through an intermediate the old root signed: the
 * roots Gatehouse makes say pathLen 1, so a cross-certified root cannot sit between them and an
 * issuing CA (openssl, Go and GnuTLS are asked here, not assumed). And openssl and GnuTLS take
 * the first matching issuer without backtracking, so one chain cannot carry both intermediates.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nextTrustBundle } from '../src/agent/trust-bundle.js';
import {
  buildCrossCertificate,
  buildIntermediateCertificate,
  buildRootCertificate,
} from '../src/pki/ca-certificates.js';
import { generatePrivateKey, spkiDer } from '../src/pki/keys.js';
import { buildLeafCertificate, prepareSigningAuthority, randomSerial } from '../src/pki/leaf-certificate.js';
import { toPem } from '../src/pki/pem.js';
import { parseCertificate } from '../src/pki/certificate.js';
import { runSync } from './helpers/run.js';
import { makeTempDir } from './helpers/tmp.js';
import { goVerify } from './helpers/goverify.js';
import { enrollAgent, startCaFixture } from './helpers/ca-fixture.js';
import { loadCaMaterial } from '../src/ca/ca-dir.js';
import { renewOnce } from '../src/agent/renew.js';

const DAY = 86_400_000;
const now = new Date();
const validity = { notBefore: new Date(now.getTime() - 60_000), notAfter: new Date(now.getTime() + 30 * DAY) };

async function pki() {
  const oldKey = generatePrivateKey('p256');
  const newKey = generatePrivateKey('p256');
  const intKey = generatePrivateKey('p256');
  const oldRoot = await buildRootCertificate(oldKey, { commonName: 'Acme Root CA', organization: 'Acme', ...validity });
  const newRoot = await buildRootCertificate(newKey, {
    commonName: 'Acme Root CA 2',
    organization: 'Acme',
    ...validity,
  });
  const cross = await buildCrossCertificate(newRoot, { certDer: oldRoot, key: oldKey }, validity);
  const spec = { commonName: 'Acme Issuing CA 2', organization: 'Acme', ...validity };
  const intByNew = await buildIntermediateCertificate(intKey, { certDer: newRoot, key: newKey }, spec);
  const intByOld = await buildIntermediateCertificate(intKey, { certDer: oldRoot, key: oldKey }, spec);
  const leafKey = generatePrivateKey('p256');
  const leaf = buildLeafCertificate(prepareSigningAuthority(intByNew, intKey), {
    serial: randomSerial(),
    commonName: 'web-1',
    organizationalUnit: 'web',
    organization: 'Acme',
    spkiDer: spkiDer(leafKey),
    notBefore: validity.notBefore,
    notAfter: new Date(now.getTime() + DAY),
    profile: 'client',
    dns: [],
    ip: [],
    uri: ['spiffe://acme/web/web-1'],
    email: [],
  });
  return { oldKey, newKey, oldRoot, newRoot, cross, intByNew, intByOld, leaf };
}

const pem = (...ders: Buffer[]) => ders.map((d) => toPem('CERTIFICATE', d)).join('');
const fp = (der: Buffer) => parseCertificate(der).fingerprint;

test('a new root is added only with a cross-certificate from a trusted root; the bundle is written in order', async () => {
  const p = await pki();
  const update = nextTrustBundle(
    pem(p.oldRoot),
    { roots: [p.oldRoot, p.newRoot], cross: [p.cross], retired: [] },
    [p.leaf, p.intByOld],
    now,
  );
  assert.equal(update.changed, true);
  assert.deepEqual(update.added, [fp(p.newRoot)]);
  assert.deepEqual(update.removed, []);
  assert.equal(update.pem, pem(p.oldRoot, p.newRoot));

  // Offered again: nothing to do, and the same text comes back (no rewrite, no hook).
  const again = nextTrustBundle(
    update.pem,
    { roots: [p.oldRoot, p.newRoot], cross: [p.cross], retired: [] },
    [p.leaf, p.intByOld],
    now,
  );
  assert.equal(again.changed, false);
  assert.equal(again.pem, update.pem);
});

test('a root without a valid cross-certificate is refused and ca.pem stays as it was', async () => {
  const p = await pki();
  const strangerKey = generatePrivateKey('p256');
  const stranger = await buildRootCertificate(strangerKey, {
    commonName: 'Acme Root CA 2',
    organization: 'Acme',
    ...validity,
  });
  const cases: Array<[string, Buffer[], Buffer, RegExp]> = [
    ['no cross-certificate', [], p.newRoot, /no valid cross-certificate/],
    // A cross-certificate the stranger made for itself: signed by no root the agent trusts.
    [
      'self-vouched',
      [await buildCrossCertificate(stranger, { certDer: stranger, key: strangerKey }, validity)],
      stranger,
      /no valid cross-certificate/,
    ],
    // A genuine cross-certificate, but for another key than the offered root's.
    ['cross for another key', [p.cross], stranger, /no valid cross-certificate/],
    [
      'expired cross-certificate',
      [
        await buildCrossCertificate(
          p.newRoot,
          { certDer: p.oldRoot, key: p.oldKey },
          { notBefore: new Date(now.getTime() - 2 * DAY), notAfter: new Date(now.getTime() - DAY) },
        ),
      ],
      p.newRoot,
      /no valid cross-certificate/,
    ],
    ['not a root', [p.cross], p.intByNew, /not a self-signed CA/],
  ];
  for (const [what, cross, offeredRoot, reason] of cases) {
    const update = nextTrustBundle(
      pem(p.oldRoot),
      { roots: [p.oldRoot, offeredRoot], cross, retired: [] },
      [p.leaf, p.intByOld],
      now,
    );
    assert.equal(update.changed, false, what);
    assert.equal(update.pem, pem(p.oldRoot), what);
    assert.equal(update.refused.length, 1, what);
    assert.match(update.refused[0]!, reason, what);
  }
});

test('a root is dropped only when the CA retires it, it came from the CA, and the new chain verifies without it', async () => {
  const p = await pki();
  const both = pem(p.oldRoot, p.newRoot);
  const fromCa = new Set([fp(p.oldRoot), fp(p.newRoot)]);
  // After the rotation finished: the chain runs to the new root, so the retired old one goes.
  const finished = nextTrustBundle(
    both,
    { roots: [p.newRoot], cross: [], retired: [fp(p.oldRoot)] },
    [p.leaf, p.intByNew],
    now,
    fromCa,
  );
  assert.deepEqual(finished.removed, [fp(p.oldRoot)]);
  assert.equal(finished.pem, pem(p.newRoot));
  // The same offer with a chain that still needs the old root: kept.
  const stillNeeded = nextTrustBundle(
    both,
    { roots: [p.newRoot], cross: [], retired: [fp(p.oldRoot)] },
    [p.leaf, p.intByOld],
    now,
    fromCa,
  );
  assert.equal(stillNeeded.changed, false);
  assert.equal(stillNeeded.pem, both);
  // A root the CA does not list but never retired (put there by someone else) stays.
  const unlisted = nextTrustBundle(
    both,
    { roots: [p.newRoot], cross: [], retired: [] },
    [p.leaf, p.intByNew],
    now,
    fromCa,
  );
  assert.equal(unlisted.changed, false);
  // A root someone else put in ca.pem (a partner's) is not the CA's to retire.
  const partner = nextTrustBundle(
    both,
    { roots: [p.newRoot], cross: [], retired: [fp(p.oldRoot)] },
    [p.leaf, p.intByNew],
    now,
    new Set([fp(p.newRoot)]),
  );
  assert.equal(partner.changed, false);
  // Everything retired: the bundle is never left empty.
  const everything = nextTrustBundle(
    pem(p.oldRoot),
    { roots: [], cross: [], retired: [fp(p.oldRoot)] },
    [p.leaf, p.intByOld],
    now,
    fromCa,
  );
  assert.equal(everything.pem, pem(p.oldRoot));
  // An aborted rotation: the CA retires the new root, which goes; it is not re-added from the offer.
  const aborted = nextTrustBundle(
    both,
    { roots: [p.oldRoot, p.newRoot], cross: [p.cross], retired: [fp(p.newRoot).toUpperCase()] },
    [p.leaf, p.intByOld],
    now,
    fromCa,
  );
  assert.deepEqual(aborted.removed, [fp(p.newRoot)]);
  assert.deepEqual(aborted.added, []);
  assert.equal(aborted.pem, pem(p.oldRoot));
});

test('an offer is bounded and duplicates count once', async () => {
  const p = await pki();
  const twice = nextTrustBundle(
    pem(p.oldRoot),
    { roots: [p.oldRoot, p.newRoot, p.newRoot], cross: [p.cross, p.cross], retired: [] },
    [p.leaf, p.intByOld],
    now,
  );
  assert.equal(twice.pem, pem(p.oldRoot, p.newRoot), 'the new root once');
  // Many roots and cross-certificates (each a signature check): refused before any is checked.
  const flood = nextTrustBundle(
    pem(p.oldRoot),
    { roots: Array(9).fill(p.newRoot), cross: [p.cross], retired: [] },
    [p.leaf, p.intByOld],
    now,
  );
  assert.equal(flood.changed, false);
  assert.match(flood.refused[0]!, /at most 8 of each are considered/);
});

test('independent verifiers: the cross-certificate is valid, and which chains old- and new-root peers accept', async () => {
  const p = await pki();
  const tmp = makeTempDir('gatehouse-cross-');
  try {
    const file = (name: string, text: string) => {
      const path = join(tmp.dir, name);
      writeFileSync(path, text);
      return path;
    };
    const oldPem = file('old.pem', pem(p.oldRoot));
    const newPem = file('new.pem', pem(p.newRoot));
    const bothPem = file('both.pem', pem(p.oldRoot, p.newRoot));
    const leaf = file('leaf.pem', pem(p.leaf));
    const openssl = (anchor: string, untrusted: Buffer[]) => {
      const args = [
        'verify',
        '-x509_strict',
        '-purpose',
        'sslclient',
        '-CAfile',
        anchor,
        ...(untrusted.length ? ['-untrusted', file(`u-${Math.random()}.pem`, pem(...untrusted))] : []),
        leaf,
      ];
      return runSync('openssl', args);
    };
    const cross = runSync('openssl', ['verify', '-x509_strict', '-CAfile', oldPem, file('cross.pem', pem(p.cross))]);
    assert.equal(
      cross.status,
      0,
      `openssl takes the cross-certificate as issued by the old root: ${cross.stdout}${cross.stderr}`,
    );

    // The chain a rotation hands out before it finishes: every peer still trusts the old root.
    for (const anchor of [oldPem, bothPem])
      assert.equal(openssl(anchor, [p.intByOld]).status, 0, `leaf + intermediate by the old root under ${anchor}`);
    // After it finishes: peers trust the new root (and the old one for a while).
    for (const anchor of [newPem, bothPem])
      assert.equal(openssl(anchor, [p.intByNew]).status, 0, `leaf + intermediate by the new root under ${anchor}`);

    // The textbook alternative, leaf → intermediate → cross-certified new root → old root, is two
    // CAs below a pathLen 1 root: openssl refuses it, and so does Go.
    const throughCross = openssl(oldPem, [p.intByNew, p.cross]);
    assert.notEqual(throughCross.status, 0);
    assert.match(throughCross.stdout + throughCross.stderr, /path length constraint exceeded/);
    const go = await goVerify([
      '-roots',
      oldPem,
      '-intermediates',
      file('go-int.pem', pem(p.intByNew, p.cross)),
      '-usage',
      'client',
      leaf,
    ]);
    assert.notEqual(go.status, 0);
    assert.match(go.stdout + go.stderr, /path length/);
    const gnutls = (anchor: string, chain: Buffer[]) =>
      runSync('certtool', [
        '--verify',
        '--load-ca-certificate',
        anchor,
        '--infile',
        file(`g-${Math.random()}.pem`, pem(p.leaf, ...chain)),
      ]);
    assert.notEqual(
      gnutls(oldPem, [p.intByNew, p.cross]).status,
      0,
      'GnuTLS refuses the path through the cross-certified root',
    );
    assert.equal(gnutls(oldPem, [p.intByOld]).status, 0, 'GnuTLS takes leaf + intermediate by the old root');
    assert.equal(gnutls(newPem, [p.intByNew]).status, 0, 'GnuTLS takes leaf + intermediate by the new root');
    // Both intermediates in one chain: openssl and GnuTLS take the first and do not backtrack.
    assert.notEqual(
      openssl(oldPem, [p.intByNew, p.intByOld]).status,
      0,
      'openssl: new-root intermediate first, old root trusted',
    );
    assert.notEqual(
      gnutls(oldPem, [p.intByNew, p.intByOld]).status,
      0,
      'GnuTLS: new-root intermediate first, old root trusted',
    );
    // Go accepts the chains a rotation hands out, too.
    assert.equal(
      (
        await goVerify([
          '-roots',
          oldPem,
          '-intermediates',
          file('go-old.pem', pem(p.intByOld)),
          '-usage',
          'client',
          leaf,
        ])
      ).status,
      0,
    );
    assert.equal(
      (
        await goVerify([
          '-roots',
          newPem,
          '-intermediates',
          file('go-new.pem', pem(p.intByNew)),
          '-usage',
          'client',
          leaf,
        ])
      ).status,
      0,
    );
  } finally {
    tmp.cleanup();
  }
});

test('an agent renewing against a real CA takes the vouched root into ca.pem with the certificate, and drops it when retired', async () => {
  const fixture = await startCaFixture();
  try {
    const { dir } = await enrollAgent(fixture, 'web', 'laptop-1');
    const material = loadCaMaterial(fixture.caDir);
    const oldRoot = material.rootDer;
    const newKey = generatePrivateKey('p256');
    const newRoot = await buildRootCertificate(newKey, {
      commonName: 'Test Root CA 2',
      organization: 'Test Org',
      ...validity,
    });
    const cross = await buildCrossCertificate(newRoot, { certDer: oldRoot, key: material.rootKey! }, validity);
    const original = readFileSync(join(dir, 'ca.pem'), 'utf8');
    const authority = fixture.server.authority;

    // An offer without the cross-certificate: renewed, but ca.pem keeps its one root.
    authority.trustBundle = () => ({ rootsPem: pem(oldRoot, newRoot), crossPem: '', retired: [] });
    const unvouched = await renewOnce({ dir });
    assert.deepEqual(unvouched.bundle.added, []);
    assert.match(unvouched.bundle.refused[0]!, /no valid cross-certificate/);
    assert.equal(readFileSync(join(dir, 'ca.pem'), 'utf8'), original);

    authority.trustBundle = () => ({ rootsPem: pem(oldRoot, newRoot), crossPem: pem(cross), retired: [] });
    const vouched = await renewOnce({ dir });
    assert.deepEqual(vouched.bundle.added, [fp(newRoot)]);
    assert.equal(readFileSync(join(dir, 'ca.pem'), 'utf8'), pem(oldRoot, newRoot));
    // The agent still talks to its CA with the two-root ca.pem, and still verifies what it gets.
    authority.trustBundle = () => ({ rootsPem: pem(oldRoot), crossPem: '', retired: [fp(newRoot)] });
    const retired = await renewOnce({ dir });
    assert.deepEqual(retired.bundle.removed, [fp(newRoot)]);
    assert.equal(readFileSync(join(dir, 'ca.pem'), 'utf8'), pem(oldRoot));
  } finally {
    await fixture.close();
  }
});
