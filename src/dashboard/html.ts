/**
 * HTML that escapes by default. Every value interpolated into an `html` template is escaped for
 * both text and quoted-attribute contexts, unless it is itself the result of an `html` template.
 * There is deliberately no way to mark an arbitrary string as safe: a fragment is trusted only if
 * this module made it (a WeakSet of instances, so an object of the same shape is still escaped).
 *
 * Rules for templates, which escaping alone cannot enforce:
 * - attribute values are always quoted (`href="${x}"`, never `href=${x}`);
 * - URLs put in `href`/`action` are built by `dashboardUrl`, which only makes paths under
 *   /dashboard/ (no `javascript:` or foreign URL can come out of it);
 * - nothing is ever interpolated into `<script>` or `<style>` (there are none: see the CSP).
 */
export interface SafeHtml {
  readonly html: string;
  toString(): string;
}

const trusted = new WeakSet<object>();

function fragment(text: string): SafeHtml {
  const value: SafeHtml = Object.freeze({ html: text, toString: () => text });
  trusted.add(value);
  return value;
}

export function isSafeHtml(value: unknown): value is SafeHtml {
  return typeof value === 'object' && value !== null && trusted.has(value);
}

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

/** Escapes & < > " ' and backtick: safe in element text and in single- or double-quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => ENTITIES[c]!);
}

function render(value: unknown): string {
  if (value === null || value === undefined || value === false) return '';
  if (isSafeHtml(value)) return value.html;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value instanceof Date) return escapeHtml(Number.isNaN(value.getTime()) ? 'invalid date' : value.toISOString());
  return escapeHtml(String(value));
}

/**
 * Tagged template: `html\`<td>${name}</td>\``. Values: html fragments pass through; arrays are
 * rendered item by item; null, undefined and false render nothing; anything else is escaped.
 */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return fragment(out);
}

/** The final document text. */
export function renderDocument(doc: SafeHtml): string {
  return doc.html;
}

/**
 * A same-origin URL under /dashboard/: path segments are percent-encoded one by one and query
 * values go through URLSearchParams, so request data can never change the scheme or the host.
 */
export function dashboardUrl(
  segments: readonly string[],
  query: Record<string, string | number | undefined | null> = {},
): string {
  const path = `/dashboard/${segments.map((s) => encodeURIComponent(s)).join('/')}`;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query))
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}
