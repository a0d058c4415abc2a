/**
 * The one Host the upstream sees. RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host,
 * and a server answers 400 to none, to several, or to an invalid one. Its value is the
 * authority of RFC 3986 §3.2.2 without userinfo: a registered name or an IP literal, and an
 * optional port. `localhost:1@evil` or `a b` would be read as different hosts by different
 * parsers, so they are refused rather than guessed at. An absolute-form target (RFC 9112
 * §3.2.2) must name the same authority as Host, and is forwarded in origin form.
 */
export type HostCheck =
  { ok: true; authority: string | null; target: string } | { ok: false; reason: 'HOST_INVALID'; message: string };

// reg-name of RFC 3986 without pct-encoding and sub-delims (no name in DNS needs them), an
// IPv4 address (a reg-name by that grammar), or an IPv6 literal; then an optional port.
const AUTHORITY = /^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?\.?|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$/;

export function isValidAuthority(value: string): boolean {
  if (!AUTHORITY.test(value)) return false;
  const colon = value.lastIndexOf(':');
  if (colon > value.lastIndexOf(']')) {
    const port = Number(value.slice(colon + 1));
    if (!(port >= 1 && port <= 65535)) return false;
  }
  return true;
}

/** HTTP/1.x: the Host fields as parsed, and the request target. */
export function checkHttp1Host(httpVersion: string, rawHeaders: readonly string[], target: string): HostCheck {
  const hosts: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2)
    if (rawHeaders[i]!.length === 4 && rawHeaders[i]!.toLowerCase() === 'host') hosts.push(rawHeaders[i + 1]!);
  if (hosts.length > 1) return refuse('more than one Host header');
  const host = hosts[0];
  if (host === undefined && httpVersion === '1.1') return refuse('an HTTP/1.1 request needs a Host header');
  if (host !== undefined && !isValidAuthority(host))
    return refuse(`Host "${printable(host)}" is not a valid host[:port]`);
  const absolute = absoluteForm(target);
  if (absolute === null) return { ok: true, authority: host ?? null, target };
  if (!absolute.ok) return absolute;
  if (host !== undefined && host.toLowerCase() !== absolute.authority.toLowerCase())
    return refuse(`the request target names ${printable(absolute.authority)} but Host is ${printable(host)}`);
  return { ok: true, authority: absolute.authority, target: absolute.target };
}

/** HTTP/2: `:authority` (RFC 9113 §8.3.1), and a Host field, if any, that must agree with it. */
export function checkHttp2Host(authority: string | undefined, rawHeaders: readonly string[]): HostCheck {
  const hosts: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) if (rawHeaders[i] === 'host') hosts.push(rawHeaders[i + 1]!);
  if (hosts.length > 1) return refuse('more than one host field');
  const value = authority ?? hosts[0];
  if (value === undefined) return refuse('the request has neither :authority nor host');
  if (!isValidAuthority(value)) return refuse(`:authority "${printable(value)}" is not a valid host[:port]`);
  if (authority !== undefined && hosts[0] !== undefined && hosts[0].toLowerCase() !== authority.toLowerCase())
    return refuse(`host "${printable(hosts[0])}" differs from :authority "${printable(authority)}"`);
  return { ok: true, authority: value, target: '' };
}

function absoluteForm(
  target: string,
): { ok: true; authority: string; target: string } | { ok: false; reason: 'HOST_INVALID'; message: string } | null {
  if (target.startsWith('/')) return null;
  const match = /^https?:\/\/([^/?#]*)([^#]*)$/i.exec(target);
  if (!match) return null;
  const authority = match[1]!;
  if (!isValidAuthority(authority))
    return refuse(`the request target's authority "${printable(authority)}" is not a valid host[:port]`);
  const rest = match[2]!;
  return { ok: true, authority, target: rest === '' ? '/' : rest.startsWith('?') ? `/${rest}` : rest };
}

function refuse(detail: string): { ok: false; reason: 'HOST_INVALID'; message: string } {
  return { ok: false, reason: 'HOST_INVALID', message: `400 Bad Request: ${detail}` };
}

function printable(text: string): string {
  return JSON.stringify(text.slice(0, 100)).slice(1, -1);
}
