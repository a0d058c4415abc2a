/**
 * The dashboard's pure parts: the escaping `html` template, the fleet model (states, expiring
 * soon, counts, expiry buckets, issuance rate), the posture model (bands, filters, check order),
 * CSRF tokens and fetch-metadata checks.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { dashboardUrl, escapeHtml, html, isSafeHtml, renderDocument } from '../src/dashboard/html.js';
import {
  certificateState,
  countByRoleAndState,
  expiryBuckets,
  filterIdentities,
  groupIdentities,
  issuanceRates,
} from '../src/dashboard/fleet-model.js';
import { checkFetchMetadata, issueCsrfToken, TOKEN_LIFETIME_MS, verifyCsrfToken } from '../src/dashboard/csrf.js';
import { parseUtcTime } from '../src/dashboard/pages/audit.js';
import {
  checksFailingFirst,
  countByRating,
  filterByPosture,
  ratingOf,
  readPostureFilter,
  STALE_CHOICES,
} from '../src/dashboard/posture-model.js';
import { POSTURE_BANDS, POSTURE_STALE_MS, ratingRange } from '../src/ca/posture-views.js';
import { formatDuration } from '../src/config/duration.js';
import type { CertRecord } from '../src/store/store-certificates.js';

const HOSTILE = `<script>alert("x")</script><img src=x onerror='alert(1)'>&amp;\`${'${x}'}`;

describe('dashboard html template', () => {
  test('html-escapes-every-interpolated-string', () => {
    const out = renderDocument(html`<p title="${HOSTILE}">${HOSTILE}</p>`);
    assert.equal(out, `<p title="${escapeHtml(HOSTILE)}">${escapeHtml(HOSTILE)}</p>`);
    for (const raw of ['<script', '<img', "'alert", '"x"', '`'])
      assert.ok(!out.includes(raw), `${raw} left unescaped in ${out}`);
    assert.equal(escapeHtml(`&<>"'\``), '&amp;&lt;&gt;&quot;&#39;&#96;');
  });

  test('html-escapes-numbers-objects-and-dates-and-drops-null-undefined-false', () => {
    const tricky = { toString: () => '<b>bold</b>' };
    assert.equal(
      renderDocument(html`${1}|${10n}|${tricky}|${null}|${undefined}|${false}|${true}|${new Date(0)}`),
      '1|10|&lt;b&gt;bold&lt;/b&gt;||||true|1970-01-01T00:00:00.000Z',
    );
  });

  test('html-nested-fragments-are-not-escaped-twice-and-arrays-render-each-item', () => {
    const items = ['<a>', '&'].map((x) => html`<li>${x}</li>`);
    assert.equal(renderDocument(html`<ul>${items}</ul>`), '<ul><li>&lt;a&gt;</li><li>&amp;</li></ul>');
    assert.equal(renderDocument(html`${['<', html`<br>`]}`), '&lt;<br>');
  });

  test('html-fragment-cannot-be-forged-by-an-object-of-the-same-shape', () => {
    const forged = { html: '<script>alert(1)</script>', toString: () => '<script>alert(1)</script>' };
    assert.equal(isSafeHtml(forged), false);
    assert.equal(renderDocument(html`${forged}`), '&lt;script&gt;alert(1)&lt;/script&gt;');
    assert.equal(isSafeHtml(html`x`), true);
  });

  test('dashboard-url-encodes-segments-and-query-so-data-cannot-leave-the-dashboard', () => {
    assert.equal(dashboardUrl(['identity', 'web', '../../admin']), '/dashboard/identity/web/..%2F..%2Fadmin');
    assert.equal(
      dashboardUrl(['fleet'], { q: '"><script>', role: '', state: undefined }),
      '/dashboard/fleet?q=%22%3E%3Cscript%3E',
    );
    assert.equal(dashboardUrl(['x', 'javascript:alert(1)']), '/dashboard/x/javascript%3Aalert(1)');
  });
});

const NOW = new Date('2030-01-10T00:00:00Z');
const H = 3_600_000;

function cert(partial: Partial<CertRecord> & { serial: string; name: string }): CertRecord {
  const notBefore = partial.notBefore ?? new Date(NOW.getTime() - 2 * H);
  return {
    fingerprint: partial.serial.padEnd(64, '0'),
    role: 'web',
    spiffeId: `spiffe://t/${partial.role ?? 'web'}/${partial.name}`,
    notBefore,
    notAfter: new Date(notBefore.getTime() + 24 * H),
    issuedAt: notBefore,
    certPem: '',
    tokenId: null,
    renewedFrom: null,
    lineage: partial.serial,
    supersededBy: null,
    supersededAt: null,
    revokedAt: null,
    revocationReason: null,
    ...partial,
  };
}

describe('dashboard fleet model', () => {
  test('state-expiring-soon-below-20-percent-of-lifetime', () => {
    const base = { notBefore: new Date(NOW.getTime() - 100 * H), revokedAt: null };
    assert.equal(certificateState({ ...base, notAfter: new Date(NOW.getTime() + 25 * H) }, NOW), 'active'); // 25 of 125 h = 20 %
    assert.equal(certificateState({ ...base, notAfter: new Date(NOW.getTime() + 24 * H) }, NOW), 'expiring'); // 24 of 124 h < 20 %
    assert.equal(certificateState({ ...base, notAfter: NOW }, NOW), 'expired');
    assert.equal(
      certificateState({ ...base, notAfter: new Date(NOW.getTime() + 99 * H), revokedAt: NOW }, NOW),
      'revoked',
    );
  });

  test('identities-grouped-by-role-and-name-current-is-newest-with-history', () => {
    const certs = [
      cert({ serial: 'a1', name: 'laptop', issuedAt: new Date(NOW.getTime() - 20 * H) }),
      cert({ serial: 'a2', name: 'laptop', issuedAt: new Date(NOW.getTime() - H), renewedFrom: 'a1' }),
      cert({ serial: 'b1', name: 'laptop', role: 'gateway' }),
      cert({ serial: 'c1', name: 'old', notBefore: new Date(NOW.getTime() - 48 * H) }),
    ];
    const ids = groupIdentities(certs, NOW);
    assert.deepEqual(
      ids.map((i) => `${i.role}/${i.name}:${i.current.serial}:${i.state}`),
      ['gateway/laptop:b1:active', 'web/laptop:a2:active', 'web/old:c1:expired'],
    );
    const laptop = ids[1]!;
    assert.deepEqual(
      laptop.history.map((c) => c.serial),
      ['a2', 'a1'],
    );
    assert.deepEqual(laptop.lastRenewal, new Date(NOW.getTime() - H));
    assert.equal(ids[0]!.lastRenewal, null);
    assert.deepEqual(
      filterIdentities(ids, { q: 'A1' }).map((i) => i.current.serial),
      ['a2'],
      'search finds an identity by an older serial',
    );
    assert.deepEqual(
      filterIdentities(ids, { role: 'web', state: 'expired' }).map((i) => i.name),
      ['old'],
    );
    const { roles, counts, totals } = countByRoleAndState(ids);
    assert.deepEqual(roles, ['gateway', 'web']);
    assert.deepEqual(counts.get('web'), { active: 1, expiring: 0, expired: 1, revoked: 0 });
    assert.deepEqual(totals, { active: 2, expiring: 0, expired: 1, revoked: 0 });
  });

  test('expiry-buckets-count-current-live-certificates-per-day', () => {
    const at = (h: number, extra: Partial<CertRecord> = {}) =>
      cert({
        serial: `s${h}${extra.revokedAt ? 'r' : ''}`,
        name: `n${h}${extra.revokedAt ? 'r' : ''}`,
        notBefore: new Date(NOW.getTime() - H),
        notAfter: new Date(NOW.getTime() + h * H),
        ...extra,
      });
    const ids = groupIdentities(
      [at(1), at(23), at(25), at(24 * 29 + 1), at(24 * 31), at(2, { revokedAt: NOW }), at(-1)],
      NOW,
    );
    const { buckets, later } = expiryBuckets(ids, NOW);
    assert.equal(buckets.length, 30);
    assert.equal(buckets[0], 2);
    assert.equal(buckets[1], 1);
    assert.equal(buckets[29], 1);
    assert.equal(later, 1);
    assert.equal(
      buckets.reduce((a, b) => a + b, 0),
      4,
      'revoked and expired are not counted',
    );
  });

  test('issuance-rate-splits-enrollments-and-renewals-per-window', () => {
    const issued = (h: number, renewed = false) =>
      cert({
        serial: `i${h}${renewed}`,
        name: 'x',
        issuedAt: new Date(NOW.getTime() - h * H),
        ...(renewed ? { renewedFrom: 'p' } : {}),
      });
    const rates = issuanceRates([issued(1), issued(2, true), issued(23, true), issued(25), issued(24 * 8)], NOW);
    assert.deepEqual(
      rates.map((r) => [r.enrolled, r.renewed]),
      [
        [1, 2],
        [2, 2],
      ],
    );
  });
});

describe('dashboard posture model', () => {
  test('posture-ratings-come-from-the-metric-bands-and-cover-every-score-once', () => {
    for (let score = 0; score <= 100; score++)
      assert.equal(POSTURE_BANDS.filter((b) => score >= b.low && score <= b.high).length, 1, String(score));
    assert.deepEqual([89, 90, 69, 70, 0, 100, null, undefined].map(ratingOf), [
      'fair',
      'good',
      'poor',
      'fair',
      'poor',
      'good',
      'none',
      'none',
    ]);
    assert.deepEqual(ratingRange('poor'), { low: 0, high: 69 });
    assert.deepEqual(countByRating([{ score: 95 }, { score: 75 }, { score: 10 }, { score: 55 }, { score: null }]), {
      good: 1,
      fair: 1,
      poor: 2,
      none: 1,
    });
    assert.ok(
      STALE_CHOICES.some((c) => c.value === formatDuration(POSTURE_STALE_MS)),
      'the overview links the metric threshold as a choice',
    );
  });

  test('posture-filter-reads-below-1-to-100-and-the-stale-choices-and-names-what-it-ignored', () => {
    const read = (qs: string) => readPostureFilter(new URLSearchParams(qs));
    assert.deepEqual(read('below=70&stale=24h'), {
      below: '70',
      stale: '24h',
      query: { below: 70, staleMs: 24 * H },
      problems: [],
    });
    assert.deepEqual(read(''), { below: '', stale: '', query: {}, problems: [] });
    for (const bad of ['abc', '0', '101', '5.5', '-1', '1e2', ' 7', '0070']) {
      const r = read(`below=${encodeURIComponent(bad)}`);
      assert.deepEqual(r.query, {}, bad);
      assert.equal(r.problems.length, 1, bad);
    }
    assert.deepEqual(read('stale=3h').problems, [
      '"Report older than" must be one of 1h, 2h, 24h, 7d; "3h" was ignored.',
    ]);
  });

  test('posture-filter-counts-never-reported-as-below-and-stale-and-skips-identities-that-cannot-report', () => {
    const ids = groupIdentities(
      [
        cert({ serial: 'p1', name: 'fresh' }),
        cert({ serial: 'p2', name: 'old' }),
        cert({ serial: 'p3', name: 'never' }),
        cert({ serial: 'p4', name: 'gone', revokedAt: NOW }),
        cert({ serial: 'p5', name: 'ca', role: 'ca-server' }),
      ],
      NOW,
    );
    const scores = new Map([
      ['spiffe://t/web/fresh', { score: 95, receivedAt: new Date(NOW.getTime() - 60_000) }],
      ['spiffe://t/web/old', { score: 40, receivedAt: new Date(NOW.getTime() - 3 * H) }],
    ]);
    const names = (query: { below?: number; staleMs?: number }) =>
      filterByPosture(ids, scores, query, NOW)
        .map((i) => i.name)
        .sort();
    assert.deepEqual(names({}), ['ca', 'fresh', 'gone', 'never', 'old'], 'no posture filter: everything');
    assert.deepEqual(names({ below: 70 }), ['never', 'old']);
    assert.deepEqual(names({ below: 96 }), ['fresh', 'never', 'old']);
    assert.deepEqual(names({ staleMs: 2 * H }), ['never', 'old']);
    assert.deepEqual(names({ below: 70, staleMs: 4 * H }), ['never']);
  });

  test('posture-checks-failing-first-then-unknown-then-passing-heaviest-first', () => {
    const c = (id: string, verdict: 'pass' | 'fail' | 'unknown', weight: number) => ({
      id,
      verdict,
      weight,
      reason: '',
    });
    assert.deepEqual(
      checksFailingFirst([
        c('a', 'pass', 50),
        c('b', 'fail', 5),
        c('c', 'unknown', 9),
        c('d', 'fail', 20),
        c('e', 'pass', 50),
      ]).map((x) => x.id),
      ['d', 'b', 'c', 'a', 'e'],
    );
  });
});

describe('dashboard csrf', () => {
  const key = Buffer.alloc(32, 7);
  const fp = 'ab'.repeat(32);

  test('csrf-token-verifies-for-the-same-certificate-only-and-expires', () => {
    const token = issueCsrfToken(key, fp, NOW);
    assert.deepEqual(verifyCsrfToken(key, fp, token, NOW), { ok: true });
    assert.equal(verifyCsrfToken(key, 'cd'.repeat(32), token, NOW).ok, false, 'another admin certificate');
    assert.equal(verifyCsrfToken(Buffer.alloc(32, 8), fp, token, NOW).ok, false, 'another server key');
    assert.equal(
      verifyCsrfToken(key, fp, token, new Date(NOW.getTime() + TOKEN_LIFETIME_MS + 1000)).ok,
      false,
      'expired',
    );
    assert.equal(
      verifyCsrfToken(key, fp, issueCsrfToken(key, fp, new Date(NOW.getTime() + 10 * 60_000)), NOW).ok,
      false,
      'dated in the future',
    );
    const [issued, mac] = token.split('.');
    assert.equal(verifyCsrfToken(key, fp, `${Number(issued) + 1}.${mac}`, NOW).ok, false, 'time changed');
    for (const bad of [null, '', 'x', `${issued}.${'0'.repeat(64)}`, `${token}0`])
      assert.equal(verifyCsrfToken(key, fp, bad, NOW).ok, false, String(bad));
  });

  test('fetch-metadata-same-origin-accepted-cross-site-and-silent-requests-refused', () => {
    const host = '127.0.0.1:8443';
    assert.ok(
      checkFetchMetadata({ host, 'sec-fetch-site': 'same-origin', origin: 'null' }).ok,
      'Chromium under Referrer-Policy: no-referrer',
    );
    assert.ok(checkFetchMetadata({ host, 'sec-fetch-site': 'same-origin', origin: 'https://127.0.0.1:8443' }).ok);
    assert.ok(checkFetchMetadata({ host, origin: 'https://127.0.0.1:8443' }).ok, 'Origin alone, matching');
    assert.equal(checkFetchMetadata({ host, 'sec-fetch-site': 'cross-site', origin: 'null' }).ok, false);
    assert.equal(checkFetchMetadata({ host, 'sec-fetch-site': 'same-site' }).ok, false);
    assert.equal(checkFetchMetadata({ host, 'sec-fetch-site': 'none' }).ok, false);
    assert.equal(
      checkFetchMetadata({ host, 'sec-fetch-site': 'same-origin', origin: 'https://evil.example' }).ok,
      false,
    );
    assert.equal(checkFetchMetadata({ host, origin: 'http://127.0.0.1:8443' }).ok, false, 'scheme differs');
    assert.equal(checkFetchMetadata({ host }).ok, false, 'neither header');
    assert.equal(checkFetchMetadata({ host, origin: 'null' }).ok, false, 'only Origin: null');
  });

  test('audit-time-filter-reads-datetime-local-as-utc', () => {
    assert.deepEqual(parseUtcTime('2030-01-10T12:30'), new Date('2030-01-10T12:30:00Z'));
    assert.deepEqual(parseUtcTime('2030-01-10'), new Date('2030-01-10T00:00:00Z'));
    assert.deepEqual(parseUtcTime('2030-01-10T12:30:00+02:00'), new Date('2030-01-10T10:30:00Z'));
    for (const bad of ['yesterday', '2030-13-45T99:99', '<script>']) assert.equal(parseUtcTime(bad), null, bad);
  });
});
