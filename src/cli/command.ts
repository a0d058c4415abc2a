/**
 * The shape of a CLI command. Help text is generated from this spec, so `--help` and
 * docs/cli.md (checked by a test) cannot drift apart.
 */
import { parseArgs } from 'node:util';
import { GatehouseError } from '../errors/errors.js';
import { resolve as resolvePath } from 'node:path';

export interface OptionSpec {
  type: 'string' | 'boolean';
  description: string;
  multiple?: boolean;
  short?: string;
  /** Shown in help as the value's name: `--ttl DURATION`. */
  value?: string;
  required?: boolean;
}

export interface CommandSpec {
  path: string[];
  summary: string;
  /** The last one may be `variadic`: it takes every argument left (shown as `NAME...`). */
  positionals?: Array<{ name: string; description: string; required: boolean; variadic?: boolean }>;
  options: Record<string, OptionSpec>;
  /** Extra help lines: exit codes, examples. */
  notes?: string[];
  run(ctx: CommandContext): Promise<number | void>;
}

export interface CommandContext {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
}

export function str(ctx: CommandContext, name: string): string | undefined {
  const v = ctx.values[name];
  return typeof v === 'string' ? v : undefined;
}

/** The CA directory of a command that acts on one: --dir, else GATEHOUSE_CA_DIR, as an absolute path. */
export function caDirOf(ctx: CommandContext): string {
  const dir = str(ctx, 'dir') ?? ctx.env.GATEHOUSE_CA_DIR;
  if (!dir) throw new GatehouseError('GH_USAGE', '--dir is required (or set GATEHOUSE_CA_DIR)');
  return resolvePath(dir);
}

export function list(ctx: CommandContext, name: string): string[] {
  const v = ctx.values[name];
  return Array.isArray(v)
    ? v
        .flatMap((x) => x.split(','))
        .map((x) => x.trim())
        .filter(Boolean)
    : [];
}

export function flag(ctx: CommandContext, name: string): boolean {
  return ctx.values[name] === true;
}

export function parseCommandArgs(
  spec: CommandSpec,
  argv: string[],
): { values: CommandContext['values']; positionals: string[] } {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, o] of Object.entries(spec.options))
    options[name] = { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (cause) {
    throw new GatehouseError(
      'GH_USAGE',
      `${(cause as Error).message.replace(/\. To specify.*$/s, '')}; see \`gatehouse ${spec.path.join(' ')} --help\``,
      { cause },
    );
  }
  const values = parsed.values as CommandContext['values'];
  if (values.help) return { values, positionals: parsed.positionals };
  const maxPositionals = spec.positionals?.length ?? 0;
  if (parsed.positionals.length > maxPositionals && !spec.positionals?.at(-1)?.variadic)
    throw new GatehouseError(
      'GH_USAGE',
      `unexpected argument "${parsed.positionals[maxPositionals]}"; see \`gatehouse ${spec.path.join(' ')} --help\``,
    );
  const missingPositional = spec.positionals?.find((p, i) => p.required && parsed.positionals[i] === undefined);
  if (missingPositional)
    throw new GatehouseError(
      'GH_USAGE',
      `missing ${missingPositional.name}; see \`gatehouse ${spec.path.join(' ')} --help\``,
    );
  for (const [name, o] of Object.entries(spec.options)) {
    if (o.required && values[name] === undefined)
      throw new GatehouseError('GH_USAGE', `--${name} is required; see \`gatehouse ${spec.path.join(' ')} --help\``);
  }
  return { values, positionals: parsed.positionals };
}

export function synopsis(spec: CommandSpec): string {
  const parts = [`gatehouse ${spec.path.join(' ')}`];
  for (const [name, o] of Object.entries(spec.options)) {
    const value = o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : '';
    parts.push(o.required ? `--${name}${value}` : `[--${name}${value}]`);
  }
  for (const p of spec.positionals ?? []) {
    const name = p.variadic ? `${p.name}...` : p.name;
    parts.push(p.required ? name : `[${name}]`);
  }
  return parts.join(' ');
}

export function helpText(spec: CommandSpec): string {
  const lines = [`Usage: ${synopsis(spec)}`, '', spec.summary, ''];
  if (spec.positionals?.length) {
    lines.push('Arguments:');
    for (const p of spec.positionals) lines.push(`  ${p.name.padEnd(24)} ${p.description}`);
    lines.push('');
  }
  lines.push('Options:');
  for (const [name, o] of Object.entries(spec.options)) {
    const label = `--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
    lines.push(`  ${label.padEnd(24)} ${o.description}${o.multiple ? ' (repeatable)' : ''}`);
  }
  lines.push(`  ${'--help'.padEnd(24)} Show this help`);
  if (spec.notes?.length) lines.push('', ...spec.notes);
  return lines.join('\n') + '\n';
}
