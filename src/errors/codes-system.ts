/**
 * Error codes of what the machine holds or refuses: the audit trail's integrity, backups, files,
 * the store and its database server, listening sockets; and the demo's self-check.
 * Part of ERRORS (errors.ts), which lists the areas in the order docs/errors.md shows them.
 */
import type { ErrorSpec } from './error-spec.js';

export const SYSTEM_ERRORS = {
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
} as const satisfies Record<string, ErrorSpec>;
