/**
 * Where admin commands act: locally on the CA directory or remotely through the admin API.
 * Kept free of heavy imports so that `--help` and light commands start fast; the chosen
 * implementation is loaded when a command runs.
 */
import type { CommandContext, OptionSpec } from './command.js';
import type { AdminOps } from './admin-ops.js';

export const TARGET_OPTIONS: Record<string, OptionSpec> = {
  dir: { type: 'string', value: 'DIR', description: 'CA directory, for use on the CA machine (or GATEHOUSE_CA_DIR)' },
  ca: { type: 'string', value: 'URL', description: 'CA URL, for remote use through the admin API' },
  identity: {
    type: 'string',
    value: 'DIR',
    description: 'Admin identity directory for remote use (e.g. CA_DIR/admin)',
  },
  'passphrase-file': { type: 'string', value: 'FILE', description: 'Passphrase for encrypted CA keys (local use)' },
  context: {
    type: 'string',
    value: 'NAME',
    description: 'Saved context for remote use (default GATEHOUSE_CONTEXT, then the current one: `gatehouse context`)',
  },
};

export async function openAdmin(ctx: CommandContext): Promise<AdminOps> {
  return (await import('./admin-ops.js')).openAdmin(ctx);
}
