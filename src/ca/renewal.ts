/**
 * Renewal: a machine presents its current certificate (over mTLS) and a CSR for a new key. Only
 * the newest certificate of a lineage renews, and renewing supersedes it. An older one presented
 * again is either a lost answer retried (same new key: the same certificate is returned) or a
 * copy of the identity renewing on its own line (another key): the refresh token reuse detection
 * of RFC 9700 §4.14, applied to certificates, which revokes the whole lineage (revocation.ts).
 */
import { GatehouseError, isGatehouseError } from '../errors/errors.js';
import { parseCertificate, type CertificateInfo } from '../pki/certificate.js';
import { parseCsr } from '../pki/csr.js';
import { decodePem } from '../pki/pem.js';
import type { Store } from '../store/store.js';
import type { CertRecord } from '../store/store-certificates.js';
import { chainOf, type AuthorityContext, type IssuedCertificate, type RequestContext } from './authority-context.js';
import { issue, LostRenewalRace } from './issuance.js';
import { approveCsr, decideName, roleConfig } from './issuance-rules.js';
import { isExternalCaFailure, keyOfCsr } from './leaf-signing.js';
import { requirePosture } from './posture-standing.js';
import { auditRefusal } from './refusal-events.js';
import { revokeLineageForReuse } from './revocation.js';

/**
 * `presented` is the caller's certificate as authenticatePeer (peer-auth.ts) found it: verified by
 * TLS against this CA, in the inventory, unrevoked and unexpired. It is not read again: the
 * commit decides atomically whether it is still the head of its lineage (LostRenewalRace).
 */
export async function renew(
  ca: AuthorityContext,
  presented: CertRecord,
  csrInput: string | Buffer,
  ctx: RequestContext,
): Promise<IssuedCertificate> {
  const { authority } = ca;
  const now = authority.now();
  let current = presented;
  try {
    const csr = parseCsr(csrInput);
    if (current.supersededBy === null || ca.unsafeRenewWithoutLineage) {
      const rules = roleConfig(authority.config, current.role);
      const name = decideName(csr, current.role, rules, { exact: current.name });
      const approved = approveCsr(authority.config, csr, current.role, name);
      if (rules.posture) await requirePosture(authority.store, current, rules.posture, now);
      try {
        return await issue(ca, approved, keyOfCsr(csr), now, ctx, {
          tokenId: null,
          renewedFrom: current.serial,
          lineage: current.lineage,
          nameClaim: 'lineage',
          via: 'renew',
        });
      } catch (err) {
        if (!(err instanceof LostRenewalRace)) throw err;
        // A simultaneous renewal of the same certificate committed first: judge this one against it.
        current = await requireCurrentCertificate(authority.store, presented, now);
      }
    }
    return await renewalOfSuperseded(ca, current, csr.spkiDer, now, ctx);
  } catch (err) {
    if (
      !isGatehouseError(err, 'GH_STORE_IO') &&
      !isGatehouseError(err, 'GH_STORE_UNAVAILABLE') &&
      !isExternalCaFailure(err)
    ) {
      await auditRefusal(ca, 'ca.cert_refused', err, ctx, now, {
        serial: presented.serial,
        fingerprint: presented.fingerprint,
        via: 'renew',
      });
    }
    throw err;
  }
}

/** A renewal of a certificate that was renewed already: the same answer again within the grace, else refused. */
async function renewalOfSuperseded(
  ca: AuthorityContext,
  current: CertRecord,
  spkiDer: Buffer,
  now: Date,
  ctx: RequestContext,
): Promise<IssuedCertificate> {
  const { authority } = ca;
  const successor = current.supersededBy === null ? null : await authority.store.getCert(current.supersededBy);
  if (successor === null)
    throw new GatehouseError(
      'GH_INTERNAL',
      `certificate ${current.serial} is marked renewed by ${current.supersededBy}, which is not in the inventory`,
    );
  // The CSR's signature proved possession of its key: the key of the renewal already issued
  // means the same machine asking again, not a copy (a copy would have made its own key).
  const successorKey = parseCertificate(decodePem(successor.certPem, 'CERTIFICATE')[0]!).spkiDer;
  if (successorKey.equals(spkiDer)) {
    const graceMs = authority.config.renewal.retryGrace;
    const withinGrace = current.supersededAt !== null && now.getTime() - current.supersededAt.getTime() <= graceMs;
    if (withinGrace && successor.revokedAt === null && successor.supersededBy === null && successor.notAfter > now) {
      await authority.store.appendAudit([
        {
          time: now,
          type: 'ca.cert_renewal_replayed',
          actor: ctx.actor,
          requestId: ctx.requestId ?? null,
          serial: successor.serial,
          fingerprint: successor.fingerprint,
          details: { renewedFrom: current.serial, spiffeId: successor.spiffeId },
        },
      ]);
      ca.logger.info('ca.cert_renewal_replayed', {
        serial: successor.serial,
        renewedFrom: current.serial,
        spiffeId: successor.spiffeId,
        requestId: ctx.requestId,
      });
      return {
        record: successor,
        chainPem: chainOf(authority, successor.certPem),
        rootPem: authority.rootPem,
        replayed: true,
      };
    }
    throw new GatehouseError(
      'GH_CERT_SUPERSEDED',
      `certificate ${current.serial} was renewed at ${current.supersededAt?.toISOString()} (serial ${successor.serial}); a retry with the same key is answered only within ${graceMs / 1000} s (renewal.retryGrace) while that renewal is the newest; enroll again with a new join token`,
    );
  }
  const revoked = await revokeLineageForReuse(ca, current, successor, now, ctx);
  throw new GatehouseError(
    'GH_CERT_REUSED',
    `certificate ${current.serial} was already renewed (serial ${successor.serial}, at ${current.supersededAt?.toISOString()}) and was presented again with another key: a copy of ${current.spiffeId} exists. All ${revoked.length} certificates of this identity are revoked (keyCompromise); check the machine, then enroll it again with a token made for this name`,
  );
}

/** The inventory record for a presented certificate: known, same fingerprint, unrevoked, unexpired. */
export async function requireCurrentCertificate(
  store: Store,
  peer: Pick<CertificateInfo, 'serial' | 'fingerprint'>,
  now: Date,
): Promise<CertRecord> {
  const record = await store.getCert(peer.serial);
  if (!record || record.fingerprint !== peer.fingerprint) {
    throw new GatehouseError('GH_CERT_UNTRUSTED', `certificate ${peer.serial} is not in this CA's inventory`);
  }
  if (record.revokedAt)
    throw new GatehouseError(
      'GH_CERT_REVOKED',
      `certificate ${record.serial} was revoked at ${record.revokedAt.toISOString()} (${record.revocationReason}); enroll again with a new join token`,
    );
  if (record.notAfter <= now)
    throw new GatehouseError(
      'GH_CERT_EXPIRED',
      `certificate ${record.serial} expired at ${record.notAfter.toISOString()}; enroll again with a new join token`,
    );
  return record;
}
