import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GatehouseError } from '../../errors/errors.js';
import { flag, str, type CommandSpec, caDirOf } from '../command.js';
import { json, keyValues } from '../output.js';

export const auditVerify: CommandSpec = {
  path: ['audit', 'verify'],
  summary:
    "Check the audit trail's hash chain on the CA directory and name the first modified, deleted, inserted or reordered event.",
  options: {
    dir: { type: 'string', value: 'DIR', description: 'CA directory (or GATEHOUSE_CA_DIR)' },
    anchor: {
      type: 'string',
      value: 'SEQ:HASH',
      description:
        'Also require event SEQ to have hash HASH: a head printed by an earlier run and kept off this machine',
    },
    json: { type: 'boolean', description: 'Print JSON' },
  },
  notes: [
    'Exit 0 when the trail is intact (prints the event count and the head as SEQ:HASH), 65 when it is broken (GH_AUDIT_BROKEN), 66 when DIR holds no CA.',
    'Works offline on the CA directory and is safe while `ca serve` runs: it reads one consistent snapshot.',
    'Anyone who can write the database can rewrite the chain with recomputed hashes; only --anchor with a head kept elsewhere detects that (docs/operations.md).',
  ],
  async run(ctx) {
    const dir = caDirOf(ctx);
    const anchorText = str(ctx, 'anchor');
    const anchorMatch =
      anchorText === undefined ? null : /^(\d+):([0-9a-f]{64})$/.exec(anchorText.trim().toLowerCase());
    if (anchorText !== undefined && !anchorMatch)
      throw new GatehouseError(
        'GH_USAGE',
        `--anchor "${anchorText}" is not SEQ:HASH (a sequence number, a colon and 64 hex digits), as printed by \`audit verify\``,
      );
    const anchor = anchorMatch ? { seq: Number(anchorMatch[1]), hash: anchorMatch[2]! } : null;
    const { CA_FILES } = await import('../../ca/ca-dir.js');
    const { CA_CONFIG_FILE, loadCaConfig } = await import('../../config/ca-config.js');
    const { openCaStore } = await import('../../ca/store-open.js');
    const { verifyAuditTrail } = await import('../../store/audit-verify.js');
    // The config says where the store is; a database file alone (copied off a CA) is SQLite.
    const configPath = join(dir, CA_CONFIG_FILE);
    const config = existsSync(configPath) ? loadCaConfig(configPath, ctx.env) : null;
    const dbPath = join(dir, CA_FILES.database);
    if ((config === null || config.store.kind === 'sqlite') && !existsSync(dbPath))
      throw new GatehouseError('GH_CA_NOT_FOUND', `no CA database at ${dbPath}`);
    const store = await openCaStore(dir, config ?? { store: { kind: 'sqlite', url: null, poolMax: 1 } });
    let report;
    try {
      report = await verifyAuditTrail(store, { anchor });
    } finally {
      await store.close();
    }
    const head = report.last ? `${report.last.seq}:${report.last.hash}` : null;
    if (flag(ctx, 'json')) {
      ctx.out(
        json({
          ok: report.ok,
          count: report.count,
          head,
          recordedHead: report.recordedHead,
          ...(anchor ? { anchor } : {}),
          firstBroken: report.broken,
        }),
      );
      return report.ok ? 0 : 65;
    }
    const broken = report.broken;
    if (broken) {
      const where =
        broken.seq === null
          ? 'the audit trail is broken'
          : `the audit trail is broken at event ${broken.seq}${broken.type ? ` (${broken.type}, ${broken.time!.toISOString()})` : ''}`;
      throw new GatehouseError('GH_AUDIT_BROKEN', `${where}: ${broken.reason}; ${report.count} events read`);
    }
    ctx.out(`audit trail intact: ${report.count} events, each chained to the one before\n`);
    ctx.out(
      keyValues([['head', head], ...(anchor ? [['anchor', `event ${anchor.seq} matches`] as [string, string]] : [])]),
    );
  },
};
