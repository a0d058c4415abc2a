/**
 * `gatehouse secret …`: secrets kept on the CA, sealed at rest, read by the identities they are
 * granted to (GET /v1/secrets over mutual TLS). Like `token` and `cert`, each command works on
 * the CA directory (--dir) or through the admin API (--identity/--ca, or a context). No command
 * ever prints a value; values come from a file or stdin, never from an argument (the process
 * list would show it).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { GatehouseError } from '../../errors/errors.js';
import { flag, list, str, type CommandContext, type CommandSpec } from '../command.js';
import { openAdmin, TARGET_OPTIONS } from '../admin-target.js';
import { json, keyValues, table } from '../output.js';
import { MAX_SECRET_BYTES, assertSecretName, parseOverlap } from '../../secrets/names.js';
import type { SecretView } from '../../secrets/views.js';

const SUBJECT_HELP = 'role:ROLE, name:NAME or id:spiffe://TRUST_DOMAIN/ROLE/NAME';
const VALUE_OPTIONS = {
  file: {
    type: 'string',
    value: 'PATH',
    description: `Read the value from PATH (binary-safe, 1 byte to ${MAX_SECRET_BYTES / 1024} KiB)`,
  },
  'from-stdin': { type: 'boolean', description: 'Read the value from stdin, to its end (binary-safe)' },
} as const;
const NAME_ARG = {
  name: 'NAME',
  description: 'Secret name: 1–128 characters from A–Z a–z 0–9 . _ - (it becomes a file name on agents)',
  required: true,
};

/** The value from --file or stdin, read to at most the limit (plus one byte, to tell "too big"). */
async function readValue(ctx: CommandContext): Promise<Buffer> {
  const file = str(ctx, 'file');
  const fromStdin = flag(ctx, 'from-stdin');
  if ((file !== undefined) === fromStdin)
    throw new GatehouseError('GH_USAGE', 'give the value with exactly one of --file PATH or --from-stdin');
  const value = file !== undefined ? readBoundedFile(file) : await readBoundedStream(process.stdin);
  if (value.length > MAX_SECRET_BYTES)
    throw new GatehouseError(
      'GH_SECRET_INVALID',
      `the value in ${file ?? 'stdin'} is larger than ${MAX_SECRET_BYTES} bytes (500 KiB)`,
    );
  if (value.length === 0)
    throw new GatehouseError(
      'GH_SECRET_INVALID',
      `the value in ${file ?? 'stdin'} is empty; a secret holds 1 byte to 500 KiB`,
    );
  return value;
}

function readBoundedFile(path: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (cause) {
    throw new GatehouseError('GH_FILE_IO', `cannot read ${path}: ${(cause as NodeJS.ErrnoException).code}`, { cause });
  }
  try {
    const buf = Buffer.alloc(MAX_SECRET_BYTES + 1);
    let size = 0;
    for (;;) {
      const n = readSync(fd, buf, size, buf.length - size, null);
      if (n === 0 || (size += n) >= buf.length) break;
    }
    return buf.subarray(0, size);
  } catch (cause) {
    throw new GatehouseError('GH_FILE_IO', `cannot read ${path}: ${(cause as NodeJS.ErrnoException).code}`, { cause });
  } finally {
    closeSync(fd);
  }
}

async function readBoundedStream(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    chunks.push(buf);
    size += buf.length;
    if (size > MAX_SECRET_BYTES) break;
  }
  return Buffer.concat(chunks);
}

function nameArg(ctx: CommandContext): string {
  const name = ctx.positionals[0]!;
  assertSecretName(name);
  return name;
}

function subjectsArg(ctx: CommandContext): string[] {
  const subjects = ctx.positionals.slice(1);
  if (subjects.length === 0) throw new GatehouseError('GH_USAGE', `name at least one SUBJECT (${SUBJECT_HELP})`);
  return subjects;
}

function printSecret(ctx: CommandContext, s: SecretView): void {
  const current = s.versions.find((v) => v.current);
  ctx.out(
    keyValues([
      ['name', s.name],
      ['current version', s.currentVersion],
      ['size', current ? `${current.size} bytes` : '-'],
      ['checksum', current?.checksum],
      ['created', s.createdAt],
      ['updated', s.updatedAt],
      ['granted to', s.grants.map((g) => g.subject).join(', ') || 'nobody (grant it with `gatehouse secret grant`)'],
    ]),
  );
  ctx.out(
    `\nversions:\n${table(
      s.versions.map((v) => ({
        ...v,
        current: v.current ? 'yes' : '',
        readableUntil: v.expiresAt ?? (v.current ? '-' : 'now'),
      })),
      ['version', 'current', 'size', 'createdAt', 'readableUntil', 'lastReadAt', 'lastReadBy', 'keyId'],
    )}`,
  );
}

async function withAdmin<T>(
  ctx: CommandContext,
  fn: (admin: Awaited<ReturnType<typeof openAdmin>>) => Promise<T>,
): Promise<T> {
  const admin = await openAdmin(ctx);
  try {
    return await fn(admin);
  } finally {
    await admin.close();
  }
}

export const secretCreate: CommandSpec = {
  path: ['secret', 'create'],
  summary:
    'Create a secret on the CA: the value is sealed (AES-256-GCM, its own data key) before it is stored, and only the identities granted it can read it.',
  positionals: [NAME_ARG],
  options: {
    ...VALUE_OPTIONS,
    grant: { type: 'string', value: 'SUBJECT', multiple: true, description: `Who may read it: ${SUBJECT_HELP}` },
    json: { type: 'boolean', description: "Print the secret's metadata as JSON" },
    ...TARGET_OPTIONS,
  },
  notes: [
    'Examples:',
    '  gatehouse secret create db-password --file ./db-password.txt --grant role:web --dir ./ca',
    '  printf %s "$TOKEN" | gatehouse secret create api-token --from-stdin --grant id:spiffe://acme.internal/web/web-1 --identity ./ca/admin',
    'The value is never printed. An identity reads it with GET /v1/secrets/NAME over mutual TLS (docs/secrets.md).',
  ],
  async run(ctx) {
    const name = nameArg(ctx);
    const value = await readValue(ctx);
    try {
      const created = await withAdmin(ctx, (admin) => admin.createSecret(name, value, list(ctx, 'grant')));
      if (flag(ctx, 'json')) return void ctx.out(json(created));
      const grants = created.grants.map((g) => g.subject);
      ctx.out(
        `secret ${created.name}: version ${created.currentVersion}, ${value.length} bytes, granted to ${grants.join(', ') || 'nobody yet (`gatehouse secret grant`)'}\n`,
      );
    } finally {
      value.fill(0);
    }
  },
};

export const secretList: CommandSpec = {
  path: ['secret', 'list'],
  summary: 'List secrets: names, current versions, sizes and grants (never values).',
  options: { json: { type: 'boolean', description: 'Print JSON' }, ...TARGET_OPTIONS },
  async run(ctx) {
    const secrets = await withAdmin(ctx, (admin) => admin.listSecrets());
    ctx.out(
      flag(ctx, 'json')
        ? json(secrets)
        : table(
            secrets.map((s) => ({ ...s, grants: s.grants.join(',') || '-' })),
            ['name', 'version', 'size', 'versions', 'grants', 'updatedAt'],
          ),
    );
  },
};

export const secretShow: CommandSpec = {
  path: ['secret', 'show'],
  summary:
    "Show one secret's metadata: its versions (with the overlap of old ones and who read each last) and grants. Never the value.",
  positionals: [NAME_ARG],
  options: { json: { type: 'boolean', description: 'Print JSON' }, ...TARGET_OPTIONS },
  async run(ctx) {
    const name = nameArg(ctx);
    const secret = await withAdmin(ctx, (admin) => admin.showSecret(name));
    if (flag(ctx, 'json')) ctx.out(json(secret));
    else printSecret(ctx, secret);
  },
};

export const secretGrant: CommandSpec = {
  path: ['secret', 'grant'],
  summary: 'Let more identities read a secret. Subjects already granted are left as they are.',
  positionals: [NAME_ARG, { name: 'SUBJECT', description: SUBJECT_HELP, required: true, variadic: true }],
  options: { json: { type: 'boolean', description: "Print the secret's metadata as JSON" }, ...TARGET_OPTIONS },
  notes: ['Example:', '  gatehouse secret grant db-password role:gateway name:backup-1 --dir ./ca'],
  async run(ctx) {
    const name = nameArg(ctx);
    const secret = await withAdmin(ctx, (admin) => admin.grantSecret(name, subjectsArg(ctx)));
    ctx.out(
      flag(ctx, 'json')
        ? json(secret)
        : `secret ${secret.name} is granted to ${secret.grants.map((g) => g.subject).join(', ')}\n`,
    );
  },
};

export const secretUngrant: CommandSpec = {
  path: ['secret', 'ungrant'],
  summary:
    'Take a secret away from identities: their next read is refused (403). All or nothing: a subject that is not granted refuses the whole call.',
  positionals: [NAME_ARG, { name: 'SUBJECT', description: SUBJECT_HELP, required: true, variadic: true }],
  options: { json: { type: 'boolean', description: "Print the secret's metadata as JSON" }, ...TARGET_OPTIONS },
  notes: ['An identity that read the value before still has it: rotate the secret too when that matters.'],
  async run(ctx) {
    const name = nameArg(ctx);
    const secret = await withAdmin(ctx, (admin) => admin.ungrantSecret(name, subjectsArg(ctx)));
    ctx.out(
      flag(ctx, 'json')
        ? json(secret)
        : `secret ${secret.name} is granted to ${secret.grants.map((g) => g.subject).join(', ') || 'nobody'}\n`,
    );
  },
};

export const secretRotate: CommandSpec = {
  path: ['secret', 'rotate'],
  summary:
    'Give a secret a new value, as a new version. The previous version stays readable (GET /v1/secrets/NAME?version=N) for the overlap, then is deleted.',
  positionals: [NAME_ARG],
  options: {
    ...VALUE_OPTIONS,
    overlap: {
      type: 'string',
      value: 'DURATION',
      description:
        'How long the previous version stays readable, e.g. 10m; 0 deletes it now (default secrets.rotationOverlap, 1h)',
    },
    json: { type: 'boolean', description: "Print the secret's metadata as JSON" },
    ...TARGET_OPTIONS,
  },
  notes: ['Example:', '  gatehouse secret rotate db-password --file ./new-password.txt --overlap 15m --dir ./ca'],
  async run(ctx) {
    const name = nameArg(ctx);
    const overlapText = str(ctx, 'overlap');
    const overlapMs = overlapText === undefined ? undefined : parseOverlap(overlapText);
    const value = await readValue(ctx);
    try {
      const rotated = await withAdmin(ctx, (admin) => admin.rotateSecret(name, value, overlapMs));
      if (flag(ctx, 'json')) return void ctx.out(json(rotated));
      const previous = rotated.versions.find((v) => !v.current && v.version === rotated.currentVersion - 1);
      ctx.out(
        `secret ${rotated.name}: version ${rotated.currentVersion}, ${value.length} bytes; version ${rotated.currentVersion - 1} ${previous?.expiresAt ? `stays readable until ${previous.expiresAt}` : 'was deleted'}\n`,
      );
    } finally {
      value.fill(0);
    }
  },
};

export const secretDelete: CommandSpec = {
  path: ['secret', 'delete'],
  summary: 'Delete a secret, every version of it and its grants.',
  positionals: [NAME_ARG],
  options: { json: { type: 'boolean', description: 'Print JSON' }, ...TARGET_OPTIONS },
  async run(ctx) {
    const name = nameArg(ctx);
    const deleted = await withAdmin(ctx, (admin) => admin.deleteSecret(name));
    ctx.out(flag(ctx, 'json') ? json(deleted) : `secret ${deleted.name} deleted (${deleted.versions} version(s))\n`);
  },
};

export const secretRekey: CommandSpec = {
  path: ['secret', 'rekey'],
  summary:
    'Replace the secrets master key: every data key is sealed again under a new key, in one transaction, and the old key is removed from secrets-master-key.json. Values are not touched.',
  options: {
    dir: { type: 'string', value: 'DIR', description: 'CA directory (or GATEHOUSE_CA_DIR); local only' },
    'passphrase-file': {
      type: 'string',
      value: 'FILE',
      description:
        'Passphrase for an encrypted CA (or GATEHOUSE_PASSPHRASE_FILE); the new key is stored encrypted with it',
    },
    json: { type: 'boolean', description: 'Print the new key ID and the count as JSON' },
  },
  notes: [
    'Local only, on the CA machine: it rewrites the key file in the CA directory. Safe while `ca serve` runs: it reads the key file again when it meets the new key ID.',
    'Example:',
    '  gatehouse secret rekey --dir ./ca',
  ],
  async run(ctx) {
    if (!str(ctx, 'dir') && !ctx.env.GATEHOUSE_CA_DIR)
      throw new GatehouseError(
        'GH_USAGE',
        '`secret rekey` works only on the CA directory: pass --dir DIR (or set GATEHOUSE_CA_DIR)',
      );
    const result = await withAdmin(ctx, (admin) => admin.rekeySecrets());
    ctx.out(
      flag(ctx, 'json')
        ? json(result)
        : `secrets master key is now ${result.keyId} (${result.encrypted ? 'encrypted with the CA passphrase' : 'not encrypted: the CA has no passphrase'}); ${result.resealed} data key(s) sealed again; removed ${result.previousKeyIds.join(', ')}\n`,
    );
  },
};
