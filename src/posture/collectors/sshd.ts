/**
 * The SSH server's settings that decide who can log in: PermitRootLogin and
 * PasswordAuthentication, read from sshd_config and the files its Include lines name (relative
 * paths under /etc/ssh, globs), first value wins, as sshd_config(5) says. Match blocks are
 * skipped: they narrow settings for some clients, the global value is what everyone else gets.
 * No sshd_config at all is a pass (no SSH server to attack).
 */
import { readdirSync } from 'node:fs';
import { join, posix } from 'node:path';
import type { CollectContext, Collector } from '../check.js';
import { defineCollector, readUnderRoot } from '../check.js';

const MAX_INCLUDE_DEPTH = 16;

/** The first value of each keyword (lowercased) outside Match blocks, following Include. */
export function readSshdSettings(ctx: CollectContext, path = 'etc/ssh/sshd_config'): Map<string, string> | null {
  const text = readUnderRoot(ctx, path);
  if (text === null) return null;
  const settings = new Map<string, string>();
  readInto(ctx, text, settings, 0);
  return settings;
}

function readInto(ctx: CollectContext, text: string, settings: Map<string, string>, depth: number): void {
  let inMatch = false;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) continue;
    const m = /^(\S+)\s*(?:=\s*|\s+)(.*)$/.exec(line);
    if (!m) continue;
    const keyword = m[1]!.toLowerCase();
    const value = m[2]!.trim().replace(/^"(.*)"$/, '$1');
    if (keyword === 'match') {
      inMatch = true;
      continue;
    }
    if (inMatch) continue;
    if (keyword === 'include') {
      if (depth >= MAX_INCLUDE_DEPTH) continue;
      for (const pattern of value.split(/\s+/)) {
        for (const file of expandInclude(ctx, pattern)) {
          const included = readUnderRoot(ctx, file);
          if (included !== null) readInto(ctx, included, settings, depth + 1);
        }
      }
      continue;
    }
    if (!settings.has(keyword)) settings.set(keyword, value.toLowerCase());
  }
}

/** Include paths are relative to /etc/ssh unless absolute; `*` and `?` in the last component, sorted (as glob(3)). */
function expandInclude(ctx: CollectContext, pattern: string): string[] {
  const absolute = pattern.startsWith('/') ? pattern : posix.join('/etc/ssh', pattern);
  const dir = posix.dirname(absolute);
  const base = posix.basename(absolute);
  if (!/[*?]/.test(base)) return [absolute.slice(1)];
  const re = new RegExp(
    `^${base
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  try {
    return readdirSync(join(ctx.root, dir))
      .filter((name) => re.test(name))
      .sort()
      .map((name) => posix.join(dir, name).slice(1));
  } catch {
    return [];
  }
}

export const sshdRootLoginCollector: Collector = defineCollector('ssh-root-login', 15, (ctx) => {
  const settings = readSshdSettings(ctx);
  if (!settings) return { verdict: 'pass', reason: 'no SSH server configuration (/etc/ssh/sshd_config)' };
  // OpenSSH's default since 7.0 is prohibit-password: keys only.
  const value = settings.get('permitrootlogin') ?? 'prohibit-password';
  const details = { permitRootLogin: value };
  if (value === 'yes')
    return { verdict: 'fail', reason: 'sshd allows root to log in with a password (PermitRootLogin yes)', details };
  return { verdict: 'pass', reason: `sshd: PermitRootLogin ${value}`, details };
});

export const sshdPasswordCollector: Collector = defineCollector('ssh-password-auth', 10, (ctx) => {
  const settings = readSshdSettings(ctx);
  if (!settings) return { verdict: 'pass', reason: 'no SSH server configuration (/etc/ssh/sshd_config)' };
  const value = settings.get('passwordauthentication') ?? 'yes'; // sshd_config(5): the default is yes
  const details = { passwordAuthentication: value };
  if (value !== 'no')
    return {
      verdict: 'fail',
      reason: `sshd accepts passwords (PasswordAuthentication ${value}${settings.has('passwordauthentication') ? '' : ', the default'}): keys only is safer`,
      details,
    };
  return { verdict: 'pass', reason: 'sshd accepts keys only (PasswordAuthentication no)', details };
});
