/** `gatehouse fleet posture` and `fleet vulns`: the devices' posture scores and the advisories that affect them, locally (--dir) or through the admin API. */
import { GatehouseError } from '../../errors/errors.js';
import { parseDurationMs } from '../../config/duration.js';
import { flag, str, type CommandSpec } from '../command.js';
import { openAdmin, TARGET_OPTIONS } from '../admin-target.js';
import { json, table } from '../output.js';

export const fleetPostureCommand: CommandSpec = {
  path: ['fleet', 'posture'],
  summary:
    'List active identities with their latest posture score and failing checks (from `agent report` / `agent run`), worst first.',
  options: {
    below: { type: 'string', value: 'N', description: 'Only scores below N (0–100); no score counts as below' },
    stale: {
      type: 'string',
      value: 'DURATION',
      description: 'Only reports older than DURATION (e.g. 2h); never reported counts as stale',
    },
    json: { type: 'boolean', description: 'Print JSON: per identity name, role, spiffeId, score, reportedAt, failing' },
    ...TARGET_OPTIONS,
  },
  async run(ctx) {
    const belowText = str(ctx, 'below');
    const below = belowText === undefined ? undefined : Number(belowText);
    if (below !== undefined && (!Number.isInteger(below) || below < 0 || below > 101))
      throw new GatehouseError('GH_USAGE', '--below must be a whole number from 0 to 101');
    const staleText = str(ctx, 'stale');
    const staleMs = staleText === undefined ? undefined : parseDurationMs(staleText);
    if (staleMs === null)
      throw new GatehouseError('GH_USAGE', `--stale "${staleText}" is not a duration like 2h or 1d`);
    const admin = await openAdmin(ctx);
    try {
      const rows = await admin.fleetPosture({
        ...(below !== undefined ? { below } : {}),
        ...(staleMs !== undefined ? { staleMs } : {}),
      });
      if (flag(ctx, 'json')) return void ctx.out(json(rows));
      ctx.out(
        table(
          rows.map((r) => ({
            ...r,
            score: r.score ?? (r.reportedAt ? 'none' : null),
            reportedAt: r.reportedAt ?? 'never',
            failing: r.failing.join(',') || null,
          })),
          ['spiffeId', 'score', 'reportedAt', 'failing'],
        ),
      );
    } finally {
      await admin.close();
    }
  },
};

export const fleetVulnsCommand: CommandSpec = {
  path: ['fleet', 'vulns'],
  summary:
    "List imported advisories that affect active identities (their latest posture report's packages), most severe first.",
  options: {
    json: {
      type: 'boolean',
      description:
        'Print JSON: per advisory id, severity, summary, aliases and the affected identities (name, spiffeId, package, installed, fixed)',
    },
    ...TARGET_OPTIONS,
  },
  async run(ctx) {
    const admin = await openAdmin(ctx);
    try {
      const rows = await admin.fleetVulns();
      if (flag(ctx, 'json')) return void ctx.out(json(rows));
      ctx.out(
        table(
          rows.map((r) => ({
            id: r.id,
            severity: r.severity,
            identities: r.identities.length,
            affected: r.identities
              .map((i) => `${i.name} (${i.package} ${i.installed}${i.fixed ? ` < ${i.fixed}` : ', no fix yet'})`)
              .join(', '),
          })),
          ['id', 'severity', 'identities', 'affected'],
        ),
      );
    } finally {
      await admin.close();
    }
  },
};
