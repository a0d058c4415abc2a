/**
 * The common end of every issuance (enroll, renew, sign, internal), once the request was
 * approved: pick the issuing CA in force → sign (leaf-signing.ts) → the inventory record and its
 * audit events → commit all of it in one store transaction, which also takes the token's use,
 * the name or the lineage's head → return the chain. A commit the store refuses (another request
 * won the token's last use, the name or the renewal) discards the certificate unseen.
 */
import { GatehouseError, type ErrorCode } from '../errors/errors.js';
import { sha256Hex } from '../pki/certificate.js';
import { holdsKey } from '../pki/leaf-certificate.js';
import { toPem } from '../pki/pem.js';
import type { AuditInput } from '../store/store-audit.js';
import type { CertRecord, IssuanceOutcome, NameClaim } from '../store/store-certificates.js';
import type { AuthorityContext, IssuanceKind, IssuedCertificate, RequestContext } from './authority-context.js';
import { roleConfig, type ApprovedRequest } from './issuance-rules.js';
import { signExternally, signHere, type LeafRules, type SignedLeaf, type SubjectKey } from './leaf-signing.js';
import { nameTaken, replacementAudit } from './name-reservations.js';
import { auditRefusal } from './refusal-events.js';

/** How an issuance links to what came before it: the token it uses, the certificate it renews, how it takes its name. */
export interface IssuanceLink {
  tokenId: string | null;
  renewedFrom: string | null;
  lineage?: string;
  nameClaim: NameClaim;
  internal?: boolean;
  via: IssuanceKind;
}

/** The certificate being renewed was renewed by a simultaneous request that committed first. */
export class LostRenewalRace extends Error {}

export async function issue(
  ca: AuthorityContext,
  approved: ApprovedRequest,
  subjectKey: SubjectKey,
  now: Date,
  ctx: RequestContext,
  link: IssuanceLink,
  override?: LeafRules,
): Promise<IssuedCertificate> {
  const { authority } = ca;
  const rules = override ?? {
    ...roleConfig(authority.config, approved.role),
    lifetimeMs: roleConfig(authority.config, approved.role).lifetime,
  };
  // One issuer for the whole issuance, even if a rotation is put in force meanwhile.
  const issuer = authority.issuer;
  const intermediatePem = authority.intermediatePem;
  if (issuer.notAfter.getTime() - now.getTime() < 60_000) {
    throw new GatehouseError('GH_INTERNAL', 'the issuing intermediate expires within a minute; rotate it', {
      details: { intermediateNotAfter: issuer.notAfter },
    });
  }
  const signed = holdsKey(issuer)
    ? signHere(ca, issuer, approved, subjectKey.spkiDer, rules, now)
    : await signExternally(ca, issuer, approved, subjectKey, rules, now, ctx, link);
  const record = certRecordOf(approved, signed, now, link);
  const audit = await issuanceAudit(ca, approved, record, now, ctx, link);
  const outcome = await authority.store.commitIssuance({
    cert: record,
    now,
    audit,
    nameClaim: link.nameClaim,
    ...(link.tokenId ? { consumeTokenId: link.tokenId } : {}),
    ...(link.renewedFrom && !ca.unsafeRenewWithoutLineage ? { renews: link.renewedFrom } : {}),
  });
  if (!outcome.ok) await refuseCommit(ca, outcome, approved, now, ctx, link);
  ca.logger.info(link.renewedFrom ? 'ca.cert_renewed' : 'ca.cert_issued', {
    serial: record.serial,
    fingerprint: record.fingerprint,
    name: record.name,
    role: record.role,
    notAfter: record.notAfter.toISOString(),
    requestId: ctx.requestId,
  });
  return { record, chainPem: record.certPem + intermediatePem, rootPem: authority.rootPem };
}

/**
 * Serial and dates as signed: from the spec when signed here (parsing back would cost more than
 * building), from the checked certificate when an external CA signed.
 */
function certRecordOf(approved: ApprovedRequest, signed: SignedLeaf, now: Date, link: IssuanceLink): CertRecord {
  return {
    serial: signed.serial,
    fingerprint: sha256Hex(signed.der),
    name: approved.name,
    role: approved.role,
    spiffeId: approved.spiffeId,
    notBefore: signed.notBefore,
    notAfter: signed.notAfter,
    issuedAt: now,
    certPem: toPem('CERTIFICATE', signed.der),
    tokenId: link.tokenId,
    renewedFrom: link.renewedFrom,
    lineage: link.lineage ?? signed.serial,
    supersededBy: null,
    supersededAt: null,
    revokedAt: null,
    revocationReason: null,
  };
}

/** The token's use, the issuance or renewal, and a name taken from another lineage: committed with the certificate. */
async function issuanceAudit(
  ca: AuthorityContext,
  approved: ApprovedRequest,
  record: CertRecord,
  now: Date,
  ctx: RequestContext,
  link: IssuanceLink,
): Promise<AuditInput[]> {
  const audit: AuditInput[] = [];
  const base = {
    time: now,
    actor: ctx.actor,
    requestId: ctx.requestId ?? null,
    serial: record.serial,
    fingerprint: record.fingerprint,
  };
  if (link.tokenId)
    audit.push({
      ...base,
      type: 'ca.token_used',
      tokenId: link.tokenId,
      details: { role: record.role, name: record.name },
    });
  audit.push({
    ...base,
    type: link.renewedFrom ? 'ca.cert_renewed' : 'ca.cert_issued',
    tokenId: link.tokenId,
    details: {
      name: record.name,
      role: record.role,
      spiffeId: record.spiffeId,
      notAfter: record.notAfter.toISOString(),
      renewedFrom: link.renewedFrom,
      dns: approved.dns,
      ip: approved.ip,
    },
  });
  if (link.nameClaim === 'replace' && !link.internal)
    audit.push(...(await replacementAudit(ca.authority.store, record, base)));
  return audit;
}

/** Throws the refusal for a commit the store refused, audited where the request did not say it already. */
async function refuseCommit(
  ca: AuthorityContext,
  outcome: Exclude<IssuanceOutcome, { ok: true }>,
  approved: ApprovedRequest,
  now: Date,
  ctx: RequestContext,
  link: IssuanceLink,
): Promise<never> {
  if (outcome.reason === 'NOT_LINEAGE_HEAD') {
    if (outcome.supersededBy !== null) throw new LostRenewalRace();
    throw new GatehouseError(
      'GH_CERT_REVOKED',
      `certificate ${link.renewedFrom} was revoked while it was being renewed; enroll again with a new join token`,
    );
  }
  if (outcome.reason === 'NAME_TAKEN') {
    // Another lineage holds the name: an enrollment committed first (after our early check), or
    // a renewal whose name an operator gave to another machine. Nothing was recorded and the
    // token keeps its use. This certificate is discarded unseen.
    const err = link.renewedFrom
      ? new GatehouseError(
          'GH_NAME_TAKEN',
          `${approved.spiffeId} was given to another enrollment (its newest certificate is ${outcome.heldBy}); this identity can no longer renew: enroll again with a token made for the name you need`,
        )
      : nameTaken(approved, outcome.heldBy, outcome.active);
    if (!link.renewedFrom)
      await auditRefusal(ca, 'ca.cert_refused', err, ctx, now, {
        tokenId: link.tokenId,
        role: approved.role,
        via: 'enroll',
      });
    throw err;
  }
  // Another enrollment won the race for the token's last use; this certificate is discarded unseen.
  const code: ErrorCode =
    outcome.reason === 'TOKEN_REVOKED'
      ? 'GH_TOKEN_REVOKED'
      : outcome.reason === 'TOKEN_EXPIRED'
        ? 'GH_TOKEN_EXPIRED'
        : outcome.reason === 'TOKEN_UNKNOWN'
          ? 'GH_TOKEN_INVALID'
          : 'GH_TOKEN_USED';
  const err = new GatehouseError(
    code,
    `join token ${link.tokenId} ${code === 'GH_TOKEN_USED' ? 'has no uses left' : 'is no longer valid'}`,
  );
  await auditRefusal(ca, 'ca.token_refused', err, ctx, now, { tokenId: link.tokenId });
  throw err;
}
