import { GatehouseError } from '../../errors/errors.js';
import { parseDurationMs } from '../../config/duration.js';
import { flag, str, type CommandSpec } from '../command.js';
import { openAdmin, TARGET_OPTIONS } from '../admin-target.js';
import { json, table } from '../output.js';

export const tokenCreate: CommandSpec = {
  path: ['token', 'create'],
  summary:
    'Create a join token for a role. Prints only the token on stdout, so TOKEN=$(gatehouse token create …) works.',
  options: {
    role: {
      type: 'string',
      value: 'ROLE',
      required: true,
      description: 'Role the enrolled machine gets (e.g. web, gateway)',
    },
    name: { type: 'string', value: 'NAME', description: 'The exact identity name this token enrolls' },
    names: { type: 'string', value: 'PATTERN', description: 'Glob the enrolled name must match, e.g. "web-*"' },
    ttl: { type: 'string', value: 'DURATION', description: 'How long the token is valid (default 1h)' },
    uses: { type: 'string', value: 'N', description: 'How many enrollments it allows (default 1)' },
    json: { type: 'boolean', description: 'Print the token and its metadata as JSON' },
    ...TARGET_OPTIONS,
  },
  notes: [
    'The token is shown once; only its SHA-256 is stored. Pass it to the machine with `gatehouse agent enroll --token-file` or GATEHOUSE_TOKEN.',
  ],
  async run(ctx) {
    const ttl = str(ctx, 'ttl');
    const ttlMs = ttl === undefined ? undefined : parseDurationMs(ttl);
    if (ttlMs === null) throw new GatehouseError('GH_USAGE', `--ttl "${ttl}" is not a duration like 15m, 1h or 7d`);
    const usesText = str(ctx, 'uses');
    const uses = usesText === undefined ? undefined : Number(usesText);
    if (uses !== undefined && !Number.isInteger(uses))
      throw new GatehouseError('GH_USAGE', '--uses must be a whole number');
    const admin = await openAdmin(ctx);
    try {
      const created = await admin.createToken({
        role: str(ctx, 'role')!,
        name: str(ctx, 'name') ?? null,
        namePattern: str(ctx, 'names') ?? null,
        ...(ttlMs !== undefined ? { ttlMs } : {}),
        ...(uses !== undefined ? { uses } : {}),
      });
      if (flag(ctx, 'json')) ctx.out(json(created));
      else {
        ctx.out(`${created.token}\n`);
        ctx.err(
          `token ${created.id}: role ${created.role}${created.name ? `, name ${created.name}` : created.names ? `, names ${created.names}` : ''}, ${created.maxUses} use(s), expires ${created.expiresAt}\n`,
        );
      }
    } finally {
      await admin.close();
    }
  },
};

export const tokenList: CommandSpec = {
  path: ['token', 'list'],
  summary: 'List join tokens (IDs and metadata; secrets are never stored).',
  options: { json: { type: 'boolean', description: 'Print JSON' }, ...TARGET_OPTIONS },
  async run(ctx) {
    const admin = await openAdmin(ctx);
    try {
      const tokens = await admin.listTokens();
      ctx.out(
        flag(ctx, 'json')
          ? json(tokens)
          : table(
              tokens.map((t) => ({
                ...t,
                uses: `${t.uses}/${t.maxUses}`,
                state: t.revokedAt
                  ? 'revoked'
                  : new Date(t.expiresAt) <= new Date()
                    ? 'expired'
                    : t.uses >= t.maxUses
                      ? 'used'
                      : 'active',
              })),
              ['id', 'role', 'name', 'names', 'uses', 'state', 'expiresAt'],
            ),
      );
    } finally {
      await admin.close();
    }
  },
};

export const tokenRevoke: CommandSpec = {
  path: ['token', 'revoke'],
  summary: 'Revoke a join token so it can no longer enroll anything.',
  positionals: [{ name: 'ID', description: 'Token ID (16 hex characters, from `token list`)', required: true }],
  options: { json: { type: 'boolean', description: 'Print JSON' }, ...TARGET_OPTIONS },
  async run(ctx) {
    const admin = await openAdmin(ctx);
    try {
      const token = await admin.revokeToken(ctx.positionals[0]!);
      ctx.out(flag(ctx, 'json') ? json(token) : `token ${token.id} revoked at ${token.revokedAt}\n`);
    } finally {
      await admin.close();
    }
  },
};
