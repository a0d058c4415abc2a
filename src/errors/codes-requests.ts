/**
 * Error codes of the HTTP API and its clients: request bodies, endpoints and methods, rate
 * limits, the agent's calls to the CA and its enrollment, the gateway's policy and request paths.
 * Part of ERRORS (errors.ts), which lists the areas in the order docs/errors.md shows them.
 */
import type { ErrorSpec } from './error-spec.js';

export const REQUEST_ERRORS = {
  GH_BODY_TOO_LARGE: {
    http: 413,
    exit: 65,
    expose: true,
    summary: 'Request body exceeds the size limit',
    fix: 'Send a smaller body; CSRs are a few kilobytes.',
  },
  GH_BODY_INVALID: {
    http: 400,
    exit: 65,
    expose: true,
    summary: 'Request body is not the expected JSON',
    fix: 'Send JSON with the fields documented for the endpoint.',
  },
  GH_NOT_FOUND: {
    http: 404,
    exit: 66,
    expose: true,
    summary: 'No such endpoint',
    fix: 'Check the URL path and method.',
  },
  GH_METHOD_NOT_ALLOWED: {
    http: 405,
    exit: 64,
    expose: true,
    summary: 'Method not allowed on this endpoint',
    fix: 'Check the method.',
  },
  GH_RATE_LIMITED: {
    http: 429,
    exit: 75,
    expose: true,
    summary: 'Too many /enroll or /renew requests from this source address, with this token or for this certificate',
    fix: 'Try again after the seconds the message gives (the Retry-After header); `agent run` retries renewals on its own. Operators: limits.enroll and limits.renew in gatehouse.yaml (docs/config.md).',
  },
  GH_CA_UNREACHABLE: {
    http: 502,
    exit: 69,
    expose: true,
    summary: 'The CA could not be reached or answered with an error',
    fix: 'Check the --ca URL and that `gatehouse ca serve` is running; the agent retries.',
  },
  GH_AGENT_NOT_ENROLLED: {
    http: 500,
    exit: 66,
    expose: false,
    summary: 'No identity in the agent directory',
    fix: 'Run `gatehouse agent enroll` first, or pass the right --dir.',
  },
  GH_AGENT_MUST_REENROLL: {
    http: 500,
    exit: 75,
    expose: false,
    summary: 'The identity expired or was revoked; renewal is impossible',
    fix: 'Enroll again with a new join token.',
  },
  GH_POLICY_INVALID: {
    http: 500,
    exit: 78,
    expose: false,
    summary: 'Policy document is unreadable or invalid',
    fix: 'Fix the rule named in the message; on reload the previous policy stays in force.',
  },
  GH_PATH_AMBIGUOUS: {
    http: 400,
    exit: 65,
    expose: true,
    summary: 'Request path is ambiguous (encoded slash, backslash, NUL or malformed escape)',
    fix: 'Send a plain, normalized path.',
  },
} as const satisfies Record<string, ErrorSpec>;
