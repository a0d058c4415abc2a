/**
 * Posture on the dashboard over real HTTPS: devices post reports to POST /v1/posture with their
 * own certificates (the CA scores them), then the fleet page shows each score and filters by
 * "Score below" and "Report older than" (the CA's clock moved on for a stale report), the
 * overview counts devices by rating, and the identity page lists every check, failing first.
 * A report is written by the device, so it is attacker-controlled: its text is shown escaped.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCaFixture, type CaFixture } from './helpers/ca-fixture.js';
import { caRequest, enrollIdentity, readIdentityPem, rootPemOf, type EnrolledIdentity } from './helpers/ca-http.js';
import { assertNoInjectedMarkup, HOSTILE, rowNames, rowOf } from './helpers/dashboard-page.js';

const H = 3_600_000;

type Check = { id: string; verdict: 'pass' | 'fail' | 'unknown'; weight: number; reason: string };

function report(checks: Check[], hostname = 'host-1'): object {
  return {
    format: 1,
    collectedAt: new Date().toISOString(),
    score: 100,
    failing: [],
    checks,
    facts: {
      hostname,
      kernel: '6.1.0-18-amd64',
      uptimeSeconds: 90_061,
      bootedAt: new Date(Date.now() - 90_061_000).toISOString(),
    },
    packages: null,
  };
}

const PASS_ALL: Check[] = [
  { id: 'os-supported', verdict: 'pass', weight: 30, reason: 'Debian 12 is supported' },
  { id: 'ssh-root-login', verdict: 'pass', weight: 20, reason: 'sshd refuses root logins' },
];
// 20 of 70 decided: score 29 (poor). The unknown check counts neither way.
const WEAK: Check[] = [
  { id: 'time-sync', verdict: 'pass', weight: 20, reason: 'the clock is synchronized' },
  { id: 'auto-updates', verdict: 'unknown', weight: 10, reason: 'not readable without root' },
  { id: 'ssh-root-login', verdict: 'fail', weight: 20, reason: 'sshd allows root to log in with a password' },
  { id: 'os-supported', verdict: 'fail', weight: 30, reason: 'Debian 9 is no longer supported' },
];

describe('dashboard posture over https', () => {
  let fixture: CaFixture;
  let admin: { key: string; cert: string };
  let offsetMs = 0;
  const devices: Record<string, EnrolledIdentity> = {};

  const dash = (path: string) => caRequest(fixture.url, path.replace(/^\//, ''), { ca: rootPemOf(fixture), ...admin });
  const post = async (name: string, body: object) => {
    const d = devices[name]!;
    const res = await caRequest(fixture.url, 'v1/posture', {
      ca: rootPemOf(fixture),
      key: d.keyPem,
      cert: d.certPem,
      body,
    });
    assert.equal(res.status, 201, `${name}: ${res.text}`);
    return res.json as { score: number | null };
  };

  before(async () => {
    fixture = await startCaFixture({ now: () => new Date(Date.now() + offsetMs) });
    admin = readIdentityPem(fixture.adminDir);
    for (const name of ['strong-1', 'weak-1', 'old-1', 'never-1', 'hostile-1'])
      devices[name] = await enrollIdentity(fixture, { role: 'web', name });
    // old-1 reports, then three hours pass on the CA's clock before the others report.
    assert.equal((await post('old-1', report(PASS_ALL))).score, 100);
    offsetMs = 3 * H;
    assert.equal((await post('strong-1', report(PASS_ALL))).score, 100);
    assert.equal((await post('weak-1', report(WEAK))).score, 29, 'the CA scores the checks, not the claimed 100');
    await post(
      'hostile-1',
      report(
        [
          { id: 'os-supported', verdict: 'pass', weight: 30, reason: `fine ${HOSTILE}` },
          { id: 'time-sync', verdict: 'fail', weight: 1, reason: HOSTILE },
        ],
        HOSTILE,
      ),
    );
  });
  after(async () => {
    await fixture?.close();
  });

  test('dashboard-posture-fleet-shows-each-score-band-and-report-age', async () => {
    const fleet = await dash('/dashboard/fleet');
    assert.equal(fleet.status, 200);
    assert.match(fleet.text, /<th scope="col">Posture<\/th>/);
    assert.match(
      rowOf(fleet, 'strong-1'),
      /<span class="badge good">100 \(good\)<\/span><br><span class="muted">reported \d+ s ago<\/span>/,
    );
    assert.match(rowOf(fleet, 'weak-1'), /<span class="badge poor">29 \(poor\)<\/span>/);
    assert.match(rowOf(fleet, 'hostile-1'), /<span class="badge good">97 \(good\)<\/span>/);
    assert.match(
      rowOf(fleet, 'old-1'),
      /<span class="badge good">100 \(good\)<\/span><br><span class="muted">reported 3 h \d+ min ago<\/span>/,
    );
    for (const name of ['never-1', 'admin'])
      assert.match(rowOf(fleet, name), /<span class="badge none">No report<\/span><\/td>/, name);
    for (const id of ['below', 'stale']) assert.match(fleet.text, new RegExp(`<label for="${id}">`), `label for ${id}`);
  });

  test('dashboard-posture-fleet-below-and-stale-filters-count-the-never-reported-in', async () => {
    const below = await dash('/dashboard/fleet?below=70');
    assert.equal(below.status, 200);
    assert.deepEqual(rowNames(below), ['admin', 'never-1', 'weak-1'], 'the weak device and those that never reported');
    assert.match(below.text, /<input id="below" name="below" type="number" min="1" max="100" step="1" value="70"/);
    assert.deepEqual(
      rowNames(await dash('/dashboard/fleet?below=100')),
      ['admin', 'hostile-1', 'never-1', 'weak-1'],
      'below is strict',
    );

    const stale = await dash('/dashboard/fleet?stale=2h');
    assert.deepEqual(
      rowNames(stale),
      ['admin', 'never-1', 'old-1'],
      'the 3 h old report and those that never reported',
    );
    assert.match(stale.text, /<option value="2h" selected>2 hours<\/option>/);
    assert.deepEqual(rowNames(await dash('/dashboard/fleet?stale=24h')), ['admin', 'never-1']);

    // Together with each other and with the search, role and state filters.
    assert.deepEqual(rowNames(await dash('/dashboard/fleet?below=70&stale=2h')), ['admin', 'never-1']);
    assert.deepEqual(rowNames(await dash('/dashboard/fleet?below=70&role=web')), ['never-1', 'weak-1']);
    assert.deepEqual(rowNames(await dash('/dashboard/fleet?below=70&q=weak&state=active')), ['weak-1']);
    assert.deepEqual(
      rowNames(await dash('/dashboard/fleet?stale=2h&state=revoked')),
      [],
      'a revoked identity can no longer report',
    );
  });

  test('dashboard-posture-invalid-filters-are-ignored-with-a-notice-never-an-error', async () => {
    const all = rowNames(await dash('/dashboard/fleet'));
    assert.ok(all.length >= 6, all.join(', '));
    for (const [query, message] of [
      ['below=abc', /&quot;Score below&quot; must be a whole number from 1 to 100; &quot;abc&quot; was ignored\./],
      ['below=0', /&quot;0&quot; was ignored/],
      ['below=101', /&quot;101&quot; was ignored/],
      ['below=5.5', /&quot;5\.5&quot; was ignored/],
      ['stale=5y', /&quot;Report older than&quot; must be one of 1h, 2h, 24h, 7d; &quot;5y&quot; was ignored\./],
      [
        `below=${encodeURIComponent(HOSTILE)}&stale=${encodeURIComponent(HOSTILE)}`,
        /&lt;script&gt;alert\(1\)&lt;\/script&gt;/,
      ],
    ] as const) {
      const res = await dash(`/dashboard/fleet?${query}`);
      assert.equal(res.status, 200, query);
      assert.match(res.text, /<div class="error" role="alert" id="filter-error">/, query);
      assert.match(res.text, message, query);
      assert.deepEqual(rowNames(res), all, `${query}: the unfiltered list`);
      assertNoInjectedMarkup(res, query);
    }
    const half = await dash('/dashboard/fleet?below=abc&stale=2h');
    assert.deepEqual(rowNames(half), ['admin', 'never-1', 'old-1'], 'the valid filter still applies');
  });

  test('dashboard-posture-identity-page-lists-every-check-failing-first', async () => {
    const page = await dash('/dashboard/identity/web/weak-1');
    assert.equal(page.status, 200);
    assert.match(page.text, /<h2 id="posture">Posture<\/h2>/);
    assert.match(page.text, /<dt>Score<\/dt><dd><span class="badge poor">29 \(poor\)<\/span>/);
    assert.match(
      page.text,
      /<dt>Reported at<\/dt><dd><time datetime="[^"]+">[^<]+<\/time> <span class="muted">\(\d+ s ago\)<\/span><\/dd>/,
    );
    assert.match(page.text, /<dt>Hostname<\/dt><dd class="mono">host-1<\/dd>/);
    assert.match(page.text, /<dt>Kernel<\/dt><dd class="mono">6\.1\.0-18-amd64<\/dd>/);
    assert.match(page.text, /<dt>Uptime<\/dt><dd>1d 1h/);
    assert.match(page.text, /<caption>Checks of the latest report, failing first<\/caption>/);
    const rows = [
      ...page.text.matchAll(
        /<tr><th scope="row" class="mono">([a-z-]+)<\/th><td><span class="badge (\w+)">(\w+)<\/span><\/td><td class="num">(\d+)<\/td><td>([^<]*)<\/td><\/tr>/g,
      ),
    ].map((m) => [m[1], m[2], m[3], m[4], m[5]]);
    assert.deepEqual(rows, [
      ['os-supported', 'fail', 'Fail', '30', 'Debian 9 is no longer supported'],
      ['ssh-root-login', 'fail', 'Fail', '20', 'sshd allows root to log in with a password'],
      ['auto-updates', 'unknown', 'Unknown', '10', 'not readable without root'],
      ['time-sync', 'pass', 'Pass', '20', 'the clock is synchronized'],
    ]);

    const never = await dash('/dashboard/identity/web/never-1');
    assert.match(never.text, /This device has not reported its posture\./);
    assert.match(never.text, /<code>gatehouse agent report --dir IDENTITY_DIR<\/code>/);
    assert.doesNotMatch(never.text, /<caption>Checks/);
  });

  test('dashboard-posture-report-text-from-the-device-is-shown-escaped', async () => {
    const stored = (await fixture.store.postureHistory(devices['hostile-1']!.spiffeId, 1))[0]!;
    assert.ok(stored.report.includes('<script>alert(1)</script>'), 'the raw text is stored as the device sent it');
    const page = await dash('/dashboard/identity/web/hostile-1');
    assert.equal(page.status, 200);
    assertNoInjectedMarkup(page, 'identity page with a hostile report');
    const escaped = '&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&#96;&amp;';
    assert.ok(page.text.includes(`<td>${escaped}</td></tr>`), 'the reason, as text');
    assert.ok(page.text.includes(`<td>fine ${escaped}</td></tr>`));
    assert.ok(page.text.includes(`<dt>Hostname</dt><dd class="mono">${escaped}</dd>`), 'the hostname, as text');
  });

  test('dashboard-posture-overview-counts-by-rating-and-links-the-filters', async () => {
    const overview = await dash('/dashboard/');
    assert.equal(overview.status, 200);
    const cell = (label: string) =>
      new RegExp(
        `<tr><th scope="row"><span class="badge \\w+">${label}</span></th><td>([^<]+)</td><td class="num">(.*?)</td></tr>`,
      ).exec(overview.text);
    assert.deepEqual(cell('Good')?.slice(1), ['90–100', '3'], 'strong-1, old-1, hostile-1');
    assert.deepEqual(cell('Fair')?.slice(1), ['70–89', '0']);
    assert.deepEqual(cell('Poor')?.slice(1), [
      '0–69',
      '<a href="/dashboard/fleet?below=70">1<span class="visually-hidden"> poor: identities with a score below 70 or none</span></a>',
    ]);
    assert.deepEqual(
      cell('No report')?.slice(1),
      ['never reported, or no check decided', '2'],
      'never-1 and the admin',
    );
    assert.match(
      overview.text,
      /<a href="\/dashboard\/fleet\?stale=2h">3 active identities have not reported in 2h<\/a> \(or never\)\./,
    );
  });
});
