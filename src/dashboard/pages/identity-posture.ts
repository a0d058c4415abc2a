/**
 * The identity page's Posture section: the device's latest report (score, when, facts) and every
 * check in the order to fix them. A report comes from the device and is attacker-controlled:
 * every value goes through the escaping `html` template, and a stored report that no longer
 * reads as a report is said, not shown.
 */
import { formatRemaining } from '../../config/duration.js';
import { validatePostureReport } from '../../posture/report-schema.js';
import type { PostureReport } from '../../posture/report.js';
import type { PostureRecord } from '../../store/store-posture.js';
import type { DashboardContext } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import { formatRelative, formatTime } from '../layout.js';
import { checksFailingFirst } from '../posture-model.js';
import { postureBadge, verdictBadge } from '../posture-parts.js';

export async function postureSection(ctx: DashboardContext, spiffeId: string): Promise<SafeHtml> {
  const [record] = await ctx.scope.authority.store.postureHistory(spiffeId, 1);
  const heading = html`<h2 id="posture">Posture</h2>`;
  if (!record) return html`${heading}${notReported()}`;
  const report = readReport(record);
  if (!report)
    return html`${heading}<p class="error" role="alert">The latest report (received ${formatTime(record.receivedAt)}) could not be read.</p>`;
  return html`${heading}${reportFacts(ctx, record, report)}${checksTable(report)}`;
}

function notReported(): SafeHtml {
  return html`<p>This device has not reported its posture. On the device, send a report now with
<code>gatehouse agent report --dir IDENTITY_DIR</code>; <code>gatehouse agent run</code> reports every hour and after each renewal.</p>`;
}

/** The report as stored by POST /v1/posture (validated then, with the CA's own score). */
function readReport(record: PostureRecord): PostureReport | null {
  try {
    const checked = validatePostureReport(JSON.parse(record.report));
    return checked.ok ? checked.report : null;
  } catch {
    return null;
  }
}

function reportFacts(ctx: DashboardContext, record: PostureRecord, report: PostureReport): SafeHtml {
  const { facts } = report;
  const unknown = html`<span class="muted">not reported</span>`;
  return html`<dl class="facts" id="posture-facts">
<dt>Score</dt><dd>${postureBadge({ score: record.score, receivedAt: record.receivedAt })} <span class="muted">(computed by the CA from the checks)</span></dd>
<dt>Reported at</dt><dd>${formatTime(record.receivedAt)} <span class="muted">(${formatRelative(record.receivedAt, ctx.now)})</span></dd>
<dt>Sent with serial</dt><dd class="mono">${record.serial}</dd>
<dt>Hostname</dt><dd class="mono">${facts.hostname ?? unknown}</dd>
<dt>Kernel</dt><dd class="mono">${facts.kernel ?? unknown}</dd>
<dt>Uptime</dt><dd>${facts.uptimeSeconds === null ? unknown : formatRemaining(facts.uptimeSeconds * 1000)}${facts.bootedAt ? html` <span class="muted">(booted ${formatTime(new Date(facts.bootedAt))})</span>` : ''}</dd>
</dl>`;
}

function checksTable(report: PostureReport): SafeHtml {
  if (report.checks.length === 0) return html`<p>The report has no checks.</p>`;
  return html`<table id="posture-checks">
<caption>Checks of the latest report, failing first</caption>
<thead><tr><th scope="col">Check</th><th scope="col">Verdict</th><th scope="col" class="num">Weight</th><th scope="col">Reason</th></tr></thead>
<tbody>${checksFailingFirst(report.checks).map((c) => html`<tr><th scope="row" class="mono">${c.id}</th><td>${verdictBadge(c.verdict)}</td><td class="num">${c.weight}</td><td>${c.reason}</td></tr>`)}</tbody>
</table>`;
}
