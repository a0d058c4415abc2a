/**
 * Error codes of the command line, the configuration and the CA itself: its directory and keys,
 * an imported root or intermediate, rotations and an external signer.
 * Part of ERRORS (errors.ts), which lists the areas in the order docs/errors.md shows them.
 */
import type { ErrorSpec } from './error-spec.js';

export const CA_ERRORS = {
  GH_USAGE: {
    http: 400,
    exit: 64,
    expose: true,
    summary: 'Command line or request arguments are invalid',
    fix: 'Run the command with --help and correct the arguments.',
  },
  GH_CONFIG_INVALID: {
    http: 500,
    exit: 78,
    expose: false,
    summary: 'Configuration file is missing, unreadable or invalid',
    fix: 'Fix the key named in the message; the process did not start.',
  },
  GH_CA_EXISTS: {
    http: 409,
    exit: 73,
    expose: true,
    summary: 'A CA already exists in the target directory',
    fix: 'Choose an empty directory; Gatehouse never overwrites a CA.',
  },
  GH_CA_NOT_FOUND: {
    http: 500,
    exit: 66,
    expose: false,
    summary: 'No CA found in the directory',
    fix: 'Pass --dir pointing at a directory made by `gatehouse ca init`.',
  },
  GH_CA_DIR_PERMS: {
    http: 500,
    exit: 77,
    expose: false,
    summary: 'CA directory or key file is readable by other users',
    fix: 'chmod 700 the directory and 600 the key files, as the message says.',
  },
  GH_CA_KEY_LOCKED: {
    http: 500,
    exit: 77,
    expose: false,
    summary: 'CA key is encrypted and the passphrase is missing or wrong',
    fix: 'Pass --passphrase-file (or GATEHOUSE_PASSPHRASE_FILE) with the passphrase used at init.',
  },
  GH_CA_ROOT_KEY_OFFLINE: {
    http: 500,
    exit: 69,
    expose: false,
    summary: 'The operation needs the root key, which is kept offline',
    fix: 'Pass --root-key FILE with the root key kept offline; a root imported without its key is served by its own PKI.',
  },
  GH_CA_IMPORT_INVALID: {
    http: 400,
    exit: 65,
    expose: false,
    summary:
      'An imported root or intermediate certificate or key cannot be used (not a CA, wrong key usage or path length, not chained, key mismatch, lifetime too short)',
    fix: 'Fix the certificate or key named in the message; nothing was created.',
  },
  GH_CA_ROTATION: {
    http: 409,
    exit: 75,
    expose: true,
    summary: 'A CA rotation cannot start, finish or abort in the current state',
    fix: 'Read the message: it names what stands in the way (docs/operations.md, "Rotating the root" and "Rotating the intermediate"); `gatehouse ca rotate status` shows a root rotation.',
  },
  GH_EXTERNAL_CA_UNREACHABLE: {
    http: 503,
    exit: 69,
    expose: false,
    summary: 'The external signing CA could not be reached, timed out or answered unreadably',
    fix: 'Check externalCa.url and the signer; nothing was issued and the client may retry.',
  },
  GH_EXTERNAL_CA_REFUSED: {
    http: 502,
    exit: 69,
    expose: false,
    summary: 'The external signing CA refused the request',
    fix: "Read the signer's message in the log; check its profile and auth key; nothing was issued.",
  },
  GH_EXTERNAL_CA_MISMATCH: {
    http: 502,
    exit: 65,
    expose: false,
    summary: 'The external signing CA returned a certificate other than the one requested',
    fix: "Check the signer's profile (key, subject, SANs, EKU, CA:FALSE, lifetime, issuer); nothing was issued or recorded.",
  },
} as const satisfies Record<string, ErrorSpec>;
