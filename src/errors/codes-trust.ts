/**
 * Error codes of checking what a peer presents: the CA pin, chains and CRLs, authentication, and
 * a certificate's state (untrusted, expired, revoked, superseded, reused, unknown).
 * Part of ERRORS (errors.ts), which lists the areas in the order docs/errors.md shows them.
 */
import type { ErrorSpec } from './error-spec.js';

export const TRUST_ERRORS = {
  GH_CA_PIN_MISMATCH: {
    http: 502,
    exit: 77,
    expose: true,
    summary: 'The CA presented a root whose fingerprint differs from the join token pin',
    fix: 'Check the --ca URL; you may be talking to the wrong CA or an attacker.',
  },
  GH_CHAIN_INVALID: {
    http: 502,
    exit: 76,
    expose: true,
    summary: 'The certificate chain returned by the CA does not verify against the pinned root',
    fix: 'Check the CA; nothing was written.',
  },
  GH_CRL_INVALID: {
    http: 502,
    exit: 65,
    expose: false,
    summary:
      'A CRL is malformed, older than the CRL in force, or uses a feature Gatehouse does not accept (delta, partitioned or indirect CRLs)',
    fix: 'Check the CRL source named in the message with `openssl crl -text`; the last good CRL stays in force.',
  },
  GH_CRL_SIGNATURE: {
    http: 502,
    exit: 65,
    expose: false,
    summary: 'A CRL is not signed by a CA of the trust bundle',
    fix: 'Point the source at the CRL of a CA in the client CA bundle; a tampered or foreign CRL is never used.',
  },
  GH_AUTH_REQUIRED: {
    http: 401,
    exit: 77,
    expose: true,
    summary: 'A client certificate is required for this endpoint',
    fix: 'Connect with your current certificate (cert.pem and key.pem).',
  },
  GH_AUTH_FORBIDDEN: {
    http: 403,
    exit: 77,
    expose: true,
    summary: 'The client certificate is valid but its role may not do this',
    fix: 'Use an identity of role admin for the admin API.',
  },
  GH_CERT_UNTRUSTED: {
    http: 401,
    exit: 77,
    expose: true,
    summary: 'The client certificate was not issued by this CA or does not verify',
    fix: 'Use a certificate issued by this CA, or enroll with a join token.',
  },
  GH_CERT_EXPIRED: {
    http: 401,
    exit: 77,
    expose: true,
    summary: 'The certificate has expired and cannot be renewed',
    fix: 'Enroll this machine again with a new join token.',
  },
  GH_CERT_REVOKED: {
    http: 403,
    exit: 77,
    expose: true,
    summary: 'The certificate was revoked',
    fix: 'Enroll this machine again with a new join token once the cause is understood.',
  },
  GH_CERT_SUPERSEDED: {
    http: 409,
    exit: 77,
    expose: true,
    summary: 'The certificate was already renewed; only the newest certificate of an identity renews',
    fix: 'Use the newest certificate; if it was lost, enroll again with a new join token.',
  },
  GH_CERT_REUSED: {
    http: 403,
    exit: 77,
    expose: true,
    summary:
      'An already renewed certificate was presented for renewal with another key: a copy of the identity exists, and every certificate of it was revoked',
    fix: 'Find how the key was copied, then enroll the machine again with a token made for its name.',
  },
  GH_CERT_NOT_FOUND: {
    http: 404,
    exit: 66,
    expose: true,
    summary: 'No certificate with that serial in the inventory',
    fix: 'List certificates with `gatehouse cert list`.',
  },
} as const satisfies Record<string, ErrorSpec>;
