/**
 * A firewall that drops incoming traffic by default. The rules in the kernel cannot be read
 * without nft/iptables or netlink, so this reads the configuration the boot loads, in order:
 * nftables (/etc/nftables.conf and its includes, with nftables.service enabled),
 * iptables-persistent (/etc/iptables/rules.v4), ufw (/etc/ufw/ufw.conf, /etc/default/ufw) and
 * firewalld (/etc/firewalld/firewalld.conf, with firewalld.service enabled). One source that
 * drops is enough: a packet any input base chain drops is dropped, whatever the others accept.
 * /proc/net/ip_tables_names (the legacy tables loaded now) goes in the details, not the verdict.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { join, posix } from 'node:path';
import type { CollectContext, Collector } from '../check.js';
import { defineCollector, readUnderRoot } from '../check.js';

const MAX_INCLUDE_DEPTH = 16;
const MAX_INCLUDED_FILES = 64;
const BOOT = 'from the configuration the boot loads, not the live kernel rules';

interface Finding {
  source: 'nftables' | 'iptables-persistent' | 'ufw' | 'firewalld';
  pass: boolean;
  reason: string;
}

interface NftChain {
  family: string;
  table: string;
  name: string;
  file: string;
  hookInput: boolean;
  policy: string | null;
}

/** A unit is enabled when its link (or a copy) is in one of these .wants directories. */
function serviceEnabled(ctx: CollectContext, unit: string, targets: readonly string[]): boolean {
  return targets.some((target) => {
    try {
      lstatSync(join(ctx.root, 'etc/systemd/system', `${target}.wants`, unit)); // a link to /lib/systemd/…: not followed
      return true;
    } catch {
      return false;
    }
  });
}

/** An nftables `include` path: relative to /etc unless absolute; `*` and `?` in the last component, sorted. */
function expandNftInclude(ctx: CollectContext, pattern: string): string[] {
  const absolute = pattern.startsWith('/') ? posix.normalize(pattern) : posix.join('/etc', pattern);
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
      .filter((name) => re.test(name) && !name.startsWith('.'))
      .sort()
      .map((name) => posix.join(dir, name).slice(1));
  } catch {
    return [];
  }
}

/**
 * The base chains an nft -f file defines: `table [family] name { chain name { type filter hook
 * input priority …; policy drop; } }`, and `add chain family table name { … }` at the top level.
 * Braces that open anything else (sets, maps, anonymous sets in rules) are skipped over.
 */
export function readNftChains(ctx: CollectContext, path = 'etc/nftables.conf'): NftChain[] | null {
  const text = readUnderRoot(ctx, path);
  if (text === null) return null;
  const chains = new Map<string, NftChain>();
  const stack: Array<
    { kind: 'table'; family: string; name: string } | { kind: 'chain'; chain: NftChain } | { kind: 'other' }
  > = [];
  let included = 0;
  const chainOf = (family: string, table: string, name: string, file: string) => {
    const key = `${family} ${table} ${name}`;
    if (!chains.has(key)) chains.set(key, { family, table, name, file, hookInput: false, policy: null });
    return chains.get(key)!;
  };
  const statement = (raw: string, depth: number) => {
    const s = raw.trim().replace(/\s+/g, ' ');
    if (!s) return;
    const include = /^include "([^"]+)"$/.exec(s);
    if (include) {
      if (depth >= MAX_INCLUDE_DEPTH) return;
      for (const next of expandNftInclude(ctx, include[1]!)) {
        if (++included > MAX_INCLUDED_FILES) return;
        const body = readUnderRoot(ctx, next);
        if (body !== null) feed(body, next, depth + 1);
      }
      return;
    }
    const top = stack[stack.length - 1];
    if (top?.kind !== 'chain') return;
    if (/^type filter hook input\b/.test(s)) top.chain.hookInput = true;
    const policy = /^policy (\S+)$/.exec(s);
    if (policy) top.chain.policy = policy[1]!.toLowerCase();
  };
  const open = (header: string, file: string) => {
    const h = header.trim().replace(/\s+/g, ' ');
    const top = stack[stack.length - 1];
    const table = /^(?:(?:add|create) )?table (?:(ip|ip6|inet|arp|bridge|netdev) )?(\S+)$/.exec(h);
    if (table && stack.length === 0) return stack.push({ kind: 'table', family: table[1] ?? 'ip', name: table[2]! });
    const inTable = /^chain (\S+)$/.exec(h);
    if (inTable && top?.kind === 'table')
      return stack.push({ kind: 'chain', chain: chainOf(top.family, top.name, inTable[1]!, file) });
    const full = /^(?:(?:add|create) )?chain (?:(ip|ip6|inet|arp|bridge|netdev) )?(\S+) (\S+)$/.exec(h);
    if (full && stack.length === 0)
      return stack.push({ kind: 'chain', chain: chainOf(full[1] ?? 'ip', full[2]!, full[3]!, file) });
    return stack.push({ kind: 'other' });
  };
  const feed = (body: string, file: string, depth: number) => {
    let buffer = '';
    for (const line of body.split('\n')) {
      for (const c of `${line.replace(/#.*$/, '')}\n`) {
        if (c === '{') {
          open(buffer, file);
          buffer = '';
        } else if (c === '}') {
          statement(buffer, depth);
          buffer = '';
          stack.pop();
        } else if (c === ';' || c === '\n') {
          statement(buffer, depth);
          buffer = '';
        } else {
          buffer += c;
        }
      }
    }
  };
  feed(text, path, 0);
  return [...chains.values()];
}

function nftables(ctx: CollectContext): Finding | null {
  const chains = readNftChains(ctx);
  if (chains === null) return null;
  const input = chains.filter((c) => c.hookInput && ['inet', 'ip', 'ip6'].includes(c.family));
  const name = (c: NftChain) => `${c.family} ${c.table}/${c.name}`;
  const dropping = input.filter((c) => c.policy === 'drop');
  if (dropping.length === 0) {
    if (input.length === 0)
      return {
        source: 'nftables',
        pass: false,
        reason: '/etc/nftables.conf has no input chain (type filter hook input): nothing filters incoming traffic',
      };
    const c = input[0]!;
    return {
      source: 'nftables',
      pass: false,
      reason: `/${c.file}: input chain ${name(c)} has policy ${c.policy ?? 'accept (the default when unset)'}: traffic no rule matches is let in (set policy drop)`,
    };
  }
  if (!serviceEnabled(ctx, 'nftables.service', ['sysinit.target', 'multi-user.target'])) {
    return {
      source: 'nftables',
      pass: false,
      reason: `/${dropping[0]!.file} drops incoming traffic by default, but nftables.service is not enabled: the boot does not load it (systemctl enable nftables)`,
    };
  }
  return {
    source: 'nftables',
    pass: true,
    reason: `nftables: input chain ${dropping.slice(0, 3).map(name).join(', ')} has policy drop (${BOOT})`,
  };
}

function iptablesPersistent(ctx: CollectContext): Finding | null {
  const text = readUnderRoot(ctx, 'etc/iptables/rules.v4');
  if (text === null) return null;
  let table: string | null = null;
  let policy: string | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) table = line.slice(1);
    else if (line === 'COMMIT') table = null;
    const m = /^:INPUT\s+(\S+)/.exec(line);
    if (table === 'filter' && m) policy = m[1]!.toUpperCase();
  }
  // iptables chain policies are ACCEPT or DROP only; REJECT is a rule target.
  if (policy === 'DROP')
    return {
      source: 'iptables-persistent',
      pass: true,
      reason: `iptables-persistent: /etc/iptables/rules.v4 sets INPUT policy DROP (${BOOT})`,
    };
  if (policy === null)
    return {
      source: 'iptables-persistent',
      pass: false,
      reason: '/etc/iptables/rules.v4 has no *filter INPUT policy: incoming traffic is accepted by default',
    };
  return {
    source: 'iptables-persistent',
    pass: false,
    reason: `/etc/iptables/rules.v4 sets INPUT policy ${policy}: traffic no rule matches is let in (set :INPUT DROP)`,
  };
}

/** KEY=value with optional quotes, as ufw's shell-sourced files have them. */
function shellValue(text: string, key: string): string | null {
  const m = new RegExp(`^\\s*${key}\\s*=\\s*["']?([^"'\\s#]*)`, 'm').exec(text);
  return m ? m[1]! : null;
}

function ufw(ctx: CollectContext): Finding | null {
  const conf = readUnderRoot(ctx, 'etc/ufw/ufw.conf');
  if (conf === null) return null;
  const enabled = (shellValue(conf, 'ENABLED') ?? 'no').toLowerCase();
  if (enabled !== 'yes')
    return {
      source: 'ufw',
      pass: false,
      reason: `ufw is installed but not enabled (ENABLED=${enabled} in /etc/ufw/ufw.conf; ufw enable)`,
    };
  const policy = (
    shellValue(readUnderRoot(ctx, 'etc/default/ufw') ?? '', 'DEFAULT_INPUT_POLICY') ?? 'unset'
  ).toUpperCase();
  if (policy === 'DROP' || policy === 'REJECT')
    return { source: 'ufw', pass: true, reason: `ufw is enabled with DEFAULT_INPUT_POLICY="${policy}" (${BOOT})` };
  return {
    source: 'ufw',
    pass: false,
    reason: `ufw is enabled but /etc/default/ufw has DEFAULT_INPUT_POLICY ${policy === 'UNSET' ? 'unset' : `"${policy}"`}: incoming traffic is let in (ufw default deny incoming)`,
  };
}

function firewalld(ctx: CollectContext): Finding | null {
  const conf = readUnderRoot(ctx, 'etc/firewalld/firewalld.conf');
  if (conf === null) return null;
  const zone = shellValue(conf, 'DefaultZone') || 'public';
  if (!serviceEnabled(ctx, 'firewalld.service', ['multi-user.target'])) {
    return {
      source: 'firewalld',
      pass: false,
      reason:
        'firewalld is configured but firewalld.service is not enabled: the boot does not start it (systemctl enable firewalld)',
    };
  }
  // A zone's target: its file in /etc overrides the packaged one. Most zones reject by default; "trusted" accepts everything.
  const zoneFile =
    readUnderRoot(ctx, `etc/firewalld/zones/${zone}.xml`) ??
    readUnderRoot(ctx, `usr/lib/firewalld/zones/${zone}.xml`) ??
    '';
  const target = /<zone\b[^>]*\btarget="([^"]+)"/.exec(zoneFile)?.[1]?.toUpperCase();
  if (target === 'ACCEPT')
    return {
      source: 'firewalld',
      pass: false,
      reason: `firewalld's default zone ${zone} has target ACCEPT: incoming traffic is let in (firewall-cmd --set-default-zone=public)`,
    };
  return {
    source: 'firewalld',
    pass: true,
    reason: `firewalld is enabled with default zone ${zone} (target ${target ?? 'default: reject'}; ${BOOT})`,
  };
}

export const firewallCollector: Collector = defineCollector('firewall', 15, (ctx) => {
  try {
    readdirSync(join(ctx.root, 'etc'));
  } catch {
    return { verdict: 'unknown', reason: 'no readable /etc: the firewall configuration cannot be read here' };
  }
  const legacy = readUnderRoot(ctx, 'proc/net/ip_tables_names');
  const legacyTables =
    legacy === null
      ? {}
      : {
          legacyIptablesLoaded: legacy
            .split('\n')
            .map((t) => t.trim())
            .filter(Boolean)
            .slice(0, 16),
        };
  const findings = [nftables(ctx), iptablesPersistent(ctx), ufw(ctx), firewalld(ctx)].filter(
    (f): f is Finding => f !== null,
  );
  if (findings.length === 0)
    return {
      verdict: 'fail',
      reason: 'no firewall configuration found (nftables, iptables-persistent, ufw, firewalld)',
      details: { source: null, ...legacyTables },
    };
  const chosen = findings.find((f) => f.pass) ?? findings[0]!;
  const details = {
    source: chosen.source,
    found: findings.map((f) => ({ source: f.source, pass: f.pass, reason: f.reason })),
    ...legacyTables,
  };
  return { verdict: chosen.pass ? 'pass' : 'fail', reason: chosen.reason, details };
});
