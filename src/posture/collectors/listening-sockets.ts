/**
 * Listening TCP and UDP sockets with the process that holds each, from /proc/net/{tcp,tcp6,udp,udp6}
 * and the socket inodes in /proc/<pid>/fd (proc(5)), without running ss or netstat. Fails on
 * services that send credentials in clear (telnet, FTP, rsh, TFTP) on any address, and on
 * databases that ship without authentication (Redis, Memcached, MongoDB, Elasticsearch) listening
 * beyond loopback.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { CollectContext, Collector } from '../check.js';
import { defineCollector, processIds, processName, readUnderRoot } from '../check.js';

export interface Listener {
  proto: 'tcp' | 'udp';
  address: string;
  port: number;
  inode: string;
  process: string | null;
}

const CLEARTEXT: Record<string, Record<number, string>> = {
  tcp: { 21: 'FTP', 23: 'telnet', 512: 'rexec', 513: 'rlogin', 514: 'rsh' },
  udp: { 69: 'TFTP' },
};
const UNAUTHENTICATED_BY_DEFAULT: Record<number, string> = {
  6379: 'Redis',
  11211: 'Memcached',
  27017: 'MongoDB',
  9200: 'Elasticsearch',
};
const MAX_LISTED = 100;

/** IPv4: one little-endian 32-bit word; IPv6: four of them (as the kernel prints them). */
function decodeAddress(hex: string): string {
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((w) =>
    [w.slice(6, 8), w.slice(4, 6), w.slice(2, 4), w.slice(0, 2)].map((b) => parseInt(b, 16)),
  );
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  const text = groups.join(':');
  if (text.startsWith('0:0:0:0:0:ffff:')) return bytes.slice(12).join('.'); // IPv4-mapped
  return text.replace(/(^|:)0(:0)+(:|$)/, '::').replace(/:{3,}/, '::');
}

export function readListeners(ctx: CollectContext): Listener[] | null {
  const listeners: Listener[] = [];
  let any = false;
  for (const [file, proto] of [
    ['tcp', 'tcp'],
    ['tcp6', 'tcp'],
    ['udp', 'udp'],
    ['udp6', 'udp'],
  ] as const) {
    const text = readUnderRoot(ctx, `proc/net/${file}`, 8 * 1024 * 1024);
    if (text === null) continue;
    any = true;
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const [localHex, localPort] = f[1]!.split(':');
      const state = f[3];
      const remotePort = f[2]!.split(':')[1];
      // TCP LISTEN is state 0A; an unconnected UDP socket (remote port 0) receives from anyone.
      if (proto === 'tcp' ? state !== '0A' : remotePort !== '0000') continue;
      listeners.push({
        proto,
        address: decodeAddress(localHex!),
        port: parseInt(localPort!, 16),
        inode: f[9]!,
        process: null,
      });
    }
  }
  if (!any) return null;
  const owners = socketOwners(ctx);
  for (const l of listeners) l.process = owners.get(l.inode) ?? null;
  return listeners;
}

/** socket inode → process name, from the fd links of every process (unreadable ones skipped: not root). */
function socketOwners(ctx: CollectContext): Map<string, string> {
  const owners = new Map<string, string>();
  for (const pid of processIds(ctx) ?? []) {
    let fds: string[];
    try {
      fds = readdirSync(join(ctx.root, 'proc', pid, 'fd'));
    } catch {
      continue;
    }
    let owner: string | null = null; // read only for a process that holds a socket
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(join(ctx.root, 'proc', pid, 'fd', fd)));
        if (m && !owners.has(m[1]!))
          owners.set(m[1]!, (owner ??= `${processName(ctx, pid) ?? `pid ${pid}`} (pid ${pid})`));
      } catch {
        // gone meanwhile
      }
    }
  }
  return owners;
}

const isLoopback = (address: string) => address.startsWith('127.') || address === '::1';

export const listeningSocketsCollector: Collector = defineCollector('risky-listeners', 20, (ctx) => {
  const listeners = readListeners(ctx);
  if (listeners === null) return { verdict: 'unknown', reason: 'no /proc/net: listening sockets cannot be read here' };
  const risky = listeners.flatMap((l) => {
    const cleartext = CLEARTEXT[l.proto]?.[l.port];
    if (cleartext)
      return [
        `${cleartext} on ${l.address}:${l.port}/${l.proto}${l.process ? ` (${l.process})` : ''}, which sends credentials in clear`,
      ];
    const database = l.proto === 'tcp' ? UNAUTHENTICATED_BY_DEFAULT[l.port] : undefined;
    if (database && !isLoopback(l.address))
      return [
        `${database} on ${l.address}:${l.port}${l.process ? ` (${l.process})` : ''}, reachable beyond this machine and without a password by default`,
      ];
    return [];
  });
  const details = {
    listeners: listeners.slice(0, MAX_LISTED).map(({ inode: _inode, ...l }) => l),
    total: listeners.length,
  };
  if (risky.length > 0)
    return {
      verdict: 'fail',
      reason: risky.length === 1 ? risky[0]! : `${risky[0]} (and ${risky.length - 1} more)`,
      details: { ...details, risky },
    };
  return {
    verdict: 'pass',
    reason: `${listeners.length} listening socket${listeners.length === 1 ? '' : 's'}, none of a risky kind`,
    details,
  };
});
