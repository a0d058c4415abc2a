/** Listen addresses as operators write them (`127.0.0.1:8443`, `[::1]:9090`), shared by the CA, the gateway and their admin listeners. */
import { GatehouseError } from '../errors/errors.js';

export function splitHostPort(listen: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(listen);
  if (!m) throw new GatehouseError('GH_USAGE', `listen address "${listen}" is not HOST:PORT`);
  return { host: m[1]!, port: Number(m[2]) };
}

/** `host` as it goes in a URL: IPv6 literals in brackets. */
export function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** 127.0.0.0/8, ::1 or localhost (which resolves only to loopback here and on sane systems). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host === '::1') return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
