/**
 * A backup's manifest.json: every file with its size and SHA-256, what was left out and why,
 * the audit head, the root fingerprint, the versions. Its own checksum covers every other byte
 * of it, and nothing it names may point outside the backup, so a restore can trust what it
 * lists once readManifest and assertSafeBackupPath accepted it.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { GatehouseError } from '../errors/errors.js';
import { ioError } from './backup-files.js';

export const BACKUP_FORMAT = 'gatehouse-ca-backup/1';
export const BACKUP_MANIFEST = 'manifest.json';
/** The CA directory's files live under this folder of a backup. */
export const CA_SUBDIR = 'ca';
const ZERO_CHECKSUM = '0'.repeat(64);

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const manifestSchema = z.object({
  format: z.literal(BACKUP_FORMAT),
  createdAt: z.string(),
  gatehouseVersion: z.string(),
  source: z.string(),
  rootFingerprint: hex64,
  schemaVersion: z.number().int().min(0),
  audit: z.object({
    head: z.string().nullable(),
    events: z.number().int().min(0),
    intact: z.boolean(),
    problem: z.string().nullable(),
  }),
  rows: z.object({
    certificates: z.number().int(),
    tokens: z.number().int(),
    auditEvents: z.number().int(),
    names: z.number().int(),
  }),
  keys: z.object({ encrypted: z.boolean(), rootKeyIncluded: z.boolean(), passphraseFile: z.string().nullable() }),
  dirs: z.array(z.string()),
  files: z.array(z.object({ path: z.string(), size: z.number().int().min(0), sha256: hex64 })),
  excluded: z.array(z.object({ path: z.string(), reason: z.string() })),
  checksum: hex64,
});
export type BackupManifest = z.output<typeof manifestSchema>;

/** The manifest's text, with `checksum` the SHA-256 of that same text in which the checksum is 64 zeros. */
export function manifestText(manifest: Omit<BackupManifest, 'checksum'>): string {
  const draft = `${JSON.stringify({ ...manifest, checksum: ZERO_CHECKSUM }, null, 2)}\n`;
  const checksum = createHash('sha256').update(draft).digest('hex');
  return draft.replace(`"checksum": "${ZERO_CHECKSUM}"`, `"checksum": "${checksum}"`);
}

const CHECKSUM_LINE = /\n {2}"checksum": "([0-9a-f]{64})"\n\}\n$/;

/** Reads and checks the manifest: its own checksum covers every other byte of it. */
export function readManifest(from: string): { manifest: BackupManifest; text: string } {
  const path = join(from, BACKUP_MANIFEST);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new GatehouseError(
        'GH_BACKUP_CORRUPT',
        `${from} is not a Gatehouse CA backup: it has no ${BACKUP_MANIFEST}`,
        { cause },
      );
    throw ioError('read', path, cause);
  }
  const line = CHECKSUM_LINE.exec(text);
  if (!line)
    throw new GatehouseError(
      'GH_BACKUP_CORRUPT',
      `${path} was changed or damaged: its last entry is not the "checksum" line \`ca backup\` writes`,
    );
  const expected = line[1]!;
  const actual = createHash('sha256')
    .update(text.slice(0, line.index) + text.slice(line.index).replace(expected, ZERO_CHECKSUM))
    .digest('hex');
  if (actual !== expected)
    throw new GatehouseError(
      'GH_BACKUP_CORRUPT',
      `${path} was changed or damaged: its checksum is ${expected.slice(0, 16)}…, its content hashes to ${actual.slice(0, 16)}…`,
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new GatehouseError('GH_BACKUP_CORRUPT', `${path} is not JSON: ${(cause as Error).message}`, { cause });
  }
  const result = manifestSchema.safeParse(parsed);
  if (!result.success) {
    const format = (parsed as { format?: unknown } | null)?.format;
    if (typeof format === 'string' && format !== BACKUP_FORMAT)
      throw new GatehouseError(
        'GH_BACKUP_CORRUPT',
        `${path} is a backup of format "${format}"; this Gatehouse reads "${BACKUP_FORMAT}": restore it with the Gatehouse version that made it`,
      );
    throw new GatehouseError(
      'GH_BACKUP_CORRUPT',
      `${path} is not a manifest this Gatehouse can read: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return { manifest: result.data, text };
}

/** `ca/…` with plain segments only: nothing in a manifest may point outside the backup or the new directory. */
export function assertSafeBackupPath(path: string, manifestPath: string): string[] {
  const segments = path.split('/');
  if (
    segments[0] !== CA_SUBDIR ||
    segments.length < 2 ||
    segments.some((s) => s === '' || s === '.' || s === '..' || s.includes('\\') || s.includes('\0'))
  ) {
    throw new GatehouseError(
      'GH_BACKUP_CORRUPT',
      `${manifestPath} names the path "${path}", which is not a plain path under ${CA_SUBDIR}/: refusing to restore it`,
    );
  }
  return segments.slice(1);
}
