/** `gatehouse context`: saved CA URL, root pin and admin identity for remote commands (contexts.ts). */
import { resolve } from 'node:path';
import { GatehouseError } from '../../errors/errors.js';
import { readIdentityDir } from '../../files/identity-dir.js';
import { decodePem } from '../../pki/pem.js';
import { sha256Hex } from '../../pki/certificate.js';
import {
  checkContextName,
  contextsPath,
  findContext,
  readContexts,
  writeContexts,
  type CaContext,
} from '../contexts.js';
import { flag, str, type CommandSpec } from '../command.js';
import { json, table } from '../output.js';

export const contextAdd: CommandSpec = {
  path: ['context', 'add'],
  summary:
    "Save a CA URL and an admin identity under a name, pinned to the root in the identity's ca.pem. The first context added becomes the current one.",
  positionals: [{ name: 'NAME', description: 'Context name, e.g. prod', required: true }],
  options: {
    ca: { type: 'string', value: 'URL', required: true, description: 'CA URL, e.g. https://ca.example.internal:8443' },
    identity: {
      type: 'string',
      value: 'DIR',
      required: true,
      description: 'Admin identity directory (key.pem, cert.pem, ca.pem), e.g. CA_DIR/admin',
    },
    use: { type: 'boolean', description: 'Make it the current context' },
    force: { type: 'boolean', description: 'Replace a context of the same name' },
  },
  notes: [
    'Stored in $GATEHOUSE_CONFIG_DIR/contexts.json (default ~/.config/gatehouse), mode 0600. Remote commands use the current context when --ca and --identity are absent; GATEHOUSE_CONTEXT or --context picks another.',
  ],
  async run(ctx) {
    const name = ctx.positionals[0]!;
    checkContextName(name);
    const caUrl = str(ctx, 'ca')!;
    if (!/^https:\/\/[^/]/.test(caUrl))
      throw new GatehouseError('GH_USAGE', `--ca must be an https:// URL (got ${caUrl})`);
    const identityDir = resolve(str(ctx, 'identity')!);
    const [root] = decodePem(readIdentityDir(identityDir).caPem, 'CERTIFICATE');
    if (!root) throw new GatehouseError('GH_FILE_IO', `${identityDir}/ca.pem holds no root certificate`);
    const file = readContexts(ctx.env);
    if (file.contexts.some((c) => c.name === name) && !flag(ctx, 'force'))
      throw new GatehouseError('GH_USAGE', `context "${name}" exists; pass --force to replace it`);
    const context: CaContext = {
      name,
      caUrl: caUrl.replace(/\/+$/, ''),
      rootFingerprint: sha256Hex(root),
      identityDir,
    };
    const contexts = [...file.contexts.filter((c) => c.name !== name), context];
    const current = flag(ctx, 'use') || file.current === null ? name : file.current;
    writeContexts(ctx.env, { current, contexts });
    ctx.out(
      `added context ${name}: ${context.caUrl}, root ${context.rootFingerprint.slice(0, 16)}…, identity ${identityDir}${current === name ? ' (current)' : ''}\n`,
    );
  },
};

export const contextUse: CommandSpec = {
  path: ['context', 'use'],
  summary: 'Make a saved context the current one.',
  positionals: [{ name: 'NAME', description: 'Context name', required: true }],
  options: {},
  async run(ctx) {
    const file = readContexts(ctx.env);
    const context = findContext(file, ctx.positionals[0]!, contextsPath(ctx.env));
    writeContexts(ctx.env, { ...file, current: context.name });
    ctx.out(`current context: ${context.name} (${context.caUrl})\n`);
  },
};

export const contextList: CommandSpec = {
  path: ['context', 'list'],
  summary: 'List saved contexts; the current one is marked.',
  options: { json: { type: 'boolean', description: 'Print JSON' } },
  async run(ctx) {
    const file = readContexts(ctx.env);
    const rows = file.contexts.map((c) => ({ ...c, current: c.name === file.current }));
    ctx.out(
      flag(ctx, 'json')
        ? json(rows)
        : table(
            rows.map((r) => ({ ...r, current: r.current ? '*' : '' })),
            ['current', 'name', 'caUrl', 'identityDir'],
          ),
    );
  },
};

export const contextRemove: CommandSpec = {
  path: ['context', 'remove'],
  summary: 'Forget a saved context (the identity directory is left as it is).',
  positionals: [{ name: 'NAME', description: 'Context name', required: true }],
  options: {},
  async run(ctx) {
    const file = readContexts(ctx.env);
    const context = findContext(file, ctx.positionals[0]!, contextsPath(ctx.env));
    writeContexts(ctx.env, {
      current: file.current === context.name ? null : file.current,
      contexts: file.contexts.filter((c) => c.name !== context.name),
    });
    ctx.out(`removed context ${context.name}\n`);
  },
};
