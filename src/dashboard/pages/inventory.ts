/** The certificate inventory as the dashboard reads it. */
import type { CertRecord } from '../../store/store-certificates.js';
import type { DashboardContext } from '../context.js';

/** Upper bound on certificates read for one page; a larger inventory shows only the newest ones. */
export const INVENTORY_LIMIT = 100_000;

export function loadInventory(
  ctx: DashboardContext,
  filter: { name?: string; role?: string } = {},
): Promise<CertRecord[]> {
  return ctx.scope.authority.store.listCerts({ ...filter, now: ctx.now, limit: INVENTORY_LIMIT });
}
