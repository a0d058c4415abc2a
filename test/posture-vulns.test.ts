/**
 * The CVE audit: CVSS v3 base scores against NVD's published ones, OSV records checked and
 * reduced, ranges evaluated with dpkg's version order (cross-checked with dpkg itself), and the
 * whole path against a real CA: a device reports its packages, `vuln import` loads the shipped
 * fixture feed, `fleet vulns` names the device under the advisories that affect it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cvss3BaseScore, ratingOf } from '../src/posture/vulns/cvss.js';
import { parseOsv, type Advisory } from '../src/posture/vulns/osv.js';
import { affects, AdvisoryIndex, ecosystemOf } from '../src/posture/vulns/match.js';
import { enrollAgent, startCaFixture } from './helpers/ca-fixture.js';
import { caRequest } from './helpers/ca-http.js';
import { gatehouse } from './helpers/cli.js';
import { reportPosture } from '../src/agent/posture-report.js';
import { run } from './helpers/run.js';
import { dpkgStatus, writeTree } from './helpers/system-tree.js';

const FEED = resolve('docs/examples/osv-fixture.json');

test('cvss3-base-scores-equal-nvds-for-known-vulnerabilities', () => {
  const known: Array<[string, number, string]> = [
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H', 10.0, 'CVE-2021-44228 (Log4Shell)'],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', 9.8, 'CVE-2022-22965'],
    ['CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H', 7.8, 'CVE-2021-3156 (sudo Baron Samedit)'],
    ['CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N', 7.5, 'CVE-2014-0160 (Heartbleed)'],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N', 6.1, 'a reflected XSS'],
    ['CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N', 5.9, 'CVE-2016-2183 (Sweet32)'],
    ['CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N', 1.6, 'the smallest non-zero kind'],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N', 0, 'no impact'],
    ['CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H', 9.9, 'scope changed, low privileges (PR weighs 0.68)'],
  ];
  for (const [vector, score, what] of known) assert.equal(cvss3BaseScore(vector), score, `${what}: ${vector}`);
  assert.deepEqual([9.8, 7.8, 6.1, 1.6, 0].map(ratingOf), ['critical', 'high', 'medium', 'low', 'none']);
  for (const bad of [
    'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N',
    'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H',
    'CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
    'AV:N/AC:L',
    'CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
  ]) {
    assert.equal(cvss3BaseScore(bad), null, bad);
  }
});

const base = { id: 'DSA-1-1', modified: '2026-01-01T00:00:00Z' };

test('osv-records-are-checked-and-reduced-to-what-is-matched', () => {
  const parsed = parseOsv({
    ...base,
    aliases: ['CVE-2026-0001'],
    summary: 'one line\nand more',
    unknownField: { future: true },
    severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H' }],
    affected: [
      {
        package: { ecosystem: 'Debian:12', name: 'sudo' },
        ranges: [
          { type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '1.9.13p3-1+deb12u1' }] },
          { type: 'GIT', repo: 'https://example.invalid/x', events: [{ introduced: 'abc' }] },
        ],
        ecosystem_specific: { urgency: 'unimportant' },
      },
    ],
  });
  assert.ok(parsed.ok, JSON.stringify(parsed));
  const a = parsed.advisory;
  assert.equal(a.summary, 'one line');
  assert.equal(a.severity, 'high', 'the most severe rating given: CVSS 7.8 over Debian\'s "unimportant"');
  assert.equal(a.cvss, 7.8);
  assert.deepEqual(
    a.affected,
    [
      {
        ecosystem: 'Debian:12',
        name: 'sudo',
        ranges: [[{ introduced: '0' }, { fixed: '1.9.13p3-1+deb12u1' }]],
        versions: [],
      },
    ],
    'GIT ranges dropped',
  );
  assert.equal(
    (parseOsv({ ...base, database_specific: { severity: 'MODERATE' } }) as { advisory: Advisory }).advisory.severity,
    'medium',
    "GitHub's word",
  );
  assert.equal((parseOsv(base) as { advisory: Advisory }).advisory.severity, 'unknown');

  const problems = (v: unknown) => (parseOsv(v) as { ok: false; problems: string[] }).problems.join('; ');
  assert.match(problems({ id: 'X-1' }), /modified/);
  assert.match(problems({ ...base, id: '../etc/passwd' }), /^id:/);
  assert.match(
    problems({
      ...base,
      affected: [
        {
          package: { ecosystem: 'Debian:12', name: 'x' },
          ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0', fixed: '1' }] }],
        },
      ],
    }),
    /exactly one of/,
  );
  assert.match(problems({ ...base, affected: 'all' }), /^affected:/);
  assert.match(problems([base]), /top level/);
});

function advisory(
  ranges: Advisory['affected'][number]['ranges'],
  versions: string[] = [],
): Advisory['affected'][number] {
  return { ecosystem: 'Debian:12', name: 'p', ranges, versions };
}

test('osv-ranges-evaluated-in-dpkg-version-order-and-agree-with-dpkg', async () => {
  const cases: Array<[Advisory['affected'][number], string, boolean, string | null]> = [
    [advisory([[{ introduced: '0' }, { fixed: '3.0.15-1~deb12u1' }]]), '3.0.11-1~deb12u2', true, '3.0.15-1~deb12u1'],
    [advisory([[{ introduced: '0' }, { fixed: '3.0.15-1~deb12u1' }]]), '3.0.15-1~deb12u1', false, null],
    [advisory([[{ introduced: '0' }, { fixed: '3.0.15-1~deb12u1' }]]), '3.0.15-1', false, null], // ~ sorts before the end
    [advisory([[{ introduced: '0' }, { fixed: '3.0.15-1' }]]), '3.0.15-1~deb12u1', true, '3.0.15-1'],
    [
      advisory([[{ introduced: '1:1.2.11.dfsg-1' }, { lastAffected: '1:1.2.13.dfsg-1' }]]),
      '1:1.2.13.dfsg-1',
      true,
      null,
    ],
    [advisory([[{ introduced: '1:1.2.11.dfsg-1' }, { lastAffected: '1:1.2.13.dfsg-1' }]]), '1.9.9', false, null], // no epoch is epoch 0
    [
      advisory([[{ introduced: '1:1.2.11.dfsg-1' }, { lastAffected: '1:1.2.13.dfsg-1' }]]),
      '1:1.2.13.dfsg-1+b1',
      false,
      null,
    ],
    // Two ranges in one list of events, given out of order: sorted first.
    [advisory([[{ fixed: '2.5' }, { introduced: '2.0' }, { fixed: '1.0' }, { introduced: '0' }]]), '2.1', true, '2.5'],
    [advisory([[{ fixed: '2.5' }, { introduced: '2.0' }, { fixed: '1.0' }, { introduced: '0' }]]), '1.5', false, null],
    [advisory([[{ fixed: '2.5' }, { introduced: '2.0' }, { fixed: '1.0' }, { introduced: '0' }]]), '0.9', true, '1.0'],
    [advisory([], ['1.0-1', '1.0-2']), '1.0-2', true, null],
    [advisory([], ['1.0-1', '1.0-2']), '1.0-3', false, null],
    [advisory([[{ introduced: '0' }]]), 'not a version!', false, null],
  ];
  for (const [a, version, expected, fixed] of cases) {
    assert.deepEqual(
      affects(a, version),
      { affected: expected, fixed },
      `${version} in ${JSON.stringify(a.ranges)} ${JSON.stringify(a.versions)}`,
    );
    // dpkg decides the same for each bound the verdict rests on.
    for (const e of a.ranges.flat()) {
      if (e.fixed && version !== 'not a version!') {
        const below = (await run('dpkg', ['--compare-versions', version, 'lt', e.fixed])).status === 0;
        assert.equal(
          below,
          affects(advisory([[{ introduced: '0' }, { fixed: e.fixed }]]), version).affected,
          `dpkg: ${version} lt ${e.fixed}`,
        );
      }
    }
  }
});

test('an-index-matches-source-packages-of-the-devices-ecosystem-and-skips-withdrawn-ones', () => {
  const record = (id: string, ecosystem: string, name: string, extra: object = {}) =>
    (
      parseOsv({
        ...base,
        id,
        ...extra,
        affected: [
          {
            package: { ecosystem, name },
            ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '2.0' }] }],
          },
        ],
      }) as { advisory: Advisory }
    ).advisory;
  const index = new AdvisoryIndex([
    record('A-1', 'Debian:12', 'openssl'),
    record('A-2', 'Debian:11', 'openssl'),
    record('A-3', 'Debian:12', 'openssl', { withdrawn: '2026-01-02T00:00:00Z' }),
    record('A-4', 'Ubuntu:22.04:LTS', 'openssl'),
    record('A-5', 'PyPI', 'openssl'),
  ]);
  const pkgs = [
    { name: 'libssl3', version: '1.5', source: 'openssl', sourceVersion: '1.5', architecture: 'amd64' },
    { name: 'openssl', version: '1.5', source: 'openssl', sourceVersion: '1.5', architecture: 'amd64' },
  ];
  assert.deepEqual(
    index.match('Debian:12', pkgs).map((m) => [m.id, m.package, m.installed, m.fixed]),
    [['A-1', 'openssl', '1.5', '2.0']],
    'once per source package; not Debian 11, not withdrawn',
  );
  assert.deepEqual(
    index.match('Ubuntu:22.04', pkgs).map((m) => m.id),
    ['A-4'],
  );
  assert.equal(ecosystemOf({ id: 'debian', versionId: '12' }), 'Debian:12');
  assert.equal(ecosystemOf({ id: 'debian', versionId: '12.8' }), 'Debian:12');
  assert.equal(ecosystemOf({ id: 'ubuntu', versionId: '22.04' }), 'Ubuntu:22.04');
  assert.equal(ecosystemOf({ id: 'alpine', versionId: '3.20' }), null);
  assert.equal(ecosystemOf(undefined), null);
});

function systemTree(dir: string, packages: Array<[string, string]>): string {
  const status = dpkgStatus(packages);
  writeTree(dir, {
    'etc/os-release': 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
    'var/lib/dpkg/status': status,
  });
  return dir;
}

test('vuln-import-loads-the-fixture-feed-and-fleet-vulns-names-the-affected-devices', async () => {
  const fixture = await startCaFixture();
  try {
    const old = await enrollAgent(fixture, 'web', 'old-server');
    const patched = await enrollAgent(fixture, 'web', 'patched-server');
    await reportPosture({
      dir: old.dir,
      root: systemTree(join(fixture.root, 'old'), [
        ['openssl', '3.0.11-1~deb12u2'],
        ['sudo', '1.9.13p3-1+deb12u1'],
        ['zlib1g', '1:1.2.13.dfsg-1'],
        ['bash', '5.2.15-2+b2'],
        ['curl', '7.88.1-10+deb12u5'],
      ]),
    });
    await reportPosture({
      dir: patched.dir,
      root: systemTree(join(fixture.root, 'patched'), [
        ['openssl', '3.0.15-1~deb12u1'],
        ['sudo', '1.9.13p3-1+deb12u2'],
      ]),
    });
    // zlib1g is built from source zlib: the advisory names the source.
    const status = join(fixture.root, 'old', 'var/lib/dpkg/status');
    writeFileSync(status, readFileSync(status, 'utf8').replace('Package: zlib1g\n', 'Package: zlib1g\nSource: zlib\n'));
    await reportPosture({ dir: old.dir, root: join(fixture.root, 'old') });

    const imported = await gatehouse(['vuln', 'import', FEED, '--dir', fixture.caDir, '--json']);
    assert.equal(imported.status, 0, imported.stderr);
    assert.deepEqual(JSON.parse(imported.stdout), { added: 6, updated: 0, unchanged: 0 });
    const again = await gatehouse(['vuln', 'import', FEED, '--dir', fixture.caDir]);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /read: +6\nadded: +0\nupdated: +0\nunchanged: +6/);

    const listed = await gatehouse(['fleet', 'vulns', '--dir', fixture.caDir, '--json']);
    assert.equal(listed.status, 0, listed.stderr);
    const vulns = JSON.parse(listed.stdout) as Array<{
      id: string;
      severity: string;
      identities: Array<{ name: string; package: string; installed: string; fixed: string | null }>;
    }>;
    assert.deepEqual(
      vulns.map((v) => [v.id, v.severity, v.identities.map((i) => `${i.name} ${i.package} ${i.installed} ${i.fixed}`)]),
      [
        ['GATEHOUSE-TEST-0001', 'critical', ['old-server openssl 3.0.11-1~deb12u2 3.0.15-1~deb12u1']],
        ['GATEHOUSE-TEST-0002', 'high', ['old-server sudo 1.9.13p3-1+deb12u1 1.9.13p3-1+deb12u2']],
        ['GATEHOUSE-TEST-0003', 'medium', ['old-server zlib 1:1.2.13.dfsg-1 null']],
      ],
      'Debian 11, withdrawn and PyPI advisories match nothing; the patched server nothing',
    );
    const text = await gatehouse(['fleet', 'vulns', '--dir', fixture.caDir]);
    assert.match(text.stdout, /GATEHOUSE-TEST-0003 +medium +1 +old-server \(zlib 1:1\.2\.13\.dfsg-1, no fix yet\)/);

    // Through the admin API, with an admin identity: the same view, and imports in batches.
    const admin = await enrollAgent(fixture, 'admin', 'ops');
    const remote = await gatehouse(['fleet', 'vulns', '--identity', admin.dir, '--ca', fixture.url, '--json']);
    assert.equal(remote.status, 0, remote.stderr);
    assert.deepEqual(JSON.parse(remote.stdout), vulns);
    const updated = (JSON.parse(readFileSync(FEED, 'utf8')) as Array<Record<string, unknown>>).map((r) => ({
      ...r,
      modified: '2026-12-01T00:00:00Z',
    }));
    writeFileSync(join(fixture.root, 'newer.json'), JSON.stringify(updated));
    const remoteImport = await gatehouse([
      'vuln',
      'import',
      join(fixture.root, 'newer.json'),
      '--identity',
      admin.dir,
      '--ca',
      fixture.url,
      '--json',
    ]);
    assert.equal(remoteImport.status, 0, remoteImport.stderr);
    assert.deepEqual(JSON.parse(remoteImport.stdout), { added: 0, updated: 6, unchanged: 0 });
    const events = await fixture.store.listAudit({ type: 'ca.advisories_imported' });
    assert.deepEqual(
      events.map((e) => [e.actor.startsWith('local:') ? 'local' : e.actor, e.details.added, e.details.updated]),
      [
        ['local', 6, 0],
        ['local', 0, 0],
        ['spiffe://test.internal/admin/ops', 0, 6],
      ],
    );

    // A bad record anywhere: nothing imported, the record named.
    const bad = [
      ...updated.slice(0, 2).map((r) => ({ ...r, modified: '2027-01-01T00:00:00Z' })),
      { id: 'GATEHOUSE-TEST-0099', modified: 'yesterday' },
    ];
    writeFileSync(join(fixture.root, 'bad.json'), JSON.stringify(bad));
    for (const target of [
      ['--dir', fixture.caDir],
      ['--identity', admin.dir, '--ca', fixture.url],
    ]) {
      const refused = await gatehouse(['vuln', 'import', join(fixture.root, 'bad.json'), ...target]);
      assert.equal(refused.status, 65, refused.stderr);
      assert.match(refused.stderr, /GH_ADVISORY_INVALID/);
      assert.match(refused.stderr, /bad\.json record 2 is not a valid OSV record: modified/);
    }
    assert.ok(
      (await fixture.store.listAdvisories()).every((a) => a.modified === '2026-12-01T00:00:00.000Z'),
      'nothing of the bad file imported',
    );
    const notJson = join(fixture.root, 'not.json');
    writeFileSync(notJson, '{');
    assert.match(
      (await gatehouse(['vuln', 'import', notJson, '--dir', fixture.caDir])).stderr,
      /not\.json is not JSON/,
    );
    assert.equal(
      (await gatehouse(['vuln', 'import', join(fixture.root, 'missing.json'), '--dir', fixture.caDir])).status,
      74,
    );

    // The admin API bounds what it takes, and only admins may import.
    const device = {
      ca: readFileSync(join(old.dir, 'ca.pem'), 'utf8'),
      key: readFileSync(join(old.dir, 'key.pem'), 'utf8'),
      cert: readFileSync(join(old.dir, 'cert.pem'), 'utf8'),
    };
    const forbidden = await caRequest(fixture.url, 'admin/vulns', { ...device, body: { advisories: [] } });
    assert.equal(forbidden.status, 403, forbidden.text);
  } finally {
    await fixture.close();
  }
});
