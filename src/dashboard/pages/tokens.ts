/** Join tokens: the list, the create form, the token shown once, and revocation. */
import { GatehouseError } from '../../errors/errors.js';
import { parseDurationMs } from '../../config/duration.js';
import type { TokenRecord } from '../../store/store-tokens.js';
import { caUrlFor, csrfInput, type DashboardContext } from '../context.js';
import { dashboardUrl, html, type SafeHtml } from '../html.js';
import { field, formatRelative, formatTime, options, page } from '../layout.js';

export const TOKEN_ID_RE = /^[0-9a-f]{16}$/;

export interface TokenForm {
  role: string;
  name: string;
  names: string;
  ttl: string;
  uses: string;
}

type TokenState = 'usable' | 'used' | 'expired' | 'revoked';
const TOKEN_STATE_LABELS: Record<TokenState, string> = {
  usable: 'Usable',
  used: 'Used up',
  expired: 'Expired',
  revoked: 'Revoked',
};

function tokenState(t: TokenRecord, now: Date): TokenState {
  return t.revokedAt ? 'revoked' : t.expiresAt <= now ? 'expired' : t.uses >= t.maxUses ? 'used' : 'usable';
}

export async function tokensPage(
  ctx: DashboardContext,
  state: { form?: TokenForm; error?: string } = {},
): Promise<SafeHtml> {
  const tokens = await ctx.scope.authority.store.listTokens();
  const revokedId = ctx.url.searchParams.get('revoked');
  const revoked =
    revokedId && TOKEN_ID_RE.test(revokedId) ? tokens.find((t) => t.id === revokedId && t.revokedAt) : undefined;
  return page({
    title: 'Join tokens',
    section: 'tokens',
    viewer: ctx.viewer,
    body: html`<h1>Join tokens</h1>
${revoked ? html`<p class="notice" role="status">Join token <span class="mono">${revoked.id}</span> was revoked; it can no longer enroll a machine.</p>` : ''}
<h2 id="create">Create a join token</h2>
${state.error ? html`<p class="error" role="alert" id="create-error">${state.error}</p>` : ''}
${createForm(ctx, state.form)}
<h2 id="list">Tokens</h2>
${tokens.length === 0 ? html`<p>No join tokens yet.</p>` : tokenTable(ctx, tokens)}`,
  });
}

function createForm(ctx: DashboardContext, form: TokenForm | undefined): SafeHtml {
  const config = ctx.scope.authority.config;
  const roles = Object.keys(config.roles).sort();
  const f = form ?? {
    role: roles.includes('web') ? 'web' : (roles[0] ?? ''),
    name: '',
    names: '',
    ttl: '1h',
    uses: '1',
  };
  return html`<form class="stack" method="post" action="${dashboardUrl(['tokens'])}" aria-labelledby="create"${form ? html` aria-describedby="create-error"` : ''}>
${csrfInput(ctx)}
${field('token-role', 'Role', html`<select id="token-role" name="role" required>${options(roles, f.role)}</select>`)}
${field('token-name', 'Name (optional)', html`<input id="token-name" name="name" value="${f.name}" maxlength="63" autocomplete="off" aria-describedby="token-name-hint">`, 'The exact identity name this token enrolls, e.g. laptop-7. Letters, digits, . _ - only.')}
${field('token-names', 'Name pattern (optional)', html`<input id="token-names" name="names" value="${f.names}" maxlength="63" autocomplete="off" aria-describedby="token-names-hint">`, 'Instead of a name: a pattern with *, e.g. build-*. Empty: any name the role allows.')}
${field('token-ttl', 'Valid for', html`<input id="token-ttl" name="ttl" value="${f.ttl}" required maxlength="16" aria-describedby="token-ttl-hint">`, `A duration like 15m, 1h or 7d (at most ${Math.floor(config.tokens.maxTtl / 86_400_000)} days).`)}
${field('token-uses', 'Uses', html`<input id="token-uses" name="uses" type="number" min="1" max="10000" step="1" value="${f.uses}" required aria-describedby="token-uses-hint">`, 'How many machines may enroll with it.')}
<div><button type="submit">Create token</button></div>
</form>`;
}

function tokenTable(ctx: DashboardContext, tokens: TokenRecord[]): SafeHtml {
  return html`<table aria-labelledby="list">
<thead><tr><th scope="col">ID</th><th scope="col">Role</th><th scope="col">Name or pattern</th><th scope="col" class="num">Uses</th><th scope="col">Expires</th><th scope="col">Created by</th><th scope="col">State</th><th scope="col">Actions</th></tr></thead>
<tbody>${tokens.map((t) => {
    const state = tokenState(t, ctx.now);
    return html`<tr><th scope="row" class="mono">${t.id}</th><td>${t.role}</td><td class="mono">${t.name ?? t.namePattern ?? html`<span class="muted">any</span>`}</td><td class="num">${t.uses} of ${t.maxUses}</td>
<td>${formatTime(t.expiresAt)}<br><span class="muted">${formatRelative(t.expiresAt, ctx.now)}</span></td><td class="mono">${t.createdBy}</td>
<td><span class="badge ${state === 'usable' ? 'active' : state === 'revoked' ? 'revoked' : 'expired'}">${TOKEN_STATE_LABELS[state]}</span></td>
<td>${state === 'usable' || state === 'used' ? html`<form class="inline" method="post" action="${dashboardUrl(['tokens', t.id, 'revoke'])}" data-confirm="Revoke join token ${t.id}?">${csrfInput(ctx)}<button type="submit" class="secondary">Revoke<span class="visually-hidden"> join token ${t.id}</span></button></form>` : html`<span class="muted">—</span>`}</td></tr>`;
  })}</tbody>
</table>`;
}

export function readTokenForm(form: URLSearchParams): TokenForm {
  const get = (k: string) => (form.get(k) ?? '').trim();
  return { role: get('role'), name: get('name'), names: get('names'), ttl: get('ttl'), uses: get('uses') };
}

/** POST: create through the authority (audited as ca.token_created by the admin); the secret is shown in this response only. */
export async function createTokenAction(ctx: DashboardContext, f: TokenForm): Promise<SafeHtml> {
  const ttlMs = parseDurationMs(f.ttl);
  if (ttlMs === null) throw new GatehouseError('GH_USAGE', `"${f.ttl}" is not a duration like 15m, 1h or 7d`);
  if (!/^\d{1,5}$/.test(f.uses))
    throw new GatehouseError('GH_USAGE', `uses "${f.uses}" is not a whole number from 1 to 10000`);
  const { token, record } = await ctx.scope.authority.createToken(
    { role: f.role, name: f.name || null, namePattern: f.names || null, ttlMs, uses: Number(f.uses) },
    { actor: ctx.actor, requestId: ctx.scope.requestId },
  );
  const command = `gatehouse agent enroll --ca ${caUrlFor(ctx)} --token-file token.txt`;
  return page({
    title: 'Join token created',
    section: 'tokens',
    viewer: ctx.viewer,
    body: html`<h1>Join token created</h1>
<p class="notice" role="status"><strong>This is the only time the token is shown.</strong> The CA keeps only its hash. Copy it now; if it is lost, revoke it and create another.</p>
<h2 id="token-heading">Token</h2>
<pre class="secret" id="token-value" aria-labelledby="token-heading">${token}</pre>
<div class="row"><button type="button" data-copy="token-value" hidden>Copy token</button><span id="token-value-status" role="status"></span></div>
<h2 id="enroll-heading">Enroll the machine</h2>
<p>On the new machine, save the token to <code>token.txt</code> (readable only by you: <code>umask 077; cat &gt; token.txt</code>, paste, Ctrl-D), then run:</p>
<pre class="secret" id="enroll-command" aria-labelledby="enroll-heading">${command}</pre>
<div class="row"><button type="button" class="secondary" data-copy="enroll-command" hidden>Copy command</button><span id="enroll-command-status" role="status"></span></div>
${record.name === null ? html`<p>The token fixes no name: the machine is named after its host name unless you add <code>--name NAME</code>${record.namePattern ? html` (it must match <code>${record.namePattern}</code>)` : ''}.</p>` : ''}
<dl class="facts">
<dt>ID</dt><dd class="mono">${record.id}</dd>
<dt>Role</dt><dd>${record.role}</dd>
<dt>Name</dt><dd class="mono">${record.name ?? record.namePattern ?? 'any'}</dd>
<dt>Uses</dt><dd>${record.maxUses}</dd>
<dt>Expires</dt><dd>${formatTime(record.expiresAt)} <span class="muted">(${formatRelative(record.expiresAt, ctx.now)})</span></dd>
</dl>
<p><a href="${dashboardUrl(['tokens'])}">Back to join tokens</a></p>`,
  });
}

/** POST: revoke through the authority (audited as ca.token_revoked by the admin). */
export async function revokeTokenAction(ctx: DashboardContext, id: string): Promise<string> {
  if (!TOKEN_ID_RE.test(id)) throw new GatehouseError('GH_TOKEN_NOT_FOUND', `no join token with ID ${id}`);
  await ctx.scope.authority.revokeToken(id, { actor: ctx.actor, requestId: ctx.scope.requestId });
  return dashboardUrl(['tokens'], { revoked: id });
}
