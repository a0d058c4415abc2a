/**
 * One identity: its current certificate's chain, every certificate it has held (renewal history),
 * its device's latest posture report and the imported advisories that affect it. Each section is
 * its own function.
 */
import { GatehouseError } from '../../errors/errors.js';
import { NAME_RE, ROLE_RE } from '../../config/patterns.js';
import { formatDn, parseCertificate, parseCertificatePem, type CertificateInfo } from '../../pki/certificate.js';
import { parseCrl } from '../../pki/crl-parse.js';
import type { CertRecord } from '../../store/store-certificates.js';
import type { DashboardContext } from '../context.js';
import { certificateState, groupIdentities } from '../fleet-model.js';
import { dashboardUrl, html, type SafeHtml } from '../html.js';
import { formatRelative, formatTime, page, stateBadge } from '../layout.js';
import { advisoriesSection } from './identity-advisories.js';
import { postureSection } from './identity-posture.js';
import { loadInventory } from './inventory.js';

export async function identityPage(ctx: DashboardContext, role: string, name: string): Promise<SafeHtml> {
  if (!ROLE_RE.test(role) || !NAME_RE.test(name))
    throw new GatehouseError('GH_NOT_FOUND', 'no identity with that role and name');
  const certs = await loadInventory(ctx, { role, name });
  const identity = groupIdentities(certs, ctx.now)[0];
  if (!identity) throw new GatehouseError('GH_NOT_FOUND', `no certificate was ever issued to ${name} (${role})`);
  const current = identity.current;
  const chain = chainOf(ctx, current);
  const reservation = await ctx.scope.authority.store.getNameReservation(role, name);
  const pemId = `pem-${current.serial}`;
  const posture = await postureSection(ctx, identity.spiffeId);
  const advisories = await advisoriesSection(ctx, identity.spiffeId);

  return page({
    title: `${name} (${role})`,
    section: 'fleet',
    viewer: ctx.viewer,
    body: html`<p><a href="${dashboardUrl(['fleet'])}">← Fleet</a></p>
<h1>${name} <span class="muted">(${role})</span></h1>
${revokedNotice(ctx, identity.history)}
<dl class="facts">
<dt>SPIFFE ID</dt><dd class="mono">${identity.spiffeId}</dd>
<dt>State</dt><dd>${stateBadge(identity.state)}</dd>
<dt>Current serial</dt><dd class="mono">${current.serial}</dd>
<dt>SHA-256 fingerprint</dt><dd class="mono">${current.fingerprint}</dd>
<dt>Valid</dt><dd>${formatTime(current.notBefore)} to ${formatTime(current.notAfter)} <span class="muted">(${formatRelative(current.notAfter, ctx.now)})</span></dd>
<dt>Last renewal</dt><dd>${identity.lastRenewal ? formatTime(identity.lastRenewal) : 'none since enrollment'}</dd>
<dt>Name</dt><dd>${
      reservation
        ? html`reserved for the enrollment <span class="mono">${reservation.lineage}</span> since ${formatTime(reservation.reservedAt)}${identity.state === 'revoked' || identity.state === 'expired' ? html` <span class="muted">(enrolling it again needs a join token made for this name, or <code>gatehouse name release ${role}/${name}</code>)</span>` : ''}`
        : html`not reserved <span class="muted">(released: any token for role ${role} may enroll it)</span>`
    }</dd>
<dt>Audit trail</dt><dd><a href="${dashboardUrl(['audit'], { identity: identity.spiffeId })}">Events for this identity</a></dd>
</dl>
${identity.state === 'active' || identity.state === 'expiring' ? html`<p><a class="button" href="${dashboardUrl(['certs', current.serial, 'revoke'])}">Revoke the current certificate…</a></p>` : ''}

${posture}

${advisories}

<h2 id="chain">Certificate chain</h2>
<table aria-labelledby="chain">
<thead><tr><th scope="col">Position</th><th scope="col">Subject</th><th scope="col">Issuer</th><th scope="col">Serial</th><th scope="col">Not after</th><th scope="col">SHA-256 fingerprint</th></tr></thead>
<tbody>${chain.map((c) => html`<tr><th scope="row">${c.label}</th><td class="mono">${formatDn(c.info.subject)}</td><td class="mono">${formatDn(c.info.issuer)}</td><td class="mono">${c.info.serial}</td><td>${formatTime(c.info.notAfter)}</td><td class="mono">${c.info.fingerprint}</td></tr>`)}</tbody>
</table>
<details>
<summary>Current certificate (PEM)</summary>
<pre id="${pemId}">${current.certPem.trim()}</pre>
<div class="row"><button type="button" class="secondary" data-copy="${pemId}" hidden>Copy PEM</button><span id="${pemId}-status" role="status"></span></div>
</details>

<h2 id="history">Renewal history</h2>
<table aria-labelledby="history">
<thead><tr><th scope="col">Serial</th><th scope="col">Issued</th><th scope="col">Valid from</th><th scope="col">Valid until</th><th scope="col">How</th><th scope="col">State</th><th scope="col">Actions</th></tr></thead>
<tbody>${identity.history.map((c) => historyRow(ctx, c))}</tbody>
</table>`,
  });
}

function historyRow(ctx: DashboardContext, c: CertRecord): SafeHtml {
  const state = certificateState(c, ctx.now);
  const how = c.renewedFrom
    ? html`renewed from <span class="mono">${c.renewedFrom}</span>`
    : c.tokenId
      ? html`enrolled with join token <span class="mono">${c.tokenId}</span>`
      : html`issued by the CA`;
  return html`<tr><th scope="row" class="mono">${c.serial}</th><td>${formatTime(c.issuedAt)}</td><td>${formatTime(c.notBefore)}</td><td>${formatTime(c.notAfter)}</td><td>${how}</td>
<td>${stateBadge(state)}${c.revokedAt ? html`<br><span class="muted">${c.revocationReason} at ${formatTime(c.revokedAt)}</span>` : ''}${c.supersededBy && (state === 'active' || state === 'expiring') ? html`<br><span class="muted">renewed by <span class="mono">${c.supersededBy}</span>, valid until it expires</span>` : ''}</td>
<td>${state === 'revoked' || state === 'expired' ? html`<span class="muted">—</span>` : html`<a href="${dashboardUrl(['certs', c.serial, 'revoke'])}">Revoke<span class="visually-hidden"> certificate ${c.serial}</span>…</a>`}</td></tr>`;
}

function chainOf(ctx: DashboardContext, current: CertRecord): Array<{ label: string; info: CertificateInfo }> {
  const { authority } = ctx.scope;
  const leaf = parseCertificatePem(current.certPem)[0]!;
  return [
    { label: 'Leaf', info: leaf },
    { label: 'Issuing CA', info: parseCertificate(authority.issuer.certDer) },
    { label: 'Root', info: parseCertificate(authority.rootDer) },
  ];
}

/** After a revocation from the dashboard: what the store and the published CRL now say. */
function revokedNotice(ctx: DashboardContext, history: CertRecord[]): SafeHtml {
  const serial = ctx.url.searchParams.get('revoked');
  const cert = serial ? history.find((c) => c.serial === serial && c.revokedAt) : undefined;
  if (!cert) return html``;
  if (!ctx.scope.crls.scopes().includes('intermediate')) {
    return html`<p class="notice" role="status">Certificate <span class="mono">${cert.serial}</span> was revoked (${cert.revocationReason}) at ${formatTime(cert.revokedAt)}. It can no longer renew; the external CA that signed it publishes the CRL, so revoke it there too.</p>`;
  }
  const crl = ctx.scope.crls.current('intermediate');
  const listed = parseCrl(crl.der).revoked.has(cert.serial);
  return html`<p class="notice" role="status">Certificate <span class="mono">${cert.serial}</span> was revoked (${cert.revocationReason}) at ${formatTime(cert.revokedAt)}.
${listed ? html`The CRL served at <code>/crl</code> (number ${crl.number.toString()}) lists it.` : html`The CRL at <code>/crl</code> does not list it yet.`}</p>`;
}
