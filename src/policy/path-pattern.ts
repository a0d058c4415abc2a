/**
 * Path patterns as written in a policy. They are matched against the normalized, decoded
 * path, so a pattern must itself be written in that form: a pattern that normalization
 * would change (`/a/../b`, `//b`, `/caf%C3%A9`) could never match as its author meant, and is
 * refused at load time instead of silently never matching.
 *
 *   /user      exact; also matches /user/ (an app usually serves both, and a deny on /user
 *              must not be bypassed by /user/)
 *   /api/*     /api itself and everything below /api/, segment-aware: not /apix
 *   * or /*    every path
 *   /user/.*   talk format only: everything below /user/, not /user itself, as the regex means;
 *              the talk format's resource is a regex, so `*` and `/*` are refused there
 */
import type { PathPattern } from './model.js';
import { normalizePath } from './path.js';

/** A native pattern, or the problem with it. */
export function parsePathPattern(text: string): PathPattern | { problem: string } {
  if (text === '*' || text === '/*') return { kind: 'any' };
  if (!text.startsWith('/')) return { problem: 'must start with / (or be * for every path)' };
  const prefix = text.endsWith('/*');
  const base = prefix ? text.slice(0, -2) : text;
  if (base.includes('*')) return { problem: 'may contain * only as a final /* (a prefix) or alone (every path)' };
  const problem = checkNormalized(base, prefix);
  if (problem) return { problem };
  return prefix ? { kind: 'prefix', base, includeBase: true } : { kind: 'exact', path: base };
}

// Regex syntax besides a final `.*`: refused, because matching it literally would silently
// differ from what the author wrote. A `.` is taken literally, which only ever matches less.
const REGEX_SYNTAX_RE = /[\^$|()[\]{}+?\\*]/;

/**
 * A talk-format `resource`. The talk writes `/user/.*`, a regular expression; that one form
 * (a final `/.*`) is accepted and means "strictly below", as the regex does.
 */
export function parseTalkResource(text: string): PathPattern | { problem: string } {
  if (text === '.*' || text === '/.*') return { kind: 'any' };
  if (text.endsWith('/.*')) {
    const base = text.slice(0, -3);
    if (!base.startsWith('/')) return { problem: 'must start with /' };
    if (REGEX_SYNTAX_RE.test(base)) return { problem: 'regular expressions are not supported beyond a final /.*' };
    const problem = checkNormalized(base, true);
    return problem ? { problem } : { kind: 'prefix', base, includeBase: false };
  }
  // In a regex `/user/*` means "/user then any number of slashes", not a prefix: refused.
  if (text.endsWith('/*') && text.length > 2) {
    return {
      problem: `is a regular expression in the talk format, where /* means "any number of slashes"; write ${text.slice(0, -2)}/.* for everything below ${text.slice(0, -2)}`,
    };
  }
  if (REGEX_SYNTAX_RE.test(text))
    return {
      problem: 'regular expressions are not supported beyond a final /.* (everything below) or .* (every path)',
    };
  return parsePathPattern(text);
}

function checkNormalized(base: string, prefix: boolean): string | null {
  const normalized = normalizePath(base);
  if (!normalized.ok) return `is not a valid path (${normalized.reason})`;
  if (normalized.path !== base)
    return `must be written normalized and decoded, as the gateway matches it: ${normalized.path}`;
  if (prefix && base.endsWith('/')) return `must not end in //*; write ${base.slice(0, -1)}/*`;
  return null;
}

/** The key an exact pattern and a path share: one trailing slash dropped, except for `/`. */
export function exactKey(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

export function prefixMatches(pattern: { base: string; includeBase: boolean }, path: string): boolean {
  if (path.length > pattern.base.length) {
    return path.startsWith(pattern.base) && path.charCodeAt(pattern.base.length) === 0x2f;
  }
  return pattern.includeBase && path === pattern.base;
}

export function formatPathPattern(pattern: PathPattern): string {
  switch (pattern.kind) {
    case 'any':
      return '*';
    case 'exact':
      return pattern.path;
    case 'prefix':
      return pattern.includeBase ? `${pattern.base}/*` : `${pattern.base}/.*`;
  }
}
