/**
 * The fleet as the views that count it see it (rotation progress, posture, expiry checks): each
 * machine's newest active certificate, leaving out what the CA issues and renews for itself.
 * These read the whole inventory: listCerts stops at 10 000 by default, and a count cut there
 * would let `ca rotate finish` pass with machines left behind.
 */
import type { Store } from '../store/store.js';
import type { CertRecord } from '../store/store-certificates.js';

export const CA_SERVER_ROLE = 'ca-server';
/** The role the admin API, the dashboard and posture reads let in. */
export const ADMIN_ROLE = 'admin';
/** Roles the CA issues to itself and renews itself: no machine to watch. */
export const SELF_RENEWED_ROLES: ReadonlySet<string> = new Set([CA_SERVER_ROLE]);
const WHOLE_INVENTORY = 2_147_483_647;

/** The newest active certificate of every identity (role and name), the CA's own left out. */
export async function activeIdentities(store: Store, now: Date): Promise<CertRecord[]> {
  const newest = new Map<string, CertRecord>();
  for (const cert of await store.listCerts({ state: 'active', now, excludeSuperseded: true, limit: WHOLE_INVENTORY })) {
    if (SELF_RENEWED_ROLES.has(cert.role)) continue;
    const held = newest.get(cert.spiffeId);
    if (!held || cert.issuedAt > held.issuedAt) newest.set(cert.spiffeId, cert);
  }
  return [...newest.values()];
}

/** When the last certificate handed out so far expires (at least `now`): how long a retired CA or root is still needed. */
export async function lastNotAfter(store: Store, now: Date): Promise<Date> {
  return (await store.listCerts({ limit: WHOLE_INVENTORY })).reduce(
    (max, c) => (c.notAfter > max ? c.notAfter : max),
    now,
  );
}
