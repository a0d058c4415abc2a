/**
 * Fleet: every identity with its current certificate, its latest posture score and the imported
 * advisories that affect it; search and filters are GET parameters. Posture and advisory filters
 * that cannot be read are ignored and said, never refused.
 */
import { fleetVulns, importedAdvisoryCount } from '../../ca/vuln-views.js';
import type { DashboardContext } from '../context.js';
import {
  EXPIRING_FRACTION,
  filterIdentities,
  groupIdentities,
  IDENTITY_STATES,
  STATE_LABELS,
  type IdentityState,
  type IdentityView,
} from '../fleet-model.js';
import { dashboardUrl, html, type SafeHtml } from '../html.js';
import { field, formatRelative, formatTime, options, page, stateBadge } from '../layout.js';
import {
  filterByPosture,
  readPostureFilter,
  STALE_CHOICES,
  type PostureFilterInput,
  type ScoreIndex,
} from '../posture-model.js';
import { postureCell, severityBadge } from '../posture-parts.js';
import {
  filterByVulns,
  indexVulns,
  isKnownAs,
  readVulnFilter,
  SEVERITY_FILTERS,
  SEVERITY_LABELS,
  worstSeverity,
  type VulnFilterInput,
  type VulnIndex,
} from '../vuln-model.js';
import { loadInventory } from './inventory.js';

export async function fleetPage(ctx: DashboardContext): Promise<SafeHtml> {
  const p = ctx.url.searchParams;
  const q = p.get('q') ?? '';
  const role = p.get('role') ?? '';
  const stateParam = p.get('state') ?? '';
  const state = (IDENTITY_STATES as readonly string[]).includes(stateParam) ? (stateParam as IdentityState) : undefined;
  const all = groupIdentities(await loadInventory(ctx), ctx.now);
  const reserved = new Set((await ctx.scope.authority.store.listNameReservations()).map((r) => `${r.role}/${r.name}`));
  const posture = readPostureFilter(p);
  const scores = await latestScores(ctx);
  const advisories = readVulnFilter(p);
  // One listing per page view: every row's count and both advisory filters read it.
  const vulns = await fleetVulns(ctx.scope.authority.store, ctx.now);
  const vulnIndex = indexVulns(vulns);
  const audited = (await importedAdvisoryCount(ctx.scope.authority.store)) > 0;
  const unknownAdvisory = advisories.advisory !== '' && !vulns.some((v) => isKnownAs(v, advisories.advisory));
  const shown = filterByVulns(
    filterByPosture(filterIdentities(all, { q, role, ...(state ? { state } : {}) }), scores, posture.query, ctx.now),
    vulnIndex,
    advisories,
  );
  const problems = [...posture.problems, ...advisories.problems];
  const roles = [...new Set([...Object.keys(ctx.scope.authority.config.roles), ...all.map((i) => i.role)])].sort();

  return page({
    title: 'Fleet',
    section: 'fleet',
    viewer: ctx.viewer,
    body: html`<h1>Fleet</h1>
<form class="filters" method="get" action="${dashboardUrl(['fleet'])}" role="search" aria-label="Filter identities">
${field('q', 'Search', html`<input id="q" name="q" type="search" value="${q}" aria-describedby="q-hint" size="32">`, 'Name, SPIFFE ID or serial')}
${field('role', 'Role', html`<select id="role" name="role">${options([{ value: '', label: 'Any role' }, ...roles], role)}</select>`)}
${field('state', 'State', html`<select id="state" name="state">${options([{ value: '', label: 'Any state' }, ...IDENTITY_STATES.map((s) => ({ value: s, label: STATE_LABELS[s] }))], state ?? '')}</select>`)}
${postureFields(posture)}
${advisoryFields(advisories)}
<button type="submit">Filter</button>
${q || role || state || posture.below || posture.stale || advisories.advisory || advisories.severity || problems.length ? html`<a href="${dashboardUrl(['fleet'])}">Clear filters</a>` : ''}
</form>
${problems.length ? html`<div class="error" role="alert" id="filter-error">${problems.map((e) => html`<p>${e}</p>`)}</div>` : ''}
${unknownAdvisory ? html`<p class="notice" role="status" id="advisory-unknown">No imported advisory affects any identity as "${advisories.advisory}": no advisory with that ID or alias was imported, or none matches a device's latest report.</p>` : ''}
<p id="fleet-summary">Showing ${shown.length} of ${all.length} identities. "Expiring soon" means less than ${EXPIRING_FRACTION * 100} % of the certificate's lifetime is left (agents renew with at least 27 % left). The posture and advisory filters leave out revoked and expired identities, which can no longer report; the advisories are those imported that affect the packages of an identity's latest report.</p>
<p>A name stays reserved for the enrollment that took it after its certificates are revoked or expire: enrolling it again needs a join token made for that name, or <code>gatehouse name release ROLE/NAME</code>.</p>
${shown.length === 0 ? html`<p class="notice">No identity matches these filters.</p>` : fleetTable(ctx, shown, reserved, scores, audited ? vulnIndex : null)}`,
  });
}

/** Latest posture score of every identity that ever reported, by SPIFFE ID. */
async function latestScores(ctx: DashboardContext): Promise<ScoreIndex> {
  return new Map(
    (await ctx.scope.authority.store.latestPostureScores()).map((r) => [
      r.spiffeId,
      { score: r.score, receivedAt: r.receivedAt },
    ]),
  );
}

function postureFields(posture: PostureFilterInput): SafeHtml {
  return html`${field('below', 'Score below', html`<input id="below" name="below" type="number" min="1" max="100" step="1" value="${posture.below}" aria-describedby="below-hint" size="4">`, 'No report counts as below')}
${field('stale', 'Report older than', html`<select id="stale" name="stale" aria-describedby="stale-hint">${options([{ value: '', label: 'Any age' }, ...STALE_CHOICES], posture.stale)}</select>`, 'Never reported counts as older')}`;
}

function advisoryFields(filter: VulnFilterInput): SafeHtml {
  return html`${field('advisory', 'Affected by advisory', html`<input id="advisory" name="advisory" type="text" value="${filter.advisory}" aria-describedby="advisory-hint" size="18" spellcheck="false">`, 'e.g. CVE-2024-1234 or DSA-5532-1')}
${field('severity', 'Advisory severity', html`<select id="severity" name="severity" aria-describedby="severity-hint">${options([{ value: '', label: 'Any' }, ...SEVERITY_FILTERS.map((s) => ({ value: s, label: s === 'critical' ? 'Critical' : `${SEVERITY_LABELS[s]} or worse` }))], filter.severity)}</select>`, 'At least one such advisory')}`;
}

/**
 * "2 (critical)": how many advisories affect the identity, coloured by the worst, linking to them;
 * "not checked" before any import (null index), "—" for identities `fleetVulns` leaves out.
 */
function advisoryCell(i: IdentityView, vulnIndex: VulnIndex | null, reported: boolean): SafeHtml {
  if (!vulnIndex) return html`<span class="muted">not checked</span>`;
  if (i.state === 'revoked' || i.state === 'expired') return html`<span class="muted">—</span>`;
  const vulns = vulnIndex.get(i.spiffeId) ?? [];
  const worst = worstSeverity(vulns);
  if (!worst) return html`<span class="muted">${reported ? 'none' : 'no report'}</span>`;
  return html`<a href="${dashboardUrl(['identity', i.role, i.name])}#advisories">${severityBadge(worst, `${vulns.length} (${worst})`)}<span class="visually-hidden"> advisories affect ${i.name} (${i.role}), the worst ${worst}</span></a>`;
}

function fleetTable(
  ctx: DashboardContext,
  identities: IdentityView[],
  reserved: ReadonlySet<string>,
  scores: ScoreIndex,
  vulnIndex: VulnIndex | null,
): SafeHtml {
  return html`<table aria-describedby="fleet-summary">
<caption>Identities and their current certificates</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Role</th><th scope="col">SPIFFE ID</th><th scope="col">Current serial</th><th scope="col">Last renewal</th><th scope="col">Expires</th><th scope="col">State</th><th scope="col">Posture</th><th scope="col">Advisories</th><th scope="col">Actions</th></tr></thead>
<tbody>
${identities.map(
  (i) => html`<tr>
<th scope="row"><a href="${dashboardUrl(['identity', i.role, i.name])}">${i.name}</a></th>
<td>${i.role}</td>
<td class="mono">${i.spiffeId}</td>
<td class="mono">${i.current.serial}</td>
<td>${i.lastRenewal ? formatTime(i.lastRenewal) : html`<span class="muted">none (enrolled ${formatTime(i.current.issuedAt)})</span>`}</td>
<td>${formatTime(i.current.notAfter)}<br><span class="muted">${formatRelative(i.current.notAfter, ctx.now)}</span></td>
<td>${stateBadge(i.state)}${(i.state === 'revoked' || i.state === 'expired') && reserved.has(`${i.role}/${i.name}`) ? html`<br><span class="muted">name reserved</span>` : ''}</td>
<td>${postureCell(scores.get(i.spiffeId), ctx.now)}</td>
<td>${advisoryCell(i, vulnIndex, scores.has(i.spiffeId))}</td>
<td>${i.state === 'revoked' || i.state === 'expired' ? html`<span class="muted">—</span>` : html`<a href="${dashboardUrl(['certs', i.current.serial, 'revoke'])}">Revoke<span class="visually-hidden"> the certificate of ${i.name} (${i.role})</span>…</a>`}</td>
</tr>`,
)}
</tbody>
</table>`;
}
