/**
 * Importing advisories (`gatehouse vuln import`, POST /admin/vulns): OSV records are checked
 * one by one, and either all of a batch go into the store with one audit event, or none.
 */
import { GatehouseError } from '../errors/errors.js';
import type { Store } from '../store/store.js';
import type { AdvisoryImport } from '../store/store-posture.js';
import { parseOsv, type Advisory } from '../posture/vulns/osv.js';

/** Records per admin request: a batch of Debian's feed is a few MiB. */
export const ADVISORY_BATCH = 500;
export const MAX_ADVISORY_BATCH_BYTES = 32 * 1024 * 1024;

/** The advisories of `values`, or a GH_ADVISORY_INVALID naming the first bad record by `where(i)`. */
export function parseAdvisories(values: readonly unknown[], where: (i: number) => string): Advisory[] {
  return values.map((value, i) => {
    const parsed = parseOsv(value);
    if (!parsed.ok)
      throw new GatehouseError(
        'GH_ADVISORY_INVALID',
        `${where(i)} is not a valid OSV record: ${parsed.problems.join('; ')}`,
      );
    return parsed.advisory;
  });
}

export async function importAdvisories(
  store: Store,
  advisories: readonly Advisory[],
  ctx: { actor: string; requestId?: string },
  now: Date,
): Promise<AdvisoryImport> {
  const counts = await store.importAdvisories(
    advisories.map((a) => ({ id: a.id, modified: a.modified, severity: a.severity, record: JSON.stringify(a) })),
    (c) => ({
      time: now,
      type: 'ca.advisories_imported',
      actor: ctx.actor,
      ...(ctx.requestId ? { requestId: ctx.requestId } : {}),
      details: { ...c, received: advisories.length },
    }),
  );
  return counts;
}
