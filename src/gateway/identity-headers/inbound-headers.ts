/**
 * What the gateway does with each header a client sends, in one table. An app behind the
 * gateway may trust some headers because a proxy usually sets them (who the client is, where
 * it connected from, which URL or method was "really" asked for). A client's own copy of any
 * of those must never reach the app: the gateway either drops it or replaces it with its own
 * value. Matching folds case and treats `_` as `-`, because CGI, WSGI, PHP and nginx with
 * `underscores_in_headers` turn both into `HTTP_X_CLIENT_ROLE`.
 *
 * Hop-by-hop fields (RFC 9110 §7.6.1) and the message framing (RFC 9112 §6) are not forwarded
 * either: the gateway writes Host, Content-Length or Transfer-Encoding itself for the upstream
 * hop. A field named in `Connection` is dropped too, except the ones the gateway frames or
 * checks, which `Connection` can never remove (the smuggling of issue 10 went through
 * `Connection: content-length`).
 */
import { IDENTITY_HEADER_NAMES } from './identity-headers.js';

export type InboundAction =
  /** The gateway writes its own value (see `gatewayForwardingHeaders`). */
  | 'replace'
  /** Dropped: no app should act on a client's copy. */
  | 'strip'
  /** Dropped here, written again by the gateway from what it parsed and checked. */
  | 'frame';

export interface InboundRule {
  /** Lowercase, dash form. */
  name: string;
  /** `prefix` matches every name starting with `name`. */
  match: 'exact' | 'prefix';
  action: InboundAction;
  why: string;
}

const exact = (action: InboundAction, why: string, ...names: string[]): InboundRule[] =>
  names.map((name) => ({ name, match: 'exact', action, why }));
const prefix = (action: InboundAction, why: string, ...names: string[]): InboundRule[] =>
  names.map((name) => ({ name, match: 'prefix', action, why }));

export const INBOUND_RULES: readonly InboundRule[] = [
  // The message's own framing and routing, decided and rewritten by the gateway.
  ...exact(
    'frame',
    'framing is written by the gateway for the upstream hop (RFC 9112 §6)',
    'content-length',
    'transfer-encoding',
  ),
  ...exact('frame', 'the checked Host is written once by the gateway', 'host'),
  ...exact('frame', 'the gateway answers 100-continue itself, after the policy allowed the request', 'expect'),
  // RFC 9110 §7.6.1 hop-by-hop fields, and HTTP/2's connection-specific ones (RFC 9113 §8.2.2).
  ...exact(
    'strip',
    'hop-by-hop (RFC 9110 §7.6.1)',
    'connection',
    'keep-alive',
    'proxy-connection',
    'te',
    'trailer',
    'upgrade',
    'http2-settings',
    'proxy-authorization',
    'proxy-authenticate',
  ),
  // Where the client connected from and how: the gateway knows, the client's word is ignored.
  ...exact(
    'replace',
    'set by the gateway from the TLS connection',
    'x-forwarded-for',
    'x-forwarded-proto',
    'x-forwarded-host',
    'x-real-ip',
    'forwarded',
  ),
  ...exact(
    'strip',
    'address and scheme hints other proxies and CDNs set, which frameworks trust behind a proxy',
    'x-forwarded-port',
    'x-forwarded-prefix',
    'x-forwarded-server',
    'x-forwarded-ssl',
    'x-forwarded-scheme',
    'x-url-scheme',
    'front-end-https',
    'x-original-forwarded-for',
    'x-cluster-client-ip',
    'true-client-ip',
    'cf-connecting-ip',
    'cf-connecting-ipv6',
    'fastly-client-ip',
    'x-original-host',
    'x-host',
  ),
  // Re-routing or changing the method after the policy decided on method and path.
  ...exact(
    'strip',
    'would re-route or change the method after the policy decided',
    'x-original-url',
    'x-rewrite-url',
    'x-original-uri',
    'x-original-method',
    'x-http-method-override',
    'x-http-method',
    'x-method-override',
  ),
  // The identity headers of every Gatehouse preset, exactly.
  ...[...IDENTITY_HEADER_NAMES].flatMap((name) => exact('strip', 'an identity header a Gatehouse preset emits', name)),
  // Client-certificate headers of other proxies and clouds, so an app written for them is safe here too.
  ...prefix('strip', 'client identity headers (Gatehouse, Google Cloud LB, Kong, Caddy and others)', 'x-client-'),
  ...prefix(
    'strip',
    'nginx and HAProxy examples (X-SSL-Client-*), Apache mod_ssl (SSL_CLIENT_*)',
    'x-ssl-',
    'ssl-client-',
  ),
  ...prefix('strip', 'Envoy and Istio XFCC', 'x-forwarded-client-cert'),
  ...prefix('strip', 'Traefik passTLSClientCert', 'x-forwarded-tls-client-'),
  ...prefix('strip', 'RFC 9440 Client-Cert and Client-Cert-Chain', 'client-cert'),
  ...prefix('strip', 'IIS / Azure Application Request Routing', 'x-arr-clientcert', 'x-arr-ssl'),
  ...prefix('strip', 'AWS Application Load Balancer mTLS', 'x-amzn-mtls-'),
  ...prefix('strip', 'Cloudflare API Shield mTLS', 'cf-client-cert'),
  ...prefix('strip', "other proxies' mTLS headers", 'x-mtls-', 'x-tls-client-', 'x-cert-'),
];

const EXACT = new Map(INBOUND_RULES.filter((r) => r.match === 'exact').map((r) => [r.name, r]));
const PREFIXES = INBOUND_RULES.filter((r) => r.match === 'prefix');

/** Names `Connection` can never remove: the gateway frames or checks them. */
const PROTECTED_FROM_CONNECTION = new Set(INBOUND_RULES.filter((r) => r.action === 'frame').map((r) => r.name));

/** The rule for a header name, or null when the header is forwarded as it is. */
export function inboundRule(name: string): InboundRule | null {
  const folded = name.toLowerCase().replace(/_/g, '-');
  const hit = EXACT.get(folded);
  if (hit) return hit;
  for (const rule of PREFIXES) if (folded.startsWith(rule.name)) return rule;
  return null;
}

// Header names repeat from request to request, so each distinct spelling is looked up once.
const verdicts = new Map<string, boolean>();
const MAX_REMEMBERED_NAMES = 4096;

function isForwardable(name: string): boolean {
  let keep = verdicts.get(name);
  if (keep === undefined) {
    keep = !name.startsWith(':') && inboundRule(name) === null;
    if (verdicts.size >= MAX_REMEMBERED_NAMES) verdicts.clear();
    verdicts.set(name, keep);
  }
  return keep;
}

/**
 * The client's headers the upstream may see, from Node's flat `rawHeaders`: every rule of
 * the table applied, HTTP/2 pseudo-headers dropped, and the fields `Connection` names
 * dropped (except the protected ones). Order and duplicates of the rest are kept.
 */
export function forwardableRequestHeaders(rawHeaders: readonly string[]): string[] {
  const named = connectionTokens(rawHeaders);
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (!isForwardable(name)) continue;
    if (named !== null && named.has(name.toLowerCase())) continue;
    out.push(name, rawHeaders[i + 1]!);
  }
  return out;
}

/** Lowercase names the `Connection` fields list, without the protected ones; null when none. */
export function connectionTokens(rawHeaders: readonly string[]): Set<string> | null {
  let named: Set<string> | null = null;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length !== 10 || name.toLowerCase() !== 'connection') continue;
    for (const token of rawHeaders[i + 1]!.split(',')) {
      const lower = token.trim().toLowerCase();
      if (lower === '' || PROTECTED_FROM_CONNECTION.has(lower)) continue;
      (named ??= new Set()).add(lower);
    }
  }
  return named;
}

/** Hop-by-hop fields of a response (RFC 9110 §7.6.1); the framing is the gateway's to write. */
const RESPONSE_HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'http2-settings',
  'proxy-authenticate',
]);

/**
 * The upstream's response headers the client may see. Content-Length is kept (undici has
 * checked it against the body it read) unless the upstream also sent Transfer-Encoding.
 */
export function forwardableResponseHeaders(rawHeaders: readonly string[]): string[] {
  const named = connectionTokens(rawHeaders);
  let chunked = false;
  for (let i = 0; i < rawHeaders.length; i += 2)
    if (rawHeaders[i]!.toLowerCase() === 'transfer-encoding') chunked = true;
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const lower = rawHeaders[i]!.toLowerCase();
    if (
      RESPONSE_HOP_BY_HOP.has(lower) ||
      (named !== null && named.has(lower)) ||
      (chunked && lower === 'content-length')
    )
      continue;
    out.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  return out;
}
