/**
 * Error codes of asking for a certificate: the role, the name and its reservation, the CSR and
 * the join token.
 * Part of ERRORS (errors.ts), which lists the areas in the order docs/errors.md shows them.
 */
import type { ErrorSpec } from './error-spec.js';

export const ENROLLMENT_ERRORS = {
  GH_ROLE_UNKNOWN: {
    http: 400,
    exit: 65,
    expose: true,
    summary: 'The role does not exist in the CA configuration',
    fix: 'Use a role listed under `roles:` in the CA config.',
  },
  GH_NAME_INVALID: {
    http: 400,
    exit: 65,
    expose: true,
    summary: 'Identity name has characters outside the safe set or breaks the role or token pattern',
    fix: 'Use 1–63 characters from [A-Za-z0-9._-], starting with a letter or digit, matching the pattern named.',
  },
  GH_NAME_TAKEN: {
    http: 409,
    exit: 73,
    expose: true,
    summary:
      'The name belongs to another enrollment: an active certificate holds it, or it stays reserved after revocation or expiry',
    fix: 'Choose another name; a token made with --name NAME may replace it, or `gatehouse name release` frees a reserved name.',
  },
  GH_NAME_NOT_FOUND: {
    http: 404,
    exit: 66,
    expose: true,
    summary: 'The name is not reserved',
    fix: 'List reserved names with `gatehouse name list`.',
  },
  GH_CSR_MALFORMED: {
    http: 400,
    exit: 65,
    expose: true,
    summary: 'The CSR is not a well-formed PKCS#10 request',
    fix: 'Send a PEM or DER PKCS#10 CSR, for example from `openssl req -new`.',
  },
  GH_CSR_SIGNATURE: {
    http: 400,
    exit: 65,
    expose: true,
    summary: 'The CSR signature does not verify with its own public key',
    fix: 'Regenerate the CSR with the private key it claims to hold.',
  },
  GH_CSR_KEY_UNSUPPORTED: {
    http: 400,
    exit: 65,
    expose: true,
    summary: 'The CSR key type or size is not accepted',
    fix: 'Use ECDSA P-256/P-384, RSA ≥ 2048 bits or Ed25519.',
  },
  GH_CSR_POLICY: {
    http: 403,
    exit: 77,
    expose: true,
    summary: 'The CSR asks for something its role does not allow',
    fix: 'Remove the field named in the message, or use a role that allows it.',
  },
  GH_TOKEN_INVALID: {
    http: 401,
    exit: 77,
    expose: true,
    summary: 'Join token is malformed or unknown',
    fix: 'Copy the whole token from `gatehouse token create`; ask the CA operator for a new one.',
  },
  GH_TOKEN_EXPIRED: {
    http: 401,
    exit: 77,
    expose: true,
    summary: 'Join token has expired',
    fix: 'Ask the CA operator for a new token.',
  },
  GH_TOKEN_REVOKED: {
    http: 401,
    exit: 77,
    expose: true,
    summary: 'Join token was revoked',
    fix: 'Ask the CA operator for a new token.',
  },
  GH_TOKEN_USED: {
    http: 409,
    exit: 77,
    expose: true,
    summary: 'Join token has no uses left',
    fix: 'Tokens are single-use by default; ask for a new one or create one with --uses N.',
  },
  GH_TOKEN_NOT_FOUND: {
    http: 404,
    exit: 66,
    expose: true,
    summary: 'No token with that ID',
    fix: 'List tokens with `gatehouse token list`.',
  },
} as const satisfies Record<string, ErrorSpec>;
