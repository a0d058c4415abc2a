/**
 * `gatehouse ca migrate`: brings the CA's store to this Gatehouse's schema. SQLite migrates when
 * any command opens it for writing; PostgreSQL, which several replicas share, only here (and at
 * `ca init`), so an upgrade is one deliberate step: migrate, then start the new version everywhere.
 */
import { flag, caDirOf, type CommandSpec } from '../command.js';
import { json, keyValues } from '../output.js';

export const caMigrate: CommandSpec = {
  path: ['ca', 'migrate'],
  summary:
    'Apply the store migrations this Gatehouse carries (PostgreSQL: under a lock, so replicas migrating at once take turns) and print the schema versions before and after.',
  options: {
    dir: {
      type: 'string',
      value: 'DIR',
      description:
        'CA directory (or GATEHOUSE_CA_DIR); its gatehouse.yaml (or GATEHOUSE_STORE_URL) says where the store is',
    },
    json: { type: 'boolean', description: 'Print JSON: store, from, to' },
  },
  notes: [
    'A store whose schema is newer than this Gatehouse is refused (GH_STORE_IO, exit 74) and left as it is: upgrade Gatehouse instead.',
    '`ca serve` on PostgreSQL refuses to start against an older schema, naming this command; run it once, from one machine, before starting the new version on the replicas (docs/operations.md, "Upgrades").',
  ],
  async run(ctx) {
    const dir = caDirOf(ctx);
    const { loadCaPublic } = await import('../../ca/ca-dir.js');
    const { describeStore } = await import('../../ca/store-open.js');
    const ca = loadCaPublic(dir, { env: ctx.env });
    const where = describeStore(ca.dir, ca.config, ctx.env);
    let versions: { from: number; to: number };
    if (ca.config.store.kind === 'postgres') {
      const { migratePostgres } = await import('../../store/postgres.js');
      versions = await migratePostgres({
        ...(ca.config.store.url !== null ? { url: ca.config.store.url } : {}),
        poolMax: 1,
      });
    } else {
      const { join } = await import('node:path');
      const { CA_FILES } = await import('../../ca/ca-dir.js');
      const { openSqliteStore } = await import('../../store/sqlite.js');
      const { sqliteSchemaVersion } = await import('../../store/sqlite-version.js');
      const path = join(ca.dir, CA_FILES.database);
      const from = sqliteSchemaVersion(path);
      await openSqliteStore(path).close();
      versions = { from, to: sqliteSchemaVersion(path) };
    }
    if (flag(ctx, 'json')) return void ctx.out(json({ store: where, ...versions }));
    ctx.out(
      keyValues([
        ['store', where],
        ['schema before', versions.from],
        ['schema now', versions.to],
        ['applied', versions.to - versions.from],
      ]),
    );
  },
};
