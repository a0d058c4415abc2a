/**
 * The dashboard in a real browser: Debian's headless Chromium driven by playwright-core, against
 * `gatehouse ca serve` as a child process, with devices enrolled by the real CLI. One browser for
 * the file; each identity gets its own browser context (Playwright presents the client
 * certificate for the CA's origin). Screenshots go to a temp dir, or to docs/img when
 * GATEHOUSE_UPDATE_SCREENSHOTS=1 (`npm run screenshots`).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import * as pki from '../src/pki/index.js';
import { gatehouse } from './helpers/cli.js';
import { startCaProcess, type CaProcess } from './helpers/ca-process.js';
import { caRequest, output } from './helpers/ca-http.js';
import { run } from './helpers/run.js';
import { makeTempDir } from './helpers/tmp.js';
import { writeTree } from './helpers/system-tree.js';

const CHROMIUM = process.env.GATEHOUSE_CHROMIUM ?? '/usr/bin/chromium';

describe('dashboard in chromium', () => {
  let tmp: ReturnType<typeof makeTempDir>;
  let caDir: string;
  let ca: CaProcess;
  let browser: Browser;
  let admin: BrowserContext;
  let shotsDir: string;
  const consoleProblems: string[] = [];

  async function cli(args: string[]): Promise<string> {
    const r = await gatehouse(args);
    assert.equal(r.status, 0, `gatehouse ${args.join(' ')}: ${output(r)}`);
    return r.stdout;
  }

  async function enrollDevice(
    role: string,
    name: string,
    extra: string[] = [],
  ): Promise<{ dir: string; serial: string }> {
    const tokenFile = join(tmp.dir, `token-${name}.txt`);
    writeFileSync(
      tokenFile,
      await cli(['token', 'create', '--dir', caDir, '--role', role, '--name', name, '--ttl', '10m']),
      { mode: 0o600 },
    );
    const dir = join(tmp.dir, `device-${name}`);
    const enrolled = JSON.parse(
      await cli(['agent', 'enroll', '--ca', ca.url, '--token-file', tokenFile, '--dir', dir, '--json', ...extra]),
    );
    return { dir, serial: enrolled.serial };
  }

  async function newPage(context: BrowserContext): Promise<Page> {
    const page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' || /Content Security Policy/i.test(m.text()))
        consoleProblems.push(`${page.url()}: ${m.text()}`);
    });
    page.on('pageerror', (err) => consoleProblems.push(`${page.url()}: ${err.message}`));
    return page;
  }

  const shot = (page: Page, name: string, fullPage = true) =>
    page.screenshot({ path: join(shotsDir, `dashboard-${name}.png`), fullPage });

  /** Presses Tab until the focused element matches, as a keyboard user would; fails after `max` presses. */
  async function tabTo(page: Page, selector: string, max = 40): Promise<void> {
    for (let i = 0; i < max; i++) {
      await page.keyboard.press('Tab');
      if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return;
    }
    assert.fail(`${selector} not reached with ${max} Tab presses`);
  }

  async function focusIsVisible(page: Page): Promise<boolean> {
    return page.evaluate(() => {
      const style = getComputedStyle(document.activeElement!);
      return style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2;
    });
  }

  before(async () => {
    tmp = makeTempDir();
    shotsDir = process.env.GATEHOUSE_UPDATE_SCREENSHOTS === '1' ? resolve('docs/img') : join(tmp.dir, 'shots');
    mkdirSync(shotsDir, { recursive: true });
    caDir = join(tmp.dir, 'ca');
    await cli(['ca', 'init', '--dir', caDir, '--name', 'Acme', '--trust-domain', 'acme.test']);
    ca = await startCaProcess(caDir);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    admin = await browser.newContext({
      ignoreHTTPSErrors: true,
      viewport: { width: 1280, height: 800 },
      clientCertificates: [
        { origin: ca.url, certPath: join(caDir, 'admin', 'cert.pem'), keyPath: join(caDir, 'admin', 'key.pem') },
      ],
    });
    await admin.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: ca.url });
    // The suite shares two cores with other test files: allow slow navigations rather than flake.
    admin.setDefaultTimeout(90_000);
    admin.setDefaultNavigationTimeout(90_000);
  });

  after(async () => {
    await browser?.close();
    await ca?.stop();
    tmp?.cleanup();
  });

  test('browser-without-certificate-refused-with-instructions', async () => {
    const anonymous = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
    anonymous.setDefaultNavigationTimeout(90_000);
    try {
      const page = await anonymous.newPage();
      const res = await page.goto(`${ca.url}/dashboard/fleet`);
      assert.equal(res?.status(), 401);
      assert.equal(await page.textContent('h1'), 'Admin client certificate required');
      assert.match((await page.textContent('main')) ?? '', /gatehouse agent export --p12 admin\.p12/);
      await shot(page, 'refused');
    } finally {
      await anonymous.close();
    }
  });

  test('browser-admin-sees-devices-just-enrolled-and-filters-them', async () => {
    await Promise.all([
      enrollDevice('web', 'laptop-1'),
      enrollDevice('web', 'build-7'),
      enrollDevice('gateway', 'edge-gw', ['--dns', 'localhost']),
    ]);
    await cli(['agent', 'renew', '--dir', join(tmp.dir, 'device-laptop-1')]);
    const page = await newPage(admin);
    const res = await page.goto(`${ca.url}/dashboard/`);
    assert.equal(res?.status(), 200);
    assert.equal(await page.textContent('h1'), 'Overview');
    assert.ok(await page.isVisible('svg[role="img"] rect.bar'), 'the expiry chart is drawn');
    await shot(page, 'overview');

    await page.click('nav >> text=Fleet');
    const names = await page.locator('tbody th[scope="row"] a').allTextContents();
    for (const name of ['laptop-1', 'build-7', 'edge-gw', 'admin'])
      assert.ok(names.includes(name), `${name} in ${names.join(', ')}`);
    await shot(page, 'fleet');

    await page.fill('#q', 'build');
    await page.press('#q', 'Enter');
    await page.waitForURL(/q=build/);
    assert.deepEqual(await page.locator('tbody th[scope="row"] a').allTextContents(), ['build-7']);
    await page.selectOption('#role', 'gateway');
    await page.fill('#q', '');
    await page.click('button:has-text("Filter")');
    await page.waitForURL(/role=gateway/);
    assert.deepEqual(await page.locator('tbody th[scope="row"] a').allTextContents(), ['edge-gw']);
    await page.close();
  });

  test('browser-keyboard-revoke-puts-the-serial-into-the-crl', async () => {
    const page = await newPage(admin);
    await page.goto(`${ca.url}/dashboard/identity/web/laptop-1`);
    const serial = (await page.textContent('dl.facts dt:has-text("Current serial") + dd'))!.trim();
    assert.match(serial, /^[0-9a-f]+$/);
    assert.equal(
      await page.locator('h2:has-text("Renewal history") + table tbody tr').count(),
      2,
      'enrollment and one renewal',
    );
    await shot(page, 'identity');

    // Keyboard only from here: Tab to the revoke link, Enter; Tab to the reason, pick with arrows; Tab to the button, Enter.
    await tabTo(page, 'a.button[href$="/revoke"]');
    assert.ok(await focusIsVisible(page), 'the focused link shows a focus ring');
    await Promise.all([page.waitForURL(/\/revoke$/), page.keyboard.press('Enter')]);
    assert.match((await page.textContent('h1')) ?? '', /Revoke certificate/);
    await tabTo(page, '#reason');
    assert.equal(await page.inputValue('#reason'), 'keyCompromise');
    await page.keyboard.press('ArrowDown');
    assert.equal(await page.inputValue('#reason'), 'cessationOfOperation');
    await shot(page, 'revoke');
    await tabTo(page, 'button[type="submit"]');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Revoke certificate');
    assert.ok(await focusIsVisible(page), 'the focused button shows a focus ring');
    await Promise.all([page.waitForURL(/revoked=/), page.keyboard.press('Enter')]);
    assert.match(
      (await page.textContent('p.notice')) ?? '',
      new RegExp(`Certificate ${serial} was revoked \\(cessationOfOperation\\)[\\s\\S]*lists it`),
    );
    assert.equal(await page.textContent('dl.facts .badge'), 'Revoked');

    // The CRL the CA serves, read by our parser and by openssl.
    const rootPem = readFileSync(join(caDir, 'root.pem'), 'utf8');
    const crlDer = (await caRequest(ca.url, 'crl', { ca: rootPem })).body;
    assert.equal(pki.parseCrl(crlDer).revoked.get(serial)?.reason, 'cessationOfOperation');
    const crlPath = join(tmp.dir, 'crl.der');
    writeFileSync(crlPath, crlDer);
    const text = await run('openssl', ['crl', '-inform', 'DER', '-in', crlPath, '-noout', '-text']);
    assert.equal(text.status, 0, output(text));
    assert.ok(text.stdout.includes(`Serial Number: ${serial.toUpperCase()}`), text.stdout);
    assert.match(text.stdout, /Cessation Of Operation/);

    const renew = await gatehouse(['agent', 'renew', '--dir', join(tmp.dir, 'device-laptop-1')]);
    assert.equal(renew.status, 75, `the revoked device cannot renew: ${output(renew)}`);
    await page.close();
  });

  test('browser-token-created-in-ui-enrolls-a-device-with-the-agent', async () => {
    const page = await newPage(admin);
    await page.goto(`${ca.url}/dashboard/tokens`);
    await page.selectOption('#token-role', 'web');
    await page.fill('#token-name', 'kiosk-9');
    await page.fill('#token-ttl', '15m');
    await page.fill('#token-uses', '1');
    await Promise.all([page.waitForURL(/\/dashboard\/tokens$/), page.click('button:has-text("Create token")')]);
    assert.equal(await page.textContent('h1'), 'Join token created');
    const token = (await page.textContent('#token-value'))!.trim();
    assert.match(token, /^GHTKN-1-[0-9a-f]{64}-[0-9a-f]{16}-[a-z2-7]{32}$/);
    const command = (await page.textContent('#enroll-command'))!.trim();
    assert.equal(command, `gatehouse agent enroll --ca ${ca.url} --token-file token.txt`);

    await page.click('button:has-text("Copy token")');
    await page.waitForFunction(
      () => document.getElementById('token-value-status')?.textContent === 'Copied to the clipboard.',
    );
    assert.equal(
      await page.evaluate(() => navigator.clipboard.readText()),
      token,
      'the copy button put the token on the clipboard',
    );
    await shot(page, 'token');

    // The exact command from the page, run by the real agent in a fresh directory.
    const machine = join(tmp.dir, 'kiosk');
    mkdirSync(machine);
    writeFileSync(join(machine, 'token.txt'), token, { mode: 0o600 });
    const args = command.split(' ').slice(1);
    const enrolled = await gatehouse([...args, '--dir', join(machine, 'identity')], { cwd: machine });
    assert.equal(enrolled.status, 0, output(enrolled));
    const whoami = JSON.parse(await cli(['agent', 'whoami', '--dir', join(machine, 'identity'), '--json']));
    assert.equal(whoami.spiffeId, 'spiffe://acme.test/web/kiosk-9');

    await page.goto(`${ca.url}/dashboard/fleet?q=kiosk`);
    assert.deepEqual(await page.locator('tbody th[scope="row"] a').allTextContents(), ['kiosk-9']);
    await page.goto(`${ca.url}/dashboard/tokens`);
    assert.ok(!(await page.content()).includes(token.split('-').at(-1)!), 'the secret is never shown again');
    await page.close();
  });

  test('browser-form-posted-from-another-origin-refused', async () => {
    const page = await newPage(admin);
    // Even with a valid CSRF token (as if leaked), a form on a foreign page cannot revoke: the
    // browser says Sec-Fetch-Site: cross-site and the dashboard refuses before reading the form.
    await page.goto(`${ca.url}/dashboard/fleet?q=build-7`);
    await Promise.all([page.waitForURL(/\/revoke$/), page.click('a:has-text("Revoke")')]);
    const action = await page.getAttribute('form[method="post"]', 'action');
    const csrf = await page.inputValue('input[name="csrf"]');
    const victimSerial = action!.split('/')[3]!;
    const attacker = await newPage(admin);
    await attacker.setContent(
      `<form method="post" action="${ca.url}${action}"><input name="csrf" value="${csrf}"><input name="reason" value="keyCompromise"><button>go</button></form>`,
    );
    const [response] = await Promise.all([attacker.waitForNavigation(), attacker.click('button')]);
    assert.equal(response?.status(), 403);
    assert.match(
      (await attacker.textContent('main')) ?? '',
      /form refused: the form was submitted from another site \(Sec-Fetch-Site: cross-site\)/,
    );
    consoleProblems.splice(0, consoleProblems.length, ...consoleProblems.filter((p) => !p.includes('403')));
    await page.goto(`${ca.url}/dashboard/fleet?q=build-7`);
    assert.equal(await page.textContent('tbody .badge'), 'Active', `certificate ${victimSerial} is still active`);
    await attacker.close();
    await page.close();
  });

  test('browser-audit-trail-shows-the-admin-as-actor', async () => {
    const page = await newPage(admin);
    await page.goto(`${ca.url}/dashboard/audit`);
    await page.selectOption('#type', 'ca.cert_revoked');
    await Promise.all([page.waitForURL(/type=ca.cert_revoked/), page.click('button:has-text("Filter")')]);
    // Revoking laptop-1 revoked its lineage: the enrollment and its renewal, two events.
    const rows = page.locator('tbody tr');
    assert.equal(await rows.count(), 2);
    for (const row of await rows.all())
      assert.equal((await row.locator('td.mono').first().textContent())?.trim(), 'spiffe://acme.test/admin/admin');
    await page.goto(`${ca.url}/dashboard/audit`);
    await shot(page, 'audit', false);
    await page.close();
  });

  test('browser-secret-created-granted-ungranted-and-deleted-never-shows-the-value', async () => {
    const value = `browser-secret-${Date.now()}-Qv7`;
    const page = await newPage(admin);
    const neverTheValue = async (where: string) =>
      assert.ok(!(await page.content()).includes(value), `${where}: the value is not in the page`);
    await page.goto(`${ca.url}/dashboard/`);
    await page.click('nav >> text=Secrets');
    assert.equal(await page.textContent('h1'), 'Secrets');
    await page.fill('#secret-name', 'db-password');
    await page.fill('#secret-value', `${value}\nline two`);
    await Promise.all([
      page.waitForURL(/\/dashboard\/secrets\/db-password\?created=1$/),
      page.click('button:has-text("Create secret")'),
    ]);
    assert.ok(!page.url().includes(value));
    assert.match((await page.textContent('p.notice')) ?? '', /Secret db-password was created/);
    await neverTheValue('after create');

    await page.fill('#grant-subject', 'role:web');
    await Promise.all([page.waitForURL(/granted=role%3Aweb$/), page.click('button:has-text("Grant")')]);
    assert.deepEqual(await page.locator('h2:has-text("Granted to") + table tbody th').allTextContents(), ['role:web']);
    await neverTheValue('after grant');

    await page.click('nav >> text=Secrets');
    const row = page.locator('tbody tr', { has: page.locator('a:has-text("db-password")') });
    assert.equal(await row.count(), 1, 'listed');
    assert.match((await row.textContent()) ?? '', /role:web/);
    assert.match((await row.textContent()) ?? '', /never/, 'not read yet');
    await neverTheValue('list');

    await page.click('a:has-text("db-password")');
    // The script asks before an ungrant; the browser's dialog is accepted here.
    const dialog = new Promise<string>((resolve) =>
      page.once('dialog', (d) => {
        resolve(d.message());
        void d.accept();
      }),
    );
    await Promise.all([page.waitForURL(/ungranted=role%3Aweb$/), page.click('button:has-text("Ungrant")')]);
    assert.equal(await dialog, 'Stop role:web from reading secret db-password?');
    assert.match((await page.textContent('main')) ?? '', /Nobody may read this secret\./);
    await neverTheValue('after ungrant');

    await Promise.all([
      page.waitForURL(/\/dashboard\/secrets\/db-password\/delete$/),
      page.click('a:has-text("Delete secret")'),
    ]);
    assert.equal(await page.textContent('h1'), 'Delete secret db-password?');
    await neverTheValue('confirmation');
    await Promise.all([
      page.waitForURL(/\/dashboard\/secrets\?deleted=db-password$/),
      page.click('button:has-text("Delete secret")'),
    ]);
    assert.match((await page.textContent('p.notice')) ?? '', /Secret db-password was deleted/);
    assert.match((await page.textContent('main')) ?? '', /No secrets yet\./);
    await neverTheValue('after delete');
    const listed = JSON.parse(await cli(['secret', 'list', '--dir', caDir, '--json']));
    assert.deepEqual(listed.secrets ?? listed, [], 'gone from the CA');
    await page.close();
  });

  test('browser-device-reports-with-the-agent-and-the-fleet-and-identity-pages-show-it', async () => {
    // A fixed system tree, so the score is too: Debian 10 (support ended 2022), root may log in over
    // SSH, keys only, the clock synchronized; no dpkg database or /proc (those checks cannot tell).
    const root = join(tmp.dir, 'system-build-7');
    writeTree(root, {
      'etc/os-release': 'PRETTY_NAME="Debian GNU/Linux 10 (buster)"\nID=debian\nVERSION_ID="10"\n',
      'etc/ssh/sshd_config': 'PermitRootLogin yes\nPasswordAuthentication no\n',
      'run/systemd/timesync/synchronized': '',
      'etc/hostname': 'build-7.acme.test\n',
    });
    const sent = await cli(['agent', 'report', '--dir', join(tmp.dir, 'device-build-7'), '--root', root]);
    // Passing: ssh-password-auth 10, time-sync 5, identity-files 15; failing: os-supported 20,
    // ssh-root-login 15, firewall 15 (no firewall configuration in the tree): 30 of 80.
    assert.match(sent, /^score 38, recorded by the CA at /, sent);

    const page = await newPage(admin);
    await page.goto(`${ca.url}/dashboard/fleet?q=build-7`);
    assert.equal(await page.textContent('tbody td:has(.badge.poor) .badge'), '38 (poor)');
    assert.match((await page.textContent('tbody td:has(.badge.poor)')) ?? '', /reported \d+ s ago/);
    await page.goto(`${ca.url}/dashboard/fleet?below=70`);
    assert.ok((await page.locator('tbody th[scope="row"] a').allTextContents()).includes('build-7'), 'listed below 70');
    await page.goto(`${ca.url}/dashboard/fleet?below=abc`);
    assert.match((await page.textContent('#filter-error')) ?? '', /"abc" was ignored/);

    await page.click('a:has-text("build-7")');
    await page.waitForURL(/\/dashboard\/identity\/web\/build-7$/);
    assert.equal(await page.textContent('#posture-facts dt:has-text("Hostname") + dd'), 'build-7.acme.test');
    const rows = page.locator('#posture-checks tbody tr');
    const checks = await rows.locator('th').allTextContents();
    assert.deepEqual(
      checks.slice(0, 3),
      ['os-supported', 'firewall', 'ssh-root-login'],
      'the failing checks first, heaviest first, then by ID',
    );
    assert.deepEqual(await rows.locator('.badge').allTextContents(), [
      'Fail',
      'Fail',
      'Fail',
      'Unknown',
      'Unknown',
      'Unknown',
      'Pass',
      'Pass',
      'Pass',
    ]);
    assert.match((await rows.nth(2).textContent()) ?? '', /sshd allows root to log in with a password/);
    for (const id of [
      'ssh-password-auth',
      'time-sync',
      'identity-files',
      'auto-updates',
      'risky-listeners',
      'pending-upgrades',
    ])
      assert.ok(checks.includes(id), `${id} in ${checks.join(', ')}`);
    await page.close();
  });

  test('browser-advisories-imported-with-the-cli-show-on-the-identity-page', async () => {
    // A second device, so build-7 keeps its date-independent Debian 10 score: Debian 12 with an
    // openssl that the fixture feed's GATEHOUSE-TEST-0001 (critical) affects.
    await enrollDevice('web', 'db-3');
    const root = join(tmp.dir, 'system-db-3');
    writeTree(root, {
      'etc/os-release': 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
      'var/lib/dpkg/status':
        'Package: openssl\nStatus: install ok installed\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\n',
    });
    await cli(['agent', 'report', '--dir', join(tmp.dir, 'device-db-3'), '--root', root]);
    assert.match(await cli(['vuln', 'import', resolve('docs/examples/osv-fixture.json'), '--dir', caDir]), /added: +6/);

    // The import ran in another process; `ca serve` sees it at the next page view.
    const page = await newPage(admin);
    await page.goto(`${ca.url}/dashboard/identity/web/db-3`);
    const row = page.locator('#advisories-table tbody tr', {
      has: page.locator('th', { hasText: 'GATEHOUSE-TEST-0001' }),
    });
    assert.equal(await row.locator('.badge').textContent(), 'Critical');
    assert.match((await row.textContent()) ?? '', /openssl\s*3\.0\.11-1~deb12u2\s*3\.0\.15-1~deb12u1/);
    await page.goto(`${ca.url}/dashboard/fleet?severity=critical`);
    assert.deepEqual(await page.locator('tbody th[scope="row"] a').allTextContents(), ['db-3']);
    await page.close();
  });

  test('browser-no-csp-violations-or-script-errors-and-script-ran', async () => {
    const page = await newPage(admin);
    await page.goto(`${ca.url}/dashboard/identity/web/build-7`);
    await page.click('summary:has-text("Current certificate")');
    assert.ok(
      await page.isVisible('button:has-text("Copy PEM")'),
      'the script un-hid the copy button, so it ran under the CSP',
    );
    await page.close();
    assert.deepEqual(consoleProblems, []);
  });
});
