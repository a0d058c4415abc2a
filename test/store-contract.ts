/**
 * The behaviour every Store must have. SQLite runs it today; a PostgreSQL store must pass the
 * same suite unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Store } from '../src/store/store.js';
import type { AuditInput } from '../src/store/store-audit.js';
import type { CertRecord } from '../src/store/store-certificates.js';
import { SECRETS_KEY_ID_META, type NewSecretVersion } from '../src/store/store-secrets.js';
import type { TokenRecord } from '../src/store/store-tokens.js';
import { verifyAuditChain } from '../src/store/audit-chain.js';

const T0 = new Date('2026-01-01T00:00:00Z');
const HOUR = 3_600_000;

function cert(serial: string, overrides: Partial<CertRecord> = {}): CertRecord {
  return {
    serial,
    fingerprint: `fp-${serial}`,
    name: `dev-${serial}`,
    role: 'web',
    spiffeId: `spiffe://t/web/dev-${serial}`,
    notBefore: T0,
    notAfter: new Date(T0.getTime() + 24 * HOUR),
    issuedAt: T0,
    certPem: `PEM ${serial}`,
    tokenId: null,
    renewedFrom: null,
    lineage: serial,
    supersededBy: null,
    supersededAt: null,
    revokedAt: null,
    revocationReason: null,
    ...overrides,
  };
}

function token(id: string, overrides: Partial<TokenRecord> = {}): TokenRecord {
  return {
    id,
    secretHash: 'ab'.repeat(32),
    role: 'web',
    name: null,
    namePattern: null,
    maxUses: 1,
    uses: 0,
    expiresAt: new Date(T0.getTime() + HOUR),
    createdAt: T0,
    createdBy: 'test',
    revokedAt: null,
    ...overrides,
  };
}

const audit = (
  type:
    | 'ca.cert_issued'
    | 'ca.token_created'
    | 'ca.token_revoked'
    | 'ca.cert_revoked'
    | 'ca.cert_reuse_detected'
    | 'ca.name_released',
  extra: Record<string, unknown> = {},
) => ({ time: T0, type, actor: 'test', details: extra });

export function runStoreContract(
  kind: string,
  open: () => Promise<{ store: Store; cleanup: () => Promise<void> }>,
): void {
  const withStore = (name: string, fn: (store: Store) => Promise<void>): void => {
    test(`${kind}: ${name}`, async () => {
      const { store, cleanup } = await open();
      try {
        await fn(store);
      } finally {
        await store.close().catch(() => undefined);
        await cleanup();
      }
    });
  };

  withStore('issued-cert-round-trips-every-field', async (store) => {
    const c = cert('0a', { tokenId: null, renewedFrom: '09' });
    assert.deepEqual(await store.commitIssuance({ cert: c, now: T0, audit: [audit('ca.cert_issued')] }), { ok: true });
    assert.deepEqual(await store.getCert('0a'), c);
    assert.equal(await store.getCert('ff'), null);
  });

  withStore('issuance-consumes-token-and-refuses-when-none-left', async (store) => {
    await store.insertToken(token('t1', { maxUses: 2 }), audit('ca.token_created'));
    assert.deepEqual(await store.commitIssuance({ cert: cert('01'), consumeTokenId: 't1', now: T0, audit: [] }), {
      ok: true,
    });
    assert.deepEqual(await store.commitIssuance({ cert: cert('02'), consumeTokenId: 't1', now: T0, audit: [] }), {
      ok: true,
    });
    assert.deepEqual(await store.commitIssuance({ cert: cert('03'), consumeTokenId: 't1', now: T0, audit: [] }), {
      ok: false,
      reason: 'TOKEN_USED',
    });
    assert.equal(await store.getCert('03'), null, 'a refused issuance records no certificate');
    assert.equal((await store.getToken('t1'))!.uses, 2);
  });

  withStore('issuance-refuses-expired-revoked-unknown-token', async (store) => {
    await store.insertToken(token('exp', { expiresAt: new Date(T0.getTime() - 1) }), audit('ca.token_created'));
    await store.insertToken(token('rev'), audit('ca.token_created'));
    await store.revokeToken('rev', T0, audit('ca.token_revoked'));
    assert.deepEqual(await store.commitIssuance({ cert: cert('01'), consumeTokenId: 'exp', now: T0, audit: [] }), {
      ok: false,
      reason: 'TOKEN_EXPIRED',
    });
    assert.deepEqual(await store.commitIssuance({ cert: cert('02'), consumeTokenId: 'rev', now: T0, audit: [] }), {
      ok: false,
      reason: 'TOKEN_REVOKED',
    });
    assert.deepEqual(await store.commitIssuance({ cert: cert('03'), consumeTokenId: 'nope', now: T0, audit: [] }), {
      ok: false,
      reason: 'TOKEN_UNKNOWN',
    });
    assert.equal((await store.listCerts()).length, 0);
  });

  withStore('concurrent-issuances-on-single-use-token-exactly-one-wins', async (store) => {
    await store.insertToken(token('race'), audit('ca.token_created'));
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        store.commitIssuance({
          cert: cert(i.toString(16).padStart(2, '0')),
          consumeTokenId: 'race',
          now: T0,
          audit: [],
        }),
      ),
    );
    assert.equal(outcomes.filter((o) => o.ok).length, 1);
    assert.equal((await store.listCerts()).length, 1);
  });

  withStore('first-claim-refused-in-the-transaction-when-another-active-cert-holds-the-name', async (store) => {
    await store.commitIssuance({ cert: cert('01', { name: 'a', spiffeId: 'spiffe://t/web/a' }), now: T0, audit: [] });
    await store.insertToken(token('t2'), audit('ca.token_created'));
    const taker = cert('02', { name: 'a', spiffeId: 'spiffe://t/web/a', tokenId: 't2' });
    assert.deepEqual(
      await store.commitIssuance({
        cert: taker,
        consumeTokenId: 't2',
        nameClaim: 'first',
        now: T0,
        audit: [{ ...audit('ca.cert_issued'), serial: '02' }],
      }),
      { ok: false, reason: 'NAME_TAKEN', heldBy: '01', active: true },
    );
    assert.equal(await store.getCert('02'), null, 'nothing recorded');
    assert.equal((await store.getToken('t2'))!.uses, 0, 'the token use is not consumed');
    assert.deepEqual(await store.listAudit({ serial: '02' }), [], 'no audit event from the refused transaction');
    assert.equal((await store.getNameReservation('web', 'a'))!.lineage, '01', 'the reservation stays');

    // Another role is another SPIFFE ID.
    assert.deepEqual(
      await store.commitIssuance({
        cert: cert('04', { name: 'a', role: 'gateway', spiffeId: 'spiffe://t/gateway/a' }),
        nameClaim: 'first',
        now: T0,
        audit: [],
      }),
      { ok: true },
    );
    // A replacement (a token made for the exact name) takes it over, and the reservation moves.
    assert.deepEqual(
      await store.commitIssuance({
        cert: cert('03', { name: 'a', spiffeId: 'spiffe://t/web/a' }),
        nameClaim: 'replace',
        now: T0,
        audit: [],
      }),
      { ok: true },
    );
    assert.equal((await store.getNameReservation('web', 'a'))!.lineage, '03');
  });

  withStore('a-name-stays-reserved-after-revocation-and-expiry-until-replaced-or-released', async (store) => {
    const later = new Date(T0.getTime() + 48 * HOUR);
    await store.commitIssuance({
      cert: cert('05', { name: 'b', notAfter: new Date(T0.getTime() + HOUR) }),
      now: T0,
      audit: [],
    });
    await store.commitIssuance({ cert: cert('06', { name: 'c' }), now: T0, audit: [] });
    await store.revokeCert('06', 'superseded', T0, audit('ca.cert_revoked'));
    assert.deepEqual(
      await store.commitIssuance({ cert: cert('07', { name: 'b' }), nameClaim: 'first', now: later, audit: [] }),
      { ok: false, reason: 'NAME_TAKEN', heldBy: '05', active: false },
      'expired',
    );
    assert.deepEqual(
      await store.commitIssuance({ cert: cert('08', { name: 'c' }), nameClaim: 'first', now: T0, audit: [] }),
      { ok: false, reason: 'NAME_TAKEN', heldBy: '06', active: false },
      'revoked',
    );
    // The reserving lineage itself renews under its name (a renewal is `lineage`); another lineage may not.
    assert.deepEqual(
      await store.commitIssuance({
        cert: cert('09', { name: 'b', lineage: '05', renewedFrom: '05' }),
        nameClaim: 'lineage',
        renews: '05',
        now: T0,
        audit: [],
      }),
      { ok: true },
    );
    assert.deepEqual(
      await store.commitIssuance({
        cert: cert('0a', { name: 'b', lineage: '77' }),
        nameClaim: 'lineage',
        now: T0,
        audit: [],
      }),
      { ok: false, reason: 'NAME_TAKEN', heldBy: '09', active: true },
    );

    const reservation = await store.getNameReservation('web', 'c');
    assert.deepEqual(reservation, {
      role: 'web',
      name: 'c',
      spiffeId: 'spiffe://t/web/dev-06',
      lineage: '06',
      reservedAt: T0,
    });
    assert.deepEqual(
      (await store.listNameReservations()).map((r) => `${r.role}/${r.name}=${r.lineage}`),
      ['web/b=05', 'web/c=06'],
    );
    assert.deepEqual(await store.releaseName('web', 'c', audit('ca.name_released')), reservation);
    assert.equal(await store.releaseName('web', 'c', audit('ca.name_released')), null, 'released once');
    assert.equal((await store.listAudit({ type: 'ca.name_released' })).length, 1);
    assert.deepEqual(
      await store.commitIssuance({ cert: cert('0b', { name: 'c' }), nameClaim: 'first', now: T0, audit: [] }),
      { ok: true },
      'a released name is free',
    );
  });

  withStore('concurrent-first-claims-of-one-name-exactly-one-wins-and-others-are-unaffected', async (store) => {
    // Issued together (one group commit in SQLite): the check must see the earlier items of the
    // same batch, and a refused item must not fail the others.
    const ids = Array.from({ length: 10 }, (_, i) => `r${i}`);
    for (const id of ids) await store.insertToken(token(id), audit('ca.token_created'));
    await store.insertToken(token('other'), audit('ca.token_created'));
    const outcomes = await Promise.all([
      ...ids.map((id, i) =>
        store.commitIssuance({
          cert: cert(`1${i}`, { name: 'same', spiffeId: 'spiffe://t/web/same', tokenId: id }),
          consumeTokenId: id,
          nameClaim: 'first',
          now: T0,
          audit: [],
        }),
      ),
      store.commitIssuance({
        cert: cert('20', { name: 'elsewhere', tokenId: 'other' }),
        consumeTokenId: 'other',
        nameClaim: 'first',
        now: T0,
        audit: [],
      }),
    ]);
    const sameName = outcomes.slice(0, ids.length);
    const winners = sameName.flatMap((o, i) => (o.ok ? [i] : []));
    assert.equal(winners.length, 1, `exactly one wins: ${JSON.stringify(sameName)}`);
    for (const [i, o] of sameName.entries()) {
      if (i !== winners[0])
        assert.deepEqual(o, { ok: false, reason: 'NAME_TAKEN', heldBy: `1${winners[0]}`, active: true });
    }
    assert.deepEqual(outcomes[ids.length], { ok: true }, 'an unrelated issuance in the same batch succeeds');
    assert.deepEqual(
      (await store.listCerts({ name: 'same', now: T0 })).map((c) => c.serial),
      [`1${winners[0]}`],
    );
    for (const [i, id] of ids.entries()) assert.equal((await store.getToken(id))!.uses, i === winners[0] ? 1 : 0);
    assert.equal((await store.getToken('other'))!.uses, 1);
  });

  withStore('refusals-decided-after-a-write-leave-nothing-behind-in-a-shared-batch', async (store) => {
    // Each refusal below comes after its item has written (a new reservation, a supersededBy):
    // issued together, as one group, those writes must be undone while the others commit.
    await store.commitIssuance({ cert: cert('01', { name: 'held' }), now: T0, audit: [] });
    await store.releaseName('web', 'held', audit('ca.name_released'));
    await store.commitIssuance({ cert: cert('02', { name: 'renewed' }), now: T0, audit: [] });
    await store.insertToken(token('spent', { uses: 1 }), audit('ca.token_created'));
    const event = (serial: string) => ({ ...audit('ca.cert_issued'), serial });
    const outcomes = await Promise.all([
      // No reservation, so the name is inserted first; then its active holder refuses the claim.
      store.commitIssuance({
        cert: cert('10', { name: 'held', lineage: '10' }),
        nameClaim: 'first',
        now: T0,
        audit: [event('10')],
      }),
      // Marked supersededBy first; then the token has no use left.
      store.commitIssuance({
        cert: cert('11', { name: 'renewed', lineage: '02', renewedFrom: '02', tokenId: 'spent' }),
        renews: '02',
        consumeTokenId: 'spent',
        nameClaim: 'lineage',
        now: T0,
        audit: [event('11')],
      }),
      store.commitIssuance({ cert: cert('12', { name: 'fresh' }), nameClaim: 'first', now: T0, audit: [event('12')] }),
    ]);
    assert.deepEqual(outcomes, [
      { ok: false, reason: 'NAME_TAKEN', heldBy: '01', active: true },
      { ok: false, reason: 'TOKEN_USED' },
      { ok: true },
    ]);
    assert.equal(await store.getNameReservation('web', 'held'), null, 'the refused claim reserved nothing');
    assert.equal((await store.getCert('02'))!.supersededBy, null, 'the refused renewal superseded nothing');
    assert.equal((await store.getToken('spent'))!.uses, 1);
    assert.deepEqual(
      (await store.listAudit({ type: 'ca.cert_issued' })).map((e) => e.serial),
      ['12'],
      'only the issued one is audited',
    );
    assert.deepEqual(
      await store.commitIssuance({
        cert: cert('13', { name: 'renewed', lineage: '02', renewedFrom: '02' }),
        renews: '02',
        nameClaim: 'lineage',
        now: T0,
        audit: [],
      }),
      { ok: true },
      'the head still renews',
    );
  });

  withStore('a-renewal-supersedes-its-certificate-and-only-the-lineage-head-renews', async (store) => {
    const t1 = new Date(T0.getTime() + HOUR);
    await store.commitIssuance({ cert: cert('01', { name: 'd' }), now: T0, audit: [] });
    assert.deepEqual(
      await store.commitIssuance({
        cert: cert('02', { name: 'd', lineage: '01', renewedFrom: '01', issuedAt: t1 }),
        nameClaim: 'lineage',
        renews: '01',
        now: t1,
        audit: [],
      }),
      { ok: true },
    );
    const first = (await store.getCert('01'))!;
    assert.deepEqual([first.supersededBy, first.supersededAt], ['02', t1]);
    assert.equal((await store.getCert('02'))!.supersededBy, null);
    assert.deepEqual(
      await store.commitIssuance({
        cert: cert('03', { name: 'd', lineage: '01', renewedFrom: '01' }),
        nameClaim: 'lineage',
        renews: '01',
        now: t1,
        audit: [],
      }),
      { ok: false, reason: 'NOT_LINEAGE_HEAD', supersededBy: '02' },
    );
    assert.equal(await store.getCert('03'), null, 'nothing recorded');
    await store.revokeCert('02', 'keyCompromise', t1, audit('ca.cert_revoked'));
    assert.deepEqual(
      await store.commitIssuance({
        cert: cert('04', { name: 'd', lineage: '01', renewedFrom: '02' }),
        nameClaim: 'lineage',
        renews: '02',
        now: t1,
        audit: [],
      }),
      { ok: false, reason: 'NOT_LINEAGE_HEAD', supersededBy: null },
      'a revoked head does not renew',
    );
    assert.deepEqual((await store.listCerts({ lineage: '01' })).map((c) => c.serial).sort(), ['01', '02']);
  });

  withStore('concurrent-renewals-of-one-certificate-exactly-one-wins', async (store) => {
    await store.commitIssuance({ cert: cert('01', { name: 'e' }), now: T0, audit: [] });
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        store.commitIssuance({
          cert: cert(`3${i}`, { name: 'e', lineage: '01', renewedFrom: '01' }),
          nameClaim: 'lineage',
          renews: '01',
          now: T0,
          audit: [],
        }),
      ),
    );
    const winner = outcomes.findIndex((o) => o.ok);
    assert.equal(outcomes.filter((o) => o.ok).length, 1, JSON.stringify(outcomes));
    for (const [i, o] of outcomes.entries())
      if (i !== winner) assert.deepEqual(o, { ok: false, reason: 'NOT_LINEAGE_HEAD', supersededBy: `3${winner}` });
    assert.equal((await store.getCert('01'))!.supersededBy, `3${winner}`);
  });

  withStore('revoke-lineage-revokes-every-unrevoked-certificate-of-it-and-no-other', async (store) => {
    await store.commitIssuance({ cert: cert('01', { name: 'f' }), now: T0, audit: [] });
    await store.commitIssuance({
      cert: cert('02', { name: 'f', lineage: '01', renewedFrom: '01' }),
      renews: '01',
      nameClaim: 'lineage',
      now: T0,
      audit: [],
    });
    await store.commitIssuance({
      cert: cert('03', { name: 'f', lineage: '01', renewedFrom: '02' }),
      renews: '02',
      nameClaim: 'lineage',
      now: T0,
      audit: [],
    });
    await store.commitIssuance({ cert: cert('09', { name: 'g' }), now: T0, audit: [] });
    await store.revokeCert('02', 'superseded', T0, audit('ca.cert_revoked'));
    const v0 = await store.revocationVersion();
    const at = new Date(T0.getTime() + 1000);
    const revoked = await store.revokeLineage(
      '01',
      'keyCompromise',
      at,
      (c) => ({ ...audit('ca.cert_revoked'), serial: c.serial }),
      [audit('ca.cert_reuse_detected')],
    );
    assert.deepEqual(
      revoked.map((c) => [c.serial, c.revocationReason]),
      [
        ['01', 'keyCompromise'],
        ['03', 'keyCompromise'],
      ],
      'the already revoked one keeps its reason',
    );
    assert.equal((await store.getCert('02'))!.revocationReason, 'superseded');
    assert.equal((await store.getCert('09'))!.revokedAt, null, 'another lineage is untouched');
    assert.ok((await store.revocationVersion()) > v0);
    assert.deepEqual((await store.listRevokedUnexpired(T0)).map((r) => r.serial).sort(), ['01', '02', '03']);
    const events = await store.listAudit({});
    assert.deepEqual(
      events.slice(-3).map((e) => [e.type, e.serial]),
      [
        ['ca.cert_reuse_detected', null],
        ['ca.cert_revoked', '01'],
        ['ca.cert_revoked', '03'],
      ],
    );
    assert.deepEqual(
      await store.revokeLineage('01', 'keyCompromise', at, (c) => ({ ...audit('ca.cert_revoked'), serial: c.serial })),
      [],
      'nothing left to revoke',
    );
  });

  withStore('revoke-once-keeps-first-reason-and-bumps-version', async (store) => {
    await store.commitIssuance({ cert: cert('0b'), now: T0, audit: [] });
    const v0 = await store.revocationVersion();
    const first = await store.revokeCert(
      '0b',
      'keyCompromise',
      new Date(T0.getTime() + 1000),
      audit('ca.cert_revoked'),
    );
    assert.equal(first!.revocationReason, 'keyCompromise');
    const v1 = await store.revocationVersion();
    assert.notEqual(v1, v0);
    const second = await store.revokeCert('0b', 'superseded', new Date(T0.getTime() + 5000), audit('ca.cert_revoked'));
    assert.equal(second!.revocationReason, 'keyCompromise');
    assert.equal(second!.revokedAt!.getTime(), T0.getTime() + 1000);
    assert.equal(await store.revocationVersion(), v1, 'a repeated revocation changes nothing');
    assert.equal(await store.revokeCert('cc', 'unspecified', T0, audit('ca.cert_revoked')), null);
  });

  withStore('crl-lists-revoked-unexpired-only', async (store) => {
    await store.commitIssuance({ cert: cert('01'), now: T0, audit: [] });
    await store.commitIssuance({ cert: cert('02', { notAfter: new Date(T0.getTime() + HOUR) }), now: T0, audit: [] });
    await store.commitIssuance({ cert: cert('03'), now: T0, audit: [] });
    await store.revokeCert('01', 'superseded', T0, audit('ca.cert_revoked'));
    await store.revokeCert('02', 'keyCompromise', T0, audit('ca.cert_revoked'));
    const later = new Date(T0.getTime() + 2 * HOUR);
    assert.deepEqual(
      (await store.listRevokedUnexpired(later)).map((r) => r.serial),
      ['01'],
    );
  });

  withStore('cert-filters-by-state-role-and-expiry', async (store) => {
    await store.commitIssuance({
      cert: cert('01', { notAfter: new Date(T0.getTime() + 2 * HOUR) }),
      now: T0,
      audit: [],
    });
    await store.commitIssuance({
      cert: cert('02', { role: 'gateway', notAfter: new Date(T0.getTime() + 48 * HOUR) }),
      now: T0,
      audit: [],
    });
    await store.commitIssuance({ cert: cert('03', { notAfter: new Date(T0.getTime() - HOUR) }), now: T0, audit: [] });
    await store.commitIssuance({ cert: cert('04'), now: T0, audit: [] });
    await store.revokeCert('04', 'unspecified', T0, audit('ca.cert_revoked'));
    const serials = async (f: Parameters<Store['listCerts']>[0]) =>
      (await store.listCerts({ now: T0, ...f })).map((c) => c.serial).sort();
    assert.deepEqual(await serials({ state: 'active' }), ['01', '02']);
    assert.deepEqual(await serials({ state: 'expired' }), ['03']);
    assert.deepEqual(await serials({ state: 'revoked' }), ['04']);
    assert.deepEqual(await serials({ role: 'gateway' }), ['02']);
    assert.deepEqual(await serials({ expiringBefore: new Date(T0.getTime() + 7 * HOUR) }), ['01']);
  });

  withStore('certs-superseded-by-a-later-certificate-for-the-same-name-excluded-on-request', async (store) => {
    const at = (h: number) => new Date(T0.getTime() + h * HOUR);
    await store.commitIssuance({ cert: cert('01', { name: 'a', notAfter: at(2) }), now: T0, audit: [] });
    await store.commitIssuance({
      cert: cert('02', { name: 'a', notAfter: at(3), renewedFrom: '01' }),
      now: T0,
      audit: [],
    });
    await store.commitIssuance({ cert: cert('03', { name: 'b', notAfter: at(2) }), now: T0, audit: [] });
    await store.commitIssuance({ cert: cert('04', { name: 'b', notAfter: at(5) }), now: T0, audit: [] });
    await store.revokeCert('04', 'keyCompromise', T0, audit('ca.cert_revoked'));
    await store.commitIssuance({
      cert: cert('05', { name: 'a', role: 'gateway', notAfter: at(1) }),
      now: T0,
      audit: [],
    });
    const serials = async (excludeSuperseded: boolean) =>
      (await store.listCerts({ now: T0, expiringBefore: at(6), excludeSuperseded })).map((c) => c.serial).sort();
    assert.deepEqual(await serials(false), ['01', '02', '03', '05']);
    // 01 was renewed by 02; 03's successor 04 is revoked, so 03 still counts; 05 is another role.
    assert.deepEqual(await serials(true), ['02', '03', '05']);
  });

  withStore('certs-counted-by-state', async (store) => {
    assert.deepEqual(await store.countCertsByState(T0), { active: 0, expired: 0, revoked: 0 });
    await store.commitIssuance({ cert: cert('01'), now: T0, audit: [] });
    await store.commitIssuance({ cert: cert('02'), now: T0, audit: [] });
    await store.commitIssuance({ cert: cert('03', { notAfter: new Date(T0.getTime() - HOUR) }), now: T0, audit: [] });
    await store.commitIssuance({ cert: cert('04'), now: T0, audit: [] });
    await store.commitIssuance({ cert: cert('05', { notAfter: new Date(T0.getTime() - HOUR) }), now: T0, audit: [] });
    await store.revokeCert('04', 'unspecified', T0, audit('ca.cert_revoked'));
    await store.revokeCert('05', 'unspecified', T0, audit('ca.cert_revoked'));
    assert.deepEqual(await store.countCertsByState(T0), { active: 2, expired: 1, revoked: 2 });
    assert.deepEqual(await store.countCertsByState(new Date(T0.getTime() + 48 * HOUR)), {
      active: 0,
      expired: 3,
      revoked: 2,
    });
  });

  withStore('crl-numbers-increase-per-scope', async (store) => {
    assert.equal(await store.nextCrlNumber('intermediate'), 1n);
    assert.equal(await store.nextCrlNumber('intermediate'), 2n);
    assert.equal(await store.nextCrlNumber('root'), 1n);
  });

  withStore('tokens-list-and-revoke', async (store) => {
    await store.insertToken(token('a1'), audit('ca.token_created'));
    assert.deepEqual(
      (await store.listTokens()).map((t) => t.id),
      ['a1'],
    );
    assert.ok((await store.revokeToken('a1', T0, audit('ca.token_revoked')))!.revokedAt);
    assert.equal(await store.revokeToken('zz', T0, audit('ca.token_revoked')), null);
  });

  withStore('audit-events-chain-and-filter', async (store) => {
    await store.insertToken(token('a1'), audit('ca.token_created'));
    await store.commitIssuance({ cert: cert('01'), now: T0, audit: [{ ...audit('ca.cert_issued'), serial: '01' }] });
    await store.appendAudit([
      { time: T0, type: 'ca.admin_call', actor: 'spiffe://t/admin/root', details: { path: '/admin/certs' } },
    ]);
    const events = await store.listAudit();
    assert.deepEqual(
      events.map((e) => e.type),
      ['ca.token_created', 'ca.cert_issued', 'ca.admin_call'],
    );
    assert.deepEqual(verifyAuditChain(events), { ok: true, count: 3 });
    assert.deepEqual(
      (await store.listAudit({ serial: '01' })).map((e) => e.type),
      ['ca.cert_issued'],
    );
    assert.deepEqual((await store.listAudit({ type: 'ca.admin_call' })).length, 1);
    assert.deepEqual(
      (await store.listAudit({ afterSeq: events[1]!.seq })).map((e) => e.type),
      ['ca.admin_call'],
    );
  });

  withStore('audit-trail-streamed-in-order-with-the-recorded-head', async (store) => {
    assert.deepEqual(await store.readAuditTrail(() => assert.fail('no events yet')), { head: null });
    await store.insertToken(token('a1'), audit('ca.token_created'));
    await store.appendAudit([audit('ca.cert_issued', { n: 1 }), audit('ca.cert_issued', { n: 2 })]);
    await store.appendAudit([]);
    const seen: number[] = [];
    const { head } = await store.readAuditTrail((e) => void seen.push(e.seq));
    const events = await store.listAudit();
    assert.deepEqual(
      seen,
      events.map((e) => e.seq),
    );
    assert.deepEqual(head, { seq: events[2]!.seq, hash: events[2]!.hash });
    assert.deepEqual(
      (await store.listAudit({ hash: events[1]!.hash })).map((e) => e.seq),
      [events[1]!.seq],
    );
    assert.deepEqual(await store.listAudit({ hash: 'f'.repeat(64) }), []);
  });

  withStore('meta-round-trips', async (store) => {
    assert.equal(await store.getMeta('k'), null);
    await store.setMeta('k', 'v1');
    await store.setMeta('k', 'v2');
    assert.equal(await store.getMeta('k'), 'v2');
  });
  // ------------------------------------------------------------------ secrets (issue 13)

  const sealed = (name: string, version: number, overrides: Partial<NewSecretVersion> = {}): NewSecretVersion => ({
    name,
    version,
    createdAt: T0,
    keyId: 'k1',
    sealedKey: Buffer.from(`sk-${name}-${version}`),
    iv: Buffer.alloc(12, version),
    ciphertext: Buffer.from([0, 255, version, 0]),
    tag: Buffer.alloc(16, 7),
    checksum: `hmac-sha256:${name}-${version}`,
    size: 4,
    ...overrides,
  });
  const secretAudit = (type: AuditInput['type'], details: Record<string, unknown> = {}): AuditInput => ({
    time: T0,
    type,
    actor: 'test',
    details,
  });
  const later = (ms: number) => new Date(T0.getTime() + ms);

  withStore('secret-created-with-its-version-and-grants-and-refused-twice-whatever-the-case', async (store) => {
    assert.deepEqual(
      await store.createSecret(
        { version: sealed('db', 1), grants: ['role:web', 'role:web', 'name:a'], at: T0 },
        secretAudit('ca.secret_created'),
      ),
      { ok: true },
    );
    assert.deepEqual(await store.getSecret('db'), { name: 'db', createdAt: T0, updatedAt: T0, currentVersion: 1 });
    const [v] = await store.listSecretVersions('db', T0);
    assert.deepEqual(
      v,
      { ...sealed('db', 1), expiresAt: null, lastReadAt: null, lastReadBy: null },
      'every field, the blobs byte for byte',
    );
    assert.deepEqual(
      (await store.listSecretGrants('db')).map((g) => g.subject),
      ['name:a', 'role:web'],
    );
    assert.equal(
      await store.getMeta(SECRETS_KEY_ID_META),
      'k1',
      "the first sealed version names the store's master key",
    );
    assert.deepEqual(
      await store.createSecret({ version: sealed('db', 1), grants: [], at: T0 }, secretAudit('ca.secret_created')),
      { ok: false, reason: 'EXISTS', existing: 'db' },
    );
    assert.deepEqual(
      await store.createSecret({ version: sealed('DB', 1), grants: [], at: T0 }, secretAudit('ca.secret_created')),
      { ok: false, reason: 'EXISTS', existing: 'db' },
    );
    assert.equal((await store.listAudit({ type: 'ca.secret_created' })).length, 1, 'a refused create writes no event');
    assert.deepEqual(
      (await store.listSecrets()).map((s) => s.name),
      ['db'],
    );
  });

  withStore('secret-sealed-under-another-master-key-than-the-stores-is-refused-and-nothing-recorded', async (store) => {
    await store.createSecret({ version: sealed('a', 1), grants: [], at: T0 }, secretAudit('ca.secret_created'));
    assert.deepEqual(
      await store.createSecret(
        { version: sealed('b', 1, { keyId: 'k0' }), grants: [], at: T0 },
        secretAudit('ca.secret_created'),
      ),
      { ok: false, reason: 'KEY_CHANGED', keyId: 'k1' },
    );
    assert.deepEqual(
      await store.rotateSecret(
        { version: sealed('a', 2, { keyId: 'k0' }), at: T0, previousExpiresAt: null },
        secretAudit('ca.secret_rotated'),
      ),
      { ok: false, reason: 'KEY_CHANGED', keyId: 'k1' },
    );
    assert.equal(await store.getSecret('b'), null);
    assert.equal((await store.getSecret('a'))!.currentVersion, 1);
    assert.equal((await store.listSecretVersions('a', T0)).length, 1);
  });

  withStore(
    'secret-rotation-keeps-the-old-version-for-the-overlap-or-deletes-it-and-refuses-a-stale-version',
    async (store) => {
      await store.createSecret({ version: sealed('db', 1), grants: [], at: T0 }, secretAudit('ca.secret_created'));
      assert.deepEqual(
        await store.rotateSecret(
          { version: sealed('db', 2), at: later(1), previousExpiresAt: later(HOUR) },
          secretAudit('ca.secret_rotated'),
        ),
        { ok: true },
      );
      assert.deepEqual(
        await store.rotateSecret(
          { version: sealed('db', 2), at: later(2), previousExpiresAt: null },
          secretAudit('ca.secret_rotated'),
        ),
        { ok: false, reason: 'VERSION_CHANGED', currentVersion: 2 },
      );
      assert.deepEqual(
        await store.rotateSecret(
          { version: sealed('nope', 2), at: T0, previousExpiresAt: null },
          secretAudit('ca.secret_rotated'),
        ),
        { ok: false, reason: 'NOT_FOUND' },
      );
      assert.deepEqual(
        (await store.listSecretVersions('db', later(2))).map((v) => [v.version, v.expiresAt?.getTime() ?? null]),
        [
          [2, null],
          [1, later(HOUR).getTime()],
        ],
      );
      assert.equal((await store.getSecretVersion('db', 1, later(HOUR - 1)))?.version, 1, 'readable during the overlap');
      assert.equal(
        await store.getSecretVersion('db', 1, later(HOUR)),
        null,
        'not at its end, even before it is purged',
      );
      assert.deepEqual(
        await store.rotateSecret(
          { version: sealed('db', 3), at: later(3), previousExpiresAt: null },
          secretAudit('ca.secret_rotated'),
        ),
        { ok: true },
      );
      assert.deepEqual(
        (await store.listSecretVersions('db', later(3))).map((v) => v.version),
        [3, 1],
        'overlap 0: version 2 is gone at once; version 1 keeps its own end',
      );
      assert.deepEqual(await store.getSecret('db'), {
        name: 'db',
        createdAt: T0,
        updatedAt: later(3),
        currentVersion: 3,
      });
      assert.equal((await store.listAudit({ type: 'ca.secret_rotated' })).length, 2);
    },
  );

  withStore('secret-versions-past-their-overlap-purged-once-each-with-an-audit-event', async (store) => {
    await store.createSecret({ version: sealed('db', 1), grants: [], at: T0 }, secretAudit('ca.secret_created'));
    await store.rotateSecret(
      { version: sealed('db', 2), at: T0, previousExpiresAt: later(HOUR) },
      secretAudit('ca.secret_rotated'),
    );
    const auditFor = (v: { name: string; version: number; expiresAt: Date }) =>
      secretAudit('ca.secret_version_expired', {
        secret: v.name,
        version: v.version,
        expiredAt: v.expiresAt.toISOString(),
      });
    assert.deepEqual(await store.purgeExpiredSecretVersions(later(HOUR - 1), auditFor), []);
    const [a, b] = await Promise.all([
      store.purgeExpiredSecretVersions(later(HOUR), auditFor),
      store.purgeExpiredSecretVersions(later(HOUR), auditFor),
    ]);
    assert.deepEqual([...a!, ...b!], [{ name: 'db', version: 1 }], 'two purges at once delete (and audit) it once');
    assert.deepEqual(
      (await store.listAudit({ type: 'ca.secret_version_expired' })).map((e) => e.details),
      [{ secret: 'db', version: 1, expiredAt: later(HOUR).toISOString() }],
    );
    assert.deepEqual(
      (await store.listSecretVersions('db', T0)).map((v) => v.version),
      [2],
    );
  });

  withStore('secret-grants-added-once-and-ungrant-is-all-or-nothing', async (store) => {
    await store.createSecret(
      { version: sealed('db', 1), grants: ['role:web'], at: T0 },
      secretAudit('ca.secret_created'),
    );
    const granted = (changed: string[]) => [secretAudit('ca.secret_granted', { subjects: changed })];
    assert.deepEqual(await store.grantSecret('db', ['role:web', 'name:a'], later(1), 10, granted), {
      ok: true,
      changed: ['name:a'],
    });
    assert.deepEqual(await store.grantSecret('db', ['role:web'], later(2), 10, granted), { ok: true, changed: [] });
    assert.equal(
      (await store.listAudit({ type: 'ca.secret_granted' })).length,
      1,
      'a grant that changes nothing writes nothing',
    );
    assert.deepEqual(await store.grantSecret('db', ['id:x', 'id:y'], later(3), 3, granted), {
      ok: false,
      reason: 'TOO_MANY_GRANTS',
      limit: 3,
    });
    assert.deepEqual(await store.grantSecret('nope', ['role:web'], T0, 10, granted), {
      ok: false,
      reason: 'NOT_FOUND',
    });
    const ungranted = (changed: string[]) => [secretAudit('ca.secret_ungranted', { subjects: changed })];
    assert.deepEqual(await store.ungrantSecret('db', ['name:a', 'role:wbe'], later(4), ungranted), {
      ok: false,
      reason: 'NOT_GRANTED',
      subjects: ['role:wbe'],
      granted: ['name:a', 'role:web'],
    });
    assert.deepEqual(
      (await store.listSecretGrants('db')).map((g) => g.subject),
      ['name:a', 'role:web'],
      'nothing removed',
    );
    assert.deepEqual(await store.ungrantSecret('db', ['name:a'], later(5), ungranted), {
      ok: true,
      changed: ['name:a'],
    });
    assert.equal(await store.isSecretGranted('db', ['name:a', 'id:z']), false);
    assert.equal(await store.isSecretGranted('db', ['name:b', 'role:web']), true);
    assert.equal(await store.isSecretGranted('db', []), false);
  });

  withStore('secrets-listed-for-the-subjects-of-an-identity-with-their-current-version', async (store) => {
    await store.createSecret(
      { version: sealed('a', 1), grants: ['role:web'], at: T0 },
      secretAudit('ca.secret_created'),
    );
    await store.createSecret(
      { version: sealed('b', 1), grants: ['id:spiffe://t/web/w1'], at: T0 },
      secretAudit('ca.secret_created'),
    );
    await store.createSecret(
      { version: sealed('c', 1), grants: ['role:gateway'], at: T0 },
      secretAudit('ca.secret_created'),
    );
    await store.rotateSecret(
      {
        version: sealed('a', 2, { size: 9, checksum: 'hmac-sha256:a2' }),
        at: later(5),
        previousExpiresAt: later(HOUR),
      },
      secretAudit('ca.secret_rotated'),
    );
    assert.deepEqual(await store.listSecretsGranted(['role:web', 'name:w1', 'id:spiffe://t/web/w1']), [
      { name: 'a', version: 2, checksum: 'hmac-sha256:a2', size: 9, updatedAt: later(5) },
      { name: 'b', version: 1, checksum: 'hmac-sha256:b-1', size: 4, updatedAt: T0 },
    ]);
    assert.deepEqual(await store.listSecretsGranted(['role:admin']), []);
  });

  withStore('secret-read-committed-only-while-granted-and-unchanged-with-its-audit-event', async (store) => {
    await store.createSecret(
      { version: sealed('db', 1), grants: ['role:web'], at: T0 },
      secretAudit('ca.secret_created'),
    );
    const read = {
      name: 'db',
      version: 1,
      checksum: 'hmac-sha256:db-1',
      subjects: ['role:web', 'name:w1'],
      at: later(1),
      by: 'spiffe://t/web/w1',
    };
    assert.equal(await store.commitSecretRead(read, secretAudit('ca.secret_read')), 'OK');
    const [v] = await store.listSecretVersions('db', T0);
    assert.deepEqual([v!.lastReadAt, v!.lastReadBy], [later(1), 'spiffe://t/web/w1']);
    assert.equal(
      await store.commitSecretRead({ ...read, subjects: ['role:gateway'] }, secretAudit('ca.secret_read')),
      'NOT_GRANTED',
    );
    assert.equal(
      await store.commitSecretRead({ ...read, checksum: 'hmac-sha256:other' }, secretAudit('ca.secret_read')),
      'GONE',
      'another value under the same name and version',
    );
    assert.equal(await store.commitSecretRead({ ...read, version: 2 }, secretAudit('ca.secret_read')), 'GONE');
    await store.rotateSecret(
      { version: sealed('db', 2), at: later(2), previousExpiresAt: later(HOUR) },
      secretAudit('ca.secret_rotated'),
    );
    assert.equal(
      await store.commitSecretRead({ ...read, at: later(HOUR) }, secretAudit('ca.secret_read')),
      'GONE',
      'past its overlap, even before the purge',
    );
    assert.equal(
      (await store.listAudit({ type: 'ca.secret_read' })).length,
      1,
      'only the delivered read is audited as one',
    );
  });

  withStore('secret-deleted-with-its-versions-and-grants', async (store) => {
    await store.createSecret(
      { version: sealed('db', 1), grants: ['role:web'], at: T0 },
      secretAudit('ca.secret_created'),
    );
    await store.rotateSecret(
      { version: sealed('db', 2), at: T0, previousExpiresAt: later(HOUR) },
      secretAudit('ca.secret_rotated'),
    );
    const deleted = await store.deleteSecret('db', (versions) =>
      secretAudit('ca.secret_deleted', { versions: versions.map((v) => v.version) }),
    );
    assert.deepEqual(deleted, { secret: { name: 'db', createdAt: T0, updatedAt: T0, currentVersion: 2 }, versions: 2 });
    assert.equal(await store.deleteSecret('db', () => secretAudit('ca.secret_deleted')), null);
    assert.deepEqual(
      [await store.getSecret('db'), await store.listSecretVersions('db', T0), await store.listSecretGrants('db')],
      [null, [], []],
    );
    assert.deepEqual(
      (await store.listAudit({ type: 'ca.secret_deleted' })).map((e) => e.details),
      [{ versions: [1, 2] }],
    );
    // The name is free again, and starts over at version 1.
    assert.deepEqual(
      await store.createSecret({ version: sealed('db', 1), grants: [], at: T0 }, secretAudit('ca.secret_created')),
      { ok: true },
    );
  });

  withStore('secrets-rekeyed-in-one-transaction-or-not-at-all', async (store) => {
    await store.createSecret({ version: sealed('a', 1), grants: [], at: T0 }, secretAudit('ca.secret_created'));
    await store.rotateSecret(
      { version: sealed('a', 2), at: T0, previousExpiresAt: later(HOUR) },
      secretAudit('ca.secret_rotated'),
    );
    await store.createSecret({ version: sealed('b', 1), grants: [], at: T0 }, secretAudit('ca.secret_created'));
    const before = await store.listSecretVersions('a', T0);
    await assert.rejects(
      store.rekeySecrets(
        'k2',
        (v) => {
          if (v.name === 'b') throw new Error('cannot open this one');
          return Buffer.from(`k2-${v.name}-${v.version}`);
        },
        (n) => secretAudit('ca.secret_rekeyed', { resealed: n }),
      ),
      /cannot open this one/,
    );
    assert.deepEqual(await store.listSecretVersions('a', T0), before, 'a failed rekey changes no row');
    assert.equal(await store.getMeta(SECRETS_KEY_ID_META), 'k1');
    assert.equal((await store.listAudit({ type: 'ca.secret_rekeyed' })).length, 0);

    const seen: string[] = [];
    assert.equal(
      await store.rekeySecrets(
        'k2',
        (v) => {
          seen.push(`${v.name}/${v.version}/${v.keyId}/${v.sealedKey.toString()}`);
          return Buffer.from(`k2-${v.name}-${v.version}`);
        },
        (n) => secretAudit('ca.secret_rekeyed', { resealed: n }),
      ),
      3,
    );
    assert.deepEqual(seen, ['a/1/k1/sk-a-1', 'a/2/k1/sk-a-2', 'b/1/k1/sk-b-1']);
    const after = await store.listSecretVersions('a', T0);
    assert.deepEqual(
      after.map((v) => [v.keyId, v.sealedKey.toString()]),
      [
        ['k2', 'k2-a-2'],
        ['k2', 'k2-a-1'],
      ],
    );
    assert.deepEqual(
      after.map((v) => [v.iv, v.ciphertext, v.tag, v.checksum]),
      before.map((v) => [v.iv, v.ciphertext, v.tag, v.checksum]),
      'values untouched',
    );
    assert.equal(await store.getMeta(SECRETS_KEY_ID_META), 'k2');
    assert.deepEqual(
      (await store.listAudit({ type: 'ca.secret_rekeyed' })).map((e) => e.details),
      [{ resealed: 3 }],
    );
    assert.deepEqual(verifyAuditChain(await store.listAudit()), { ok: true, count: (await store.listAudit()).length });
  });

  withStore('posture-reports-keep-a-bounded-history-per-identity-and-the-newest-of-each', async (store) => {
    const report = (spiffeId: string, score: number | null, minutes: number) => ({
      spiffeId,
      serial: `s-${minutes}`,
      receivedAt: new Date(T0.getTime() + minutes * 60_000),
      score,
      report: JSON.stringify({ score, minutes }),
    });
    const posture = (spiffeId: string) => ({
      time: T0,
      type: 'ca.posture_reported' as const,
      actor: spiffeId,
      details: {},
    });
    for (let i = 1; i <= 5; i++)
      await store.recordPosture(report('spiffe://t/web/a', 50 + i, i), 3, posture('spiffe://t/web/a'));
    const b = await store.recordPosture(report('spiffe://t/web/b', null, 10), 3, posture('spiffe://t/web/b'));
    assert.equal(b.score, null);
    const history = await store.postureHistory('spiffe://t/web/a', 10);
    assert.deepEqual(
      history.map((r) => r.score),
      [55, 54, 53],
      'the newest 3, newest first',
    );
    assert.deepEqual(
      (await store.latestPosture()).map((r) => [r.spiffeId, r.score, JSON.parse(r.report).minutes]),
      [
        ['spiffe://t/web/a', 55, 5],
        ['spiffe://t/web/b', null, 10],
      ],
    );
    assert.deepEqual(await store.postureHistory('spiffe://t/web/none', 10), []);
    assert.deepEqual(
      (await store.latestPostureScores()).map((r) => [r.spiffeId, r.score, r.receivedAt.getTime()]),
      [
        ['spiffe://t/web/a', 55, T0.getTime() + 5 * 60_000],
        ['spiffe://t/web/b', null, T0.getTime() + 10 * 60_000],
      ],
    );
    assert.equal((await store.listAudit({ type: 'ca.posture_reported' })).length, 6, 'each report audited with it');
  });

  withStore('advisories-imported-once-replaced-only-by-a-newer-modification-and-all-or-nothing', async (store) => {
    const adv = (id: string, modified: string, severity = 'high') => ({
      id,
      modified,
      severity,
      record: JSON.stringify({ id, modified }),
    });
    const audit = (counts: { added: number; updated: number; unchanged: number }) => ({
      time: T0,
      type: 'ca.advisories_imported' as const,
      actor: 'test',
      details: counts,
    });
    assert.deepEqual(
      await store.importAdvisories(
        [adv('DSA-1', '2024-01-01T00:00:00.000Z'), adv('DSA-2', '2024-01-01T00:00:00.000Z')],
        audit,
      ),
      { added: 2, updated: 0, unchanged: 0 },
    );
    const again = await store.importAdvisories(
      [
        adv('DSA-1', '2024-01-01T00:00:00.000Z'),
        adv('DSA-2', '2023-06-01T00:00:00.000Z', 'low'),
        adv('DSA-3', '2024-02-01T00:00:00.000Z'),
      ],
      audit,
    );
    assert.deepEqual(
      again,
      { added: 1, updated: 0, unchanged: 2 },
      'the same or an older modification changes nothing',
    );
    const before = await store.advisoriesVersion();
    assert.deepEqual(await store.importAdvisories([adv('DSA-2', '2024-03-01T00:00:00.000Z', 'critical')], audit), {
      added: 0,
      updated: 1,
      unchanged: 0,
    });
    const after = await store.advisoriesVersion();
    assert.notEqual(after, before, 'an update changes the version, even within the same millisecond');
    await store.importAdvisories([adv('DSA-2', '2024-03-01T00:00:00.000Z')], audit);
    assert.equal(await store.advisoriesVersion(), after, 'an import that changes nothing keeps it');
    const held = await store.listAdvisories();
    assert.deepEqual(
      held.map((a) => [a.id, a.severity, a.modified]),
      [
        ['DSA-1', 'high', '2024-01-01T00:00:00.000Z'],
        ['DSA-2', 'critical', '2024-03-01T00:00:00.000Z'],
        ['DSA-3', 'high', '2024-02-01T00:00:00.000Z'],
      ],
    );
    await assert.rejects(
      store.importAdvisories([adv('DSA-9', '2024-01-01T00:00:00.000Z')], () => {
        throw new Error('audit failed');
      }),
      /audit failed/,
    );
    assert.equal((await store.listAdvisories()).length, 3, 'an import whose audit fails writes nothing');
    assert.deepEqual(
      (await store.listAudit({ type: 'ca.advisories_imported' })).map((e) => e.details),
      [
        { added: 2, updated: 0, unchanged: 0 },
        { added: 1, updated: 0, unchanged: 2 },
        { added: 0, updated: 1, unchanged: 0 },
        { added: 0, updated: 0, unchanged: 1 },
      ],
    );
  });
}
