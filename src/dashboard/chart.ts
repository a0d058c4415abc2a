/**
 * A bar chart as server-rendered SVG: geometry in attributes (allowed by the CSP, unlike inline
 * styles), a title and description for screen readers, and the same numbers as a table.
 */
import { html, type SafeHtml } from './html.js';

const WIDTH = 640;
const HEIGHT = 200;
const LEFT = 32;
const BOTTOM = 24;
const TOP = 12;

export function expiryChart(id: string, buckets: readonly number[], later: number): SafeHtml {
  const max = Math.max(1, ...buckets);
  const plotWidth = WIDTH - LEFT - 8;
  const plotHeight = HEIGHT - BOTTOM - TOP;
  const step = plotWidth / buckets.length;
  const total = buckets.reduce((a, b) => a + b, 0);
  const bars = buckets.map((count, day) => {
    const h = Math.round((count / max) * plotHeight);
    const x = (LEFT + day * step + 1).toFixed(1);
    const y = TOP + plotHeight - h;
    return html`<rect class="bar" x="${x}" y="${y}" width="${(step - 2).toFixed(1)}" height="${h}"><title>${dayLabel(day)}: ${count}</title></rect>`;
  });
  const ticks = buckets
    .map((_, day) => day)
    .filter((day) => day % 5 === 0)
    .map(
      (day) =>
        html`<text x="${(LEFT + day * step + step / 2).toFixed(1)}" y="${HEIGHT - 6}" text-anchor="middle">${day === 0 ? '<1 d' : `${day} d`}</text>`,
    );
  return html`<figure class="chart">
<svg viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-labelledby="${id}-title ${id}-desc" xmlns="http://www.w3.org/2000/svg">
<title id="${id}-title">Current certificates expiring in the next ${buckets.length} days</title>
<desc id="${id}-desc">${total} expire within ${buckets.length} days; ${buckets[0] ?? 0} within 24 hours; ${later} later.</desc>
<line class="axis" x1="${LEFT}" y1="${TOP + plotHeight}" x2="${WIDTH - 8}" y2="${TOP + plotHeight}"></line>
<line class="axis" x1="${LEFT}" y1="${TOP}" x2="${LEFT}" y2="${TOP + plotHeight}"></line>
<text x="${LEFT - 4}" y="${TOP + 4}" text-anchor="end">${max}</text>
<text x="${LEFT - 4}" y="${TOP + plotHeight}" text-anchor="end">0</text>
${bars}
${ticks}
</svg>
<figcaption>Current certificates (one per identity, not revoked, not expired) by days until expiry. ${total} within ${buckets.length} days, ${later} later.</figcaption>
</figure>
<details>
<summary>Expiry by day as a table</summary>
<table>
<caption>Current certificates expiring per day</caption>
<thead><tr><th scope="col">Expires within</th><th scope="col" class="num">Certificates</th></tr></thead>
<tbody>${buckets.map((count, day) => html`<tr><th scope="row">${dayLabel(day)}</th><td class="num">${count}</td></tr>`)}
<tr><th scope="row">later</th><td class="num">${later}</td></tr></tbody>
</table>
</details>`;
}

function dayLabel(day: number): string {
  return day === 0 ? 'the next 24 hours' : `day ${day + 1} (${day * 24}–${(day + 1) * 24} h)`;
}
