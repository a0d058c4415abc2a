/**
 * `gatehouse store copy`: moves a CA's whole state between the embedded SQLite file and
 * PostgreSQL, either way, then checks the copy: the same row count in every table and an audit
 * chain that verifies on the target. The source is read from one snapshot and never changed.
 */
import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { GatehouseError } from '../../errors/errors.js';
import { flag, str, type CommandSpec } from '../command.js';
import { json, keyValues } from '../output.js';
import type { TableAccess } from '../../store/table-copy.js';
import type { Store } from '../../store/store.js';

type Endpoint = { kind: 'sqlite'; dir: string; path: string } | { kind: 'postgres'; url: string };

function endpointOf(text: string, flagName: string): Endpoint {
  if (/^postgres(ql)?:\/\//.test(text)) return { kind: 'postgres', url: text };
  const m = /^sqlite:(.+)$/.exec(text);
  if (!m)
    throw new GatehouseError('GH_USAGE', `--${flagName} "${text}" is neither sqlite:CA_DIR nor a postgres:// URL`);
  const dir = resolve(m[1]!);
  return { kind: 'sqlite', dir, path: join(dir, 'gatehouse.db') };
}

interface Opened {
  store: Store & { tableAccess(): TableAccess };
  /** Undoes what opening a target created, when the copy fails: a new SQLite file. */
  discard(): void;
}

async function open(endpoint: Endpoint, role: 'source' | 'target'): Promise<Opened> {
  if (endpoint.kind === 'postgres') {
    const { openPostgresStore } = await import('../../store/postgres.js');
    // A target gets the schema on an empty database; a source must already be at this version.
    const store = await openPostgresStore({ url: endpoint.url, poolMax: 2, migrate: role === 'target' });
    return { store, discard: () => undefined };
  }
  const { openSqliteStore } = await import('../../store/sqlite.js');
  if (role === 'source') {
    if (!existsSync(endpoint.path)) throw new GatehouseError('GH_CA_NOT_FOUND', `no SQLite store at ${endpoint.path}`);
    return { store: openSqliteStore(endpoint.path, { readonly: true }), discard: () => undefined };
  }
  if (!existsSync(endpoint.dir))
    throw new GatehouseError(
      'GH_USAGE',
      `${endpoint.dir} does not exist: the SQLite target is the gatehouse.db of a CA directory`,
    );
  if (existsSync(endpoint.path))
    throw new GatehouseError(
      'GH_STORE_IO',
      `${endpoint.path} already exists: copy into a new store (move it away first)`,
    );
  return {
    store: openSqliteStore(endpoint.path),
    discard: () => {
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${endpoint.path}${suffix}`, { force: true });
    },
  };
}

const describe = async (e: Endpoint) =>
  e.kind === 'sqlite'
    ? `sqlite ${e.path}`
    : `postgres ${(await import('../../ca/store-open.js')).redactedStoreUrl(e.url)}`;

export const storeCopy: CommandSpec = {
  path: ['store', 'copy'],
  summary:
    "Copy a CA's whole state (tokens, inventory, names, revocations, CRL numbers, secrets, posture, advisories, metadata, the audit trail) between SQLite and PostgreSQL, then verify the copy.",
  options: {
    from: {
      type: 'string',
      value: 'SOURCE',
      required: true,
      description: 'sqlite:CA_DIR (its gatehouse.db) or postgres://user@host:port/db',
    },
    to: {
      type: 'string',
      value: 'TARGET',
      required: true,
      description: 'sqlite:CA_DIR (a gatehouse.db that does not exist yet) or an empty PostgreSQL database',
    },
    json: {
      type: 'boolean',
      description: 'Print JSON: from, to, schemaVersion, rows per table, audit (ok, count, head)',
    },
  },
  notes: [
    'Stop `ca serve` first: the source is read from one consistent snapshot, but what a running CA writes after it is not in the copy.',
    "The target must be empty and get this Gatehouse's schema; the source must be at the same version (`gatehouse ca migrate`). The copy is one transaction: it is whole or absent. Then point the CA at the target (store: in gatehouse.yaml, or GATEHOUSE_STORE_URL) and start it.",
    'Exit 0 when the copy verified; 65 (GH_AUDIT_BROKEN) when the copied trail does not verify; 74 (GH_STORE_IO) when the stores differ in schema or the target is not empty.',
  ],
  async run(ctx) {
    const from = endpointOf(str(ctx, 'from')!, 'from');
    const to = endpointOf(str(ctx, 'to')!, 'to');
    if (
      from.kind === to.kind &&
      (from.kind === 'sqlite' ? from.path === (to as typeof from).path : from.url === (to as typeof from).url)
    )
      throw new GatehouseError('GH_USAGE', '--from and --to name the same store');
    const { copyTables } = await import('../../store/table-copy.js');
    const { verifyAuditTrail } = await import('../../store/audit-verify.js');
    const source = await open(from, 'source');
    let target: Opened | null = null;
    try {
      target = await open(to, 'target');
      let copied;
      try {
        copied = await copyTables(source.store.tableAccess(), target.store.tableAccess());
      } catch (err) {
        await target.store.close();
        target.discard();
        target = null;
        throw err;
      }
      const audit = await verifyAuditTrail(target.store, { anchor: null });
      const view = {
        from: await describe(from),
        to: await describe(to),
        schemaVersion: copied.schemaVersion,
        rows: copied.tables,
        audit: { ok: audit.ok, count: audit.count, head: audit.last ? `${audit.last.seq}:${audit.last.hash}` : null },
      };
      if (flag(ctx, 'json')) ctx.out(json(view));
      else {
        ctx.out(
          keyValues([
            ['from', view.from],
            ['to', view.to],
            ['schema version', view.schemaVersion],
            ...Object.entries(view.rows).map(([t, n]): [string, unknown] => [`  ${t}`, n]),
            ['audit trail', audit.ok ? `intact: ${audit.count} events, head ${view.audit.head}` : 'BROKEN'],
          ]),
        );
        if (audit.ok)
          ctx.out(
            `\nNext: point the CA at it (${to.kind === 'postgres' ? 'store: { kind: postgres, url: … } in gatehouse.yaml, or GATEHOUSE_STORE_URL' : 'remove the store: section of gatehouse.yaml, or GATEHOUSE_STORE_URL=sqlite'}) and start ca serve.\n`,
          );
      }
      if (!audit.ok)
        throw new GatehouseError(
          'GH_AUDIT_BROKEN',
          `the copied audit trail does not verify (${audit.broken?.reason ?? 'see audit verify'}); the source's trail was already broken, or the copy differs`,
        );
    } finally {
      await target?.store.close();
      await source.store.close();
    }
  },
};
