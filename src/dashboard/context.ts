/** What a dashboard page handler gets: the request, the verified admin, the clock and its form token. */
import type { RequestScope } from '../ca/request-scope.js';
import type { CertRecord } from '../store/store-certificates.js';
import { CSRF_FIELD } from './csrf.js';
import { html, type SafeHtml } from './html.js';
import type { Viewer } from './layout.js';

export interface DashboardContext {
  scope: RequestScope;
  url: URL;
  /** The admin's current certificate, from the inventory. */
  admin: CertRecord;
  /** `spiffe://…/admin/NAME`: the actor recorded in every audit event this request causes. */
  actor: string;
  viewer: Viewer;
  now: Date;
  /** Synchronizer token for forms rendered in this response (bound to the admin's fingerprint). */
  csrfToken: string;
}

export function csrfInput(ctx: DashboardContext): SafeHtml {
  return html`<input type="hidden" name="${CSRF_FIELD}" value="${ctx.csrfToken}">`;
}

/** The CA URL an agent should use: the configured public URL, else the address this browser used. */
export function caUrlFor(ctx: DashboardContext): string {
  const config = ctx.scope.authority.config;
  if (config.publicUrl) return config.publicUrl.replace(/\/$/, '');
  const host = ctx.scope.req.headers.host;
  // The Host header is the client's; only a plain host[:port] is echoed (escaped in any case).
  return host && /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(host)
    ? `https://${host}`
    : `https://${config.listen}`;
}
