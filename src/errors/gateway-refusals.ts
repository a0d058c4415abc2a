/**
 * The gateway's refusal codes: released names, like the GH_* codes beside them. They appear in
 * refusal bodies (`{"error":{"code"}}`), in the access log and as the `reason` label of
 * gatehouse_gateway_requests_total, so they are never renamed once released; docs/errors.md
 * lists them (generated) and test/error-codes-released.test.ts pins them. docs/gateway.md,
 * "Refusals", shows each one's message.
 */
export interface RefusalSpec {
  status: number;
  /** The framing or the head was not understood, so where this request ends is not known either: the HTTP/1.1 connection closes. */
  closes: boolean;
  summary: string;
}

export const GATEWAY_REFUSALS = {
  NO_CERTIFICATE: { status: 400, closes: false, summary: 'No client certificate was presented' },
  UNTRUSTED: { status: 403, closes: false, summary: 'The client certificate does not chain to the client CA bundle' },
  EXPIRED: {
    status: 403,
    closes: false,
    summary: 'The client certificate has expired (also on a resumed session or a long-lived connection)',
  },
  NOT_YET_VALID: { status: 403, closes: false, summary: 'The client certificate is not valid yet' },
  WRONG_PURPOSE: {
    status: 403,
    closes: false,
    summary: "The client certificate's extended key usage does not allow client authentication",
  },
  REVOKED: { status: 403, closes: false, summary: "The client certificate is on its issuer's CRL" },
  CRL_STALE: {
    status: 403,
    closes: false,
    summary: "The issuer's CRL passed its nextUpdate by more than the grace period",
  },
  CRL_MISSING: { status: 403, closes: false, summary: "No CRL is loaded for the client certificate's issuer" },
  POLICY_DENIED: {
    status: 403,
    closes: false,
    summary: 'The policy does not allow this identity this method and path',
  },
  POSTURE_FAILED: {
    status: 403,
    closes: false,
    summary: 'The rule requires a device posture this identity does not meet',
  },
  POSTURE_UNAVAILABLE: {
    status: 503,
    closes: false,
    summary: 'The rule requires posture and the CA could not be asked',
  },
  PATH_AMBIGUOUS: {
    status: 400,
    closes: false,
    summary: 'The path could be read two ways (encoded slash, backslash, NUL, dot segments above the root, …)',
  },
  HEADERS_TOO_LARGE: { status: 431, closes: true, summary: 'The request head is over limits.maxHeaderBytes' },
  NO_ROUTE: { status: 404, closes: false, summary: 'No route matches the host and path' },
  MISDIRECTED: { status: 421, closes: false, summary: 'The TLS server name does not match the Host' },
  UPSTREAM_UNAVAILABLE: { status: 502, closes: false, summary: "The route's upstream could not be reached" },
  UPSTREAM_HEAD_TOO_LARGE: {
    status: 502,
    closes: false,
    summary: 'The app refused the request head with the identity headers as too large',
  },
  UPSTREAM_TIMEOUT: { status: 504, closes: false, summary: 'The upstream did not connect or answer in time' },
  INTERNAL: { status: 500, closes: true, summary: 'A bug in the gateway; nothing was forwarded' },
  MALFORMED_REQUEST: { status: 400, closes: true, summary: "Node's HTTP parser refused the request" },
  REQUEST_TIMEOUT: {
    status: 408,
    closes: true,
    summary: 'The request head did not arrive within limits.headersTimeout',
  },
  HOST_INVALID: {
    status: 400,
    closes: true,
    summary: 'The Host is missing, repeated, malformed or differs from the request target',
  },
  FRAMING_INVALID: {
    status: 400,
    closes: true,
    summary: 'The body framing is ambiguous (Content-Length with Transfer-Encoding, two lengths, …)',
  },
  TRANSFER_CODING_UNSUPPORTED: {
    status: 501,
    closes: true,
    summary: 'A Transfer-Encoding other than a single chunked',
  },
  VERSION_UNSUPPORTED: { status: 505, closes: true, summary: 'An HTTP version the connection does not speak' },
  METHOD_UNSUPPORTED: { status: 501, closes: true, summary: 'CONNECT, which the gateway does not tunnel' },
} as const satisfies Record<string, RefusalSpec>;

export type RefusalReason = keyof typeof GATEWAY_REFUSALS;
