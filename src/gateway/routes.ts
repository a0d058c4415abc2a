/**
 * Routes by Host and path prefix. An exact host beats a `*.domain` wildcard, which beats `*`;
 * within a host, the longest path prefix wins (as nginx's prefix locations do). Prefixes match
 * whole segments: `/api` matches `/api` and `/api/x`, never `/apix`. Matching runs on the
 * normalized path, the same path the policy checked and the upstream receives.
 */
import type { RouteConfig } from './config.js';

export interface Route<T> {
  /** `routes[2]`, for logs and errors. */
  label: string;
  host: string;
  pathPrefix: string;
  target: T;
}

export interface RouteTable<T> {
  readonly routes: readonly Route<T>[];
  match(host: string | null, path: string): Route<T> | null;
}

export function compileRoutes<T>(
  routes: readonly RouteConfig[],
  makeTarget: (route: RouteConfig, label: string) => T,
): RouteTable<T> {
  const compiled = routes.map((route, i) => ({
    label: `routes[${i}]`,
    host: route.host,
    pathPrefix: stripTrailingSlash(route.pathPrefix),
    target: makeTarget(route, `routes[${i}]`),
  }));
  const exact = new Map<string, Route<T>[]>();
  const wildcard: Route<T>[] = [];
  const any: Route<T>[] = [];
  for (const route of compiled) {
    if (route.host === '*') any.push(route);
    else if (route.host.startsWith('*.')) wildcard.push(route);
    else exact.set(route.host, [...(exact.get(route.host) ?? []), route]);
  }
  const longestFirst = (a: Route<T>, b: Route<T>) => b.pathPrefix.length - a.pathPrefix.length;
  for (const list of exact.values()) list.sort(longestFirst);
  wildcard.sort((a, b) => b.host.length - a.host.length || longestFirst(a, b));
  any.sort(longestFirst);

  const byPrefix = (candidates: readonly Route<T>[], path: string) =>
    candidates.find((r) => prefixMatches(r.pathPrefix, path)) ?? null;
  return {
    routes: compiled,
    match(rawHost, path) {
      const host = rawHost === null ? null : hostWithoutPort(rawHost).toLowerCase();
      if (host !== null) {
        const found =
          byPrefix(exact.get(host) ?? [], path) ??
          byPrefix(
            wildcard.filter((r) => host.endsWith(r.host.slice(1)) && host.length > r.host.length - 1),
            path,
          );
        if (found) return found;
      }
      return byPrefix(any, path);
    },
  };
}

function prefixMatches(prefix: string, path: string): boolean {
  if (prefix === '') return true;
  return path === prefix || path.startsWith(`${prefix}/`);
}

function stripTrailingSlash(prefix: string): string {
  return prefix.replace(/\/+$/, '');
}

/** `example.com:8443` → `example.com`; `[::1]:8443` → `::1`. */
export function hostWithoutPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end < 0 ? host : host.slice(1, end);
  }
  const colon = host.lastIndexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}
