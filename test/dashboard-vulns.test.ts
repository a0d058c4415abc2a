/**
 * The CVE audit on the dashboard over real HTTPS: devices report their real packages (a Debian 12
 * system tree with a dpkg database) over mutual TLS with the agent, the shipped fixture feed is
 * imported (one record given an alias here, plus one hostile record), then the fleet page filters
 * by advisory ID or alias and by severity and counts each identity's advisories, the identity page
 * lists them, and the overview counts the identities with a critical one. Advisories come from
 * feeds, so their text is attacker-controlled: it is shown escaped.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { importAdvisories, parseAdvisories } from '../src/ca/vuln-import.js';
import { reportPosture } from '../src/agent/posture-report.js';
import { enrollAgent, startCaFixture, type CaFixture } from './helpers/ca-fixture.js';
import { caRequest, readIdentityPem, rootPemOf, type HttpResult } from './helpers/ca-http.js';
import { assertNoInjectedMarkup, HOSTILE, rowNames, rowOf } from './helpers/dashboard-page.js';
import { dpkgStatus, writeTree } from './helpers/system-tree.js';

const FEED = resolve('docs/examples/osv-fixture.json');
/** Every identity of the fixture: the CA's own two and the devices. */
const ALL = ['admin', 'gatehouse-ca', 'hostile-1', 'never-1', 'old-1', 'patched-1', 'sudo-1'];
const ESCAPED = '&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&#96;&amp;';

/** A Debian 12 root with these packages in dpkg's database ([name, version, source?]). */
function systemTree(dir: string, packages: Array<[string, string, string?]>): string {
  const status = dpkgStatus(packages);
  writeTree(dir, {
    'etc/os-release': 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
    'var/lib/dpkg/status': status,
  });
  return dir;
}

/** The advisories table of an identity page: [id, aliases, severity class, severity, package, installed, fixed]. */
function advisoryRows(res: HttpResult): string[][] {
  const table = /<table id="advisories-table">[\s\S]*?<\/table>/.exec(res.text)?.[0] ?? '';
  return [
    ...table.matchAll(
      /<tr><th scope="row" class="mono">([^<]+)<\/th><td class="mono">(.*?)<\/td><td><span class="badge severity-(\w+)">(\w+)<\/span><\/td><td class="mono">([^<]+)<\/td><td class="mono">([^<]+)<\/td><td class="mono">(.*?)<\/td><td>/g,
    ),
  ].map((m) => m.slice(1, 8));
}

describe('dashboard advisories over https', () => {
  let fixture: CaFixture;
  let admin: { key: string; cert: string };
  const before_: Record<string, HttpResult> = {};

  const dash = (path: string) => caRequest(fixture.url, path.replace(/^\//, ''), { ca: rootPemOf(fixture), ...admin });

  before(async () => {
    fixture = await startCaFixture();
    admin = readIdentityPem(fixture.adminDir);
    const systems: Record<string, Array<[string, string, string?]>> = {
      'old-1': [
        ['openssl', '3.0.11-1~deb12u2'],
        ['libssl3', '3.0.11-1~deb12u2', 'openssl'],
        ['sudo', '1.9.13p3-1+deb12u1'],
        ['zlib1g', '1:1.2.13.dfsg-1', 'zlib'],
        ['bash', '5.2.15-2+b2'],
      ],
      'sudo-1': [
        ['sudo', '1.9.13p3-1+deb12u1'],
        ['openssl', '3.0.15-1~deb12u1'],
      ],
      'patched-1': [
        ['openssl', '3.0.15-1~deb12u1'],
        ['sudo', '1.9.13p3-1+deb12u2'],
      ],
      'hostile-1': [['hostile-pkg', '1.0-1']],
    };
    for (const [name, packages] of Object.entries(systems)) {
      const { dir } = await enrollAgent(fixture, 'web', name);
      const sent = await reportPosture({ dir, root: systemTree(join(fixture.root, `system-${name}`), packages) });
      assert.equal(
        sent.received?.spiffeId,
        `spiffe://test.internal/web/${name}`,
        'reported over mTLS with its own certificate',
      );
    }
    await enrollAgent(fixture, 'gateway', 'never-1', { dns: ['localhost'] });
    for (const page of ['/dashboard/', '/dashboard/fleet', '/dashboard/identity/web/old-1'])
      before_[page] = await dash(page);

    const records = JSON.parse(readFileSync(FEED, 'utf8')) as Array<Record<string, unknown>>;
    const withAlias = records.map((r) =>
      r.id === 'GATEHOUSE-TEST-0001' ? { ...r, aliases: ['CVE-2026-40001', 'DSA-5999-1'] } : r,
    );
    const hostile = {
      id: 'GATEHOUSE-TEST-0099',
      modified: '2026-11-02T09:00:00Z',
      summary: `feed text ${HOSTILE}`,
      aliases: [HOSTILE],
      severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N' }],
      affected: [
        {
          package: { ecosystem: 'Debian:12', name: 'hostile-pkg' },
          ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '1.0-2' }] }],
        },
      ],
    };
    const advisories = parseAdvisories([...withAlias, hostile], (i) => `record ${i}`);
    assert.deepEqual(await importAdvisories(fixture.store, advisories, { actor: 'test' }, new Date()), {
      added: 7,
      updated: 0,
      unchanged: 0,
    });
  });
  after(async () => {
    await fixture?.close();
  });

  test('dashboard-vulns-nothing-imported-says-how-to-import', () => {
    const page = before_['/dashboard/identity/web/old-1']!;
    assert.equal(page.status, 200);
    assert.match(
      page.text,
      /<h2 id="posture">Posture<\/h2>[\s\S]*<h2 id="advisories">Advisories<\/h2>[\s\S]*<h2 id="chain">/,
      'after the posture section',
    );
    assert.match(page.text, /No advisories have been imported, so this device's packages have not been checked\./);
    assert.match(
      page.text,
      /<code>gatehouse vuln import FILE --dir CA_DIR<\/code> \(docs\/operations\.md, "CVE audit"\)/,
    );
    assert.doesNotMatch(page.text, /advisories-table/);
    assert.match(
      before_['/dashboard/']!.text,
      /<p id="advisories-critical">No advisories imported yet: <code>gatehouse vuln import FILE --dir CA_DIR<\/code>/,
    );
    for (const name of ['old-1', 'never-1'])
      assert.match(
        rowOf(before_['/dashboard/fleet']!, name),
        /<td><span class="muted">not checked<\/span><\/td>/,
        name,
      );
  });

  test('dashboard-vulns-fleet-counts-each-identitys-advisories-by-worst-severity', async () => {
    const fleet = await dash('/dashboard/fleet');
    assert.equal(fleet.status, 200);
    assert.match(fleet.text, /<th scope="col">Advisories<\/th>/);
    assert.match(
      rowOf(fleet, 'old-1'),
      /<td><a href="\/dashboard\/identity\/web\/old-1#advisories"><span class="badge severity-critical">3 \(critical\)<\/span><span class="visually-hidden"> advisories affect old-1 \(web\), the worst critical<\/span><\/a><\/td>/,
      'openssl (libssl3 counted once with it), sudo, zlib',
    );
    assert.match(rowOf(fleet, 'sudo-1'), /<span class="badge severity-high">1 \(high\)<\/span>/);
    assert.match(rowOf(fleet, 'hostile-1'), /<span class="badge severity-low">1 \(low\)<\/span>/);
    assert.deepEqual(rowNames(fleet), ALL);
    assert.match(rowOf(fleet, 'patched-1'), /<td><span class="muted">none<\/span><\/td>/);
    for (const name of ['never-1', 'admin', 'gatehouse-ca'])
      assert.match(rowOf(fleet, name), /<td><span class="muted">no report<\/span><\/td>/, name);
    for (const id of ['advisory', 'severity'])
      assert.match(fleet.text, new RegExp(`<label for="${id}">`), `label for ${id}`);
  });

  test('dashboard-vulns-fleet-filters-by-advisory-id-or-alias-case-insensitively', async () => {
    for (const advisory of [
      'GATEHOUSE-TEST-0001',
      'gatehouse-test-0001',
      'CVE-2026-40001',
      'cve-2026-40001',
      ' dsa-5999-1 ',
    ]) {
      const res = await dash(`/dashboard/fleet?advisory=${encodeURIComponent(advisory)}`);
      assert.equal(res.status, 200, advisory);
      assert.deepEqual(rowNames(res), ['old-1'], advisory);
      assert.doesNotMatch(res.text, /advisory-unknown/, advisory);
    }
    assert.match(
      (await dash('/dashboard/fleet?advisory=cve-2026-40001')).text,
      /<input id="advisory" name="advisory" type="text" value="cve-2026-40001"/,
    );
    assert.deepEqual(rowNames(await dash('/dashboard/fleet?advisory=GATEHOUSE-TEST-0002')), ['old-1', 'sudo-1']);
    // Together with the search, role, state and posture filters.
    assert.deepEqual(rowNames(await dash('/dashboard/fleet?advisory=GATEHOUSE-TEST-0002&q=sudo')), ['sudo-1']);
    assert.deepEqual(rowNames(await dash('/dashboard/fleet?advisory=GATEHOUSE-TEST-0002&role=web&state=active')), [
      'old-1',
      'sudo-1',
    ]);
    assert.deepEqual(rowNames(await dash('/dashboard/fleet?advisory=GATEHOUSE-TEST-0002&role=gateway')), []);
    assert.deepEqual(
      rowNames(await dash('/dashboard/fleet?advisory=GATEHOUSE-TEST-0002&stale=2h')),
      [],
      'both reported just now',
    );
    assert.deepEqual(rowNames(await dash('/dashboard/fleet?advisory=GATEHOUSE-TEST-0002&severity=critical')), [
      'old-1',
    ]);

    for (const unknown of ['CVE-1999-0001', 'GATEHOUSE-TEST-0004', HOSTILE.slice(0, 30)]) {
      const res = await dash(`/dashboard/fleet?advisory=${encodeURIComponent(unknown)}`);
      assert.equal(res.status, 200, unknown);
      assert.match(
        res.text,
        /<p class="notice" role="status" id="advisory-unknown">No imported advisory affects any identity as "/,
        unknown,
      );
      assert.deepEqual(rowNames(res), [], unknown);
      assertNoInjectedMarkup(res, unknown);
    }
    const tooLong = await dash(`/dashboard/fleet?advisory=${'A'.repeat(101)}`);
    assert.match(
      tooLong.text,
      /<div class="error" role="alert" id="filter-error"><p>&quot;Affected by advisory&quot; takes one advisory ID of at most 100 characters/,
    );
    assert.deepEqual(rowNames(tooLong), ALL, 'ignored: the unfiltered list');
  });

  test('dashboard-vulns-fleet-severity-filter-means-that-severity-or-worse', async () => {
    assert.deepEqual(rowNames(await dash('/dashboard/fleet?severity=critical')), ['old-1']);
    assert.deepEqual(rowNames(await dash('/dashboard/fleet?severity=high')), ['old-1', 'sudo-1']);
    assert.deepEqual(rowNames(await dash('/dashboard/fleet?severity=medium')), ['old-1', 'sudo-1']);
    assert.deepEqual(rowNames(await dash('/dashboard/fleet?severity=low')), ['hostile-1', 'old-1', 'sudo-1']);
    assert.match(
      (await dash('/dashboard/fleet?severity=high')).text,
      /<option value="high" selected>High or worse<\/option>/,
    );
    assert.deepEqual(rowNames(await dash('/dashboard/fleet?severity=high&q=sudo')), ['sudo-1']);
    const bad = await dash(`/dashboard/fleet?severity=${encodeURIComponent(HOSTILE)}`);
    assert.equal(bad.status, 200);
    assert.match(
      bad.text,
      /&quot;Advisory severity&quot; must be one of critical, high, medium, low; &quot;&lt;script&gt;/,
    );
    assert.deepEqual(rowNames(bad), ALL, 'ignored: the unfiltered list');
    assertNoInjectedMarkup(bad, 'hostile severity');
  });

  test('dashboard-vulns-identity-page-lists-the-matching-advisories', async () => {
    const page = await dash('/dashboard/identity/web/old-1');
    assert.equal(page.status, 200);
    assert.match(
      page.text,
      /<caption>Imported advisories that affect the packages of the latest report, most severe first<\/caption>/,
    );
    assert.match(
      page.text,
      /<th scope="col">Advisory<\/th><th scope="col">Aliases<\/th><th scope="col">Severity<\/th>/,
    );
    assert.deepEqual(advisoryRows(page), [
      [
        'GATEHOUSE-TEST-0001',
        'CVE-2026-40001, DSA-5999-1',
        'critical',
        'Critical',
        'openssl',
        '3.0.11-1~deb12u2',
        '3.0.15-1~deb12u1',
      ],
      [
        'GATEHOUSE-TEST-0002',
        '<span class="muted">none</span>',
        'high',
        'High',
        'sudo',
        '1.9.13p3-1+deb12u1',
        '1.9.13p3-1+deb12u2',
      ],
      [
        'GATEHOUSE-TEST-0003',
        '<span class="muted">none</span>',
        'medium',
        'Medium',
        'zlib',
        '1:1.2.13.dfsg-1',
        '<span class="muted">no fix yet</span>',
      ],
    ]);
    assert.ok(
      page.text.includes('<td>Fixture: zlib heap overflow, no fix published yet (epoch 1)</td>'),
      'the summary',
    );

    const patched = await dash('/dashboard/identity/web/patched-1');
    assert.match(
      patched.text,
      /<p id="advisories-none">None of the 7 imported advisories affects the packages of this device's latest report\./,
    );
    assert.match(
      (await dash('/dashboard/identity/gateway/never-1')).text,
      /<h2 id="advisories">Advisories<\/h2><p id="advisories-none">None of the 7/,
    );
  });

  test('dashboard-vulns-advisory-text-from-the-feed-is-shown-escaped', async () => {
    const page = await dash('/dashboard/identity/web/hostile-1');
    assert.equal(page.status, 200);
    assertNoInjectedMarkup(page, 'identity page with a hostile advisory');
    assert.deepEqual(
      advisoryRows(page).map((r) => r.slice(0, 3)),
      [['GATEHOUSE-TEST-0099', ESCAPED, 'low']],
    );
    assert.ok(page.text.includes(`<td>feed text ${ESCAPED}</td></tr>`), 'the summary, as text');
    // Matching the hostile alias works on the text, and the page shows it escaped.
    const filtered = await dash(`/dashboard/fleet?advisory=${encodeURIComponent(HOSTILE)}`);
    assert.deepEqual(rowNames(filtered), ['hostile-1']);
    assertNoInjectedMarkup(filtered, 'fleet filtered by the hostile alias');
  });

  test('dashboard-vulns-overview-counts-identities-with-a-critical-advisory', async () => {
    const overview = await dash('/dashboard/');
    assert.equal(overview.status, 200);
    assert.match(
      overview.text,
      /<p id="advisories-critical"><a href="\/dashboard\/fleet\?severity=critical">1 active identity is affected by at least one critical advisory<\/a>\.<\/p>/,
    );
  });
});
