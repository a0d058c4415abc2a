/**
 * Fleet: every identity with its current certificate and its latest posture score; search and
 * filters are GET parameters. Posture filters that cannot be read are ignored and said, never refused.
 */
import type { DashboardContext } from '../context.js';
import { EXPIRING_FRACTION, filterIdentities, groupIdentities, IDENTITY_STATES, STATE_LABELS, type IdentityState, type IdentityView } from '../fleet-model.js';
import { dashboardUrl, html, type SafeHtml } from '../html.js';
import { field, formatRelative, formatTime, options, page, stateBadge } from '../layout.js';
import { filterByPosture, readPostureFilter, STALE_CHOICES, type PostureFilterInput, type ScoreIndex } from '../posture-model.js';
import { postureCell } from '../posture-parts.js';
import { loadInventory } from './inventory.js';

export async function fleetPage(ctx: DashboardContext): Promise<SafeHtml> {
  const p = ctx.url.searchParams;
  const q = p.get('q') ?? '';
  const role = p.get('role') ?? '';
  const stateParam = p.get('state') ?? '';
  const state = (IDENTITY_STATES as readonly string[]).includes(stateParam) ? stateParam as IdentityState : undefined;
  const all = groupIdentities(await loadInventory(ctx), ctx.now);
  const reserved = new Set((await ctx.scope.authority.store.listNameReservations()).map((r) => `${r.role}/${r.name}`));
  const posture = readPostureFilter(p);
  const scores = await latestScores(ctx);
  const shown = filterByPosture(filterIdentities(all, { q, role, ...(state ? { state } : {}) }), scores, posture.query, ctx.now);
  const roles = [...new Set([...Object.keys(ctx.scope.authority.config.roles), ...all.map((i) => i.role)])].sort();

  return page({
    title: 'Fleet', section: 'fleet', viewer: ctx.viewer,
    body: html`<h1>Fleet</h1>
<form class="filters" method="get" action="${dashboardUrl(['fleet'])}" role="search" aria-label="Filter identities">
${field('q', 'Search', html`<input id="q" name="q" type="search" value="${q}" aria-describedby="q-hint" size="32">`, 'Name, SPIFFE ID or serial')}
${field('role', 'Role', html`<select id="role" name="role">${options([{ value: '', label: 'Any role' }, ...roles], role)}</select>`)}
${field('state', 'State', html`<select id="state" name="state">${options([{ value: '', label: 'Any state' }, ...IDENTITY_STATES.map((s) => ({ value: s, label: STATE_LABELS[s] }))], state ?? '')}</select>`)}
${postureFields(posture)}
<button type="submit">Filter</button>
${q || role || state || posture.below || posture.stale || posture.problems.length ? html`<a href="${dashboardUrl(['fleet'])}">Clear filters</a>` : ''}
</form>
${posture.problems.length ? html`<div class="error" role="alert" id="filter-error">${posture.problems.map((e) => html`<p>${e}</p>`)}</div>` : ''}
<p id="fleet-summary">Showing ${shown.length} of ${all.length} identities. "Expiring soon" means less than ${EXPIRING_FRACTION * 100} % of the certificate's lifetime is left (agents renew with at least 27 % left). The posture filters leave out revoked and expired identities, which can no longer report.</p>
<p>A name stays reserved for the enrollment that took it after its certificates are revoked or expire: enrolling it again needs a join token made for that name, or <code>gatehouse name release ROLE/NAME</code>.</p>
${shown.length === 0 ? html`<p class="notice">No identity matches these filters.</p>` : fleetTable(ctx, shown, reserved, scores)}`,
  });
}

/** Latest posture score of every identity that ever reported, by SPIFFE ID. */
async function latestScores(ctx: DashboardContext): Promise<ScoreIndex> {
  return new Map((await ctx.scope.authority.store.latestPostureScores()).map((r) => [r.spiffeId, { score: r.score, receivedAt: r.receivedAt }]));
}

function postureFields(posture: PostureFilterInput): SafeHtml {
  return html`${field('below', 'Score below', html`<input id="below" name="below" type="number" min="1" max="100" step="1" value="${posture.below}" aria-describedby="below-hint" size="4">`, 'No report counts as below')}
${field('stale', 'Report older than', html`<select id="stale" name="stale" aria-describedby="stale-hint">${options([{ value: '', label: 'Any age' }, ...STALE_CHOICES], posture.stale)}</select>`, 'Never reported counts as older')}`;
}

function fleetTable(ctx: DashboardContext, identities: IdentityView[], reserved: ReadonlySet<string>, scores: ScoreIndex): SafeHtml {
  return html`<table aria-describedby="fleet-summary">
<caption>Identities and their current certificates</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Role</th><th scope="col">SPIFFE ID</th><th scope="col">Current serial</th><th scope="col">Last renewal</th><th scope="col">Expires</th><th scope="col">State</th><th scope="col">Posture</th><th scope="col">Actions</th></tr></thead>
<tbody>
${identities.map((i) => html`<tr>
<th scope="row"><a href="${dashboardUrl(['identity', i.role, i.name])}">${i.name}</a></th>
<td>${i.role}</td>
<td class="mono">${i.spiffeId}</td>
<td class="mono">${i.current.serial}</td>
<td>${i.lastRenewal ? formatTime(i.lastRenewal) : html`<span class="muted">none (enrolled ${formatTime(i.current.issuedAt)})</span>`}</td>
<td>${formatTime(i.current.notAfter)}<br><span class="muted">${formatRelative(i.current.notAfter, ctx.now)}</span></td>
<td>${stateBadge(i.state)}${(i.state === 'revoked' || i.state === 'expired') && reserved.has(`${i.role}/${i.name}`) ? html`<br><span class="muted">name reserved</span>` : ''}</td>
<td>${postureCell(scores.get(i.spiffeId), ctx.now)}</td>
<td>${i.state === 'revoked' || i.state === 'expired' ? html`<span class="muted">—</span>` : html`<a href="${dashboardUrl(['certs', i.current.serial, 'revoke'])}">Revoke<span class="visually-hidden"> the certificate of ${i.name} (${i.role})</span>…</a>`}</td>
</tr>`)}
</tbody>
</table>`;
}
