/**
 * `gatehouse ca rotate root|status|finish|abort`: replace the root with no outage
 * (src/ca/root-rotation.ts says how, docs/operations.md "Rotating the root" says when).
 */
import { GatehouseError } from '../../errors/errors.js';
import { flag, str, type CommandContext, type CommandSpec } from '../command.js';
import { openAdmin, TARGET_OPTIONS } from '../admin-target.js';
import { json, keyValues } from '../output.js';

const COMMON = {
  ...TARGET_OPTIONS,
  json: { type: 'boolean', description: 'Print the result as JSON' },
} as const;

/** What the admin is told to run next names the same target it used. */
function target(ctx: CommandContext): string {
  const dir = str(ctx, 'dir');
  return dir
    ? `--dir ${dir}`
    : str(ctx, 'identity')
      ? `--identity ${str(ctx, 'identity')}`
      : str(ctx, 'context')
        ? `--context ${str(ctx, 'context')}`
        : '';
}

export const caRotateRoot: CommandSpec = {
  path: ['ca', 'rotate', 'root'],
  summary:
    'Start a root rotation: a next root, cross-certificates both ways, and a new issuing CA; agents take the next root with their next certificate.',
  options: {
    ...COMMON,
    'root-key': {
      type: 'string',
      value: 'FILE',
      description: 'The current root key, when it is kept offline (not in DIR)',
    },
    'next-root-key-out': {
      type: 'string',
      value: 'FILE',
      description: 'With an offline root: write the next root key here (keep it offline too)',
    },
    'import-root': {
      type: 'string',
      value: 'FILE',
      description: 'Rotate to this existing root certificate (PEM) instead of making one',
    },
    'import-root-key': {
      type: 'string',
      value: 'FILE',
      description: 'Its key: used once here, never copied (the root is offline from the finish on)',
    },
  },
  notes: [
    'Safe while `ca serve` runs: within about 2 seconds it serves both roots at /roots, and every certificate it issues (its own included) comes from the new issuing CA, certified by the current root so every peer keeps verifying it. Each agent gets the next root in its trust bundle with its next certificate, and takes it only because the current root vouches for it (a cross-certificate).',
    'Then watch `gatehouse ca rotate status`, and run `gatehouse ca rotate finish` once every identity has moved, or `gatehouse ca rotate abort` to go back. Exit 75 (GH_CA_ROTATION) while a rotation is in progress; exit 69 without the root key. Audited as ca.root_rotation_started.',
  ],
  async run(ctx) {
    const rootKeyFile = str(ctx, 'root-key');
    const keyOut = str(ctx, 'next-root-key-out');
    const importRoot = str(ctx, 'import-root');
    const importKey = str(ctx, 'import-root-key');
    if (Boolean(importRoot) !== Boolean(importKey))
      throw new GatehouseError(
        'GH_USAGE',
        '--import-root and --import-root-key go together: the cross-certificates and the new issuing CA are signed with the key',
      );
    if (importRoot && keyOut)
      throw new GatehouseError(
        'GH_USAGE',
        "--next-root-key-out makes a new key; an imported root's key stays where it is",
      );
    const admin = await openAdmin(ctx);
    try {
      const result = await admin.rootRotationStart({
        rootKeyFile: rootKeyFile ?? null,
        nextRootKeyOut: keyOut ?? null,
        importRoot: importRoot && importKey ? { certPath: importRoot, keyPath: importKey } : null,
      });
      if (flag(ctx, 'json')) return void ctx.out(json(result));
      ctx.out('Started a root rotation\n\n');
      ctx.out(
        keyValues([
          ['current root', result.previousRoot],
          ['next root', result.nextRoot],
          [
            'next root key',
            `${result.nextRootKeyFile}${result.nextRootKey === 'offline' ? '  (offline: keep it away from this machine; `ca rotate finish` asks for it)' : ''}`,
          ],
          ['new issuing CA', `${result.issuerId} (certified by both roots; by the current one until the finish)`],
        ]),
      );
      ctx.out(
        `\nA running \`ca serve\` serves both roots within seconds. Agents take the next root with their next certificate.\nFollow it:  gatehouse ca rotate status ${target(ctx)}\n`,
      );
    } finally {
      await admin.close();
    }
  },
};

export const caRotateStatus: CommandSpec = {
  path: ['ca', 'rotate', 'status'],
  summary:
    "Show a root rotation's progress: how many active identities hold a certificate from the new chain (their trust bundle came with it).",
  options: { ...COMMON },
  notes: ['Exit 0 also when no rotation is in progress. On a terminal, a progress bar.'],
  async run(ctx) {
    const admin = await openAdmin(ctx);
    try {
      const status = await admin.rootRotationStatus();
      if (flag(ctx, 'json')) return void ctx.out(json(status));
      if (status.phase === 'none') return void ctx.out('No root rotation has been started on this CA.\n');
      const s = status;
      const { moved, total } = status.identities;
      const percent = total === 0 ? 100 : Math.floor((100 * moved) / total);
      const rows: Array<[string, string]> = [
        [
          'phase',
          s.phase === 'rotating'
            ? `rotating since ${s.startedAt}`
            : s.phase === 'finished'
              ? `finished at ${s.finishedAt}${s.forced ? ' (forced)' : ''}`
              : `aborted at ${s.abortedAt}`,
        ],
        ['current root', s.phase === 'finished' ? s.nextRoot : s.previousRoot],
        [
          s.phase === 'finished' ? 'previous root' : 'next root',
          s.phase === 'finished'
            ? `${s.previousRoot} (in agents' bundles until ${s.bundleUntil})`
            : `${s.nextRoot}${s.phase === 'aborted' ? ' (dropped)' : ''}`,
        ],
        [
          'identities moved',
          `${moved} of ${total} (${percent} %): their certificates come from the new issuing CA ${s.issuerId}`,
        ],
        [
          'trust bundles updated',
          `${status.trustBundles.updated} of ${status.trustBundles.total}: each came with its certificate`,
        ],
      ];
      ctx.out(keyValues(rows));
      if (process.stdout.isTTY) ctx.out(`\n${bar(percent)}\n`);
      if (s.phase === 'rotating') {
        if (status.pending.length === 0)
          ctx.out(`\nEvery identity has moved: gatehouse ca rotate finish ${target(ctx)}\n`);
        else {
          ctx.out('\nNot moved yet (they move at their next renewal; the soonest first):\n');
          for (const p of status.pending.slice(0, 20))
            ctx.out(`  ${p.spiffeId}  serial ${p.serial}  expires ${p.notAfter}\n`);
          if (status.pending.length > 20) ctx.out(`  … and ${status.pending.length - 20} more (--json lists all)\n`);
        }
      }
    } finally {
      await admin.close();
    }
  },
};

function bar(percent: number): string {
  const width = 40;
  const full = Math.round((percent / 100) * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${percent} %`;
}

export const caRotateFinish: CommandSpec = {
  path: ['ca', 'rotate', 'finish'],
  summary:
    'Finish a root rotation: the next root is the root; tokens that pin the previous one are refused; new certificates chain to the next root.',
  options: {
    ...COMMON,
    force: { type: 'boolean', description: 'Finish although some identities have not moved (they must enroll again)' },
    'next-root-key': {
      type: 'string',
      value: 'FILE',
      description: 'The next root key, when it is kept offline (for its first root CRL)',
    },
  },
  notes: [
    'Refused (exit 75, GH_CA_ROTATION) until every active identity holds a certificate from the new issuing CA, unless --force. The previous root stays in the trust bundle agents get until the last certificate handed out before the finish expires, then agents drop it. Prints the pin for new join tokens. Audited as ca.root_rotation_finished.',
  ],
  async run(ctx) {
    const admin = await openAdmin(ctx);
    try {
      const forced = flag(ctx, 'force');
      const state = await admin.rootRotationFinish({
        force: forced,
        nextRootKeyFile: str(ctx, 'next-root-key') ?? null,
      });
      if (flag(ctx, 'json')) return void ctx.out(json(state));
      ctx.out('Finished the root rotation\n\n');
      ctx.out(
        keyValues([
          ['root', state.nextRoot],
          [
            'previous root',
            `${state.previousRoot} (refused in join tokens; in agents' bundles until ${state.bundleUntil})`,
          ],
          ['pin for new join tokens', state.nextRoot],
          ...(state.notMoved.length
            ? [['not moved', `${state.notMoved.length}: they must enroll again`] as [string, string]]
            : []),
        ]),
      );
      ctx.out(
        `\nA running \`ca serve\` serves only the new root within seconds. Make new join tokens: gatehouse token create ${target(ctx)} --role ROLE\n`,
      );
    } finally {
      await admin.close();
    }
  },
};

export const caRotateAbort: CommandSpec = {
  path: ['ca', 'rotate', 'abort'],
  summary:
    'Abort a root rotation before it finishes: back to the current root; agents drop the next one with their next certificate.',
  options: { ...COMMON },
  notes: [
    'The next root and its key (when kept in DIR) are deleted. The new issuing CA stays, certified by the current root, so every certificate issued during the rotation keeps verifying. Audited as ca.root_rotation_aborted.',
  ],
  async run(ctx) {
    const admin = await openAdmin(ctx);
    try {
      const state = await admin.rootRotationAbort();
      if (flag(ctx, 'json')) return void ctx.out(json(state));
      ctx.out(
        `Aborted the root rotation: the root stays ${state.previousRoot}; agents drop ${state.nextRoot} with their next certificate.\n`,
      );
    } finally {
      await admin.close();
    }
  },
};
