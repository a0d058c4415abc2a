/**
 * Names and the glob patterns that constrain them. The safe set is the SPIFFE path-segment
 * alphabet, so a name can sit in a DN, a URI, a header or a file name without escaping.
 */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const ROLE_RE = /^[a-z][a-z0-9-]{0,31}$/;
export const TRUST_DOMAIN_RE = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
export const NAME_PATTERN_RE = /^[A-Za-z0-9._*-]{1,63}$/;
const DNS_LABEL = '[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?';
export const DNS_NAME_RE = new RegExp(`^(${DNS_LABEL}\\.)*${DNS_LABEL}$`, 'i');
export const DNS_PATTERN_RE = new RegExp(`^(\\*\\.)?(${DNS_LABEL}\\.)*${DNS_LABEL}$`, 'i');

export function isSafeName(name: string): boolean {
  return NAME_RE.test(name) && name !== '.' && name !== '..';
}

/** `*` matches any run of name characters. */
export function compileNamePattern(pattern: string): RegExp {
  const body = pattern.split('*').map(escapeRegex).join('[A-Za-z0-9._-]*');
  return new RegExp(`^${body}$`);
}

/** `*.example.com` matches exactly one left-most label, as in RFC 6125 §6.4.3. */
export function dnsMatches(pattern: string, name: string): boolean {
  const p = pattern.toLowerCase();
  const n = name.toLowerCase();
  if (!p.startsWith('*.')) return p === n;
  const dot = n.indexOf('.');
  return dot > 0 && n.slice(dot) === p.slice(1);
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
