/**
 * `gatehouse check` as cron runs it: the real CLI against a running fixture CA with short
 * lifetimes (web certificates 1 h, CRLs 2 h renewed 30 m before nextUpdate), looking ahead
 * with --at instead of sleeping.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import YAML from 'yaml';
import { startCaFixture, type CaFixture } from './helpers/ca-fixture.js';
import { caRequest, enrollIdentity, newCsr, rootPemOf, type EnrolledIdentity } from './helpers/ca-http.js';
import { gatehouse } from './helpers/cli.js';

const HOUR = 3_600_000;
const shortLifetimes = (yaml: string) => {
  const doc = YAML.parse(yaml) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- a YAML document, edited anywhere
  doc.roles.web.lifetime = '1h';
  doc.crl = { lifetime: '2h', renewBefore: '30m' };
  return YAML.stringify(doc);
};

let fixture: CaFixture;
const ids: Record<string, EnrolledIdentity> = {};
let renewedSerial = '';

interface Finding {
  level: string;
  kind: string;
  name: string;
  role: string | null;
  serial: string | null;
  crlNumber: string | null;
  notAfter: string | null;
  remainingSeconds: number | null;
  message: string;
}
interface Report {
  level: string;
  at: string;
  windowSeconds: number;
  findings: Finding[];
  checked: {
    activeCertificates: number;
    caCertificates: Array<{ role: string; notAfter: string }>;
    crls: Array<{ scope: string; number: string; nextUpdate: string; thresholdSeconds: number }>;
  };
}

async function check(
  args: string[],
  dir = fixture.caDir,
): Promise<{ status: number | null; report: Report; stdout: string }> {
  const r = await gatehouse(['check', '--dir', dir, '--json', ...args]);
  return { status: r.status, report: JSON.parse(r.stdout) as Report, stdout: r.stdout };
}
const iso = (ms: number) => new Date(ms).toISOString();

before(async () => {
  fixture = await startCaFixture({ configEdit: shortLifetimes });
  for (const name of ['web-a', 'web-b', 'web-c']) ids[name] = await enrollIdentity(fixture, { role: 'web', name });
  ids['gw-d'] = await enrollIdentity(fixture, { role: 'gateway', name: 'gw-d', dns: ['localhost'] });
  // web-b renews (its first certificate stays active but is superseded); web-c is revoked.
  const { csr } = await newCsr({ commonName: 'web-b' });
  const renewed = await caRequest(fixture.url, 'renew', {
    method: 'POST',
    ca: rootPemOf(fixture),
    body: { csr },
    key: ids['web-b']!.keyPem,
    cert: ids['web-b']!.certPem,
  });
  assert.equal(renewed.status, 201, renewed.text);
  renewedSerial = renewed.json.serial as string;
  await fixture.server.authority.revokeCertificate(ids['web-c']!.serial, 'keyCompromise', { actor: 'test' });
  await fixture.server.crls.refresh();
});

after(async () => {
  await fixture?.close();
});

test('check-ok-when-nothing-runs-out-within-the-window', async () => {
  const r = await gatehouse(['check', '--dir', fixture.caDir, '--expiring-within', '30m']);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(
    r.stdout,
    /^OK: nothing runs out within 30m \(\d+ active certificates; intermediate CRL #\d+ until \S+, root CRL #1 until \S+\)\n$/,
  );
});

test('check-warns-for-each-identity-newest-certificate-in-the-window-not-renewed-revoked-or-longer-lived-ones', async () => {
  const { status, report } = await check(['--expiring-within', '2h']);
  assert.equal(status, 1);
  assert.equal(report.level, 'WARNING');
  assert.deepEqual(
    report.findings.map((f) => [f.level, f.kind, f.name, f.role, f.serial]).sort(),
    [
      ['WARNING', 'certificate', 'web-a', 'web', ids['web-a']!.serial],
      ['WARNING', 'certificate', 'web-b', 'web', renewedSerial],
    ].sort(),
    'not the superseded web-b certificate, not revoked web-c, not the 24 h gateway, admin and CA server certificates',
  );
  const a = report.findings.find((f) => f.name === 'web-a')!;
  assert.equal(a.notAfter, ids['web-a']!.response.notAfter);
  assert.ok(a.remainingSeconds! > 3000 && a.remainingSeconds! <= 3600, `remaining ${a.remainingSeconds}`);
  assert.match(a.message, /^spiffe:\/\/test\.internal\/web\/web-a expires in 5\dm \d+s and has no successor/);

  const text = await gatehouse(['check', '--dir', fixture.caDir, '--expiring-within', '2h']);
  assert.equal(text.status, 1);
  assert.match(
    text.stdout,
    /^WARNING: 2 findings within 2h \(as of \S+\)\nLEVEL +KIND +NAME +ROLE +SERIAL +NOTAFTER +REMAINING\n/,
  );
  assert.match(text.stdout, new RegExp(`WARNING +certificate +web-a +web +${ids['web-a']!.serial} +\\S+ +5\\dm \\d+s`));
});

test('check-crl-inside-its-renew-margin-warns-and-past-next-update-is-critical', async () => {
  const now = await check(['--expiring-within', '1h']);
  const crl = now.report.checked.crls.find((c) => c.scope === 'intermediate')!;
  assert.equal(crl.thresholdSeconds, 1800, 'min(window 1h, crl.renewBefore 30m)');
  const nextUpdate = Date.parse(crl.nextUpdate);
  assert.ok(nextUpdate - Date.now() > 1.9 * HOUR, 'the CRL has its 2 h lifetime');

  // 40 minutes before nextUpdate: outside the 30 m margin. 10 minutes before: inside it.
  // (The web certificates have expired by then and are no longer reported.)
  assert.equal((await check(['--expiring-within', '1h', '--at', iso(nextUpdate - 40 * 60_000)])).status, 0);
  const near = await check(['--expiring-within', '1h', '--at', iso(nextUpdate - 10 * 60_000)]);
  assert.equal(near.status, 1);
  assert.deepEqual(
    near.report.findings.map((f) => [f.level, f.kind, f.name, f.crlNumber, f.notAfter, f.remainingSeconds]),
    [['WARNING', 'crl', 'intermediate CRL', crl.number, crl.nextUpdate, 600]],
  );
  assert.match(
    near.report.findings[0]!.message,
    /reaches its nextUpdate in 10m 0s; a running `gatehouse ca serve` replaces it when less than 30m 0s remain: is it running\?/,
  );

  const past = await check(['--expiring-within', '1h', '--at', iso(nextUpdate + 1000)]);
  assert.equal(past.status, 2);
  assert.equal(past.report.level, 'CRITICAL');
  assert.deepEqual(
    past.report.findings.map((f) => [f.level, f.kind, f.name, f.remainingSeconds]),
    [['CRITICAL', 'crl', 'intermediate CRL', -1]],
  );
  assert.match(
    past.report.findings[0]!.message,
    /passed its nextUpdate 1s ago: relying parties that check CRLs refuse every certificate/,
  );
});

test('check-ca-certificates-expiring-within-the-window-and-expired', async () => {
  const wide = await check(['--expiring-within', '2000d']);
  assert.equal(wide.status, 1);
  assert.deepEqual(
    wide.report.findings.filter((f) => f.kind === 'ca-certificate').map((f) => [f.level, f.role, f.name]),
    [['WARNING', 'intermediate', 'Test Org Issuing CA']],
    'the 5-year intermediate is within 2000 days, the 10-year root is not',
  );
  const rootNotAfter = Date.parse(wide.report.checked.caCertificates.find((c) => c.role === 'root')!.notAfter);
  const late = await check(['--expiring-within', '1d', '--at', iso(rootNotAfter + 1000)]);
  assert.equal(late.status, 2);
  assert.deepEqual(
    late.report.findings.map((f) => [f.level, f.kind, f.role ?? f.name]),
    [
      ['CRITICAL', 'ca-certificate', 'root'],
      ['CRITICAL', 'ca-certificate', 'intermediate'],
      ['CRITICAL', 'crl', 'intermediate CRL'],
      ['CRITICAL', 'crl', 'root CRL'],
    ],
  );
});

test('check-root-crl-with-the-root-key-offline-says-how-to-renew-it', async () => {
  const offline = await startCaFixture({ rootKeyOut: join(fixture.root, 'offline-root-key.pem') });
  try {
    const now = await check(['--expiring-within', '7d'], offline.caDir);
    const rootCrl = now.report.checked.crls.find((c) => c.scope === 'root')!;
    const r = await check(
      ['--expiring-within', '7d', '--at', iso(Date.parse(rootCrl.nextUpdate) - 86_400_000)],
      offline.caDir,
    );
    const finding = r.report.findings.find((f) => f.name === 'root CRL')!;
    assert.equal(finding.level, 'WARNING');
    assert.match(
      finding.message,
      /reaches its nextUpdate in 1d 0h; the root key is offline, so only `gatehouse ca root-crl --dir DIR --root-key FILE` renews it/,
    );
  } finally {
    await offline.close();
  }
});

test('check-unknown-when-no-ca-and-usage-errors-exit-64', async () => {
  const missing = await gatehouse(['check', '--dir', join(fixture.root, 'nowhere'), '--expiring-within', '1d']);
  assert.equal(missing.status, 3);
  assert.match(missing.stdout, /^UNKNOWN: CA directory .*nowhere does not exist.*\[GH_CA_NOT_FOUND\]\n$/);
  const json = await gatehouse(['check', '--dir', join(fixture.root, 'nowhere'), '--expiring-within', '1d', '--json']);
  assert.equal(json.status, 3);
  assert.equal((JSON.parse(json.stdout) as { level: string; error: { code: string } }).error.code, 'GH_CA_NOT_FOUND');
  const badWindow = await gatehouse(['check', '--dir', fixture.caDir, '--expiring-within', 'soon']);
  assert.equal(badWindow.status, 64);
  const badAt = await gatehouse(['check', '--dir', fixture.caDir, '--expiring-within', '1d', '--at', 'tomorrow']);
  assert.equal(badAt.status, 64);
  assert.match(badAt.stderr, /--at "tomorrow" is not an ISO 8601 time/);
  assert.equal((await gatehouse(['check', '--dir', fixture.caDir])).status, 64, '--expiring-within is required');
});
