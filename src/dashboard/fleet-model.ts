/**
 * What the dashboard shows about the fleet, computed from the certificate inventory. Pure: no
 * I/O, the clock is an argument.
 *
 * An identity is a (role, name) pair. Its current certificate is the one issued last; a
 * renewal leaves the previous certificate valid until it expires, but the identity has moved on.
 *
 * "Expiring soon" means less than 20 % of the certificate's lifetime is left. Agents renew at
 * 60–73 % of the lifetime, so a healthy identity always has at least 27 % left: below 20 % its
 * agent has missed renewal. A fixed "< 24 h" rule would mark every default (24 h) certificate.
 */
import type { CertRecord } from '../store/store-certificates.js';

export type IdentityState = 'active' | 'expiring' | 'expired' | 'revoked';
export const IDENTITY_STATES: readonly IdentityState[] = ['active', 'expiring', 'expired', 'revoked'];
export const STATE_LABELS: Record<IdentityState, string> = {
  active: 'Active',
  expiring: 'Expiring soon',
  expired: 'Expired',
  revoked: 'Revoked',
};

export const EXPIRING_FRACTION = 0.2;
const DAY_MS = 86_400_000;

export function certificateState(
  cert: Pick<CertRecord, 'notBefore' | 'notAfter' | 'revokedAt'>,
  now: Date,
): IdentityState {
  if (cert.revokedAt) return 'revoked';
  const remaining = cert.notAfter.getTime() - now.getTime();
  if (remaining <= 0) return 'expired';
  const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
  return remaining < lifetime * EXPIRING_FRACTION ? 'expiring' : 'active';
}

export interface IdentityView {
  role: string;
  name: string;
  spiffeId: string;
  current: CertRecord;
  state: IdentityState;
  /** Every certificate of this identity, newest first. */
  history: CertRecord[];
  /** When the current certificate was issued by a renewal, else null (first enrollment or re-enrollment). */
  lastRenewal: Date | null;
}

/** `certs` in any order; identities sorted by role then name. */
export function groupIdentities(certs: readonly CertRecord[], now: Date): IdentityView[] {
  const byKey = new Map<string, CertRecord[]>();
  for (const cert of certs) {
    const key = `${cert.role}\u0000${cert.name}`;
    const list = byKey.get(key);
    if (list) list.push(cert);
    else byKey.set(key, [cert]);
  }
  const identities: IdentityView[] = [];
  for (const list of byKey.values()) {
    list.sort((a, b) => b.issuedAt.getTime() - a.issuedAt.getTime() || (a.serial < b.serial ? -1 : 1));
    const current = list[0]!;
    identities.push({
      role: current.role,
      name: current.name,
      spiffeId: current.spiffeId,
      current,
      history: list,
      state: certificateState(current, now),
      lastRenewal: current.renewedFrom ? current.issuedAt : null,
    });
  }
  return identities.sort((a, b) => a.role.localeCompare(b.role) || a.name.localeCompare(b.name));
}

export interface FleetFilter {
  /** Case-insensitive substring of name, SPIFFE ID or any serial of the identity. */
  q?: string;
  role?: string;
  state?: IdentityState;
}

export function filterIdentities(identities: readonly IdentityView[], filter: FleetFilter): IdentityView[] {
  const q = filter.q?.trim().toLowerCase();
  return identities.filter(
    (i) =>
      (!filter.role || i.role === filter.role) &&
      (!filter.state || i.state === filter.state) &&
      (!q ||
        i.name.toLowerCase().includes(q) ||
        i.spiffeId.toLowerCase().includes(q) ||
        i.history.some((c) => c.serial.includes(q))),
  );
}

/** Identities by role and state; `roles` lists every role that appears, sorted. */
export function countByRoleAndState(identities: readonly IdentityView[]): {
  roles: string[];
  counts: Map<string, Record<IdentityState, number>>;
  totals: Record<IdentityState, number>;
} {
  const counts = new Map<string, Record<IdentityState, number>>();
  const totals = { active: 0, expiring: 0, expired: 0, revoked: 0 };
  for (const i of identities) {
    let row = counts.get(i.role);
    if (!row) counts.set(i.role, (row = { active: 0, expiring: 0, expired: 0, revoked: 0 }));
    row[i.state]++;
    totals[i.state]++;
  }
  return { roles: [...counts.keys()].sort(), counts, totals };
}

/**
 * Current, unrevoked, unexpired certificates by the day they expire: bucket 0 is the next 24 h
 * from `now`, bucket 29 the 30th day. Later expiries are counted in `later`.
 */
export function expiryBuckets(
  identities: readonly IdentityView[],
  now: Date,
  days = 30,
): { buckets: number[]; later: number } {
  const buckets = new Array<number>(days).fill(0);
  let later = 0;
  for (const i of identities) {
    if (i.state === 'revoked' || i.state === 'expired') continue;
    const index = Math.floor((i.current.notAfter.getTime() - now.getTime()) / DAY_MS);
    if (index < days) buckets[Math.max(0, index)]!++;
    else later++;
  }
  return { buckets, later };
}

export interface IssuanceRate {
  windowMs: number;
  enrolled: number;
  renewed: number;
}

/** Certificates issued in each window before `now`: first enrollments and renewals apart. */
export function issuanceRates(
  certs: readonly CertRecord[],
  now: Date,
  windowsMs: readonly number[] = [DAY_MS, 7 * DAY_MS],
): IssuanceRate[] {
  return windowsMs.map((windowMs) => {
    const since = now.getTime() - windowMs;
    let enrolled = 0;
    let renewed = 0;
    for (const c of certs) {
      const t = c.issuedAt.getTime();
      if (t <= since || t > now.getTime()) continue;
      if (c.renewedFrom) renewed++;
      else enrolled++;
    }
    return { windowMs, enrolled, renewed };
  });
}
