/**
 * The admission decision for one request, from facts about it and the state the gateway runs
 * with, without sockets or TLS (so every branch is testable on its own):
 *
 *   protocol version → body framing → Host → client certificate → TLS name vs Host →
 *   normalized path → route → policy → the exact head the upstream gets
 *
 * A rule that requires posture is not judged here (that needs the CA): the admission names it,
 * and the pipelines in gateway/ (http-pipeline.ts, upgrade-pipeline.ts) ask posture-gate.ts
 * before forwarding.
 *
 * The checks that say the message itself cannot be read safely come first, before any
 * identity, because their refusal also closes the connection.
 *
 * The rest of request/ is about one inbound request too: request-framing.ts (its body's
 * framing) and request-host.ts (its one Host), both checked here, request-transport.ts (where
 * HTTP/1.1 and HTTP/2 differ) and request-id.ts (its ID in the log and `x-request-id`).
 */
import type { CompiledPolicy } from '../../policy/index.js';
import { encodePathForUpstream, normalizePath } from '../../policy/index.js';
import { identityHeaders, type IdentityHeaderPreset } from '../identity-headers/identity-headers.js';
import { forwardableRequestHeaders } from '../identity-headers/inbound-headers.js';
import type { Peer, PeerVerdict } from '../peer-admission.js';
import type { RefusalReason } from '../refusal.js';
import type { PostureRequirement } from '../../posture/requirement.js';
import { framingOfHttp1, framingOfHttp2, type BodyFraming } from './request-framing.js';
import { checkHttp1Host, checkHttp2Host } from './request-host.js';
import { hostWithoutPort, type Route, type RouteTable } from '../routes.js';

export interface RequestFacts {
  method: string;
  /** `1.0`, `1.1` or `2.0`, as parsed. */
  httpVersion: string;
  /** Came over an HTTP/2 stream (not merely a request line claiming 2.0). */
  http2: boolean;
  /** The request target (HTTP/1) or `:path` (HTTP/2). */
  target: string;
  /** Flat, as Node gives them; HTTP/2 pseudo-headers included. */
  rawHeaders: readonly string[];
  /** HTTP/2 `:authority`. */
  authority?: string;
  /** HTTP/2: the HEADERS frame ended the stream (no body follows). */
  endStream?: boolean;
  /** An HTTP/1.1 Upgrade (WebSocket) request. */
  upgrade: boolean;
  /** The TLS server name the client asked for, if any. */
  sni: string | null;
  remoteAddress: string;
}

export interface AdmissionSettings {
  headers: IdentityHeaderPreset;
  maxHeaderBytes: number;
  denyMessage: string | null;
  gatewaySpiffeId: string | null;
}

export type Admission<T> =
  | {
      ok: true;
      peer: Peer;
      route: Route<T>;
      headers: string[];
      pathAndQuery: string;
      framing: BodyFraming;
      path: string;
      posture: { rule: string; requirement: PostureRequirement } | null;
    }
  | { ok: false; reason: RefusalReason; message: string };

const NO_CERT_MESSAGE = '400 Bad Request: client certificate required';

/** `log` collects what the access log should say, whatever the outcome. */
export function admitRequest<T>(
  facts: RequestFacts,
  verdict: PeerVerdict,
  policy: CompiledPolicy,
  routes: RouteTable<T>,
  settings: AdmissionSettings,
  log: Record<string, unknown>,
): Admission<T> {
  if (!facts.http2 && facts.httpVersion !== '1.1' && facts.httpVersion !== '1.0') {
    return {
      ok: false,
      reason: 'VERSION_UNSUPPORTED',
      message: `505 HTTP Version Not Supported: HTTP/${facts.httpVersion.slice(0, 10)} on an HTTP/1 connection; use HTTP/1.1 or HTTP/2 (ALPN h2)`,
    };
  }
  // A CONNECT tunnel would reach whatever the client names, past every route (HTTP/1 CONNECT never gets here: Node drops it).
  if (facts.method === 'CONNECT')
    return { ok: false, reason: 'METHOD_UNSUPPORTED', message: '501 Not Implemented: CONNECT is not supported' };

  const framed = facts.http2
    ? framingOfHttp2(facts.rawHeaders, facts.endStream === true)
    : framingOfHttp1(facts.httpVersion, facts.rawHeaders);
  if (!framed.ok) return framed;
  const framing = framed.framing;
  // RFC 9110 §7.8: the bytes after an upgrade request belong to the new protocol, so a body would be read as both.
  if (facts.upgrade && framing.kind !== 'none' && !(framing.kind === 'length' && framing.length === 0)) {
    return { ok: false, reason: 'FRAMING_INVALID', message: '400 Bad Request: an Upgrade request cannot carry a body' };
  }

  const host = facts.http2
    ? checkHttp2Host(facts.authority, facts.rawHeaders)
    : checkHttp1Host(facts.httpVersion, facts.rawHeaders, facts.target);
  if (!host.ok) return host;
  const authority = host.authority;
  const target = facts.http2 ? facts.target : host.target;

  const { peer, refusal } = verdict;
  if (!peer)
    return {
      ok: false,
      reason: refusal.reason,
      message:
        refusal.reason === 'NO_CERTIFICATE'
          ? NO_CERT_MESSAGE
          : `403 Forbidden: client certificate refused (${refusal.detail})`,
    };
  log.identity = peer.identity.spiffeId ?? peer.identity.name;
  log.role = peer.identity.role;
  log.serial = peer.identity.serial;

  // RFC 9110 §7.4: a request for a name this connection was not set up for is misdirected;
  // without this a certificate checked for one virtual host could reach another.
  if (
    facts.sni !== null &&
    facts.sni !== '' &&
    authority !== null &&
    hostWithoutPort(authority).toLowerCase() !== facts.sni.toLowerCase()
  ) {
    return {
      ok: false,
      reason: 'MISDIRECTED',
      message: `421 Misdirected Request: TLS server name "${facts.sni}" does not match Host "${hostWithoutPort(authority)}"`,
    };
  }

  const [rawPath, query] = splitTarget(target);
  const normalized = normalizePath(rawPath);
  log.path = normalized.ok ? normalized.path : rawPath.slice(0, 200);
  if (!normalized.ok)
    return { ok: false, reason: 'PATH_AMBIGUOUS', message: `400 Bad Request: ambiguous path (${normalized.reason})` };

  const route = routes.match(authority, normalized.path);
  if (!route)
    return {
      ok: false,
      reason: 'NO_ROUTE',
      message: `404 Not Found: no route for host ${authority === null ? '(none)' : hostWithoutPort(authority)} and path ${normalized.path}`,
    };
  log.route = route.label;

  const { method } = facts;
  const decision = policy.evaluate(
    {
      name: peer.identity.name,
      role: peer.identity.role,
      spiffeId: peer.identity.spiffeId,
      fingerprint: peer.identity.fingerprint,
    },
    method,
    normalized.path,
  );
  log.rule = decision.rule;
  if (!decision.allow) {
    const who = peer.identity.spiffeId ?? peer.identity.name ?? peer.identity.fingerprint;
    const message =
      settings.denyMessage ??
      policy.denyMessage ??
      `403 Forbidden: ${who} is not allowed ${method} ${normalized.path} by policy ${policy.name} (${decision.reason})`;
    return { ok: false, reason: 'POLICY_DENIED', message };
  }

  // HTTP/1.1 heads over the limit never get here (Node refuses them); HTTP/2 heads are only
  // bounded by nghttp2's own limit, so the same limit is applied here.
  if (facts.http2 && headBytes(facts.rawHeaders) > settings.maxHeaderBytes) {
    return {
      ok: false,
      reason: 'HEADERS_TOO_LARGE',
      message: `431 Request Header Fields Too Large: the request head is over ${settings.maxHeaderBytes} bytes`,
    };
  }

  // The upstream gets one Host: the checked one, or for HTTP/1.0 without Host (RFC 9112 §3.2
  // allows it there) the route's own name, so it never sees an HTTP/1.1 request without Host.
  const upstreamHost = authority ?? routeHost(route, facts.sni);
  const headers = forwardableRequestHeaders(facts.rawHeaders);
  headers.push('Host', upstreamHost);
  if (peer.headers?.gatewaySpiffeId !== settings.gatewaySpiffeId)
    peer.headers = {
      gatewaySpiffeId: settings.gatewaySpiffeId,
      list: identityHeaders(settings.headers, peer, { spiffeId: settings.gatewaySpiffeId }),
    };
  for (const [name, value] of peer.headers.list) headers.push(name, value);
  const ip = facts.remoteAddress;
  headers.push(
    'X-Forwarded-For',
    ip,
    'X-Real-IP',
    ip,
    'X-Forwarded-Proto',
    'https',
    'X-Forwarded-Host',
    upstreamHost,
    // RFC 7239 §4, §6: an IPv6 address is quoted and bracketed.
    'Forwarded',
    `for=${ip.includes(':') ? `"[${ip}]"` : ip};host=${JSON.stringify(upstreamHost)};proto=https`,
  );
  const posture = decision.posture ? { rule: decision.rule, requirement: decision.posture } : null;
  return {
    ok: true,
    peer,
    route,
    headers,
    framing,
    path: normalized.path,
    posture,
    pathAndQuery: `${encodePathForUpstream(normalized.path)}${query !== undefined ? `?${query}` : ''}`,
  };
}

/** A route's exact host, else the TLS name, else a name that says the client gave none. */
function routeHost(route: { host: string }, sni: string | null): string {
  if (route.host !== '*' && !route.host.startsWith('*.')) return route.host;
  return sni !== null && sni !== '' ? sni : 'localhost';
}

function headBytes(rawHeaders: readonly string[]): number {
  let total = 0;
  for (const part of rawHeaders) total += part.length + 2;
  return total;
}

function splitTarget(target: string): [string, string | undefined] {
  const q = target.indexOf('?');
  return q < 0 ? [target || '/', undefined] : [target.slice(0, q), target.slice(q + 1)];
}
