/** `agent.json` in an identity directory: the CA URL and pinned root, for renewals and remote admin. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GatehouseError } from '../errors/errors.js';
import { writeFileAtomic } from './atomic-write.js';

export const AGENT_SETTINGS_FILE = 'agent.json';

export interface AgentSettings {
  caUrl: string;
  /** The root the join token pinned at enrollment. */
  rootFingerprint: string;
  /**
   * The roots of ca.pem that came from the CA (the pin, and those taken in a root rotation):
   * the only ones a CA's answer may retire. Absent in older files: the pin alone.
   */
  caRoots?: string[];
}

export function readAgentSettings(dir: string): AgentSettings | null {
  const path = join(dir, AGENT_SETTINGS_FILE);
  if (!existsSync(path)) return null;
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<AgentSettings>;
    if (typeof parsed.caUrl !== 'string' || typeof parsed.rootFingerprint !== 'string')
      throw new Error('missing caUrl or rootFingerprint');
    const caRoots = Array.isArray(parsed.caRoots)
      ? parsed.caRoots.filter((f): f is string => typeof f === 'string' && /^[0-9a-f]{64}$/.test(f))
      : undefined;
    return { caUrl: parsed.caUrl, rootFingerprint: parsed.rootFingerprint, ...(caRoots ? { caRoots } : {}) };
  } catch (cause) {
    throw new GatehouseError('GH_CONFIG_INVALID', `${path} is unreadable: ${(cause as Error).message}`, { cause });
  }
}

export function writeAgentSettings(dir: string, settings: AgentSettings): void {
  writeFileAtomic(join(dir, AGENT_SETTINGS_FILE), JSON.stringify(settings, null, 2) + '\n', 0o644);
}
