/**
 * One registry of error codes, assembled here from the areas' codes-*.ts files in the order
 * docs/errors.md lists them. Each code maps to an HTTP status, a CLI exit code (sysexits.h
 * where one fits) and whether its message may be shown to a remote caller (error-spec.ts).
 * Codes are never renamed once released; docs/errors.md is kept in step by a test.
 */
import type { ErrorSpec } from './error-spec.js';
import { CA_ERRORS } from './codes-ca.js';
import { ENROLLMENT_ERRORS } from './codes-enrollment.js';
import { POSTURE_ERRORS } from './codes-posture.js';
import { REQUEST_ERRORS } from './codes-requests.js';
import { SECRET_ERRORS } from './codes-secrets.js';
import { SYSTEM_ERRORS } from './codes-system.js';
import { TRUST_ERRORS } from './codes-trust.js';

export const ERRORS = {
  ...CA_ERRORS,
  ...ENROLLMENT_ERRORS,
  ...TRUST_ERRORS,
  ...REQUEST_ERRORS,
  ...SYSTEM_ERRORS,
  ...POSTURE_ERRORS,
  ...SECRET_ERRORS,
  // The catch-all, beside the class whose fallback it is (toGatehouseError).
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
