/**
 * Secrets (issue 13): the list with who may read what and who last did, one secret's versions and
 * grants, grant and ungrant, create, and deletion behind a confirmation page. Every change goes
 * through the CA's SecretService with the admin as the actor (it audits them). A value is posted
 * once, to create, and is never rendered: not on a page, not in a form filled in again after a
 * refusal, not in a redirect. The service itself never returns one to these calls.
 */
import { GatehouseError, isGatehouseError } from '../../errors/errors.js';
import { MAX_SECRET_BYTES, SECRET_NAME_RE, SUBJECT_FORMS } from '../../secrets/names.js';
import type { SecretVersionView, SecretView } from '../../secrets/views.js';
import { csrfInput, type DashboardContext } from '../context.js';
import { dashboardUrl, html, type SafeHtml } from '../html.js';
import { field, formatRelative, formatTime, page } from '../layout.js';

/** The largest create form: a 500 KiB value percent-encoded (3 characters a byte) and room for the rest. */
export const MAX_SECRET_FORM_BYTES = MAX_SECRET_BYTES * 3 + 64 * 1024;

export interface SecretForm {
  name: string;
  grants: string;
}

/** What a query parameter naming a subject must look like to be echoed in a notice (parseSubject decides the rest). */
const SUBJECT_SHAPE_RE = /^(role|name|id):[A-Za-z0-9._:/-]{1,300}$/;

const date = (iso: string | null): Date | null => (iso ? new Date(iso) : null);

function when(iso: string | null, now: Date): SafeHtml {
  const d = date(iso);
  return d
    ? html`${formatTime(d)}<br><span class="muted">${formatRelative(d, now)}</span>`
    : html`<span class="muted">never</span>`;
}

function formatSize(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KiB`;
}

/** The most recent read of any version still kept. */
function lastRead(s: SecretView): SecretVersionView | null {
  let latest: SecretVersionView | null = null;
  for (const v of s.versions) if (v.lastReadAt && (!latest || v.lastReadAt > latest.lastReadAt!)) latest = v;
  return latest;
}

function lastReadCell(s: SecretView, now: Date): SafeHtml {
  const v = lastRead(s);
  if (!v) return html`<span class="muted">never</span>`;
  return html`${when(v.lastReadAt, now)}<br>by <span class="mono">${v.lastReadBy ?? 'unknown'}</span> <span class="muted">(version ${v.version})</span>`;
}

async function secretOrNotFound(ctx: DashboardContext, name: string): Promise<SecretView> {
  // show() refuses a name outside the safe alphabet without echoing it.
  return ctx.scope.secrets.show(name);
}

/** Every secret with its details (one query per secret: fine for the hundreds a CA holds). */
async function allSecrets(ctx: DashboardContext): Promise<SecretView[]> {
  const names = (await ctx.scope.secrets.list()).map((s) => s.name);
  const views = await Promise.all(
    names.map((n) =>
      ctx.scope.secrets.show(n).catch((err: unknown) => {
        if (isGatehouseError(err, 'GH_SECRET_NOT_FOUND')) return null; // deleted meanwhile
        throw err;
      }),
    ),
  );
  return views.filter((v): v is SecretView => v !== null);
}

export async function secretsPage(
  ctx: DashboardContext,
  state: { form?: SecretForm; error?: string } = {},
): Promise<SafeHtml> {
  const secrets = await allSecrets(ctx);
  const deleted = ctx.url.searchParams.get('deleted');
  const shownDeleted =
    deleted && SECRET_NAME_RE.test(deleted) && !secrets.some((s) => s.name === deleted) ? deleted : null;
  return page({
    title: 'Secrets',
    section: 'secrets',
    viewer: ctx.viewer,
    body: html`<h1>Secrets</h1>
${shownDeleted ? html`<p class="notice" role="status">Secret <span class="mono">${shownDeleted}</span> was deleted with all its versions; nobody can read it any more.</p>` : ''}
<p>Values are sealed on the CA and delivered only to the identities they are granted to. This page shows what exists and who may read it; it never shows a value.</p>
<h2 id="list">Secrets</h2>
${secrets.length === 0 ? html`<p>No secrets yet.</p>` : secretTable(ctx, secrets)}
<h2 id="create">Create a secret</h2>
${state.error ? html`<p class="error" role="alert" id="create-error">${state.error}${state.form ? html` The value was not kept: enter it again.` : ''}</p>` : ''}
${createForm(ctx, state.form)}`,
  });
}

function secretTable(ctx: DashboardContext, secrets: SecretView[]): SafeHtml {
  return html`<table aria-labelledby="list">
<thead><tr><th scope="col">Name</th><th scope="col" class="num">Version</th><th scope="col" class="num">Size</th><th scope="col">Readable versions</th><th scope="col">Granted to</th><th scope="col">Last read</th><th scope="col">Created</th><th scope="col">Updated</th></tr></thead>
<tbody>${secrets.map((s) => {
    const current = s.versions.find((v) => v.current);
    return html`<tr><th scope="row" class="mono"><a href="${dashboardUrl(['secrets', s.name])}">${s.name}</a></th><td class="num">${s.currentVersion}</td><td class="num">${current ? formatSize(current.size) : '—'}</td>
<td><ul class="details">${s.versions.map((v) => html`<li>${v.version}${v.current ? ' (current)' : v.expiresAt ? html` until ${formatTime(date(v.expiresAt))}` : ''}</li>`)}</ul></td>
<td>${s.grants.length ? html`<ul class="details">${s.grants.map((g) => html`<li class="mono">${g.subject}</li>`)}</ul>` : html`<span class="muted">nobody</span>`}</td>
<td>${lastReadCell(s, ctx.now)}</td><td>${formatTime(date(s.createdAt))}</td><td>${formatTime(date(s.updatedAt))}</td></tr>`;
  })}</tbody>
</table>`;
}

function createForm(ctx: DashboardContext, form: SecretForm | undefined): SafeHtml {
  const f = form ?? { name: '', grants: '' };
  // No value attribute or content on the value box, ever: a refused form is shown without it.
  return html`<form class="stack" method="post" action="${dashboardUrl(['secrets'])}" aria-labelledby="create"${form ? html` aria-describedby="create-error"` : ''}>
${csrfInput(ctx)}
${field('secret-name', 'Name', html`<input id="secret-name" name="name" value="${f.name}" required maxlength="128" autocomplete="off" spellcheck="false" aria-describedby="secret-name-hint">`, 'It becomes a file name where the secret is delivered: letters, digits, . _ - only, starting with a letter or digit.')}
${field('secret-value', 'Value', html`<textarea id="secret-value" name="value" rows="4" required autocomplete="off" spellcheck="false" autocapitalize="off" aria-describedby="secret-value-hint"></textarea>`, `Up to ${MAX_SECRET_BYTES / 1024} KiB of text, stored as UTF-8 with line breaks as LF. It is never shown again. For binary values or exact bytes use gatehouse secret create --file.`)}
${field('secret-grants', 'Grant to (optional)', html`<textarea id="secret-grants" name="grants" rows="2" autocomplete="off" spellcheck="false" autocapitalize="off" aria-describedby="secret-grants-hint">${f.grants}</textarea>`, `One subject a line: ${SUBJECT_FORMS}.`)}
<div><button type="submit">Create secret</button></div>
</form>`;
}

export function readSecretForm(form: URLSearchParams): SecretForm & { value: Buffer } {
  // Browsers send a textarea's line breaks as CRLF (HTML's form submission rules); a value is stored with LF.
  const value = Buffer.from((form.get('value') ?? '').replace(/\r\n/g, '\n'), 'utf8');
  return { name: (form.get('name') ?? '').trim(), grants: form.get('grants') ?? '', value };
}

function subjectsOf(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** POST: create through the service (audited as ca.secret_created by the admin); returns where to go. */
export async function createSecretAction(ctx: DashboardContext, f: SecretForm & { value: Buffer }): Promise<string> {
  try {
    const created = await ctx.scope.secrets.create(
      { name: f.name, value: f.value, grants: subjectsOf(f.grants) },
      { actor: ctx.actor, requestId: ctx.scope.requestId },
    );
    return dashboardUrl(['secrets', created.name], { created: 1 });
  } finally {
    f.value.fill(0);
  }
}

export async function secretPage(
  ctx: DashboardContext,
  name: string,
  state: { error?: string; subject?: string } = {},
): Promise<SafeHtml> {
  const s = await secretOrNotFound(ctx, name);
  const q = ctx.url.searchParams;
  const granted = q.get('granted');
  const ungranted = q.get('ungranted');
  const notice =
    q.get('created') === '1'
      ? html`Secret <span class="mono">${s.name}</span> was created. Its value is sealed on the CA and will not be shown.`
      : granted && s.grants.some((g) => g.subject === granted)
        ? html`<span class="mono">${granted}</span> may now read <span class="mono">${s.name}</span>.`
        : ungranted && SUBJECT_SHAPE_RE.test(ungranted) && !s.grants.some((g) => g.subject === ungranted)
          ? html`<span class="mono">${ungranted}</span> may no longer read <span class="mono">${s.name}</span>. An identity that read it before keeps what it read: rotate the secret when that matters.`
          : null;
  return page({
    title: `Secret ${s.name}`,
    section: 'secrets',
    viewer: ctx.viewer,
    body: html`<p><a href="${dashboardUrl(['secrets'])}">← Secrets</a></p>
<h1>Secret <span class="mono">${s.name}</span></h1>
${notice ? html`<p class="notice" role="status">${notice}</p>` : ''}
<dl class="facts">
<dt>Current version</dt><dd>${s.currentVersion}</dd>
<dt>Created</dt><dd>${formatTime(date(s.createdAt))}</dd>
<dt>Updated</dt><dd>${formatTime(date(s.updatedAt))}</dd>
<dt>Last read</dt><dd>${lastReadCell(s, ctx.now)}</dd>
</dl>
<h2 id="versions">Readable versions</h2>
<table aria-labelledby="versions">
<thead><tr><th scope="col" class="num">Version</th><th scope="col" class="num">Size</th><th scope="col">Checksum</th><th scope="col">Created</th><th scope="col">Readable until</th><th scope="col">Last read</th><th scope="col">Last read by</th></tr></thead>
<tbody>${s.versions.map(
      (
        v,
      ) => html`<tr><th scope="row" class="num">${v.version}${v.current ? html` <span class="muted">(current)</span>` : ''}</th><td class="num">${formatSize(v.size)}</td><td class="mono">${v.checksum}</td>
<td>${formatTime(date(v.createdAt))}</td><td>${v.current ? html`<span class="muted">current</span>` : v.expiresAt ? when(v.expiresAt, ctx.now) : html`<span class="muted">—</span>`}</td>
<td>${when(v.lastReadAt, ctx.now)}</td><td class="mono">${v.lastReadBy ?? html`<span class="muted">—</span>`}</td></tr>`,
    )}</tbody>
</table>
<h2 id="grants">Granted to</h2>
${
  s.grants.length === 0
    ? html`<p>Nobody may read this secret.</p>`
    : html`<table aria-labelledby="grants">
<thead><tr><th scope="col">Subject</th><th scope="col">Granted</th><th scope="col">Actions</th></tr></thead>
<tbody>${s.grants.map(
        (g) => html`<tr><th scope="row" class="mono">${g.subject}</th><td>${formatTime(date(g.grantedAt))}</td>
<td><form class="inline" method="post" action="${dashboardUrl(['secrets', s.name, 'ungrant'])}" data-confirm="Stop ${g.subject} from reading secret ${s.name}?">${csrfInput(ctx)}<input type="hidden" name="subject" value="${g.subject}"><button type="submit" class="secondary">Ungrant<span class="visually-hidden"> ${g.subject}</span></button></form></td></tr>`,
      )}</tbody>
</table>`
}
<h2 id="grant">Grant access</h2>
${state.error ? html`<p class="error" role="alert" id="grant-error">${state.error}</p>` : ''}
<form class="stack" method="post" action="${dashboardUrl(['secrets', s.name, 'grant'])}" aria-labelledby="grant"${state.error ? html` aria-describedby="grant-error"` : ''}>
${csrfInput(ctx)}
${field('grant-subject', 'Subject', html`<input id="grant-subject" name="subject" value="${state.subject ?? ''}" required maxlength="300" autocomplete="off" spellcheck="false" aria-describedby="grant-subject-hint">`, `One of ${SUBJECT_FORMS}.`)}
<div><button type="submit">Grant</button></div>
</form>
<h2>Delete</h2>
<p><a class="button secondary" href="${dashboardUrl(['secrets', s.name, 'delete'])}">Delete secret…</a></p>`,
  });
}

function oneSubject(form: URLSearchParams): string {
  const subject = (form.get('subject') ?? '').trim();
  if (!subject) throw new GatehouseError('GH_SECRET_INVALID', `name a subject: ${SUBJECT_FORMS}`);
  return subject;
}

export function readSubject(form: URLSearchParams): string {
  return (form.get('subject') ?? '').trim();
}

/** POST: grant one subject (audited as ca.secret_granted). */
export async function grantAction(ctx: DashboardContext, name: string, form: URLSearchParams): Promise<string> {
  const subject = oneSubject(form);
  const view = await ctx.scope.secrets.grant(name, [subject], { actor: ctx.actor, requestId: ctx.scope.requestId });
  return dashboardUrl(['secrets', view.name], { granted: subject });
}

/** POST: ungrant one subject (audited as ca.secret_ungranted). */
export async function ungrantAction(ctx: DashboardContext, name: string, form: URLSearchParams): Promise<string> {
  const subject = oneSubject(form);
  const view = await ctx.scope.secrets.ungrant(name, [subject], { actor: ctx.actor, requestId: ctx.scope.requestId });
  return dashboardUrl(['secrets', view.name], { ungranted: subject });
}

/** GET: what deleting will remove and who loses access, and the button. */
export async function deleteConfirmPage(ctx: DashboardContext, name: string): Promise<SafeHtml> {
  const s = await secretOrNotFound(ctx, name);
  const read = lastRead(s);
  return page({
    title: `Delete secret ${s.name}`,
    section: 'secrets',
    viewer: ctx.viewer,
    body: html`<p><a href="${dashboardUrl(['secrets', s.name])}">← ${s.name}</a></p>
<h1>Delete secret <span class="mono">${s.name}</span>?</h1>
<dl class="facts">
<dt>Versions deleted</dt><dd>${s.versions.map((v) => v.version).join(', ') || '—'}</dd>
<dt>Last read</dt><dd>${read ? html`${formatTime(date(read.lastReadAt))} by <span class="mono">${read.lastReadBy ?? 'unknown'}</span>` : html`<span class="muted">never</span>`}</dd>
</dl>
${
  s.grants.length
    ? html`<p>These subjects lose access at once:</p><ul>${s.grants.map((g) => html`<li class="mono">${g.subject}</li>`)}</ul>`
    : html`<p>It is granted to nobody.</p>`
}
<p>Deletion cannot be undone: every version and every grant is removed from the CA. Identities that read the value before keep what they read; an agent that syncs secrets removes its copy at its next sync.</p>
<form class="stack" method="post" action="${dashboardUrl(['secrets', s.name, 'delete'])}">
${csrfInput(ctx)}
<div class="row"><button type="submit" class="danger">Delete secret</button><a href="${dashboardUrl(['secrets', s.name])}">Cancel</a></div>
</form>`,
  });
}

/** POST: delete (audited as ca.secret_deleted). */
export async function deleteAction(ctx: DashboardContext, name: string): Promise<string> {
  const deleted = await ctx.scope.secrets.delete(name, { actor: ctx.actor, requestId: ctx.scope.requestId });
  return dashboardUrl(['secrets'], { deleted: deleted.name });
}
