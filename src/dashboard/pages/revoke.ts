/** Revoking a certificate: a confirmation page with the reason (GET), then the action (POST). */
import { GatehouseError } from '../../errors/errors.js';
import type { CrlReason } from '../../pki/crl.js';
import { csrfInput, type DashboardContext } from '../context.js';
import { certificateState } from '../fleet-model.js';
import { dashboardUrl, html, type SafeHtml } from '../html.js';
import { field, formatRelative, formatTime, options, page, stateBadge } from '../layout.js';

/**
 * RFC 5280 §5.3.1 reasons an operator picks for a machine certificate. certificateHold is left
 * out (Gatehouse never un-revokes), and the CA/AA compromise reasons do not apply to a leaf.
 */
export const REVOKE_REASONS: ReadonlyArray<{ value: CrlReason; label: string }> = [
  { value: 'keyCompromise', label: 'Key compromise (the private key may be known to someone else)' },
  { value: 'cessationOfOperation', label: 'Cessation of operation (the machine is retired)' },
  { value: 'superseded', label: 'Superseded (replaced by another certificate)' },
  { value: 'affiliationChanged', label: 'Affiliation changed' },
  { value: 'privilegeWithdrawn', label: 'Privilege withdrawn' },
  { value: 'unspecified', label: 'Unspecified' },
];

export const SERIAL_RE = /^[0-9a-f]{1,40}$/;

async function certOrNotFound(ctx: DashboardContext, serial: string) {
  const cert = SERIAL_RE.test(serial) ? await ctx.scope.authority.store.getCert(serial) : null;
  if (!cert) throw new GatehouseError('GH_CERT_NOT_FOUND', `no certificate with serial ${serial} in the inventory`);
  return cert;
}

export async function revokeConfirmPage(ctx: DashboardContext, serial: string): Promise<SafeHtml> {
  const cert = await certOrNotFound(ctx, serial);
  const state = certificateState(cert, ctx.now);
  const own = cert.serial === ctx.admin.serial;
  const alsoRevoked = (await ctx.scope.authority.store.listCerts({ lineage: cert.lineage })).filter(
    (c) => c.serial !== cert.serial && !c.revokedAt && c.notAfter > ctx.now,
  );
  return page({
    title: `Revoke certificate ${cert.serial}`,
    section: 'fleet',
    viewer: ctx.viewer,
    body: html`<p><a href="${dashboardUrl(['identity', cert.role, cert.name])}">← ${cert.name} (${cert.role})</a></p>
<h1>Revoke certificate <span class="mono">${cert.serial}</span>?</h1>
<dl class="facts">
<dt>Identity</dt><dd class="mono">${cert.spiffeId}</dd>
<dt>Serial</dt><dd class="mono">${cert.serial}</dd>
<dt>State</dt><dd>${stateBadge(state)}</dd>
<dt>Expires</dt><dd>${formatTime(cert.notAfter)} <span class="muted">(${formatRelative(cert.notAfter, ctx.now)})</span></dd>
</dl>
${
  state === 'revoked'
    ? html`<p class="notice" role="status">This certificate is already revoked (${cert.revocationReason}).</p>`
    : html`<p>Revocation cannot be undone. The serial goes into the CRL at <code>/crl</code> at once; the machine can no longer renew and must enroll again with a join token made for its name (the name stays reserved for it).</p>
${alsoRevoked.length ? html`<p>The other unexpired ${alsoRevoked.length === 1 ? 'certificate' : `${alsoRevoked.length} certificates`} of this enrollment (renewed from one another) ${alsoRevoked.length === 1 ? 'is' : 'are'} revoked with it: <span class="mono">${alsoRevoked.map((c) => c.serial).join(', ')}</span>.</p>` : ''}
${own ? html`<p class="error" role="alert"><strong>This is the certificate you are signed in with.</strong> The dashboard will refuse it from the next request on.</p>` : ''}
<form class="stack" method="post" action="${dashboardUrl(['certs', cert.serial, 'revoke'])}">
${csrfInput(ctx)}
${field('reason', 'Reason', html`<select id="reason" name="reason" required>${options(REVOKE_REASONS, 'keyCompromise')}</select>`)}
<div class="row"><button type="submit" class="danger">Revoke certificate</button><a href="${dashboardUrl(['identity', cert.role, cert.name])}">Cancel</a></div>
</form>`
}`,
  });
}

/** POST: revoke through the authority (audited as ca.cert_revoked by the admin), refresh the CRL, then show the identity. */
export async function revokeAction(ctx: DashboardContext, serial: string, form: URLSearchParams): Promise<string> {
  const cert = await certOrNotFound(ctx, serial);
  const reason = form.get('reason') ?? '';
  const chosen = REVOKE_REASONS.find((r) => r.value === reason);
  if (!chosen)
    throw new GatehouseError(
      'GH_USAGE',
      `reason "${reason}" is not one of: ${REVOKE_REASONS.map((r) => r.value).join(', ')}`,
    );
  await ctx.scope.authority.revokeCertificate(cert.serial, chosen.value, {
    actor: ctx.actor,
    requestId: ctx.scope.requestId,
  });
  // As the admin API does: the new CRL is published before the answer.
  await ctx.scope.crls.refresh(true);
  return dashboardUrl(['identity', cert.role, cert.name], { revoked: cert.serial });
}
