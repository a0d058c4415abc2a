/**
 * `gatehouse vuln import`: load security advisories (OSV) for the CVE audit, locally on the CA
 * directory (--dir) or through the admin API. The CA needs no internet access: feeds are
 * downloaded elsewhere (docs/operations.md, "CVE audit") and imported here.
 */
import { GatehouseError } from '../../errors/errors.js';
import { flag, type CommandSpec } from '../command.js';
import { openAdmin, TARGET_OPTIONS } from '../admin-target.js';
import { json, keyValues } from '../output.js';
import { readOsvFeed } from '../../posture/vulns/feed.js';

export const vulnImport: CommandSpec = {
  path: ['vuln', 'import'],
  summary:
    'Import OSV advisories (a .json file with one record or an array, or a directory of .json files) for `fleet vulns`.',
  positionals: [
    {
      name: 'PATH',
      description: "An OSV .json file, or a directory of them (OSV.dev's all.zip for an ecosystem, unpacked)",
      required: true,
    },
  ],
  options: {
    json: { type: 'boolean', description: 'Print JSON: added, updated, unchanged' },
    ...TARGET_OPTIONS,
  },
  async run(ctx) {
    const path = ctx.positionals[0]!;
    const records = readOsvFeed(path);
    if (records.length === 0) throw new GatehouseError('GH_ADVISORY_INVALID', `${path} holds no advisories`);
    const admin = await openAdmin(ctx);
    try {
      const counts = await admin.importAdvisories(records);
      if (flag(ctx, 'json')) return void ctx.out(json(counts));
      ctx.out(
        keyValues([
          ['read', records.length],
          ['added', counts.added],
          ['updated', counts.updated],
          ['unchanged', counts.unchanged],
        ]),
      );
    } finally {
      await admin.close();
    }
  },
};
