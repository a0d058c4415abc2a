/**
 * The behaviour every Store must have. SQLite runs it today; a PostgreSQL store must pass the
 * same suite unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CertRecord, Store, TokenRecord } from '../src/store/store.js';
import { verifyAuditChain } from '../src/store/audit-chain.js';

const T0 = new Date('2026-01-01T00:00:00Z');
const HOUR = 3_600_000;

function cert(serial: string, overrides: Partial<CertRecord> = {}): CertRecord {
  return {
    serial, fingerprint: `fp-${serial}`, name: `dev-${serial}`, role: 'web', spiffeId: `spiffe://t/web/dev-${serial}`,
    notBefore: T0, notAfter: new Date(T0.getTime() + 24 * HOUR), issuedAt: T0, certPem: `PEM ${serial}`,
    tokenId: null, renewedFrom: null, lineage: serial, supersededBy: null, supersededAt: null, revokedAt: null, revocationReason: null, ...overrides,
  };
}

function token(id: string, overrides: Partial<TokenRecord> = {}): TokenRecord {
  return {
    id, secretHash: 'ab'.repeat(32), role: 'web', name: null, namePattern: null, maxUses: 1, uses: 0,
    expiresAt: new Date(T0.getTime() + HOUR), createdAt: T0, createdBy: 'test', revokedAt: null, ...overrides,
  };
}

const audit = (type: 'ca.cert_issued' | 'ca.token_created' | 'ca.token_revoked' | 'ca.cert_revoked' | 'ca.cert_reuse_detected' | 'ca.name_released', extra: Record<string, unknown> = {}) => ({ time: T0, type, actor: 'test', details: extra });

export function runStoreContract(kind: string, open: () => Promise<{ store: Store; cleanup: () => Promise<void> }>): void {
  const withStore = (name: string, fn: (store: Store) => Promise<void>) =>
    test(`${kind}: ${name}`, async () => {
      const { store, cleanup } = await open();
      try {
        await fn(store);
      } finally {
        await store.close().catch(() => undefined);
        await cleanup();
      }
    });

  withStore('issued-cert-round-trips-every-field', async (store) => {
    const c = cert('0a', { tokenId: null, renewedFrom: '09' });
    assert.deepEqual(await store.commitIssuance({ cert: c, now: T0, audit: [audit('ca.cert_issued')] }), { ok: true });
    assert.deepEqual(await store.getCert('0a'), c);
    assert.equal(await store.getCert('ff'), null);
  });

  withStore('issuance-consumes-token-and-refuses-when-none-left', async (store) => {
    await store.insertToken(token('t1', { maxUses: 2 }), audit('ca.token_created'));
    assert.deepEqual(await store.commitIssuance({ cert: cert('01'), consumeTokenId: 't1', now: T0, audit: [] }), { ok: true });
    assert.deepEqual(await store.commitIssuance({ cert: cert('02'), consumeTokenId: 't1', now: T0, audit: [] }), { ok: true });
    assert.deepEqual(await store.commitIssuance({ cert: cert('03'), consumeTokenId: 't1', now: T0, audit: [] }), { ok: false, reason: 'TOKEN_USED' });
    assert.equal(await store.getCert('03'), null, 'a refused issuance records no certificate');
    assert.equal((await store.getToken('t1'))!.uses, 2);
  });

  withStore('issuance-refuses-expired-revoked-unknown-token', async (store) => {
    await store.insertToken(token('exp', { expiresAt: new Date(T0.getTime() - 1) }), audit('ca.token_created'));
    await store.insertToken(token('rev'), audit('ca.token_created'));
    await store.revokeToken('rev', T0, audit('ca.token_revoked'));
    assert.deepEqual(await store.commitIssuance({ cert: cert('01'), consumeTokenId: 'exp', now: T0, audit: [] }), { ok: false, reason: 'TOKEN_EXPIRED' });
    assert.deepEqual(await store.commitIssuance({ cert: cert('02'), consumeTokenId: 'rev', now: T0, audit: [] }), { ok: false, reason: 'TOKEN_REVOKED' });
    assert.deepEqual(await store.commitIssuance({ cert: cert('03'), consumeTokenId: 'nope', now: T0, audit: [] }), { ok: false, reason: 'TOKEN_UNKNOWN' });
    assert.equal((await store.listCerts()).length, 0);
  });

  withStore('concurrent-issuances-on-single-use-token-exactly-one-wins', async (store) => {
    await store.insertToken(token('race'), audit('ca.token_created'));
    const outcomes = await Promise.all(Array.from({ length: 50 }, (_, i) => store.commitIssuance({ cert: cert(i.toString(16).padStart(2, '0')), consumeTokenId: 'race', now: T0, audit: [] })));
    assert.equal(outcomes.filter((o) => o.ok).length, 1);
    assert.equal((await store.listCerts()).length, 1);
  });

  withStore('first-claim-refused-in-the-transaction-when-another-active-cert-holds-the-name', async (store) => {
    await store.commitIssuance({ cert: cert('01', { name: 'a', spiffeId: 'spiffe://t/web/a' }), now: T0, audit: [] });
    await store.insertToken(token('t2'), audit('ca.token_created'));
    const taker = cert('02', { name: 'a', spiffeId: 'spiffe://t/web/a', tokenId: 't2' });
    assert.deepEqual(await store.commitIssuance({ cert: taker, consumeTokenId: 't2', nameClaim: 'first', now: T0, audit: [{ ...audit('ca.cert_issued'), serial: '02' }] }),
      { ok: false, reason: 'NAME_TAKEN', heldBy: '01', active: true });
    assert.equal(await store.getCert('02'), null, 'nothing recorded');
    assert.equal((await store.getToken('t2'))!.uses, 0, 'the token use is not consumed');
    assert.deepEqual((await store.listAudit({ serial: '02' })), [], 'no audit event from the refused transaction');
    assert.equal((await store.getNameReservation('web', 'a'))!.lineage, '01', 'the reservation stays');

    // Another role is another SPIFFE ID.
    assert.deepEqual(await store.commitIssuance({ cert: cert('04', { name: 'a', role: 'gateway', spiffeId: 'spiffe://t/gateway/a' }), nameClaim: 'first', now: T0, audit: [] }), { ok: true });
    // A replacement (a token made for the exact name) takes it over, and the reservation moves.
    assert.deepEqual(await store.commitIssuance({ cert: cert('03', { name: 'a', spiffeId: 'spiffe://t/web/a' }), nameClaim: 'replace', now: T0, audit: [] }), { ok: true });
    assert.equal((await store.getNameReservation('web', 'a'))!.lineage, '03');
  });

  withStore('a-name-stays-reserved-after-revocation-and-expiry-until-replaced-or-released', async (store) => {
    const later = new Date(T0.getTime() + 48 * HOUR);
    await store.commitIssuance({ cert: cert('05', { name: 'b', notAfter: new Date(T0.getTime() + HOUR) }), now: T0, audit: [] });
    await store.commitIssuance({ cert: cert('06', { name: 'c' }), now: T0, audit: [] });
    await store.revokeCert('06', 'superseded', T0, audit('ca.cert_revoked'));
    assert.deepEqual(await store.commitIssuance({ cert: cert('07', { name: 'b' }), nameClaim: 'first', now: later, audit: [] }), { ok: false, reason: 'NAME_TAKEN', heldBy: '05', active: false }, 'expired');
    assert.deepEqual(await store.commitIssuance({ cert: cert('08', { name: 'c' }), nameClaim: 'first', now: T0, audit: [] }), { ok: false, reason: 'NAME_TAKEN', heldBy: '06', active: false }, 'revoked');
    // The reserving lineage itself renews under its name (a renewal is `lineage`); another lineage may not.
    assert.deepEqual(await store.commitIssuance({ cert: cert('09', { name: 'b', lineage: '05', renewedFrom: '05' }), nameClaim: 'lineage', renews: '05', now: T0, audit: [] }), { ok: true });
    assert.deepEqual(await store.commitIssuance({ cert: cert('0a', { name: 'b', lineage: '77' }), nameClaim: 'lineage', now: T0, audit: [] }), { ok: false, reason: 'NAME_TAKEN', heldBy: '09', active: true });

    const reservation = await store.getNameReservation('web', 'c');
    assert.deepEqual(reservation, { role: 'web', name: 'c', spiffeId: 'spiffe://t/web/dev-06', lineage: '06', reservedAt: T0 });
    assert.deepEqual((await store.listNameReservations()).map((r) => `${r.role}/${r.name}=${r.lineage}`), ['web/b=05', 'web/c=06']);
    assert.deepEqual(await store.releaseName('web', 'c', audit('ca.name_released')), reservation);
    assert.equal(await store.releaseName('web', 'c', audit('ca.name_released')), null, 'released once');
    assert.equal((await store.listAudit({ type: 'ca.name_released' })).length, 1);
    assert.deepEqual(await store.commitIssuance({ cert: cert('0b', { name: 'c' }), nameClaim: 'first', now: T0, audit: [] }), { ok: true }, 'a released name is free');
  });

  withStore('concurrent-first-claims-of-one-name-exactly-one-wins-and-others-are-unaffected', async (store) => {
    // Issued together (one group commit in SQLite): the check must see the earlier items of the
    // same batch, and a refused item must not fail the others.
    const ids = Array.from({ length: 10 }, (_, i) => `r${i}`);
    for (const id of ids) await store.insertToken(token(id), audit('ca.token_created'));
    await store.insertToken(token('other'), audit('ca.token_created'));
    const outcomes = await Promise.all([
      ...ids.map((id, i) => store.commitIssuance({ cert: cert(`1${i}`, { name: 'same', spiffeId: 'spiffe://t/web/same', tokenId: id }), consumeTokenId: id, nameClaim: 'first', now: T0, audit: [] })),
      store.commitIssuance({ cert: cert('20', { name: 'elsewhere', tokenId: 'other' }), consumeTokenId: 'other', nameClaim: 'first', now: T0, audit: [] }),
    ]);
    const sameName = outcomes.slice(0, ids.length);
    const winners = sameName.flatMap((o, i) => (o.ok ? [i] : []));
    assert.equal(winners.length, 1, `exactly one wins: ${JSON.stringify(sameName)}`);
    for (const [i, o] of sameName.entries()) {
      if (i !== winners[0]) assert.deepEqual(o, { ok: false, reason: 'NAME_TAKEN', heldBy: `1${winners[0]}`, active: true });
    }
    assert.deepEqual(outcomes[ids.length], { ok: true }, 'an unrelated issuance in the same batch succeeds');
    assert.deepEqual((await store.listCerts({ name: 'same', now: T0 })).map((c) => c.serial), [`1${winners[0]}`]);
    for (const [i, id] of ids.entries()) assert.equal((await store.getToken(id))!.uses, i === winners[0] ? 1 : 0);
    assert.equal((await store.getToken('other'))!.uses, 1);
  });

  withStore('a-renewal-supersedes-its-certificate-and-only-the-lineage-head-renews', async (store) => {
    const t1 = new Date(T0.getTime() + HOUR);
    await store.commitIssuance({ cert: cert('01', { name: 'd' }), now: T0, audit: [] });
    assert.deepEqual(await store.commitIssuance({ cert: cert('02', { name: 'd', lineage: '01', renewedFrom: '01', issuedAt: t1 }), nameClaim: 'lineage', renews: '01', now: t1, audit: [] }), { ok: true });
    const first = (await store.getCert('01'))!;
    assert.deepEqual([first.supersededBy, first.supersededAt], ['02', t1]);
    assert.equal((await store.getCert('02'))!.supersededBy, null);
    assert.deepEqual(await store.commitIssuance({ cert: cert('03', { name: 'd', lineage: '01', renewedFrom: '01' }), nameClaim: 'lineage', renews: '01', now: t1, audit: [] }),
      { ok: false, reason: 'NOT_LINEAGE_HEAD', supersededBy: '02' });
    assert.equal(await store.getCert('03'), null, 'nothing recorded');
    await store.revokeCert('02', 'keyCompromise', t1, audit('ca.cert_revoked'));
    assert.deepEqual(await store.commitIssuance({ cert: cert('04', { name: 'd', lineage: '01', renewedFrom: '02' }), nameClaim: 'lineage', renews: '02', now: t1, audit: [] }),
      { ok: false, reason: 'NOT_LINEAGE_HEAD', supersededBy: null }, 'a revoked head does not renew');
    assert.deepEqual((await store.listCerts({ lineage: '01' })).map((c) => c.serial).sort(), ['01', '02']);
  });

  withStore('concurrent-renewals-of-one-certificate-exactly-one-wins', async (store) => {
    await store.commitIssuance({ cert: cert('01', { name: 'e' }), now: T0, audit: [] });
    const outcomes = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      store.commitIssuance({ cert: cert(`3${i}`, { name: 'e', lineage: '01', renewedFrom: '01' }), nameClaim: 'lineage', renews: '01', now: T0, audit: [] })));
    const winner = outcomes.findIndex((o) => o.ok);
    assert.equal(outcomes.filter((o) => o.ok).length, 1, JSON.stringify(outcomes));
    for (const [i, o] of outcomes.entries()) if (i !== winner) assert.deepEqual(o, { ok: false, reason: 'NOT_LINEAGE_HEAD', supersededBy: `3${winner}` });
    assert.equal((await store.getCert('01'))!.supersededBy, `3${winner}`);
  });

  withStore('revoke-lineage-revokes-every-unrevoked-certificate-of-it-and-no-other', async (store) => {
    await store.commitIssuance({ cert: cert('01', { name: 'f' }), now: T0, audit: [] });
    await store.commitIssuance({ cert: cert('02', { name: 'f', lineage: '01', renewedFrom: '01' }), renews: '01', nameClaim: 'lineage', now: T0, audit: [] });
    await store.commitIssuance({ cert: cert('03', { name: 'f', lineage: '01', renewedFrom: '02' }), renews: '02', nameClaim: 'lineage', now: T0, audit: [] });
    await store.commitIssuance({ cert: cert('09', { name: 'g' }), now: T0, audit: [] });
    await store.revokeCert('02', 'superseded', T0, audit('ca.cert_revoked'));
    const v0 = await store.revocationVersion();
    const at = new Date(T0.getTime() + 1000);
    const revoked = await store.revokeLineage('01', 'keyCompromise', at, (c) => ({ ...audit('ca.cert_revoked'), serial: c.serial }), [audit('ca.cert_reuse_detected')]);
    assert.deepEqual(revoked.map((c) => [c.serial, c.revocationReason]), [['01', 'keyCompromise'], ['03', 'keyCompromise']], 'the already revoked one keeps its reason');
    assert.equal((await store.getCert('02'))!.revocationReason, 'superseded');
    assert.equal((await store.getCert('09'))!.revokedAt, null, 'another lineage is untouched');
    assert.ok(await store.revocationVersion() > v0);
    assert.deepEqual((await store.listRevokedUnexpired(T0)).map((r) => r.serial).sort(), ['01', '02', '03']);
    const events = await store.listAudit({});
    assert.deepEqual(events.slice(-3).map((e) => [e.type, e.serial]), [['ca.cert_reuse_detected', null], ['ca.cert_revoked', '01'], ['ca.cert_revoked', '03']]);
    assert.deepEqual(await store.revokeLineage('01', 'keyCompromise', at, (c) => ({ ...audit('ca.cert_revoked'), serial: c.serial })), [], 'nothing left to revoke');
  });

  withStore('revoke-once-keeps-first-reason-and-bumps-version', async (store) => {
    await store.commitIssuance({ cert: cert('0b'), now: T0, audit: [] });
    const v0 = await store.revocationVersion();
    const first = await store.revokeCert('0b', 'keyCompromise', new Date(T0.getTime() + 1000), audit('ca.cert_revoked'));
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
    assert.deepEqual((await store.listRevokedUnexpired(later)).map((r) => r.serial), ['01']);
  });

  withStore('cert-filters-by-state-role-and-expiry', async (store) => {
    await store.commitIssuance({ cert: cert('01', { notAfter: new Date(T0.getTime() + 2 * HOUR) }), now: T0, audit: [] });
    await store.commitIssuance({ cert: cert('02', { role: 'gateway', notAfter: new Date(T0.getTime() + 48 * HOUR) }), now: T0, audit: [] });
    await store.commitIssuance({ cert: cert('03', { notAfter: new Date(T0.getTime() - HOUR) }), now: T0, audit: [] });
    await store.commitIssuance({ cert: cert('04'), now: T0, audit: [] });
    await store.revokeCert('04', 'unspecified', T0, audit('ca.cert_revoked'));
    const serials = async (f: Parameters<Store['listCerts']>[0]) => (await store.listCerts({ now: T0, ...f })).map((c) => c.serial).sort();
    assert.deepEqual(await serials({ state: 'active' }), ['01', '02']);
    assert.deepEqual(await serials({ state: 'expired' }), ['03']);
    assert.deepEqual(await serials({ state: 'revoked' }), ['04']);
    assert.deepEqual(await serials({ role: 'gateway' }), ['02']);
    assert.deepEqual(await serials({ expiringBefore: new Date(T0.getTime() + 7 * HOUR) }), ['01']);
  });

  withStore('certs-superseded-by-a-later-certificate-for-the-same-name-excluded-on-request', async (store) => {
    const at = (h: number) => new Date(T0.getTime() + h * HOUR);
    await store.commitIssuance({ cert: cert('01', { name: 'a', notAfter: at(2) }), now: T0, audit: [] });
    await store.commitIssuance({ cert: cert('02', { name: 'a', notAfter: at(3), renewedFrom: '01' }), now: T0, audit: [] });
    await store.commitIssuance({ cert: cert('03', { name: 'b', notAfter: at(2) }), now: T0, audit: [] });
    await store.commitIssuance({ cert: cert('04', { name: 'b', notAfter: at(5) }), now: T0, audit: [] });
    await store.revokeCert('04', 'keyCompromise', T0, audit('ca.cert_revoked'));
    await store.commitIssuance({ cert: cert('05', { name: 'a', role: 'gateway', notAfter: at(1) }), now: T0, audit: [] });
    const serials = async (excludeSuperseded: boolean) => (await store.listCerts({ now: T0, expiringBefore: at(6), excludeSuperseded })).map((c) => c.serial).sort();
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
    assert.deepEqual(await store.countCertsByState(new Date(T0.getTime() + 48 * HOUR)), { active: 0, expired: 3, revoked: 2 });
  });

  withStore('crl-numbers-increase-per-scope', async (store) => {
    assert.equal(await store.nextCrlNumber('intermediate'), 1n);
    assert.equal(await store.nextCrlNumber('intermediate'), 2n);
    assert.equal(await store.nextCrlNumber('root'), 1n);
  });

  withStore('tokens-list-and-revoke', async (store) => {
    await store.insertToken(token('a1'), audit('ca.token_created'));
    assert.deepEqual((await store.listTokens()).map((t) => t.id), ['a1']);
    assert.ok((await store.revokeToken('a1', T0, audit('ca.token_revoked')))!.revokedAt);
    assert.equal(await store.revokeToken('zz', T0, audit('ca.token_revoked')), null);
  });

  withStore('audit-events-chain-and-filter', async (store) => {
    await store.insertToken(token('a1'), audit('ca.token_created'));
    await store.commitIssuance({ cert: cert('01'), now: T0, audit: [{ ...audit('ca.cert_issued'), serial: '01' }] });
    await store.appendAudit([{ time: T0, type: 'ca.admin_call', actor: 'spiffe://t/admin/root', details: { path: '/admin/certs' } }]);
    const events = await store.listAudit();
    assert.deepEqual(events.map((e) => e.type), ['ca.token_created', 'ca.cert_issued', 'ca.admin_call']);
    assert.deepEqual(verifyAuditChain(events), { ok: true, count: 3 });
    assert.deepEqual((await store.listAudit({ serial: '01' })).map((e) => e.type), ['ca.cert_issued']);
    assert.deepEqual((await store.listAudit({ type: 'ca.admin_call' })).length, 1);
    assert.deepEqual((await store.listAudit({ afterSeq: events[1]!.seq })).map((e) => e.type), ['ca.admin_call']);
  });

  withStore('audit-trail-streamed-in-order-with-the-recorded-head', async (store) => {
    assert.deepEqual(await store.readAuditTrail(() => assert.fail('no events yet')), { head: null });
    await store.insertToken(token('a1'), audit('ca.token_created'));
    await store.appendAudit([audit('ca.cert_issued', { n: 1 }), audit('ca.cert_issued', { n: 2 })]);
    await store.appendAudit([]);
    const seen: number[] = [];
    const { head } = await store.readAuditTrail((e) => void seen.push(e.seq));
    const events = await store.listAudit();
    assert.deepEqual(seen, events.map((e) => e.seq));
    assert.deepEqual(head, { seq: events[2]!.seq, hash: events[2]!.hash });
    assert.deepEqual((await store.listAudit({ hash: events[1]!.hash })).map((e) => e.seq), [events[1]!.seq]);
    assert.deepEqual(await store.listAudit({ hash: 'f'.repeat(64) }), []);
  });

  withStore('meta-round-trips', async (store) => {
    assert.equal(await store.getMeta('k'), null);
    await store.setMeta('k', 'v1');
    await store.setMeta('k', 'v2');
    assert.equal(await store.getMeta('k'), 'v2');
  });
}
