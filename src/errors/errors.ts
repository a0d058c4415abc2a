/**
 * One registry of error codes. Each code maps to an HTTP status, a CLI exit code
 * (sysexits.h where one fits) and whether its message may be shown to a remote caller.
 * Codes are never renamed once released; docs/errors.md is kept in step by a test.
 */
export interface ErrorSpec {
  http: number;
  exit: number;
  expose: boolean;
  summary: string;
  fix: string;
}

export const ERRORS = {
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
  GH_AUDIT_BROKEN: {
    http: 500,
    exit: 65,
    expose: false,
    summary:
      'The audit trail does not verify: an event was modified, deleted, inserted or reordered, or the newest events were removed',
    fix: 'Treat the CA database as tampered with: keep a copy, compare it with a backup or with a head recorded off the machine (`audit verify --anchor`), and find out who could write the CA directory.',
  },
  GH_BACKUP_EXISTS: {
    http: 409,
    exit: 73,
    expose: false,
    summary: 'The output path of `gatehouse ca backup` already exists',
    fix: 'Choose a new --out path (for example with the date in it); a backup never overwrites or adds to anything.',
  },
  GH_BACKUP_CORRUPT: {
    http: 500,
    exit: 65,
    expose: false,
    summary:
      'A backup is incomplete, or its manifest or one of its files does not match the checksum recorded when it was made',
    fix: 'Do not restore from it: the file named was changed or damaged after the backup. Use another copy of this backup or an older backup, and compare the manifest SHA-256 with the one printed (and audited as ca.backup_created) when it was made. Nothing was written.',
  },
  GH_FILE_IO: {
    http: 500,
    exit: 74,
    expose: false,
    summary: 'A file could not be read or written',
    fix: 'Check the path, free disk space and permissions named in the message.',
  },
  GH_STORE_IO: {
    http: 500,
    exit: 74,
    expose: false,
    summary: 'Store read or write failed',
    fix: 'Check the database file (or the PostgreSQL server the message names), disk space and logs.',
  },
  // 503 and 69 (EX_UNAVAILABLE), as for a signer that cannot be reached: the database server is
  // down, refuses the login or is out of connections, and a client may retry. Not exposed: the
  // message names the database's host and user, which a remote caller has no business knowing.
  GH_STORE_UNAVAILABLE: {
    http: 503,
    exit: 69,
    expose: false,
    summary: 'The PostgreSQL store could not be reached, refused the connection or login, or timed out connecting',
    fix: "Check that PostgreSQL runs at the host:port/db the message names, the store URL (user, password, sslmode) and the server's max_connections; nothing was written and the request may be retried.",
  },
  // Exit 71, EX_OSERR ("an operating system error has been detected"): the kernel refused the
  // socket (bind), not the arguments' form (64) or the config (78). 71 is used by no other code,
  // so a supervisor can tell "the port is taken" from every other failure; 69 (EX_UNAVAILABLE)
  // already means a CA that is unreachable or a root key kept offline, 73 a name or CA that exists.
  GH_LISTEN_FAILED: {
    http: 500,
    exit: 71,
    expose: false,
    summary:
      'A listening address could not be bound: in use by another process, a port below 1024 without the privilege, or an address not on this machine',
    fix: 'Stop the process holding the address or choose another one (--listen, --metrics-listen, --admin-listen or the config), as the message says. Nothing was issued or written.',
  },
  GH_DEMO_CHECK_FAILED: {
    http: 500,
    exit: 1,
    expose: false,
    summary: '`gatehouse demo --check` saw an outcome that differs from what the demo promises',
    fix: 'Read the FAIL lines above: each names the scenario, what was expected and what came back.',
  },
  // Secrets (issue 13, docs/secrets.md). No message of these ever holds a value or key material.
  GH_POSTURE_INVALID: {
    http: 400,
    exit: 65,
    expose: true,
    summary: 'A posture report is malformed, too large or not in the format this CA knows',
    fix: 'Send the report `gatehouse agent report` builds (format 1, at most 2 MiB); nothing was stored.',
  },
  GH_POSTURE_REQUIRED: {
    http: 403,
    exit: 77,
    expose: true,
    summary: "The identity's posture does not meet what its role or the gateway's rule requires",
    fix: 'Fix the failing checks the message names (or patch the packages the advisories name), send a report with `gatehouse agent report --dir DIR`, then try again.',
  },
  GH_ADVISORY_INVALID: {
    http: 400,
    exit: 65,
    expose: true,
    summary: 'An advisory is not a valid OSV record, or an import is too large',
    fix: 'Import OSV JSON (schema 1.x) as published by OSV.dev, GitHub or Debian: one record, an array of records, or a directory of .json files; nothing was imported.',
  },
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
  GH_INTERNAL: {
    http: 500,
    exit: 70,
    expose: false,
    summary: 'Unexpected internal error',
    fix: 'Report it with the requestId and the log lines around it.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export class GatehouseError extends Error {
  readonly code: ErrorCode;
  /** Log-only context; never sent to a remote caller. */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatehouseError';
    this.code = code;
    this.details = options.details;
  }

  get spec(): ErrorSpec {
    return ERRORS[this.code];
  }
}

export function isGatehouseError(err: unknown, code?: ErrorCode): err is GatehouseError {
  return err instanceof GatehouseError && (code === undefined || err.code === code);
}

/** Wrap anything thrown into a GatehouseError, keeping the original as the cause. */
export function toGatehouseError(err: unknown, fallback: ErrorCode = 'GH_INTERNAL'): GatehouseError {
  if (err instanceof GatehouseError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new GatehouseError(fallback, message, { cause: err });
}
