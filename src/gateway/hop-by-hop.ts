/**
 * RFC 9110 §7.6.1: hop-by-hop fields belong to one connection and are never forwarded, nor is
 * any field the Connection header names. Forwarding the upstream's `Connection: keep-alive`
 * made HTTP/1.0 clients hang in an early peer experiment (shared/peers/RESULTS.md).
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'http2-settings']);

export function connectionTokens(rawHeaders: string[]): Set<string> {
  const named = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === 'connection') {
      for (const token of rawHeaders[i + 1]!.split(',')) named.add(token.trim().toLowerCase());
    }
  }
  return named;
}

/** The flat header list without hop-by-hop fields. */
export function withoutHopByHop(rawHeaders: string[]): string[] {
  const named = connectionTokens(rawHeaders);
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || named.has(name)) continue;
    out.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  return out;
}
