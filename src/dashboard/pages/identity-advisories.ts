/**
 * The identity page's Advisories section: the imported advisories that affect the packages of the
 * device's latest report, most severe first. Advisories come from feeds and the packages from the
 * device: both are untrusted, and every value goes through the escaping `html` template.
 */
import { identityAdvisories, importedAdvisoryCount } from '../../ca/vuln-views.js';
import type { DashboardContext } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import { severityBadge } from '../posture-parts.js';

export async function advisoriesSection(ctx: DashboardContext, spiffeId: string): Promise<SafeHtml> {
  const { store } = ctx.scope.authority;
  const heading = html`<h2 id="advisories">Advisories</h2>`;
  const imported = await importedAdvisoryCount(store);
  if (imported === 0) {
    return html`${heading}<p id="advisories-none">No advisories have been imported, so this device's packages have not been checked. On the CA, import a feed in the OSV format with
<code>gatehouse vuln import FILE --dir CA_DIR</code> (docs/operations.md, "CVE audit").</p>`;
  }
  const matches = await identityAdvisories(store, spiffeId);
  if (matches.length === 0) {
    return html`${heading}<p id="advisories-none">None of the ${imported} imported advisories affects the packages of this device's latest report.
<span class="muted">Only Debian and Ubuntu devices that report their dpkg database are checked; a device that never reported has nothing to check.</span></p>`;
  }
  const none = html`<span class="muted">none</span>`;
  return html`${heading}<table id="advisories-table">
<caption>Imported advisories that affect the packages of the latest report, most severe first</caption>
<thead><tr><th scope="col">Advisory</th><th scope="col">Aliases</th><th scope="col">Severity</th><th scope="col">Package</th><th scope="col">Installed</th><th scope="col">Fixed in</th><th scope="col">Summary</th></tr></thead>
<tbody>${matches.map((m) => html`<tr><th scope="row" class="mono">${m.id}</th><td class="mono">${m.aliases.length ? m.aliases.join(', ') : none}</td><td>${severityBadge(m.severity)}</td><td class="mono">${m.package}</td><td class="mono">${m.installed}</td><td class="mono">${m.fixed ?? html`<span class="muted">no fix yet</span>`}</td><td>${m.summary || none}</td></tr>`)}</tbody>
</table>`;
}
