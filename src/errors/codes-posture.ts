/**
 * Error codes of device posture (issue 15): reports, the posture a role or gateway rule
 * requires, imported advisories.
 * Part of ERRORS (errors.ts), which lists the areas in the order docs/errors.md shows them.
 */
import type { ErrorSpec } from './error-spec.js';

export const POSTURE_ERRORS = {
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
} as const satisfies Record<string, ErrorSpec>;
