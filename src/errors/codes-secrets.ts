/**
 * Error codes of secrets (issue 13, docs/secrets.md). No message of these ever holds a value or
 * key material.
 * Part of ERRORS (errors.ts), which lists the areas in the order docs/errors.md shows them.
 */
import type { ErrorSpec } from './error-spec.js';

export const SECRET_ERRORS = {
  GH_SECRET_INVALID: {
    http: 400,
    exit: 65,
    expose: true,
    summary: 'A secret name, value, version, overlap or grant subject is not acceptable',
    fix: 'Names: 1–128 characters from [A-Za-z0-9._-], starting with a letter or digit, not cert.pem, key.pem, ca.pem or crl.pem; values: 1 byte to 500 KiB; subjects: role:ROLE, name:NAME or id:spiffe://TRUST_DOMAIN/ROLE/NAME. Nothing was changed.',
  },
  GH_SECRET_EXISTS: {
    http: 409,
    exit: 73,
    expose: true,
    summary: 'A secret with that name (or the same name in another letter case) already exists',
    fix: 'Choose another name, or give the secret a new value with `gatehouse secret rotate NAME`.',
  },
  GH_SECRET_NOT_FOUND: {
    http: 404,
    exit: 66,
    expose: true,
    summary: 'No secret with that name, or no such version of it',
    fix: 'List secrets with `gatehouse secret list`; an old version is kept only for the rotation overlap.',
  },
  GH_SECRET_NOT_GRANTED: {
    http: 403,
    exit: 77,
    expose: true,
    summary:
      'The identity may not read this secret: it is not granted to it, or does not exist (the two look the same on purpose)',
    fix: 'Ask the CA operator to grant it: `gatehouse secret grant NAME role:ROLE` (or name:NAME, id:SPIFFE_ID).',
  },
  GH_SECRET_SEALED_INVALID: {
    http: 500,
    exit: 65,
    expose: true,
    summary:
      'A stored secret version does not decrypt and authenticate: its ciphertext, data key or checksum was changed, or it was moved from another secret',
    fix: 'Treat the CA database as tampered with; nothing was delivered. Compare it with a backup, find out who could write the CA directory, and rotate the secret (`gatehouse secret rotate NAME`).',
  },
  GH_SECRET_MASTER_KEY: {
    http: 500,
    exit: 77,
    expose: false,
    summary:
      'The secrets master key is missing, unreadable, encrypted with another passphrase, or is not the key the stored secrets were sealed with',
    fix: 'Pass --passphrase-file (or GATEHOUSE_PASSPHRASE_FILE) with the CA passphrase; check secrets-master-key.json in the CA directory (mode 0600) against a backup.',
  },
} as const satisfies Record<string, ErrorSpec>;
