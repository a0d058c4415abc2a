/**
 * The web dashboard at /dashboard/ on the CA's HTTPS listener. Zero trust like the admin API it
 * sits beside: every request (except the constant stylesheet and script) must come with a
 * verified client certificate of role admin that is current in the inventory, checked by the
 * admin API's own `requireAdmin` (ca/peer-auth.ts) on each request, so a certificate revoked mid-session is
 * refused on its next click. State changes are POST only, carry a CSRF token bound to the admin
 * certificate, must come from this origin, and go through the Authority, which audits them with
 * the admin's identity as the actor.
 *
 * ca/ does not import the dashboard: the CLI mounts it on the CA's listener (dashboardMount).
 */
import { GatehouseError, isGatehouseError, toGatehouseError } from '../errors/errors.js';
import { publicMessage } from '../errors/public-error.js';
import { logRequestFailure } from '../ca/http-util.js';
import { requireAdmin } from '../ca/peer-auth.js';
import type { CaMount, RequestScope } from '../ca/request-scope.js';
import { holdsKey } from '../pki/leaf-certificate.js';
import { DASHBOARD_CSS, DASHBOARD_ICON_SVG, DASHBOARD_JS } from './assets.js';
import { checkFetchMetadata, csrfKeyFor, CSRF_FIELD, issueCsrfToken, verifyCsrfToken } from './csrf.js';
import type { DashboardContext } from './context.js';
import type { SafeHtml } from './html.js';
import { readFormBody, redirect, sendAsset, sendHtml } from './http.js';
import { CSS_PATH, errorPage, ICON_PATH, JS_PATH, refusalPage } from './layout.js';
import { auditPage } from './pages/audit.js';
import { fleetPage } from './pages/fleet.js';
import { identityPage } from './pages/identity.js';
import { overviewPage } from './pages/overview.js';
import { revokeAction, revokeConfirmPage } from './pages/revoke.js';
import {
  createSecretAction,
  deleteAction,
  deleteConfirmPage,
  grantAction,
  MAX_SECRET_FORM_BYTES,
  readSecretForm,
  readSubject,
  secretPage,
  secretsPage,
  ungrantAction,
} from './pages/secrets.js';
import { createTokenAction, readTokenForm, revokeTokenAction, tokensPage } from './pages/tokens.js';

export const DASHBOARD_PREFIX = '/dashboard';

/** Constants without data, served without a client certificate (see assets.ts). */
const STATIC_ASSETS = new Map<string, { type: string; body: string }>([
  [CSS_PATH, { type: 'text/css; charset=utf-8', body: DASHBOARD_CSS }],
  [JS_PATH, { type: 'text/javascript; charset=utf-8', body: DASHBOARD_JS }],
  [ICON_PATH, { type: 'image/svg+xml', body: DASHBOARD_ICON_SVG }],
]);

export function isDashboardPath(path: string): boolean {
  return path === DASHBOARD_PREFIX || path.startsWith(`${DASHBOARD_PREFIX}/`);
}

/** The dashboard on the CA's HTTPS listener: startCaServer({ mounts: [dashboardMount] }). */
export const dashboardMount: CaMount = {
  owns: isDashboardPath,
  route: (scope, method, url) => routeDashboardRequest(scope, method, url),
};

export async function routeDashboardRequest(scope: RequestScope, method: string, url: URL): Promise<void> {
  const path = url.pathname;
  const { res } = scope;
  if (path === DASHBOARD_PREFIX) return redirect(res, `${DASHBOARD_PREFIX}/`, 308);
  const asset = STATIC_ASSETS.get(path);
  if (asset) {
    if (method !== 'GET' && method !== 'HEAD') return sendMethodNotAllowed(scope, null, 'GET, HEAD');
    return sendAsset(res, asset.type, asset.body);
  }

  let ctx: DashboardContext;
  try {
    const { actor, record } = await requireAdmin(scope, method, path, 'the dashboard');
    const now = scope.authority.now();
    ctx = {
      scope,
      url,
      admin: record,
      actor,
      now,
      viewer: { spiffeId: record.spiffeId, serial: record.serial },
      csrfToken: issueCsrfToken(dashboardCsrfKey(scope), record.fingerprint, now),
    };
  } catch (err) {
    const error = toGatehouseError(err);
    scope.logger.info('dashboard.refused', { requestId: scope.requestId, code: error.code, path });
    const status = error.spec.http >= 500 ? 500 : error.spec.http;
    const message = publicMessage(error, scope.requestId);
    return sendHtml(res, status, refusalPage(status, error.code, message, scope.requestId));
  }

  try {
    await dispatch(ctx, method, url);
  } catch (err) {
    sendHtmlError(ctx, err);
  }
}

async function dispatch(ctx: DashboardContext, method: string, url: URL): Promise<void> {
  const rest = url.pathname.slice(`${DASHBOARD_PREFIX}/`.length).split('/').map(decodeSegment);
  const get = method === 'GET' || method === 'HEAD';
  const { res } = ctx.scope;
  const show = (doc: SafeHtml, status = 200) => sendHtml(res, status, doc);
  const only = (allowed: 'GET' | 'POST') => {
    if (allowed === 'GET' ? !get : method !== 'POST')
      throw new MethodNotAllowed(allowed === 'GET' ? 'GET, HEAD' : 'POST');
  };
  let m: string[] | null;

  try {
    if (match(rest, [''])) return (only('GET'), show(await overviewPage(ctx)));
    if (match(rest, ['fleet'])) return (only('GET'), show(await fleetPage(ctx)));
    if ((m = match(rest, ['identity', '*', '*']))) return (only('GET'), show(await identityPage(ctx, m[0]!, m[1]!)));
    if ((m = match(rest, ['certs', '*', 'revoke']))) {
      if (get) return show(await revokeConfirmPage(ctx, m[0]!));
      only('POST');
      return action(ctx, method, async (form) => redirect(res, await revokeAction(ctx, m![0]!, form)));
    }
    if (match(rest, ['tokens'])) {
      if (get) return show(await tokensPage(ctx));
      only('POST');
      return action(ctx, method, async (form) => {
        const values = readTokenForm(form);
        try {
          show(await createTokenAction(ctx, values));
        } catch (err) {
          if (!isGatehouseError(err) || !err.spec.expose || err.spec.http >= 500) throw err;
          // A refused request is shown with the form as it was filled in, and the reason.
          show(await tokensPage(ctx, { form: values, error: err.message }), err.spec.http);
          return err.spec.http;
        }
        return 200;
      });
    }
    if ((m = match(rest, ['tokens', '*', 'revoke']))) {
      only('POST');
      return action(ctx, method, async () => redirect(res, await revokeTokenAction(ctx, m![0]!)));
    }
    if (match(rest, ['secrets'])) {
      if (get) return show(await secretsPage(ctx));
      only('POST');
      return action(
        ctx,
        method,
        async (form) => {
          const values = readSecretForm(form);
          try {
            redirect(res, await createSecretAction(ctx, values));
          } catch (err) {
            if (!isGatehouseError(err) || !err.spec.expose || err.spec.http >= 500) throw err;
            // Shown with the name and grants as filled in, never the value (the service's messages never hold it).
            show(
              await secretsPage(ctx, { form: { name: values.name, grants: values.grants }, error: err.message }),
              err.spec.http,
            );
            return err.spec.http;
          }
          return 303;
        },
        Math.max(ctx.scope.maxBodyBytes, MAX_SECRET_FORM_BYTES),
      );
    }
    if ((m = match(rest, ['secrets', '*']))) return (only('GET'), show(await secretPage(ctx, m[0]!)));
    if ((m = match(rest, ['secrets', '*', 'grant']))) {
      only('POST');
      return action(ctx, method, async (form) => {
        try {
          redirect(res, await grantAction(ctx, m![0]!, form));
        } catch (err) {
          if (!isGatehouseError(err, 'GH_SECRET_INVALID')) throw err;
          show(await secretPage(ctx, m![0]!, { error: err.message, subject: readSubject(form) }), err.spec.http);
          return err.spec.http;
        }
        return 303;
      });
    }
    if ((m = match(rest, ['secrets', '*', 'ungrant']))) {
      only('POST');
      return action(ctx, method, async (form) => redirect(res, await ungrantAction(ctx, m![0]!, form)));
    }
    if ((m = match(rest, ['secrets', '*', 'delete']))) {
      if (get) return show(await deleteConfirmPage(ctx, m[0]!));
      only('POST');
      return action(ctx, method, async () => redirect(res, await deleteAction(ctx, m![0]!)));
    }
    if (match(rest, ['audit'])) {
      only('GET');
      const { status, body } = await auditPage(ctx);
      return show(body, status);
    }
  } catch (err) {
    if (err instanceof MethodNotAllowed) return sendMethodNotAllowed(ctx.scope, ctx, err.allow);
    throw err;
  }
  throw new GatehouseError('GH_NOT_FOUND', `the dashboard has no page ${url.pathname}`);
}

/**
 * A state-changing request: same-origin fetch metadata first (before the body is read), then the
 * form's CSRF token. Refusals are audited as ca.admin_refused and every attempted action as
 * ca.admin_call (like the admin API), next to the event the Authority records for the change itself.
 */
async function action(
  ctx: DashboardContext,
  method: string,
  run: (form: URLSearchParams) => Promise<number | void>,
  maxBodyBytes = ctx.scope.maxBodyBytes,
): Promise<void> {
  const { scope } = ctx;
  const path = ctx.url.pathname;
  const audit = (type: 'ca.admin_call' | 'ca.admin_refused', details: Record<string, unknown>) =>
    scope.authority.store.appendAudit([
      {
        time: scope.authority.now(),
        type,
        actor: ctx.actor,
        requestId: scope.requestId,
        details: { method, path, via: 'dashboard', ...details },
      },
    ]);

  const origin = checkFetchMetadata(scope.req.headers);
  let form: URLSearchParams | null = null;
  let refusal = origin.ok ? null : origin.reason;
  if (!refusal) {
    form = await readFormBody(scope.req, maxBodyBytes);
    const token = verifyCsrfToken(
      dashboardCsrfKey(scope),
      ctx.admin.fingerprint,
      form.get(CSRF_FIELD),
      scope.authority.now(),
    );
    if (!token.ok) refusal = token.reason;
  } else {
    scope.req.resume();
  }
  if (refusal) {
    await audit('ca.admin_refused', { code: 'GH_AUTH_FORBIDDEN', reason: refusal });
    throw new GatehouseError('GH_AUTH_FORBIDDEN', `form refused: ${refusal}. Nothing was changed.`);
  }
  let status = 500;
  try {
    status = (await run(form!)) ?? (scope.res.statusCode || 200);
  } catch (err) {
    status = isGatehouseError(err) ? err.spec.http : 500;
    throw err;
  } finally {
    await audit('ca.admin_call', { status }).catch(() => undefined);
  }
}

class MethodNotAllowed extends Error {
  constructor(readonly allow: string) {
    super(`method not allowed; use ${allow}`);
  }
}

function sendMethodNotAllowed(scope: RequestScope, ctx: DashboardContext | null, allow: string): void {
  const path = new URL(scope.req.url ?? '/', 'https://ca.invalid').pathname;
  sendHtml(
    scope.res,
    405,
    errorPage(
      ctx?.viewer ?? null,
      405,
      'GH_METHOD_NOT_ALLOWED',
      `${scope.req.method} is not allowed on ${path}; use ${allow}.`,
      scope.requestId,
    ),
    { allow },
  );
}

function sendHtmlError(ctx: DashboardContext, err: unknown): void {
  const { scope } = ctx;
  const error = toGatehouseError(err);
  const spec = error.spec;
  logRequestFailure(scope.logger, error, scope.requestId);
  if (scope.res.headersSent) {
    scope.res.destroy();
    return;
  }
  const message = publicMessage(error, scope.requestId);
  sendHtml(scope.res, spec.http, errorPage(ctx.viewer, spec.http, error.code, message, scope.requestId));
}

/** `pattern` segments are literal or `*`; returns the `*` values, or null. */
function match(segments: string[], pattern: string[]): string[] | null {
  if (segments.length !== pattern.length) return null;
  const values: string[] = [];
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] === '*') {
      if (!segments[i]) return null;
      values.push(segments[i]!);
    } else if (segments[i] !== pattern[i]) return null;
  }
  return values;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return '\u0000invalid';
  }
}

/** The issuing key when this CA holds it; in registration-authority mode, the secrets master key. */
function dashboardCsrfKey(scope: RequestScope): Buffer {
  const issuer = scope.authority.issuer;
  return csrfKeyFor(holdsKey(issuer) ? issuer.privateKey : scope.secrets.keys.fileOrCreate().current.key);
}
