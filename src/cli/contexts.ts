/**
 * Saved CA contexts, as step's `step context`: a name for a CA URL, the root it is pinned to and
 * the admin identity directory used with it, so remote commands need no --ca and --identity.
 * Kept in `$GATEHOUSE_CONFIG_DIR/contexts.json` (default `$XDG_CONFIG_HOME/gatehouse`, then
 * `~/.config/gatehouse`), 0600 in a 0700 directory: it names where admin keys live.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { GatehouseError } from '../errors/errors.js';
import { writeFileAtomic } from '../files/atomic-write.js';
import { ensurePrivateDir } from '../files/identity-dir.js';
import { formatIssues } from '../config/ca-config.js';

export interface CaContext {
  name: string;
  caUrl: string;
  /** SHA-256 of the root (lowercase hex) the identity's ca.pem held when the context was added. */
  rootFingerprint: string;
  identityDir: string;
}

const CONTEXT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

const fileSchema = z.strictObject({
  current: z.string().nullable(),
  contexts: z.array(
    z.strictObject({
      name: z.string().regex(CONTEXT_NAME_RE),
      caUrl: z.url({ protocol: /^https$/ }),
      rootFingerprint: z.string().regex(/^[0-9a-f]{64}$/),
      identityDir: z.string().min(1),
    }),
  ),
});

export type ContextsFile = z.output<typeof fileSchema>;

export function contextsPath(env: NodeJS.ProcessEnv): string {
  const dir = env.GATEHOUSE_CONFIG_DIR ?? join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'gatehouse');
  return join(resolve(dir), 'contexts.json');
}

export function readContexts(env: NodeJS.ProcessEnv): ContextsFile {
  const path = contextsPath(env);
  if (!existsSync(path)) return { current: null, contexts: [] };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new GatehouseError(
      'GH_CONFIG_INVALID',
      `${path} is not valid JSON: ${(cause as Error).message}; fix or remove it`,
      { cause },
    );
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) throw new GatehouseError('GH_CONFIG_INVALID', `${path}: ${formatIssues(parsed.error.issues)}`);
  return parsed.data;
}

export function writeContexts(env: NodeJS.ProcessEnv, file: ContextsFile): void {
  const path = contextsPath(env);
  ensurePrivateDir(resolve(path, '..'));
  writeFileAtomic(path, JSON.stringify(file, null, 2) + '\n', 0o600);
}

export function checkContextName(name: string): void {
  if (!CONTEXT_NAME_RE.test(name))
    throw new GatehouseError(
      'GH_USAGE',
      `context name ${JSON.stringify(name)} is not allowed: use 1–63 characters from A–Z a–z 0–9 . _ -`,
    );
}

export function findContext(file: ContextsFile, name: string, path: string): CaContext {
  const found = file.contexts.find((c) => c.name === name);
  if (!found) {
    const known = file.contexts.map((c) => c.name).join(', ') || 'none';
    throw new GatehouseError(
      'GH_USAGE',
      `no context "${name}" in ${path} (contexts: ${known}); add it with \`gatehouse context add ${name} --ca URL --identity DIR\``,
    );
  }
  return found;
}

/** The context a remote command uses: GATEHOUSE_CONTEXT, else the current one, else none. */
export function activeContext(env: NodeJS.ProcessEnv, explicit?: string): CaContext | null {
  const file = readContexts(env);
  const name = explicit ?? env.GATEHOUSE_CONTEXT ?? file.current;
  return name ? findContext(file, name, contextsPath(env)) : null;
}
