/**
 * The dashboard over real HTTPS with node's client: who is refused (no certificate, a foreign
 * CA's "admin", a non-admin, a revoked admin, even mid-connection), the security headers on every
 * answer, CSRF refusals that change nothing, actions audited with the admin as actor, and
 * escaping of every hostile value that can reach a page (audit details from a refused CSR,
 * reflected query parameters, echoed form fields, the Host header).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:https';
import { readFileSync } from 'node:fs';
import * as pki from '../src/pki/index.js';
import { startCaFixture, type CaFixture } from './helpers/ca-fixture.js';
import { caRequest, enrollIdentity, enrollRequest, newCsr, readIdentityPem, rootPemOf, type EnrolledIdentity, type HttpResult } from './helpers/ca-http.js';
import { makeCa, makeLeaf } from './helpers/openssl-pki.js';
import { makeTempDir } from './helpers/tmp.js';

type Identity = { key: string; cert: string } | null;

/** Headers a current browser sends with a same-origin form POST under Referrer-Policy: no-referrer. */
const BROWSER_POST = { 'sec-fetch-site': 'same-origin', origin: 'null' };

const HOSTILE = `<img src=x onerror=alert(1)>"'\`&`;

function asIdentity(e: EnrolledIdentity): Identity {
  return { key: e.keyPem, cert: e.certPem };
}

/** The dashboard's documents must contain our one script tag and nothing that could run. */
function assertNoInjectedMarkup(res: HttpResult, what: string): void {
  const scripts = res.text.match(/<script\b[^>]*>/gi) ?? [];
  assert.deepEqual(scripts, ['<script src="/dashboard/static/dashboard.js" defer>'], `${what}: only the dashboard's own script`);
  // Attribute values are always double-quoted and escaped, so what is inside quotes is inert text.
  const unquoted = res.text.replace(/"[^"]*"/g, '""');
  assert.doesNotMatch(unquoted, /<img\b|<[a-z][^>]*\son[a-z]+\s*=|javascript:/i, `${what}: no injected element or handler`);
}

function assertSecurityHeaders(res: HttpResult, what: string): void {
  const csp = String(res.headers['content-security-policy']);
  assert.match(csp, /default-src 'self'/, what);
  assert.match(csp, /script-src 'self'/, what);
  assert.match(csp, /frame-ancestors 'none'/, what);
  assert.match(csp, /form-action 'self'/, what);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/, what);
  assert.equal(res.headers['x-frame-options'], 'DENY', what);
  assert.equal(res.headers['referrer-policy'], 'no-referrer', what);
  assert.equal(res.headers['cache-control'], 'no-store', what);
  assert.equal(res.headers['x-content-type-options'], 'nosniff', what);
}

function csrfOf(res: HttpResult): string {
  const m = /name="csrf" value="([^"]+)"/.exec(res.text);
  assert.ok(m, `a CSRF field in ${res.text.slice(0, 300)}`);
  return m[1]!;
}

describe('dashboard over https', () => {
  let fixture: CaFixture;
  let admin: Identity;
  let web: EnrolledIdentity;
  let tmp: ReturnType<typeof makeTempDir>;

  const dash = (path: string, options: { identity?: Identity; method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}) => {
    const identity = options.identity === undefined ? admin : options.identity;
    const body = options.form ? new URLSearchParams(options.form).toString() : undefined;
    return caRequest(fixture.url, path.replace(/^\//, ''), {
      ca: rootPemOf(fixture), ...(identity ? identity : {}), ...(options.method ? { method: options.method } : {}),
      ...(body !== undefined ? { body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...BROWSER_POST, ...options.headers } } : options.headers ? { headers: options.headers } : {}),
    });
  };

  before(async () => {
    fixture = await startCaFixture();
    tmp = makeTempDir();
    admin = readIdentityPem(fixture.adminDir);
    web = await enrollIdentity(fixture, { role: 'web', name: 'laptop-1' });
  });
  after(async () => {
    await fixture?.close();
    tmp?.cleanup();
  });

  test('dashboard-without-certificate-refused-401-with-import-instructions', async () => {
    for (const path of ['/dashboard/', '/dashboard/fleet', '/dashboard/audit', '/dashboard/identity/web/laptop-1']) {
      const res = await dash(path, { identity: null });
      assert.equal(res.status, 401, path);
      assert.match(String(res.headers['content-type']), /^text\/html; charset=utf-8/);
      assert.match(res.text, /An admin client certificate is required/);
      assert.match(res.text, /gatehouse agent export --p12 admin\.p12/);
      assert.match(res.text, /GH_AUTH_REQUIRED/);
      assert.doesNotMatch(res.text, /laptop-1|spiffe:\/\//, `${path}: nothing about the fleet`);
      assertSecurityHeaders(res, path);
      assertNoInjectedMarkup(res, path);
    }
    const before = (await fixture.store.listTokens()).length;
    const post = await dash('/dashboard/tokens', { identity: null, form: { role: 'web', ttl: '1h', uses: '1' } });
    assert.equal(post.status, 401);
    assert.equal((await fixture.store.listTokens()).length, before, 'no token created');
    const refused = (await fixture.store.listAudit({ type: 'ca.admin_refused' })).filter((e) => e.details.path === '/dashboard/tokens');
    assert.equal(refused.at(-1)?.actor, 'anonymous');
    assert.equal(refused.at(-1)?.details.code, 'GH_AUTH_REQUIRED');
  });

  test('dashboard-foreign-ca-admin-lookalike-refused-401', async () => {
    const foreign = await makeCa(tmp.dir, 'Foreign');
    const leaf = await makeLeaf(foreign, { subject: '/CN=admin/OU=admin/O=Test Org', san: 'URI:spiffe://test.internal/admin/admin' });
    const res = await dash('/dashboard/', { identity: { key: readFileSync(leaf.keyPath, 'utf8'), cert: leaf.pem } });
    assert.equal(res.status, 401);
    assert.match(res.text, /GH_CERT_UNTRUSTED/);
  });

  test('dashboard-non-admin-certificate-refused-403', async () => {
    const res = await dash('/dashboard/', { identity: asIdentity(web) });
    assert.equal(res.status, 403);
    assert.match(res.text, /This certificate may not open the dashboard/);
    assert.match(res.text, /has role web; the dashboard needs role admin/);
    assertSecurityHeaders(res, 'non-admin');
    const refused = (await fixture.store.listAudit({ type: 'ca.admin_refused', actor: web.spiffeId })).at(-1);
    assert.equal(refused?.details.code, 'GH_AUTH_FORBIDDEN');
  });

  test('dashboard-admin-revoked-mid-connection-refused-403-on-next-request', async () => {
    const admin2 = await enrollIdentity(fixture, { role: 'admin', name: 'ops-2' });
    const agent = new Agent({ ca: rootPemOf(fixture), key: admin2.keyPem, cert: admin2.certPem, keepAlive: true, maxSockets: 1 });
    const get = (path: string) => new Promise<{ status: number; text: string; reused: boolean }>((resolve, reject) => {
      const req = request(new URL(path, fixture.url), { agent }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text, reused: req.reusedSocket }));
      });
      req.on('error', reject);
      req.end();
    });
    try {
      assert.equal((await get('/dashboard/fleet')).status, 200);
      await fixture.server.authority.revokeCertificate(admin2.serial, 'keyCompromise', { actor: 'test' });
      const after = await get('/dashboard/fleet');
      assert.equal(after.reused, true, 'the same TLS connection');
      assert.equal(after.status, 403);
      assert.match(after.text, /GH_CERT_REVOKED/);
      assert.match(after.text, new RegExp(`certificate ${admin2.serial} was revoked`));
    } finally {
      agent.destroy();
    }
    const fresh = await dash('/dashboard/', { identity: asIdentity(admin2) });
    assert.equal(fresh.status, 403, 'and on a new connection');
  });

  test('dashboard-pages-render-for-admin-with-security-headers', async () => {
    const pages = ['/dashboard/', '/dashboard/fleet', '/dashboard/fleet?role=web&state=active&q=lap', `/dashboard/identity/web/laptop-1`,
      `/dashboard/certs/${web.serial}/revoke`, '/dashboard/tokens', '/dashboard/audit', '/dashboard/audit?type=ca.cert_issued&page=2'];
    for (const path of pages) {
      const res = await dash(path);
      assert.equal(res.status, 200, `${path}: ${res.text.slice(0, 500)}`);
      assertSecurityHeaders(res, path);
      assertNoInjectedMarkup(res, path);
      assert.match(res.text, /Signed in with <span class="mono">spiffe:\/\/test\.internal\/admin\/admin<\/span>/);
    }
    const fleet = await dash('/dashboard/fleet');
    assert.match(fleet.text, /<th scope="row"><a href="\/dashboard\/identity\/web\/laptop-1">laptop-1<\/a><\/th>/);
    assert.ok(fleet.text.includes(web.serial));
    const filtered = await dash('/dashboard/fleet?role=gateway');
    assert.ok(!filtered.text.includes('>laptop-1<'), 'role filter');
    assert.match(filtered.text, /<option value="gateway" selected>/);
    const identity = await dash('/dashboard/identity/web/laptop-1');
    assert.match(identity.text, /<th scope="row">Leaf<\/th><td class="mono">CN=laptop-1, OU=web, O=Test Org<\/td>/);
    assert.match(identity.text, /<th scope="row">Root<\/th>/);
    for (const path of ['/dashboard/identity/web/nobody', '/dashboard/nope', '/dashboard/certs/zz/revoke', '/dashboard/identity/web/%E0%A4%A']) {
      const res = await dash(path);
      assert.equal(res.status, 404, path);
      assertSecurityHeaders(res, path);
    }
    const redirect = await dash('/dashboard');
    assert.equal(redirect.status, 308);
    assert.equal(redirect.headers.location, '/dashboard/');
    assertSecurityHeaders(redirect, 'redirect');
  });

  test('dashboard-static-assets-served-without-certificate', async () => {
    for (const [path, type] of [['/dashboard/static/dashboard.css', /^text\/css/], ['/dashboard/static/dashboard.js', /^text\/javascript/], ['/dashboard/static/icon.svg', /^image\/svg\+xml/]] as const) {
      const res = await dash(path, { identity: null });
      assert.equal(res.status, 200, path);
      assert.match(String(res.headers['content-type']), type);
      assertSecurityHeaders(res, path);
    }
    assert.equal((await dash('/dashboard/static/dashboard.js', { identity: null, method: 'POST' })).status, 405);
  });

  test('dashboard-get-never-changes-state-actions-are-post-only', async () => {
    const { record } = await fixture.server.authority.createToken({ role: 'web' }, { actor: 'test' });
    const res = await dash(`/dashboard/tokens/${record.id}/revoke`);
    assert.equal(res.status, 405);
    assert.equal(res.headers.allow, 'POST');
    assert.equal((await fixture.store.getToken(record.id))?.revokedAt, null);
    assert.equal((await dash('/dashboard/fleet', { method: 'POST', form: {} })).status, 405);
    assert.equal((await dash('/dashboard/', { method: 'DELETE' })).status, 405);
  });

  test('dashboard-csrf-refusals-change-nothing-and-are-audited', async () => {
    const victim = await enrollIdentity(fixture, { role: 'web', name: 'csrf-victim' });
    const path = `/dashboard/certs/${victim.serial}/revoke`;
    const token = csrfOf(await dash(path));
    const admin2 = await enrollIdentity(fixture, { role: 'admin', name: 'ops-3' });
    const otherAdminsToken = csrfOf(await dash(path, { identity: asIdentity(admin2) }));
    const attempts: Array<[string, Record<string, string>, Record<string, string>]> = [
      ['no token', { reason: 'keyCompromise' }, {}],
      ['empty token', { reason: 'keyCompromise', csrf: '' }, {}],
      ['forged token', { reason: 'keyCompromise', csrf: `${Math.floor(Date.now() / 1000)}.${'a'.repeat(64)}` }, {}],
      ["another admin's token", { reason: 'keyCompromise', csrf: otherAdminsToken }, {}],
      ['foreign Origin', { reason: 'keyCompromise', csrf: token }, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }],
      ['foreign Origin without fetch metadata', { reason: 'keyCompromise', csrf: token }, { origin: 'https://evil.example', 'sec-fetch-site': '' }],
      ['same-site sibling', { reason: 'keyCompromise', csrf: token }, { 'sec-fetch-site': 'same-site' }],
      ['no Origin and no Sec-Fetch-Site', { reason: 'keyCompromise', csrf: token }, { origin: '', 'sec-fetch-site': '' }],
    ];
    for (const [what, form, headers] of attempts) {
      const clean = Object.fromEntries(Object.entries({ ...BROWSER_POST, ...headers }).filter(([, v]) => v !== ''));
      const res = await caRequest(fixture.url, path.slice(1), {
        ca: rootPemOf(fixture), ...admin!, method: 'POST', body: new URLSearchParams(form).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...clean },
      });
      assert.equal(res.status, 403, `${what}: ${res.text.slice(0, 400)}`);
      assert.match(res.text, /form refused: .*Nothing was changed\./, what);
      assertSecurityHeaders(res, what);
      assert.equal((await fixture.store.getCert(victim.serial))?.revokedAt, null, `${what}: not revoked`);
      const refusal = (await fixture.store.listAudit({ type: 'ca.admin_refused' })).filter((e) => e.requestId === res.headers['x-request-id']);
      assert.equal(refusal.length, 1, `${what}: audited`);
      assert.equal(refusal[0]!.actor, 'spiffe://test.internal/admin/admin');
      assert.equal(refusal[0]!.details.via, 'dashboard');
    }
    const tokensBefore = (await fixture.store.listTokens()).length;
    const noCsrf = await dash('/dashboard/tokens', { form: { role: 'web', ttl: '1h', uses: '1' } });
    assert.equal(noCsrf.status, 403);
    assert.equal((await fixture.store.listTokens()).length, tokensBefore, 'no token created without a CSRF token');
  });

  test('dashboard-revoke-with-valid-form-revokes-publishes-crl-and-audits-admin', async () => {
    const device = await enrollIdentity(fixture, { role: 'web', name: 'to-revoke' });
    const path = `/dashboard/certs/${device.serial}/revoke`;
    const confirm = await dash(path);
    assert.match(confirm.text, /<label for="reason">Reason<\/label><select id="reason" name="reason" required>/);
    const bad = await dash(path, { form: { reason: 'certificateHold', csrf: csrfOf(confirm) } });
    assert.equal(bad.status, 400);
    assert.equal((await fixture.store.getCert(device.serial))?.revokedAt, null);

    const res = await dash(path, { form: { reason: 'cessationOfOperation', csrf: csrfOf(confirm) } });
    assert.equal(res.status, 303, res.text);
    assert.equal(res.headers.location, `/dashboard/identity/web/to-revoke?revoked=${device.serial}`);
    const record = await fixture.store.getCert(device.serial);
    assert.equal(record?.revocationReason, 'cessationOfOperation');
    const crlRes = await caRequest(fixture.url, 'crl', { ca: rootPemOf(fixture) });
    const crl = pki.parseCrl(crlRes.body);
    assert.equal(crl.revoked.get(device.serial)?.reason, 'cessationOfOperation', 'the CRL served lists it');

    const requestId = String(res.headers['x-request-id']);
    const revoked = (await fixture.store.listAudit({ type: 'ca.cert_revoked', serial: device.serial }))[0];
    assert.equal(revoked?.actor, 'spiffe://test.internal/admin/admin');
    assert.equal(revoked?.requestId, requestId);
    const call = (await fixture.store.listAudit({ type: 'ca.admin_call' })).filter((e) => e.requestId === requestId);
    assert.deepEqual(call[0]?.details, { method: 'POST', path, via: 'dashboard', status: 303 });

    const after = await dash(res.headers.location!);
    assert.match(after.text, /was revoked \(cessationOfOperation\)/);
    assert.match(after.text, /The CRL served at <code>\/crl<\/code> \(number \d+\) lists it\./);
    assert.match(after.text, /<span class="badge revoked">Revoked<\/span>/);
    const revokedFleet = await dash('/dashboard/fleet?state=revoked');
    assert.match(revokedFleet.text, />to-revoke<\/a>/);
    assert.doesNotMatch(revokedFleet.text, />laptop-1<\/a>/);
  });

  test('dashboard-token-created-shown-once-enrolls-and-can-be-revoked', async () => {
    const tokens = await dash('/dashboard/tokens');
    for (const id of ['token-role', 'token-name', 'token-names', 'token-ttl', 'token-uses']) assert.match(tokens.text, new RegExp(`<label for="${id}">`), `label for ${id}`);
    const created = await dash('/dashboard/tokens', { form: { role: 'web', name: 'from-ui', names: '', ttl: '30m', uses: '1', csrf: csrfOf(tokens) } });
    assert.equal(created.status, 200, created.text.slice(0, 500));
    const token = /<pre class="secret" id="token-value"[^>]*>(GHTKN-1-[0-9a-f]{64}-[0-9a-f]{16}-[a-z2-7]{32})<\/pre>/.exec(created.text)?.[1];
    assert.ok(token, 'the token is shown');
    assert.ok(created.text.includes(`gatehouse agent enroll --ca ${fixture.url} --token-file token.txt`), 'the enroll command with this CA URL');
    assert.match(created.text, /only time the token is shown/);
    const id = token.split('-')[3]!;
    const audit = (await fixture.store.listAudit({ type: 'ca.token_created' })).find((e) => e.tokenId === id);
    assert.equal(audit?.actor, 'spiffe://test.internal/admin/admin');

    const listed = await dash('/dashboard/tokens');
    assert.ok(listed.text.includes(id), 'the list shows the ID');
    assert.ok(!listed.text.includes(token.split('-').at(-1)!), 'never the secret again');

    const csr = await newCsr({ commonName: 'from-ui' });
    const enrolled = await enrollRequest(fixture, { token, csr: csr.csr });
    assert.equal(enrolled.status, 201, enrolled.text);

    const { token: second, record } = await fixture.server.authority.createToken({ role: 'web' }, { actor: 'test' });
    const revoke = await dash(`/dashboard/tokens/${record.id}/revoke`, { form: { csrf: csrfOf(listed) } });
    assert.equal(revoke.status, 303);
    assert.equal(revoke.headers.location, `/dashboard/tokens?revoked=${record.id}`);
    assert.ok((await fixture.store.getToken(record.id))?.revokedAt);
    assert.equal((await fixture.store.listAudit({ type: 'ca.token_revoked' })).find((e) => e.tokenId === record.id)?.actor, 'spiffe://test.internal/admin/admin');
    assert.equal((await enrollRequest(fixture, { token: second, csr: (await newCsr({ commonName: 'late' })).csr })).status, 401, 'the revoked token no longer enrolls');
  });

  test('dashboard-escapes-hostile-values-from-every-source', async () => {
    // The most hostile name the name rules allow: only . _ - besides letters and digits.
    const odd = await enrollIdentity(fixture, { role: 'web', name: 'Z--..__-.-' });
    const fleet = await dash('/dashboard/fleet?q=Z--');
    assert.match(fleet.text, /<a href="\/dashboard\/identity\/web\/Z--..__-.-">Z--..__-.-<\/a>/);
    assert.ok(fleet.text.includes(odd.serial));

    // A token holder's CSR with a hostile CN: refused, and the reason (with the CN) lands in the audit trail.
    const { token } = await fixture.server.authority.createToken({ role: 'web', namePattern: '*' }, { actor: 'test' });
    const refused = await enrollRequest(fixture, { token, csr: (await newCsr({ commonName: HOSTILE })).csr });
    assert.equal(refused.status, 400, refused.text);
    const stored = (await fixture.store.listAudit({ type: 'ca.cert_refused' })).at(-1);
    assert.ok(String(stored?.details.reason).includes('<img src=x onerror=alert(1)>'), 'the raw text is in the audit trail');
    const audit = await dash('/dashboard/audit?type=ca.cert_refused');
    assert.equal(audit.status, 200);
    assert.ok(audit.text.includes('&lt;img src=x onerror=alert(1)&gt;'), 'shown escaped');
    assertNoInjectedMarkup(audit, 'audit with a hostile CSR CN');

    // Reflected query parameters.
    for (const path of [
      `/dashboard/fleet?q=${encodeURIComponent(HOSTILE)}&role=${encodeURIComponent(HOSTILE)}&state=${encodeURIComponent(HOSTILE)}`,
      `/dashboard/audit?identity=${encodeURIComponent(HOSTILE)}&type=${encodeURIComponent(HOSTILE)}&from=${encodeURIComponent(HOSTILE)}&until=${encodeURIComponent(HOSTILE)}`,
      `/dashboard/identity/${encodeURIComponent(HOSTILE)}/${encodeURIComponent(HOSTILE)}`,
      `/dashboard/certs/${encodeURIComponent(HOSTILE)}/revoke`,
    ]) {
      const res = await dash(path);
      assert.ok([200, 400, 404].includes(res.status), `${path}: ${res.status}`);
      assertNoInjectedMarkup(res, path);
      assert.ok(!res.text.includes(HOSTILE), `${path}: raw value absent`);
    }
    const reflected = await dash(`/dashboard/fleet?q=${encodeURIComponent(HOSTILE)}`);
    assert.ok(reflected.text.includes('value="&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&#96;&amp;"'), 'the search box keeps the text, escaped');

    // Form fields echoed back with the refusal; token and role strings.
    const form = await dash('/dashboard/tokens');
    for (const fields of [{ role: 'web', name: HOSTILE }, { role: 'web', names: HOSTILE }, { role: HOSTILE }, { role: 'web', ttl: HOSTILE }, { role: 'web', uses: HOSTILE }]) {
      const res = await dash('/dashboard/tokens', { form: { name: '', names: '', ttl: '1h', uses: '1', ...fields, csrf: csrfOf(form) } });
      assert.ok(res.status >= 400 && res.status < 500, `${JSON.stringify(fields)}: ${res.status}`);
      assert.match(res.text, /<p class="error" role="alert" id="create-error">/);
      assertNoInjectedMarkup(res, JSON.stringify(fields));
      assert.ok(!res.text.includes(HOSTILE));
    }

    // A hostile Host header is not echoed into the enroll command.
    const body = new URLSearchParams({ role: 'web', name: '', names: '', ttl: '1h', uses: '1', csrf: csrfOf(form) }).toString();
    const res = await new Promise<HttpResult>((resolve, reject) => {
      // Node checks the server certificate against the Host header; this request's Host is the attack, not the name.
      const req = request(new URL('/dashboard/tokens', fixture.url), {
        method: 'POST', agent: false, ca: rootPemOf(fixture), key: admin!.key, cert: admin!.cert, checkServerIdentity: () => undefined,
        headers: { host: `x"><script>alert(1)</script>`, 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length), ...BROWSER_POST },
      }, (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, body: Buffer.concat(chunks), text: Buffer.concat(chunks).toString(), json: undefined }));
      });
      req.on('error', reject);
      req.end(body);
    });
    assert.equal(res.status, 200, res.text.slice(0, 300));
    assertNoInjectedMarkup(res, 'hostile Host');
    assert.match(res.text, /gatehouse agent enroll --ca https:\/\/127\.0\.0\.1:8443 --token-file token\.txt/, 'falls back to the configured listen address');
  });

  test('dashboard-audit-filters-by-identity-type-and-time-and-paginates', async () => {
    const device = await enrollIdentity(fixture, { role: 'web', name: 'audited-one' });
    for (let i = 0; i < 55; i++) await fixture.server.authority.createToken({ role: 'web' }, { actor: 'test' });
    const all = (await fixture.store.listAudit({ type: 'ca.token_created' })).length;
    const first = await dash('/dashboard/audit?type=ca.token_created');
    assert.match(first.text, new RegExp(`Events 1–50 of ${all}, newest first\\.`));
    assert.equal((first.text.match(/<code class="event">ca\.token_created<\/code>/g) ?? []).length, 50);
    assert.match(first.text, /<a href="\/dashboard\/audit\?type=ca.token_created&amp;page=2" rel="next">Older →<\/a>/);
    const second = await dash('/dashboard/audit?type=ca.token_created&page=2');
    assert.equal((second.text.match(/<code class="event">ca\.token_created<\/code>/g) ?? []).length, all - 50);
    assert.match(second.text, /rel="prev">← Newer<\/a>/);

    const mine = await dash(`/dashboard/audit?identity=${encodeURIComponent(device.spiffeId)}`);
    const types = [...mine.text.matchAll(/<code class="event">([a-z._]+)<\/code>/g)].map((m) => m[1]);
    assert.deepEqual(types.sort(), ['ca.cert_issued', 'ca.token_used']);
    const byName = await dash('/dashboard/audit?identity=audited-one');
    assert.equal((byName.text.match(/<code class="event">/g) ?? []).length, 2, 'a bare name finds the same events');

    const past = await dash('/dashboard/audit?until=2000-01-01T00:00');
    assert.match(past.text, /No events match\./);
    const future = await dash('/dashboard/audit?from=2999-01-01T00:00');
    assert.match(future.text, /No events match\./);
    const badTime = await dash('/dashboard/audit?from=yesterday');
    assert.equal(badTime.status, 400);
    assert.match(badTime.text, /&quot;From&quot; must be a time like/);
    for (const id of ['identity', 'type', 'from', 'until']) assert.match(first.text, new RegExp(`<label for="${id}">`), `label for ${id}`);
  });
});
