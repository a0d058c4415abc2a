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
import {
  caRequest,
  enrollIdentity,
  enrollRequest,
  newCsr,
  readIdentityPem,
  rootPemOf,
  type EnrolledIdentity,
  type HttpResult,
} from './helpers/ca-http.js';
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
  assert.deepEqual(
    scripts,
    ['<script src="/dashboard/static/dashboard.js" defer>'],
    `${what}: only the dashboard's own script`,
  );
  // Attribute values are always double-quoted and escaped, so what is inside quotes is inert text.
  const unquoted = res.text.replace(/"[^"]*"/g, '""');
  assert.doesNotMatch(
    unquoted,
    /<img\b|<[a-z][^>]*\son[a-z]+\s*=|javascript:/i,
    `${what}: no injected element or handler`,
  );
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

  const dash = (
    path: string,
    options: {
      identity?: Identity;
      method?: string;
      form?: Record<string, string>;
      headers?: Record<string, string>;
    } = {},
  ) => {
    const identity = options.identity === undefined ? admin : options.identity;
    const body = options.form ? new URLSearchParams(options.form).toString() : undefined;
    return caRequest(fixture.url, path.replace(/^\//, ''), {
      ca: rootPemOf(fixture),
      ...(identity ? identity : {}),
      ...(options.method ? { method: options.method } : {}),
      ...(body !== undefined
        ? {
            body,
            headers: { 'content-type': 'application/x-www-form-urlencoded', ...BROWSER_POST, ...options.headers },
          }
        : options.headers
          ? { headers: options.headers }
          : {}),
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
    const refused = (await fixture.store.listAudit({ type: 'ca.admin_refused' })).filter(
      (e) => e.details.path === '/dashboard/tokens',
    );
    assert.equal(refused.at(-1)?.actor, 'anonymous');
    assert.equal(refused.at(-1)?.details.code, 'GH_AUTH_REQUIRED');
  });

  test('dashboard-foreign-ca-admin-lookalike-refused-401', async () => {
    const foreign = await makeCa(tmp.dir, 'Foreign');
    const leaf = await makeLeaf(foreign, {
      subject: '/CN=admin/OU=admin/O=Test Org',
      san: 'URI:spiffe://test.internal/admin/admin',
    });
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
    const agent = new Agent({
      ca: rootPemOf(fixture),
      key: admin2.keyPem,
      cert: admin2.certPem,
      keepAlive: true,
      maxSockets: 1,
    });
    const get = (path: string) =>
      new Promise<{ status: number; text: string; reused: boolean }>((resolve, reject) => {
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
    const pages = [
      '/dashboard/',
      '/dashboard/fleet',
      '/dashboard/fleet?role=web&state=active&q=lap',
      `/dashboard/identity/web/laptop-1`,
      `/dashboard/certs/${web.serial}/revoke`,
      '/dashboard/tokens',
      '/dashboard/audit',
      '/dashboard/audit?type=ca.cert_issued&page=2',
    ];
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
    for (const path of [
      '/dashboard/identity/web/nobody',
      '/dashboard/nope',
      '/dashboard/certs/zz/revoke',
      '/dashboard/identity/web/%E0%A4%A',
    ]) {
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
    for (const [path, type] of [
      ['/dashboard/static/dashboard.css', /^text\/css/],
      ['/dashboard/static/dashboard.js', /^text\/javascript/],
      ['/dashboard/static/icon.svg', /^image\/svg\+xml/],
    ] as const) {
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
      [
        'foreign Origin',
        { reason: 'keyCompromise', csrf: token },
        { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
      ],
      [
        'foreign Origin without fetch metadata',
        { reason: 'keyCompromise', csrf: token },
        { origin: 'https://evil.example', 'sec-fetch-site': '' },
      ],
      ['same-site sibling', { reason: 'keyCompromise', csrf: token }, { 'sec-fetch-site': 'same-site' }],
      [
        'no Origin and no Sec-Fetch-Site',
        { reason: 'keyCompromise', csrf: token },
        { origin: '', 'sec-fetch-site': '' },
      ],
    ];
    for (const [what, form, headers] of attempts) {
      const clean = Object.fromEntries(Object.entries({ ...BROWSER_POST, ...headers }).filter(([, v]) => v !== ''));
      const res = await caRequest(fixture.url, path.slice(1), {
        ca: rootPemOf(fixture),
        ...admin!,
        method: 'POST',
        body: new URLSearchParams(form).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...clean },
      });
      assert.equal(res.status, 403, `${what}: ${res.text.slice(0, 400)}`);
      assert.match(res.text, /form refused: .*Nothing was changed\./, what);
      assertSecurityHeaders(res, what);
      assert.equal((await fixture.store.getCert(victim.serial))?.revokedAt, null, `${what}: not revoked`);
      const refusal = (await fixture.store.listAudit({ type: 'ca.admin_refused' })).filter(
        (e) => e.requestId === res.headers['x-request-id'],
      );
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
    for (const id of ['token-role', 'token-name', 'token-names', 'token-ttl', 'token-uses'])
      assert.match(tokens.text, new RegExp(`<label for="${id}">`), `label for ${id}`);
    const created = await dash('/dashboard/tokens', {
      form: { role: 'web', name: 'from-ui', names: '', ttl: '30m', uses: '1', csrf: csrfOf(tokens) },
    });
    assert.equal(created.status, 200, created.text.slice(0, 500));
    const token =
      /<pre class="secret" id="token-value"[^>]*>(GHTKN-1-[0-9a-f]{64}-[0-9a-f]{16}-[a-z2-7]{32})<\/pre>/.exec(
        created.text,
      )?.[1];
    assert.ok(token, 'the token is shown');
    assert.ok(
      created.text.includes(`gatehouse agent enroll --ca ${fixture.url} --token-file token.txt`),
      'the enroll command with this CA URL',
    );
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
    assert.equal(
      (await fixture.store.listAudit({ type: 'ca.token_revoked' })).find((e) => e.tokenId === record.id)?.actor,
      'spiffe://test.internal/admin/admin',
    );
    assert.equal(
      (await enrollRequest(fixture, { token: second, csr: (await newCsr({ commonName: 'late' })).csr })).status,
      401,
      'the revoked token no longer enrolls',
    );
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
    assert.ok(
      String(stored?.details.reason).includes('<img src=x onerror=alert(1)>'),
      'the raw text is in the audit trail',
    );
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
    assert.ok(
      reflected.text.includes('value="&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&#96;&amp;"'),
      'the search box keeps the text, escaped',
    );

    // Form fields echoed back with the refusal; token and role strings.
    const form = await dash('/dashboard/tokens');
    for (const fields of [
      { role: 'web', name: HOSTILE },
      { role: 'web', names: HOSTILE },
      { role: HOSTILE },
      { role: 'web', ttl: HOSTILE },
      { role: 'web', uses: HOSTILE },
    ]) {
      const res = await dash('/dashboard/tokens', {
        form: { name: '', names: '', ttl: '1h', uses: '1', ...fields, csrf: csrfOf(form) },
      });
      assert.ok(res.status >= 400 && res.status < 500, `${JSON.stringify(fields)}: ${res.status}`);
      assert.match(res.text, /<p class="error" role="alert" id="create-error">/);
      assertNoInjectedMarkup(res, JSON.stringify(fields));
      assert.ok(!res.text.includes(HOSTILE));
    }

    // A hostile Host header is not echoed into the enroll command.
    const body = new URLSearchParams({
      role: 'web',
      name: '',
      names: '',
      ttl: '1h',
      uses: '1',
      csrf: csrfOf(form),
    }).toString();
    const res = await new Promise<HttpResult>((resolve, reject) => {
      // Node checks the server certificate against the Host header; this request's Host is the attack, not the name.
      const req = request(
        new URL('/dashboard/tokens', fixture.url),
        {
          method: 'POST',
          agent: false,
          ca: rootPemOf(fixture),
          key: admin!.key,
          cert: admin!.cert,
          checkServerIdentity: () => undefined,
          headers: {
            host: `x"><script>alert(1)</script>`,
            'content-type': 'application/x-www-form-urlencoded',
            'content-length': String(body.length),
            ...BROWSER_POST,
          },
        },
        (r) => {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () =>
            resolve({
              status: r.statusCode ?? 0,
              headers: r.headers,
              body: Buffer.concat(chunks),
              text: Buffer.concat(chunks).toString(),
              json: undefined,
            }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    assert.equal(res.status, 200, res.text.slice(0, 300));
    assertNoInjectedMarkup(res, 'hostile Host');
    assert.match(
      res.text,
      /gatehouse agent enroll --ca https:\/\/127\.0\.0\.1:8443 --token-file token\.txt/,
      'falls back to the configured listen address',
    );
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
    for (const id of ['identity', 'type', 'from', 'until'])
      assert.match(first.text, new RegExp(`<label for="${id}">`), `label for ${id}`);
  });

  // ------------------------------------------------------------------ secrets (issue 13)

  /** Fails if any form of a secret value is in a page: raw, HTML-escaped, URL-encoded, or its unique plain-text start. */
  const assertNoValue = (res: HttpResult, values: string[], what: string) => {
    for (const v of values) {
      const start = /^[A-Za-z0-9-]+/.exec(v)![0];
      assert.ok(start.length >= 20, 'values in these tests start with a unique marker');
      for (const form of [v, start, encodeURIComponent(v)]) {
        assert.ok(!res.text.includes(form), `${what}: the value is not in the page`);
        assert.ok(!String(res.headers.location ?? '').includes(form), `${what}: the value is not in the redirect`);
      }
    }
  };

  test('dashboard-secrets-list-detail-and-confirm-show-grants-and-readers-never-a-value', async () => {
    const secrets = fixture.server.secrets;
    const v1 = `planted-v1-${Date.now()}-Zq8`;
    const v2 = `planted-v2-${Date.now()}-Wx3`;
    await secrets.create(
      { name: 'db-password', value: Buffer.from(v1), grants: ['role:web', 'name:laptop-1'] },
      { actor: 'test' },
    );
    const read = await caRequest(fixture.url, 'v1/secrets/db-password', {
      ca: rootPemOf(fixture),
      key: web.keyPem,
      cert: web.certPem,
    });
    assert.equal(read.status, 200, read.text);
    assert.equal(read.text, v1);
    await secrets.rotate('db-password', Buffer.from(v2), 3_600_000, { actor: 'test' });

    const list = await dash('/dashboard/secrets');
    assert.equal(list.status, 200, list.text.slice(0, 400));
    assertSecurityHeaders(list, 'secrets list');
    assertNoInjectedMarkup(list, 'secrets list');
    assert.match(list.text, /<a href="\/dashboard\/secrets" aria-current="page">Secrets<\/a>/, 'in the navigation');
    assert.match(
      list.text,
      /<th scope="row" class="mono"><a href="\/dashboard\/secrets\/db-password">db-password<\/a><\/th><td class="num">2<\/td>/,
    );
    assert.match(list.text, /<li class="mono">role:web<\/li>/);
    assert.match(list.text, /<li class="mono">name:laptop-1<\/li>/);
    assert.match(list.text, /<li>1 until <time/, 'the old version with its expiry');
    assert.ok(
      list.text.includes(`by <span class="mono">${web.spiffeId}</span> <span class="muted">(version 1)</span>`),
      'last read and by whom',
    );

    const detail = await dash('/dashboard/secrets/db-password');
    assert.equal(detail.status, 200);
    assertNoInjectedMarkup(detail, 'secret detail');
    assert.equal(
      (detail.text.match(/action="\/dashboard\/secrets\/db-password\/ungrant"/g) ?? []).length,
      2,
      'one ungrant button per grant',
    );
    assert.match(detail.text, /<input type="hidden" name="subject" value="role:web">/);
    assert.ok(detail.text.includes(`<td class="mono">${web.spiffeId}</td>`), 'the reader of version 1');
    assert.match(detail.text, /hmac-sha256:/, 'checksums, not values');

    const confirm = await dash('/dashboard/secrets/db-password/delete');
    assert.equal(confirm.status, 200);
    assert.match(confirm.text, /<h1>Delete secret <span class="mono">db-password<\/span>\?<\/h1>/);
    assert.match(
      confirm.text,
      /These subjects lose access at once:<\/p><ul><li class="mono">name:laptop-1<\/li><li class="mono">role:web<\/li><\/ul>/,
    );
    assert.match(confirm.text, /<dt>Versions deleted<\/dt><dd>2, 1<\/dd>/);
    assert.ok(await secrets.show('db-password'), 'a GET of the confirmation deletes nothing');

    for (const [what, res] of [
      ['list', list],
      ['detail', detail],
      ['confirm', confirm],
    ] as const)
      assertNoValue(res, [v1, v2], what);
    for (const path of [
      '/dashboard/secrets/nope',
      `/dashboard/secrets/${encodeURIComponent(HOSTILE)}`,
      `/dashboard/secrets/${encodeURIComponent(HOSTILE)}/delete`,
    ]) {
      const res = await dash(path);
      assert.ok([400, 404].includes(res.status), `${path}: ${res.status}`);
      assertNoInjectedMarkup(res, path);
      assert.ok(!res.text.includes(HOSTILE), `${path}: raw value absent`);
    }
  });

  test('dashboard-secret-created-through-the-form-value-never-rendered-even-on-refusal', async () => {
    const page = await dash('/dashboard/secrets');
    for (const id of ['secret-name', 'secret-value', 'secret-grants'])
      assert.match(page.text, new RegExp(`<label for="${id}">`), `label for ${id}`);
    const csrf = csrfOf(page);
    const value = `form-value-${Date.now()}-<b>&"'`;
    const created = await dash('/dashboard/secrets', {
      form: {
        name: 'api-key',
        value: `${value}\r\nsecond line`,
        grants: 'role:web\r\nid:spiffe://test.internal/web/laptop-1',
        csrf,
      },
    });
    assert.equal(created.status, 303, created.text.slice(0, 400));
    assert.equal(created.headers.location, '/dashboard/secrets/api-key?created=1');
    assertNoValue(created, [value], 'create response');
    const after = await dash(created.headers.location!);
    assert.match(after.text, /Secret <span class="mono">api-key<\/span> was created\./);
    assertNoValue(after, [value], 'page after create');
    const view = await fixture.server.secrets.show('api-key');
    assert.deepEqual(view.grants.map((g) => g.subject).sort(), ['id:spiffe://test.internal/web/laptop-1', 'role:web']);
    const read = await caRequest(fixture.url, 'v1/secrets/api-key', {
      ca: rootPemOf(fixture),
      key: web.keyPem,
      cert: web.certPem,
    });
    assert.equal(read.text, `${value}\nsecond line`, 'stored as posted, line breaks as LF');
    const event = (await fixture.store.listAudit({ type: 'ca.secret_created' })).find(
      (e) => e.details.secret === 'api-key',
    );
    assert.equal(event?.actor, 'spiffe://test.internal/admin/admin');
    assert.equal(event?.requestId, created.headers['x-request-id']);
    assert.ok(!JSON.stringify(event).includes(value), 'nor in the audit trail');

    // Refused creates: the form comes back with the name and grants, never the value.
    const refusals: Array<[string, Record<string, string>, number, RegExp]> = [
      ['bad name', { name: '../etc', grants: '' }, 400, /secret name is not allowed/],
      ['reserved name', { name: 'cert.pem', grants: '' }, 400, /reserved/],
      ['existing name', { name: 'api-key', grants: '' }, 409, /already exists/],
      ['unknown role', { name: 'other', grants: 'role:nosuch' }, 400, /names a role this CA does not have/],
      ['hostile subject', { name: 'other', grants: HOSTILE }, 400, /grant subject/],
    ];
    for (const [what, fields, status, message] of refusals) {
      const res = await dash('/dashboard/secrets', { form: { ...fields, value, csrf } });
      assert.equal(res.status, status, `${what}: ${res.text.slice(0, 400)}`);
      assert.match(res.text, /<p class="error" role="alert" id="create-error">/, what);
      assert.match(res.text, message, what);
      assert.match(res.text, /The value was not kept: enter it again\./, what);
      assert.match(
        res.text,
        /<textarea id="secret-value" name="value"[^>]*><\/textarea>/,
        `${what}: the value box is empty`,
      );
      assertNoValue(res, [value], what);
      assertNoInjectedMarkup(res, what);
      assert.ok(!res.text.includes(HOSTILE), `${what}: hostile text escaped`);
    }
    assert.equal((await fixture.server.secrets.list()).filter((s) => s.name === 'other').length, 0, 'nothing created');
    const empty = await dash('/dashboard/secrets', { form: { name: 'empty-one', value: '', grants: '', csrf } });
    assert.equal(empty.status, 400);
    assert.match(empty.text, /the secret value is empty/);
  });

  test('dashboard-secret-changes-need-csrf-and-delete-needs-the-confirmation-post', async () => {
    const secrets = fixture.server.secrets;
    const value = `csrf-secret-${Date.now()}`;
    await secrets.create({ name: 'csrf-target', value: Buffer.from(value), grants: ['role:web'] }, { actor: 'test' });
    const detail = await dash('/dashboard/secrets/csrf-target');
    const token = csrfOf(detail);
    const grants = async () => (await secrets.show('csrf-target')).grants.map((g) => g.subject).sort();
    const forged = `${Math.floor(Date.now() / 1000)}.${'a'.repeat(64)}`;
    const posts: Array<[string, Record<string, string>]> = [
      ['/dashboard/secrets/csrf-target/grant', { subject: 'role:gateway' }],
      ['/dashboard/secrets/csrf-target/ungrant', { subject: 'role:web' }],
      ['/dashboard/secrets/csrf-target/delete', {}],
      ['/dashboard/secrets', { name: 'csrf-created', value, grants: '' }],
    ];
    for (const [path, form] of posts) {
      for (const [what, extra, headers] of [
        ['no token', {}, {}],
        ['forged token', { csrf: forged }, {}],
        ['cross-site', { csrf: token }, { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' }],
      ] as Array<[string, Record<string, string>, Record<string, string>]>) {
        const res = await dash(path, { form: { ...form, ...extra }, headers });
        assert.equal(res.status, 403, `${path} ${what}: ${res.text.slice(0, 300)}`);
        assert.match(res.text, /form refused: .*Nothing was changed\./);
        assertNoValue(res, [value], `${path} ${what}`);
        assert.deepEqual(await grants(), ['role:web'], `${path} ${what}: grants unchanged`);
        assert.equal(
          (await secrets.list()).filter((s) => s.name === 'csrf-created').length,
          0,
          `${path} ${what}: nothing created`,
        );
      }
    }
    // GET never changes anything: grant and ungrant are POST only, GET on delete is the confirmation page.
    for (const path of ['/dashboard/secrets/csrf-target/grant', '/dashboard/secrets/csrf-target/ungrant']) {
      const res = await dash(path);
      assert.equal(res.status, 405, path);
      assert.equal(res.headers.allow, 'POST');
    }
    assert.equal((await dash('/dashboard/secrets/csrf-target', { method: 'POST', form: { csrf: token } })).status, 405);
    assert.equal((await dash('/dashboard/secrets/csrf-target/delete')).status, 200);
    assert.deepEqual(await grants(), ['role:web']);

    // With the token: grant, a refused grant (shown on the page), ungrant, delete.
    const granted = await dash('/dashboard/secrets/csrf-target/grant', {
      form: { subject: 'role:gateway', csrf: token },
    });
    assert.equal(granted.status, 303, granted.text.slice(0, 300));
    assert.equal(granted.headers.location, '/dashboard/secrets/csrf-target?granted=role%3Agateway');
    assert.deepEqual(await grants(), ['role:gateway', 'role:web']);
    assert.match((await dash(granted.headers.location!)).text, /<span class="mono">role:gateway<\/span> may now read/);
    const badGrant = await dash('/dashboard/secrets/csrf-target/grant', { form: { subject: HOSTILE, csrf: token } });
    assert.equal(badGrant.status, 400);
    assert.match(badGrant.text, /<p class="error" role="alert" id="grant-error">grant subject/);
    assertNoInjectedMarkup(badGrant, 'refused grant');
    assert.ok(!badGrant.text.includes(HOSTILE));
    assertNoValue(badGrant, [value], 'refused grant');
    const ungranted = await dash('/dashboard/secrets/csrf-target/ungrant', {
      form: { subject: 'role:web', csrf: token },
    });
    assert.equal(ungranted.status, 303);
    assert.deepEqual(await grants(), ['role:gateway']);
    const notGranted = await dash('/dashboard/secrets/csrf-target/ungrant', {
      form: { subject: 'role:web', csrf: token },
    });
    assert.equal(notGranted.status, 400);
    assert.match(notGranted.text, /is not granted to role:web/);

    const deleted = await dash('/dashboard/secrets/csrf-target/delete', { form: { csrf: token } });
    assert.equal(deleted.status, 303, deleted.text.slice(0, 300));
    assert.equal(deleted.headers.location, '/dashboard/secrets?deleted=csrf-target');
    assert.equal((await secrets.list()).filter((s) => s.name === 'csrf-target').length, 0, 'deleted');
    assert.match(
      (await dash(deleted.headers.location!)).text,
      /Secret <span class="mono">csrf-target<\/span> was deleted/,
    );
    for (const type of ['ca.secret_granted', 'ca.secret_ungranted', 'ca.secret_deleted'] as const) {
      const event = (await fixture.store.listAudit({ type })).filter((e) => e.details.secret === 'csrf-target').at(-1);
      assert.equal(event?.actor, 'spiffe://test.internal/admin/admin', type);
    }
    const refused = (await fixture.store.listAudit({ type: 'ca.admin_refused' })).filter((e) =>
      String(e.details.path).startsWith('/dashboard/secrets'),
    );
    assert.equal(refused.length, posts.length * 3, 'every refused form audited');
  });
});
