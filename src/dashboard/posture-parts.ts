/** The small pieces of posture the pages share: score, verdict and severity badges, a report's age. */
import type { Verdict } from '../posture/check.js';
import type { Severity } from '../posture/vulns/cvss.js';
import { html, type SafeHtml } from './html.js';
import { formatRelative } from './layout.js';
import { RATING_LABELS, ratingOf, type LatestScore } from './posture-model.js';
import { SEVERITY_LABELS } from './vuln-model.js';

const VERDICT_LABELS: Record<Verdict, string> = { pass: 'Pass', fail: 'Fail', unknown: 'Unknown' };

/** "93 (good)"; "No score" when no check decided; "No report" when the identity never reported. */
export function postureBadge(latest: LatestScore | undefined): SafeHtml {
  if (!latest) return html`<span class="badge none">No report</span>`;
  if (latest.score === null) return html`<span class="badge none">No score</span>`;
  const rating = ratingOf(latest.score);
  return html`<span class="badge ${rating}">${latest.score} (${RATING_LABELS[rating].toLowerCase()})</span>`;
}

/** The score badge with the report's age under it, for a table cell. */
export function postureCell(latest: LatestScore | undefined, now: Date): SafeHtml {
  return html`${postureBadge(latest)}${latest ? html`<br><span class="muted">reported ${formatRelative(latest.receivedAt, now)}</span>` : ''}`;
}

export function verdictBadge(verdict: Verdict): SafeHtml {
  return html`<span class="badge ${verdict}">${VERDICT_LABELS[verdict]}</span>`;
}

/** An advisory's severity in words, coloured by it; `text` replaces the word (as in "2 (critical)"). */
export function severityBadge(severity: Severity, text: string = SEVERITY_LABELS[severity]): SafeHtml {
  return html`<span class="badge severity-${severity}">${text}</span>`;
}
