/** The page shell and the small pieces every page uses: navigation, dates, state badges, refusals. */
import { dashboardUrl, html, type SafeHtml } from './html.js';
import { STATE_LABELS, type IdentityState } from './fleet-model.js';

export const CSS_PATH = '/dashboard/static/dashboard.css';
export const JS_PATH = '/dashboard/static/dashboard.js';
export const ICON_PATH = '/dashboard/static/icon.svg';

export type Section = 'overview' | 'fleet' | 'tokens' | 'secrets' | 'audit' | null;

const NAV: Array<{ section: Exclude<Section, null>; label: string; href: string }> = [
  { section: 'overview', label: 'Overview', href: '/dashboard/' },
  { section: 'fleet', label: 'Fleet', href: dashboardUrl(['fleet']) },
  { section: 'tokens', label: 'Join tokens', href: dashboardUrl(['tokens']) },
  { section: 'secrets', label: 'Secrets', href: dashboardUrl(['secrets']) },
  { section: 'audit', label: 'Audit', href: dashboardUrl(['audit']) },
];

export interface Viewer {
  spiffeId: string;
  serial: string;
}

export function page(options: { title: string; section: Section; viewer: Viewer | null; body: SafeHtml }): SafeHtml {
  const { title, section, viewer, body } = options;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Gatehouse</title>
<link rel="icon" href="${ICON_PATH}" type="image/svg+xml">
<link rel="stylesheet" href="${CSS_PATH}">
<script src="${JS_PATH}" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="site">
<p class="brand">Gatehouse CA</p>
${
  viewer
    ? html`<nav aria-label="Dashboard"><ul>${NAV.map((n) => html`<li><a href="${n.href}"${n.section === section ? html` aria-current="page"` : ''}>${n.label}</a></li>`)}</ul></nav>
<p class="whoami">Signed in with <span class="mono">${viewer.spiffeId}</span> (serial <span class="mono">${viewer.serial}</span>)</p>`
    : ''
}
</header>
<main id="main" tabindex="-1">
${body}
</main>
</body>
</html>
`;
}

export function formatTime(date: Date | null | undefined): SafeHtml {
  if (!date) return html`<span class="muted">—</span>`;
  const iso = date.toISOString();
  return html`<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d{3}Z$/, 'Z')}</time>`;
}

/** "in 3 h 20 min" / "5 d ago": rounded, for scanning a table; the exact time is next to it. */
export function formatRelative(date: Date, now: Date): string {
  const diff = date.getTime() - now.getTime();
  const abs = Math.abs(diff);
  const text =
    abs < 60_000
      ? `${Math.round(abs / 1000)} s`
      : abs < 3_600_000
        ? `${Math.round(abs / 60_000)} min`
        : abs < 2 * 86_400_000
          ? `${Math.floor(Math.round(abs / 60_000) / 60)} h ${Math.round(abs / 60_000) % 60} min`
          : `${Math.round(abs / 86_400_000)} d`;
  return diff >= 0 ? `in ${text}` : `${text} ago`;
}

export function stateBadge(state: IdentityState): SafeHtml {
  return html`<span class="badge ${state}">${STATE_LABELS[state]}</span>`;
}

/** Form field with its label and an optional hint tied to it by aria-describedby. */
export function field(id: string, label: string, control: SafeHtml, hint?: string): SafeHtml {
  return html`<div class="field"><label for="${id}">${label}</label>${control}${hint ? html`<span class="hint" id="${id}-hint">${hint}</span>` : ''}</div>`;
}

export function options(
  values: ReadonlyArray<string | { value: string; label: string }>,
  selected: string | null | undefined,
): SafeHtml[] {
  return values.map((v) => {
    const { value, label } = typeof v === 'string' ? { value: v, label: v } : v;
    return html`<option value="${value}"${value === (selected ?? '') ? html` selected` : ''}>${label}</option>`;
  });
}

/** The page a browser gets when it has no acceptable client certificate. */
export function refusalPage(status: number, code: string, message: string, requestId: string): SafeHtml {
  const title = status === 401 ? 'Admin client certificate required' : 'Access refused';
  return page({
    title,
    section: null,
    viewer: null,
    body: html`<h1>${title}</h1>
<p class="error" role="alert"><strong>${status === 401 ? 'An admin client certificate is required' : 'This certificate may not open the dashboard'}.</strong> ${message} <span class="muted">(${code}, request ${requestId})</span></p>
<p>The dashboard is for identities of role <code>admin</code> with a current, unrevoked certificate from this CA. Your browser presents it during the TLS handshake.</p>
<h2>Import the admin certificate</h2>
<ol>
<li>On the CA machine, export the CA's admin identity as PKCS#12:
<pre><code>gatehouse agent run --dir CA_DIR/admin &amp;   # keeps it renewed
echo 'a long passphrase' &gt; pass.txt &amp;&amp; chmod 600 pass.txt
gatehouse agent export --p12 admin.p12 --passphrase-file pass.txt --dir CA_DIR/admin</code></pre></li>
<li>Import <code>admin.p12</code> into the browser. Chromium: Settings → Privacy and security → Security → Manage certificates → Your certificates → Import. Firefox: Settings → Privacy &amp; Security → Certificates → View Certificates → Your Certificates → Import.</li>
<li>Trust the CA's <code>root.pem</code> for websites (Chromium: Authorities → Import; Firefox: Authorities → Import, "Trust this CA to identify websites").</li>
<li>Restart the browser (it remembers the choice of "no certificate" for the session), open this page again and choose the Gatehouse admin certificate.</li>
</ol>
<p>See <code>docs/dashboard.md</code> for details.</p>`,
  });
}

export function errorPage(
  viewer: Viewer | null,
  status: number,
  code: string,
  message: string,
  requestId: string,
): SafeHtml {
  return page({
    title: status === 404 ? 'Not found' : 'Request refused',
    section: null,
    viewer,
    body: html`<h1>${status === 404 ? 'Not found' : 'Request refused'}</h1>
<p class="error" role="alert">${message} <span class="muted">(${code}, HTTP ${status}, request ${requestId})</span></p>
<p><a href="/dashboard/">Back to the overview</a></p>`,
  });
}
