/**
 * The fleet views count the whole inventory: with more certificates than listCerts returns by
 * default (10 000), the active identities (which rotation progress and fleet posture count) and
 * the last-notAfter horizon still see every one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { activeIdentities, lastNotAfter } from '../src/ca/active-identities.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import type { CertRecord } from '../src/store/store-certificates.js';
import { makeTempDir } from './helpers/tmp.js';

test('fleet-counts-read-past-the-default-listing-limit', async () => {
  const tmp = makeTempDir('gatehouse-fleet-');
  const store = openSqliteStore(join(tmp.dir, 'g.db'));
  try {
    const now = new Date('2026-06-01T00:00:00Z');
    const count = 10_050;
    const cert = (i: number): CertRecord => {
      const serial = (0x100000 + i).toString(16);
      return {
        serial,
        fingerprint: `fp-${serial}`,
        name: `dev-${i}`,
        role: i === 0 ? 'ca-server' : 'web',
        spiffeId: `spiffe://t/web/dev-${i}`,
        // The oldest issued lives longest: a limit on the newest-first listing would miss it.
        notBefore: now,
        notAfter: new Date(now.getTime() + (i === 1 ? 90 : 1) * 86_400_000),
        issuedAt: new Date(now.getTime() + i),
        certPem: 'PEM',
        tokenId: null,
        renewedFrom: null,
        lineage: serial,
        supersededBy: null,
        supersededAt: null,
        revokedAt: null,
        revocationReason: null,
      };
    };
    await Promise.all(Array.from({ length: count }, (_, i) => store.commitIssuance({ cert: cert(i), now, audit: [] })));
    const identities = await activeIdentities(store, now);
    assert.equal(identities.length, count - 1, "every machine, not the CA's own server certificate");
    assert.equal((await lastNotAfter(store, now)).getTime(), now.getTime() + 90 * 86_400_000);
  } finally {
    await store.close();
    tmp.cleanup();
  }
});
