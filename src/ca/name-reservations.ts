/**
 * Names as the CA reserves them: the first enrollment of a name reserves it for its lineage
 * (that certificate and its renewals), so a SPIFFE ID that gateway policies name cannot pass to
 * another machine by accident. Listing, releasing, the refusal that says a name is taken, and the
 * audit event of an issuance that takes a name from another lineage on purpose.
 */
import { GatehouseError } from '../errors/errors.js';
import type { Store } from '../store/store.js';
import type { AuditInput } from '../store/store-audit.js';
import { certStateAt, type CertRecord, type NameReservation } from '../store/store-certificates.js';
import type { AuthorityContext, RequestContext } from './authority-context.js';
import { spiffeIdFor, type ApprovedRequest } from './issuance-rules.js';

/** A reserved name as listings show it. */
export interface ReservedName extends NameReservation {
  newestSerial: string | null;
  state: 'active' | 'expired' | 'revoked';
}

/** Every reserved name with the state of its lineage's newest certificate. */
export async function listNames(store: Store, now: Date): Promise<ReservedName[]> {
  const reservations = await store.listNameReservations();
  return Promise.all(
    reservations.map(async (r) => {
      const head = await lineageHead(store, r.lineage);
      return {
        ...r,
        newestSerial: head?.serial ?? null,
        state: head === undefined ? 'expired' : certStateAt(head, now),
      };
    }),
  );
}

/**
 * Frees a reserved name, so any token for its role may enroll it again. Refused while a
 * certificate for it is active: revoke that first, so a release never hands over a live name.
 */
export async function releaseName(
  ca: AuthorityContext,
  role: string,
  name: string,
  ctx: RequestContext,
): Promise<NameReservation> {
  const { store } = ca.authority;
  const now = ca.authority.now();
  const spiffeId = spiffeIdFor(ca.authority.config, role, name);
  const reservation = await store.getNameReservation(role, name);
  if (!reservation)
    throw new GatehouseError('GH_NAME_NOT_FOUND', `${spiffeId} is not reserved (see \`gatehouse name list\`)`);
  const [holder] = await store.listCerts({ role, name, state: 'active', now, limit: 1 });
  if (holder)
    throw new GatehouseError(
      'GH_NAME_TAKEN',
      `${spiffeId} is held by an active certificate (serial ${holder.serial}); revoke it first (gatehouse cert revoke ${holder.serial})`,
    );
  const released = await store.releaseName(role, name, {
    time: now,
    type: 'ca.name_released',
    actor: ctx.actor,
    requestId: ctx.requestId ?? null,
    details: { spiffeId, lineage: reservation.lineage },
  });
  if (!released) throw new GatehouseError('GH_NAME_NOT_FOUND', `${spiffeId} is not reserved`);
  ca.logger.info('ca.name_released', { spiffeId, lineage: released.lineage, actor: ctx.actor });
  return released;
}

/** The newest certificate of a lineage (listCerts orders by issue time, newest first). */
export async function lineageHead(store: Store, lineage: string): Promise<CertRecord | undefined> {
  return (await store.listCerts({ lineage, limit: 1 }))[0];
}

/** An issuance that takes a name from another lineage says so in the audit trail. */
export async function replacementAudit(
  store: Store,
  record: CertRecord,
  base: Omit<AuditInput, 'type'>,
): Promise<AuditInput[]> {
  const reservation = await store.getNameReservation(record.role, record.name);
  if (!reservation || reservation.lineage === record.lineage) return [];
  const head = await lineageHead(store, reservation.lineage);
  return [
    {
      ...base,
      type: 'ca.name_replaced',
      details: {
        spiffeId: record.spiffeId,
        previousLineage: reservation.lineage,
        previousSerial: head?.serial ?? null,
        lineage: record.lineage,
      },
    },
  ];
}

export function nameTaken(approved: ApprovedRequest, heldBy: string, active: boolean): GatehouseError {
  const replace = `enroll with a token made for this name (gatehouse token create --role ${approved.role} --name ${approved.name})`;
  if (active)
    return new GatehouseError(
      'GH_NAME_TAKEN',
      `${approved.spiffeId} is held by an active certificate (serial ${heldBy}); choose another name, or revoke it and ${replace}`,
    );
  return new GatehouseError(
    'GH_NAME_TAKEN',
    `${approved.spiffeId} stays reserved for the machine that enrolled it (its last certificate, ${heldBy}, was revoked or expired); choose another name, ${replace}, or free it with gatehouse name release ${approved.role}/${approved.name}`,
  );
}
