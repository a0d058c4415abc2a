/**
 * The dashboard's only stylesheet and script, served from the CA itself (no CDN). They are
 * constants with no data in them, so they are served without a client certificate: the refusal
 * page a browser without one gets is styled too.
 *
 * Colours: body text #1b1b1b on #ffffff (17:1); links and focus #0b57d0 (6.4:1 on white, 5.9:1 on the
 * panel grey); muted text #4a4a4a (8.2:1 or more); every state, score, verdict and advisory severity badge
 * has text of at least 7:1 on its background (severity: critical 11:1, high 9.2:1, medium 9.6:1,
 * low 10:1, none and unknown 9.6:1), and says its state in words.
 */
export const DASHBOARD_CSS = `
:root { color-scheme: light; --fg: #1b1b1b; --muted: #4a4a4a; --bg: #ffffff; --line: #c4c4c4; --accent: #0b57d0; --panel: #f4f6f8; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
a:focus, button:focus, input:focus, select:focus, textarea:focus, summary:focus { outline: 3px solid var(--accent); outline-offset: 2px; }
.skip { position: absolute; left: -9999px; top: 0; padding: .5rem 1rem; background: var(--bg); z-index: 10; }
.skip:focus { left: .5rem; }
.visually-hidden { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
header.site { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 2rem; padding: .75rem 1.5rem; border-bottom: 1px solid var(--line); background: var(--panel); }
header.site .brand { font-weight: 700; margin: 0; font-size: 1.1rem; }
header.site nav ul { display: flex; gap: 1.25rem; list-style: none; margin: 0; padding: 0; }
header.site nav a[aria-current="page"] { font-weight: 700; color: var(--fg); text-decoration-thickness: 3px; }
header.site .whoami { margin: 0 0 0 auto; color: var(--muted); font-size: .9rem; overflow-wrap: anywhere; }
main { padding: 1rem 1.5rem 3rem; max-width: 90rem; }
h1 { font-size: 1.6rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; font-size: .95rem; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { border-bottom: 2px solid var(--fg); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: .9em; overflow-wrap: anywhere; }
.badge { display: inline-block; padding: 0 .5rem; border: 1px solid currentColor; border-radius: .25rem; font-size: .85rem; font-weight: 600; white-space: nowrap; }
.badge.active { color: #0a4d24; background: #e3f3e8; }
.badge.expiring { color: #5c3500; background: #fff1d6; }
.badge.expired { color: #7a1111; background: #fde7e7; }
.badge.revoked { color: #ffffff; background: #7a1111; }
.badge.stale { color: #7a1111; background: #fde7e7; }
.badge.fresh { color: #0a4d24; background: #e3f3e8; }
.badge.good, .badge.pass { color: #0a4d24; background: #e3f3e8; }
.badge.fair { color: #5c3500; background: #fff1d6; }
.badge.poor, .badge.fail { color: #7a1111; background: #fde7e7; }
.badge.none, .badge.unknown { color: #3a3a3a; background: #ececec; }
.badge.severity-critical { color: #ffffff; background: #7a1111; }
.badge.severity-high { color: #6b2400; background: #ffe4d1; }
.badge.severity-medium { color: #5c3500; background: #fff1d6; }
.badge.severity-low { color: #0b3a66; background: #e6f0fa; }
.badge.severity-none, .badge.severity-unknown { color: #3a3a3a; background: #ececec; }
form.filters { display: flex; flex-wrap: wrap; align-items: flex-end; gap: .75rem 1rem; padding: .75rem; background: var(--panel); border: 1px solid var(--line); }
form.stack { display: grid; gap: .75rem; max-width: 36rem; }
.field { display: flex; flex-direction: column; gap: .2rem; }
.field .hint { color: var(--muted); font-size: .85rem; }
label { font-weight: 600; }
input, select, textarea { font: inherit; padding: .35rem .5rem; border: 1px solid #6b6b6b; border-radius: .25rem; background: #fff; color: var(--fg); }
button, .button { font: inherit; font-weight: 600; padding: .4rem .9rem; border: 2px solid var(--accent); border-radius: .25rem; background: var(--accent); color: #fff; cursor: pointer; text-decoration: none; display: inline-block; }
button.secondary, .button.secondary { background: #fff; color: var(--accent); }
button.danger { background: #a4161a; border-color: #a4161a; }
.inline { display: inline; }
.notice { padding: .75rem 1rem; border: 2px solid var(--accent); background: #eef3fd; margin: 1rem 0; }
.error { padding: .75rem 1rem; border: 2px solid #a4161a; background: #fde7e7; margin: 1rem 0; }
.secret { display: block; width: 100%; padding: .6rem; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .9rem; background: var(--panel); border: 1px solid var(--line); overflow-wrap: anywhere; white-space: pre-wrap; }
.row { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(14rem, 1fr)); gap: 1rem; }
.card { border: 1px solid var(--line); padding: .75rem 1rem; background: var(--panel); }
.card .big { font-size: 1.8rem; font-weight: 700; }
.chart { max-width: 60rem; }
.chart svg { width: 100%; height: auto; }
.chart .bar { fill: var(--accent); }
.chart .axis { stroke: var(--fg); }
.chart text { fill: var(--fg); font-size: 11px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
pre { background: var(--panel); border: 1px solid var(--line); padding: .75rem; overflow-x: auto; }
code.event { white-space: nowrap; overflow-wrap: normal; }
ul.details { list-style: none; margin: 0; padding: 0; }
nav.pages { display: flex; gap: 1rem; align-items: center; }
.muted { color: var(--muted); }
`;

/**
 * Progressive enhancement only: every page works without it. Copy buttons (rendered `hidden`,
 * shown here) and a confirmation prompt on forms marked `data-confirm`.
 */
export const DASHBOARD_JS = `'use strict';
document.querySelectorAll('button[data-copy]').forEach(function (button) {
  button.hidden = false;
  button.addEventListener('click', function () {
    var source = document.getElementById(button.getAttribute('data-copy'));
    var status = document.getElementById(button.getAttribute('data-copy') + '-status');
    if (!source) return;
    var text = source.textContent.trim();
    var say = function (message) { if (status) status.textContent = message; };
    var selectSource = function () {
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () { say('Copied to the clipboard.'); }, function () { selectSource(); say('Selected: press Ctrl+C to copy.'); });
    } else {
      selectSource();
      say('Selected: press Ctrl+C to copy.');
    }
  });
});
document.querySelectorAll('form[data-confirm]').forEach(function (form) {
  form.addEventListener('submit', function (event) {
    if (!window.confirm(form.getAttribute('data-confirm'))) event.preventDefault();
  });
});
`;

/** A plain shield, so browsers do not ask the CA for /favicon.ico (a 404 in every console). */
export const DASHBOARD_ICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><path d="M8 1 2 3.5v4C2 11 4.6 14 8 15c3.4-1 6-4 6-7.5v-4z" fill="#0b57d0"/></svg>';
