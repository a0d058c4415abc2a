/**
 * The audit trail, newest first, filtered by identity, event type and time range (GET
 * parameters, so a filtered view is a link), 50 events a page.
 */
import { AUDIT_EVENTS } from '../../log/audit-events.js';
import type { AuditRecord } from '../../store/store-audit.js';
import type { DashboardContext } from '../context.js';
import { dashboardUrl, html, type SafeHtml } from '../html.js';
import { field, formatTime, options, page } from '../layout.js';
import { loadInventory } from './inventory.js';

export const AUDIT_PAGE_SIZE = 50;

export interface AuditQuery {
  identity: string;
  type: string;
  from: string;
  until: string;
  page: number;
}

/** `2024-05-01T12:30` (what a datetime-local input sends) is read as UTC; a full ISO 8601 time keeps its zone. */
export function parseUtcTime(text: string): Date | null {
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?)?(Z|[+-]\d{2}:\d{2})?$/.test(text)) return null;
  const withTime = text.length === 10 ? `${text}T00:00` : text;
  const zoned = /(Z|[+-]\d{2}:\d{2})$/.test(withTime) ? withTime : `${withTime}Z`;
  const date = new Date(zoned);
  return Number.isNaN(date.getTime()) ? null : date;
}

export async function auditPage(ctx: DashboardContext): Promise<{ status: number; body: SafeHtml }> {
  const p = ctx.url.searchParams;
  const query: AuditQuery = {
    identity: (p.get('identity') ?? '').trim(),
    type: p.get('type') ?? '',
    from: p.get('from') ?? '',
    until: p.get('until') ?? '',
    page: /^\d{1,6}$/.test(p.get('page') ?? '') ? Math.max(1, Number(p.get('page'))) : 1,
  };
  const errors: string[] = [];
  const from = query.from ? parseUtcTime(query.from) : null;
  const until = query.until ? parseUtcTime(query.until) : null;
  if (query.from && !from) errors.push(`"From" must be a time like 2024-05-01T12:00 (UTC); got "${query.from}".`);
  if (query.until && !until) errors.push(`"Until" must be a time like 2024-05-01T12:00 (UTC); got "${query.until}".`);
  if (query.type && !(AUDIT_EVENTS as readonly string[]).includes(query.type))
    errors.push(`"${query.type}" is not an audit event type.`);

  let events: AuditRecord[] = [];
  if (errors.length === 0) {
    events = await ctx.scope.authority.store.listAudit({
      ...(query.type ? { type: query.type } : {}),
      ...(from ? { since: from } : {}),
      ...(until ? { until } : {}),
    });
    if (query.identity) events = events.filter(await identityMatcher(ctx, query.identity));
    events.reverse();
  }
  const pages = Math.max(1, Math.ceil(events.length / AUDIT_PAGE_SIZE));
  const current = Math.min(query.page, pages);
  const shown = events.slice((current - 1) * AUDIT_PAGE_SIZE, current * AUDIT_PAGE_SIZE);
  const link = (n: number) =>
    dashboardUrl(['audit'], {
      identity: query.identity,
      type: query.type,
      from: query.from,
      until: query.until,
      page: n,
    });
  const first = events.length === 0 ? 0 : (current - 1) * AUDIT_PAGE_SIZE + 1;

  const body = page({
    title: 'Audit',
    section: 'audit',
    viewer: ctx.viewer,
    body: html`<h1>Audit trail</h1>
<form class="filters" method="get" action="${dashboardUrl(['audit'])}" aria-label="Filter audit events">
${field('identity', 'Identity', html`<input id="identity" name="identity" value="${query.identity}" size="40" aria-describedby="identity-hint">`, 'SPIFFE ID, name or serial')}
${field('type', 'Event type', html`<select id="type" name="type">${options([{ value: '', label: 'Any type' }, ...AUDIT_EVENTS], query.type)}</select>`)}
${field('from', 'From (UTC)', html`<input id="from" name="from" type="datetime-local" step="1" value="${query.from}">`)}
${field('until', 'Until (UTC)', html`<input id="until" name="until" type="datetime-local" step="1" value="${query.until}">`)}
<button type="submit">Filter</button>
${query.identity || query.type || query.from || query.until ? html`<a href="${dashboardUrl(['audit'])}">Clear filters</a>` : ''}
</form>
${errors.length ? html`<div class="error" role="alert">${errors.map((e) => html`<p>${e}</p>`)}</div>` : ''}
<p id="audit-summary">${events.length === 0 ? 'No events match.' : `Events ${first}–${first + shown.length - 1} of ${events.length}, newest first.`}</p>
${
  shown.length
    ? html`<table aria-describedby="audit-summary">
<caption>Audit events</caption>
<thead><tr><th scope="col" class="num">#</th><th scope="col">Time</th><th scope="col">Event</th><th scope="col">Actor</th><th scope="col">Serial</th><th scope="col">Token</th><th scope="col">Details</th></tr></thead>
<tbody>${shown.map((e) => html`<tr><th scope="row" class="num">${e.seq}</th><td>${formatTime(e.time)}</td><td><code class="event">${e.type}</code></td><td class="mono">${e.actor}</td><td class="mono">${e.serial ?? ''}</td><td class="mono">${e.tokenId ?? ''}</td><td>${detailsList(e.details)}${e.requestId ? html`<div class="muted">request ${e.requestId}</div>` : ''}</td></tr>`)}</tbody>
</table>`
    : ''
}
${
  pages > 1
    ? html`<nav class="pages" aria-label="Audit pages">
${current > 1 ? html`<a href="${link(current - 1)}" rel="prev">← Newer</a>` : ''}
<span>Page ${current} of ${pages}</span>
${current < pages ? html`<a href="${link(current + 1)}" rel="next">Older →</a>` : ''}
</nav>`
    : ''
}`,
  });
  return { status: errors.length ? 400 : 200, body };
}

/**
 * Events about an identity: it acted, or the event names one of its certificates, or its details
 * name its SPIFFE ID. The text may be a SPIFFE ID, a bare name (every role) or a serial.
 */
async function identityMatcher(ctx: DashboardContext, identity: string): Promise<(e: AuditRecord) => boolean> {
  const needle = identity.toLowerCase();
  const certs = (await loadInventory(ctx)).filter(
    (c) => c.spiffeId === identity || c.name === identity || c.serial === needle,
  );
  const serials = new Set(certs.map((c) => c.serial));
  const ids = new Set(certs.map((c) => c.spiffeId));
  if (identity.startsWith('spiffe://')) ids.add(identity);
  return (e) =>
    ids.has(e.actor) ||
    (e.serial !== null && serials.has(e.serial)) ||
    (typeof e.details.spiffeId === 'string' && ids.has(e.details.spiffeId));
}

function detailsList(details: Record<string, unknown>): SafeHtml {
  const entries = Object.entries(details).filter(
    ([, v]) => v !== null && v !== undefined && !(Array.isArray(v) && v.length === 0),
  );
  if (entries.length === 0) return html``;
  return html`<ul class="details">${entries.map(([k, v]) => html`<li><span class="muted">${k}:</span> <code>${typeof v === 'string' ? v : JSON.stringify(v)}</code></li>`)}</ul>`;
}
