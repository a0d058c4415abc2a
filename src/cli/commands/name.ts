/**
 * `gatehouse name`: names (SPIFFE IDs) stay reserved for the enrollment that first took them,
 * after its certificates are revoked or expire, so a role token cannot take over an identity
 * that gateway policies name. These commands show the reservations and free one explicitly.
 */
import { GatehouseError } from '../../errors/errors.js';
import { flag, type CommandSpec } from '../command.js';
import { openAdmin, TARGET_OPTIONS } from '../admin-target.js';
import { json, table } from '../output.js';

/** `ROLE/NAME`, or a SPIFFE ID `spiffe://TRUST-DOMAIN/ROLE/NAME`. */
export function parseNameArgument(text: string): { role: string; name: string } {
  const path = text.startsWith('spiffe://') ? text.slice('spiffe://'.length).split('/').slice(1).join('/') : text;
  const parts = path.split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) {
    throw new GatehouseError(
      'GH_USAGE',
      `"${text}" is not ROLE/NAME (e.g. web/laptop-7) or a SPIFFE ID (spiffe://example.internal/web/laptop-7)`,
    );
  }
  return { role: parts[0], name: parts[1] };
}

export const nameList: CommandSpec = {
  path: ['name', 'list'],
  summary:
    'List reserved names: each SPIFFE ID with the enrollment it belongs to and the state of its newest certificate.',
  options: { json: { type: 'boolean', description: 'Print JSON' }, ...TARGET_OPTIONS },
  notes: [
    'A revoked or expired name stays reserved: enrolling it again needs a token made for that name (`token create --name`), or `name release`.',
  ],
  async run(ctx) {
    const admin = await openAdmin(ctx);
    try {
      const names = await admin.listNames();
      ctx.out(flag(ctx, 'json') ? json(names) : table(names, ['spiffeId', 'state', 'newestSerial', 'reservedAt']));
    } finally {
      await admin.close();
    }
  },
};

export const nameRelease: CommandSpec = {
  path: ['name', 'release'],
  summary:
    'Free a reserved name, so any token for its role may enroll it again. Refused while a certificate for it is active.',
  positionals: [{ name: 'NAME', description: 'ROLE/NAME or the SPIFFE ID', required: true }],
  options: { json: { type: 'boolean', description: 'Print JSON' }, ...TARGET_OPTIONS },
  notes: [
    'Revoke the active certificate first (`gatehouse cert revoke SERIAL`). The release is audited as ca.name_released.',
  ],
  async run(ctx) {
    const { role, name } = parseNameArgument(ctx.positionals[0]!);
    const admin = await openAdmin(ctx);
    try {
      const released = await admin.releaseName(role, name);
      ctx.out(
        flag(ctx, 'json')
          ? json(released)
          : `released ${released.spiffeId}: any token for role ${role} may enroll it now\n`,
      );
    } finally {
      await admin.close();
    }
  },
};
