/**
 * Enrollment: a new machine's first certificate, admitted by a join token. The steps: check the
 * token (join-token-records.ts) → parse the CSR → decide the name (the token's, or one its
 * pattern and the role allow) → approve the CSR for the role → refuse a name another lineage
 * holds → issue (issuance.ts), which takes one use of the token in the same transaction.
 */
import type { ParsedCsr } from '../pki/csr.js';
import { parseCsr } from '../pki/csr.js';
import { certStateAt } from '../store/store-certificates.js';
import type { TokenRecord } from '../store/store-tokens.js';
import type { AuthorityContext, IssuedCertificate, RequestContext } from './authority-context.js';
import { issue } from './issuance.js';
import { approveCsr, decideName, roleConfig, type ApprovedRequest } from './issuance-rules.js';
import { checkJoinToken } from './join-token-records.js';
import { keyOfCsr } from './leaf-signing.js';
import { lineageHead, nameTaken } from './name-reservations.js';
import { auditRefusal } from './refusal-events.js';

export async function enroll(
  ca: AuthorityContext,
  tokenText: string,
  csrInput: string | Buffer,
  ctx: RequestContext,
  nameHint?: string | null,
): Promise<IssuedCertificate> {
  const { authority } = ca;
  const now = authority.now();
  const token = await checkJoinToken(ca, tokenText, now, ctx);
  let approved: ApprovedRequest;
  let csr: ParsedCsr;
  try {
    csr = parseCsr(csrInput);
    const name = decideName(csr, token.role, roleConfig(authority.config, token.role), {
      exact: token.name,
      pattern: token.namePattern,
      hint: nameHint ?? null,
    });
    approved = approveCsr(authority.config, csr, token.role, name);
    if (!mayReplaceHolder(token)) await refuseNameOfAnotherLineage(ca, approved, now);
  } catch (err) {
    await auditRefusal(ca, 'ca.cert_refused', err, ctx, now, { tokenId: token.id, role: token.role, via: 'enroll' });
    throw err;
  }
  return issue(ca, approved, keyOfCsr(csr), now, ctx, {
    tokenId: token.id,
    renewedFrom: null,
    nameClaim: mayReplaceHolder(token) ? 'replace' : 'first',
    via: 'enroll',
  });
}

/** Only a token made for the exact name may replace an active holder of that name. */
function mayReplaceHolder(token: TokenRecord): boolean {
  return token.name !== null;
}

/**
 * A token that does not fix the name must not let a machine take over a name another
 * enrollment has: not while its certificate is active, and not after it was revoked or expired
 * (a laptop offline over a weekend), or any holder of a role token could become that SPIFFE ID,
 * which gateway policies name. A token made for that exact name is the operator's explicit
 * choice to replace it (a rebuilt machine). This early check gives a clear refusal before
 * signing; the guard is the same check made by the store in the transaction that records the
 * certificate (`nameClaim: 'first'`), so two simultaneous first enrollments cannot both win.
 */
async function refuseNameOfAnotherLineage(ca: AuthorityContext, approved: ApprovedRequest, now: Date): Promise<void> {
  const { store } = ca.authority;
  const reservation = await store.getNameReservation(approved.role, approved.name);
  if (reservation) {
    const head = await lineageHead(store, reservation.lineage);
    throw nameTaken(
      approved,
      head?.serial ?? reservation.lineage,
      head !== undefined && certStateAt(head, now) === 'active',
    );
  }
  const [holder] = await store.listCerts({
    name: approved.name,
    role: approved.role,
    state: 'active',
    now,
    limit: 1,
  });
  if (holder) throw nameTaken(approved, holder.serial, true);
}
