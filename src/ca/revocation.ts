/**
 * Revoking an identity, which always means its whole lineage (a certificate and every renewal
 * before and after it): by an operator (`gatehouse cert revoke`, the admin API), or by the CA
 * itself when a renewal shows that a copy of the identity exists (renewal.ts). The renewals a
 * certificate superseded stay valid until they expire, so revoking one alone would leave them
 * (or a copy's renewals) usable. The name stays reserved for the lineage.
 */
import { GatehouseError } from '../errors/errors.js';
import { normalizeSerial } from '../pki/certificate.js';
import type { CrlReason } from '../pki/crl.js';
import type { AuditInput } from '../store/store-audit.js';
import type { CertRecord } from '../store/store-certificates.js';
import type { AuthorityContext, RequestContext } from './authority-context.js';

/** Revokes the certificate and every other unrevoked certificate of its lineage. */
export async function revokeCertificate(
  ca: AuthorityContext,
  serial: string,
  reason: CrlReason,
  ctx: RequestContext,
): Promise<CertRecord> {
  const { store } = ca.authority;
  const now = ca.authority.now();
  const normalized = normalizeSerial(serial);
  const existing = await store.getCert(normalized);
  if (!existing) throw new GatehouseError('GH_CERT_NOT_FOUND', `no certificate with serial ${serial} in the inventory`);
  const revoked = await store.revokeLineage(existing.lineage, reason, now, (cert) => ({
    time: now,
    type: 'ca.cert_revoked',
    actor: ctx.actor,
    serial: cert.serial,
    fingerprint: cert.fingerprint,
    requestId: ctx.requestId ?? null,
    details: {
      reason,
      name: cert.name,
      role: cert.role,
      spiffeId: cert.spiffeId,
      lineage: cert.lineage,
      ...(cert.serial !== normalized ? { withSerial: normalized } : {}),
    },
  }));
  const record = revoked.find((c) => c.serial === normalized) ?? (await store.getCert(normalized))!;
  ca.logger.info('ca.cert_revoked', {
    serial: record.serial,
    fingerprint: record.fingerprint,
    name: record.name,
    reason,
    actor: ctx.actor,
    lineage: record.lineage,
    revokedSerials: revoked.map((c) => c.serial),
  });
  return record;
}

/** Revokes the whole lineage (keyCompromise), audited and logged as a detected reuse. */
export async function revokeLineageForReuse(
  ca: AuthorityContext,
  presented: CertRecord,
  successor: CertRecord,
  now: Date,
  ctx: RequestContext,
): Promise<CertRecord[]> {
  const detection: AuditInput = {
    time: now,
    type: 'ca.cert_reuse_detected',
    actor: ctx.actor,
    requestId: ctx.requestId ?? null,
    serial: presented.serial,
    fingerprint: presented.fingerprint,
    details: {
      spiffeId: presented.spiffeId,
      lineage: presented.lineage,
      presentedSerial: presented.serial,
      renewedBy: successor.serial,
    },
  };
  const revoked = await ca.authority.store.revokeLineage(
    presented.lineage,
    'keyCompromise',
    now,
    (cert) => ({
      time: now,
      type: 'ca.cert_revoked',
      actor: 'ca:reuse-detection',
      requestId: ctx.requestId ?? null,
      serial: cert.serial,
      fingerprint: cert.fingerprint,
      details: {
        reason: 'keyCompromise',
        name: cert.name,
        role: cert.role,
        spiffeId: cert.spiffeId,
        lineage: cert.lineage,
      },
    }),
    [detection],
  );
  ca.authority.observer?.reuseDetected?.(presented.role);
  ca.logger.error('ca.cert_reuse_detected', {
    spiffeId: presented.spiffeId,
    presentedSerial: presented.serial,
    renewedBy: successor.serial,
    lineage: presented.lineage,
    revokedSerials: revoked.map((c) => c.serial),
    requestId: ctx.requestId,
  });
  return revoked;
}
