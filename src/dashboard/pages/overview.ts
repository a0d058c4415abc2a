/** Overview: identities by role and state, device posture and advisories, upcoming expiries, issuance rate, CRL freshness. */
import { parseCrl } from '../../pki/crl-parse.js';
import type { PublishedCrl } from '../../ca/crl-publisher.js';
import type { DashboardContext } from '../context.js';
import { expiryChart } from '../chart.js';
import {
  countByRoleAndState,
  expiryBuckets,
  groupIdentities,
  IDENTITY_STATES,
  issuanceRates,
  STATE_LABELS,
  EXPIRING_FRACTION,
} from '../fleet-model.js';
import { dashboardUrl, html, type SafeHtml } from '../html.js';
import { formatRelative, formatTime, page } from '../layout.js';
import { loadInventory } from './inventory.js';
import { rotationProgress } from '../../ca/rotation-progress.js';
import { isStale, POSTURE_STALE_MS, postureScores, ratingRange } from '../../ca/posture-views.js';
import { formatDuration } from '../../config/duration.js';
import { countByRating, RATING_LABELS, RATINGS, type RatingOrNone } from '../posture-model.js';
import { fleetVulns, importedAdvisoryCount } from '../../ca/vuln-views.js';
import { countAtLeast, indexVulns } from '../vuln-model.js';

export async function overviewPage(ctx: DashboardContext): Promise<SafeHtml> {
  const { now } = ctx;
  const certs = await loadInventory(ctx);
  const identities = groupIdentities(certs, now);
  const { roles, counts, totals } = countByRoleAndState(identities);
  const { buckets, later } = expiryBuckets(identities, now);
  const rates = issuanceRates(certs, now);
  const tokens = await ctx.scope.authority.store.listTokens();
  const usableTokens = tokens.filter((t) => !t.revokedAt && t.expiresAt > now && t.uses < t.maxUses).length;
  const posture = await postureOverview(ctx);
  const advisories = await advisoryOverview(ctx);

  const stateLink = (state: string, role: string | null, count: number) =>
    count === 0 ? html`${count}` : html`<a href="${dashboardUrl(['fleet'], { state, role })}">${count}</a>`;

  return page({
    title: 'Overview',
    section: 'overview',
    viewer: ctx.viewer,
    body: html`<h1>Overview</h1>
<div class="cards">
<div class="card"><div class="big">${identities.length}</div><div>identities (${certs.length} certificates)</div></div>
<div class="card"><div class="big">${totals.expiring}</div><div>expiring soon (less than ${EXPIRING_FRACTION * 100} % of their lifetime left)</div></div>
<div class="card"><div class="big">${rates[0]!.enrolled + rates[0]!.renewed}</div><div>certificates issued in the last 24 h</div></div>
<div class="card"><div class="big">${usableTokens}</div><div>usable join tokens</div></div>
</div>
${await rootRotationNotice(ctx)}

<h2 id="by-role">Identities by role and state</h2>
<table aria-labelledby="by-role">
<thead><tr><th scope="col">Role</th>${IDENTITY_STATES.map((s) => html`<th scope="col" class="num">${STATE_LABELS[s]}</th>`)}<th scope="col" class="num">Total</th></tr></thead>
<tbody>
${roles.map((role) => {
  const row = counts.get(role)!;
  return html`<tr><th scope="row"><a href="${dashboardUrl(['fleet'], { role })}">${role}</a></th>${IDENTITY_STATES.map((s) => html`<td class="num">${stateLink(s, role, row[s])}</td>`)}<td class="num">${IDENTITY_STATES.reduce((n, s) => n + row[s], 0)}</td></tr>`;
})}
</tbody>
<tfoot><tr><th scope="row">All roles</th>${IDENTITY_STATES.map((s) => html`<td class="num">${stateLink(s, null, totals[s])}</td>`)}<td class="num">${identities.length}</td></tr></tfoot>
</table>

${posture}
${advisories}

<h2>Expiring in the next 30 days</h2>
${expiryChart('expiry', buckets, later)}

<h2 id="issuance">Issuance rate</h2>
<table aria-labelledby="issuance">
<thead><tr><th scope="col">Window</th><th scope="col" class="num">First enrollments</th><th scope="col" class="num">Renewals</th><th scope="col" class="num">Total</th><th scope="col" class="num">Per hour</th></tr></thead>
<tbody>${rates.map((r) => html`<tr><th scope="row">last ${r.windowMs / 3_600_000 >= 48 ? `${r.windowMs / 86_400_000} days` : `${r.windowMs / 3_600_000} h`}</th><td class="num">${r.enrolled}</td><td class="num">${r.renewed}</td><td class="num">${r.enrolled + r.renewed}</td><td class="num">${((r.enrolled + r.renewed) / (r.windowMs / 3_600_000)).toFixed(2)}</td></tr>`)}</tbody>
</table>

<h2 id="crls">Certificate revocation lists</h2>
<table aria-labelledby="crls">
<thead><tr><th scope="col">CRL</th><th scope="col">URL</th><th scope="col" class="num">Number</th><th scope="col" class="num">Entries</th><th scope="col">This update</th><th scope="col">Next update</th><th scope="col">Freshness</th></tr></thead>
<tbody>${crlRow(ctx, 'Issuing CA', '/crl', () => ctx.scope.crls.current('intermediate'))}${retiredCrlRows(ctx)}${crlRow(ctx, 'Root', '/crl/root', () => ctx.scope.crls.current('root'))}</tbody>
</table>`,
  });
}

/**
 * Active identities by the rating of their latest score, the same set `gatehouse fleet posture`
 * and the metrics count. A count links to the fleet page where a filter selects it: "Score
 * below" also lists the identities without a score, as it does everywhere.
 */
async function postureOverview(ctx: DashboardContext): Promise<SafeHtml> {
  const scores = await postureScores(ctx.scope.authority.store, ctx.now);
  const counts = countByRating(scores);
  const stale = scores.filter((s) => isStale(s.reportedAt, POSTURE_STALE_MS, ctx.now)).length;
  const staleText = formatDuration(POSTURE_STALE_MS);
  const below = ratingRange('poor').high + 1;
  const range = (r: RatingOrNone) => {
    if (r === 'none') return 'never reported, or no check decided';
    const { low, high } = ratingRange(r);
    return `${low}–${high}`;
  };
  const count = (r: RatingOrNone) =>
    r === 'poor' && counts.poor > 0
      ? html`<a href="${dashboardUrl(['fleet'], { below })}">${counts.poor}<span class="visually-hidden"> poor: identities with a score below ${below} or none</span></a>`
      : html`${counts[r]}`;
  return html`<h2 id="posture">Device posture</h2>
<table aria-labelledby="posture" aria-describedby="posture-stale">
<thead><tr><th scope="col">Latest score</th><th scope="col">Scores</th><th scope="col" class="num">Identities</th></tr></thead>
<tbody>${RATINGS.map((r) => html`<tr><th scope="row"><span class="badge ${r}">${RATING_LABELS[r]}</span></th><td>${range(r)}</td><td class="num">${count(r)}</td></tr>`)}</tbody>
</table>
<p id="posture-stale">${stale === 0 ? `Every active identity reported in the last ${staleText}.` : html`<a href="${dashboardUrl(['fleet'], { stale: staleText })}">${stale} active ${stale === 1 ? 'identity has' : 'identities have'} not reported in ${staleText}</a> (or never).`}</p>`;
}

/** Active identities with at least one critical advisory, linked to the fleet page filtered the same way. */
async function advisoryOverview(ctx: DashboardContext): Promise<SafeHtml> {
  const { store } = ctx.scope.authority;
  if ((await importedAdvisoryCount(store)) === 0) {
    return html`<p id="advisories-critical">No advisories imported yet: <code>gatehouse vuln import FILE --dir CA_DIR</code> loads a feed for the CVE audit (docs/operations.md, "CVE audit").</p>`;
  }
  const critical = countAtLeast(indexVulns(await fleetVulns(store, ctx.now)), 'critical');
  return html`<p id="advisories-critical">${
    critical === 0
      ? 'No active identity is affected by a critical advisory.'
      : html`<a href="${dashboardUrl(['fleet'], { severity: 'critical' })}">${critical} active ${critical === 1 ? 'identity is' : 'identities are'} affected by at least one critical advisory</a>.`
  }</p>`;
}

/** Issuing CAs retired by `ca rotate intermediate` that still sign the CRL of their certificates. */
function retiredCrlRows(ctx: DashboardContext): SafeHtml[] {
  const { authority } = ctx.scope;
  return ctx.scope.crls
    .all()
    .filter((e) => !e.issuerDer.equals(authority.issuer.certDer) && !e.issuerDer.equals(authority.rootDer))
    .map((e) => crlRow(ctx, `Retired issuing CA ${e.issuerId}`, `/crl/${e.issuerId}`, () => e.crl));
}

function crlRow(ctx: DashboardContext, label: string, path: string, get: () => PublishedCrl): SafeHtml {
  let crl: PublishedCrl;
  try {
    crl = get();
  } catch (err) {
    return html`<tr><th scope="row">${label}</th><td><code>${path}</code></td><td colspan="4">not available: ${(err as Error).message}</td><td><span class="badge stale">Missing</span></td></tr>`;
  }
  const entries = parseCrl(crl.der).revoked.size;
  const fresh = crl.nextUpdate > ctx.now;
  return html`<tr><th scope="row">${label}</th><td><code>${path}</code></td><td class="num">${crl.number.toString()}</td><td class="num">${entries}</td>
<td>${formatTime(crl.thisUpdate)} <span class="muted">(${formatRelative(crl.thisUpdate, ctx.now)})</span></td>
<td>${formatTime(crl.nextUpdate)} <span class="muted">(${formatRelative(crl.nextUpdate, ctx.now)})</span></td>
<td>${fresh ? html`<span class="badge fresh">Fresh</span>` : html`<span class="badge stale">Stale: past next update</span>`}</td></tr>`;
}

/** A root rotation in progress, with how far it has come (the same count as `gatehouse ca rotate status`). */
async function rootRotationNotice(ctx: DashboardContext): Promise<SafeHtml> {
  const state = ctx.scope.authority.rotation?.state;
  if (state?.phase !== 'rotating') return html``;
  const progress = await rotationProgress(ctx.scope.authority.store, state.issuerId, ctx.now);
  return html`<p class="notice" role="status" id="root-rotation">Root rotation in progress since ${formatTime(new Date(state.startedAt))}: <strong>${progress.moved} of ${progress.total}</strong> identities have moved to the new chain. <code>gatehouse ca rotate finish</code> is refused until all have.</p>`;
}
