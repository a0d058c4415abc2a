/**
 * The outcomes of `/v1/secrets` requests: the closed set the CA counts in
 * `gatehouse_ca_secret_reads_total{result}`, the reasons the audit trail gives for a refused
 * read, and which result each reason is counted as. Shared by the reads, the refusals and the
 * CA's metrics and routes.
 */

/** The closed set of outcomes of `/v1/secrets` requests, for `gatehouse_ca_secret_reads_total{result}`. */
export const SECRET_READ_RESULTS = [
  'delivered',
  'listed',
  'not_granted',
  'unknown',
  'version_gone',
  'invalid',
  'revoked',
  'expired',
  'untrusted',
  'sealed_invalid',
  'error',
] as const;
export type SecretReadResult = (typeof SECRET_READ_RESULTS)[number];

export interface SecretObserver {
  read(result: SecretReadResult): void;
}

/** Why a read was refused, as the audit trail says (the caller sees less: unknown and not-granted look the same). */
export type RefusalReason =
  | 'not-granted'
  | 'unknown'
  | 'version-gone'
  | 'invalid'
  | 'revoked'
  | 'expired'
  | 'untrusted'
  | 'no-certificate'
  | 'sealed-invalid'
  | 'master-key'
  | 'error';

export const RESULT_OF: Record<RefusalReason, SecretReadResult> = {
  'not-granted': 'not_granted',
  unknown: 'unknown',
  'version-gone': 'version_gone',
  invalid: 'invalid',
  revoked: 'revoked',
  expired: 'expired',
  untrusted: 'untrusted',
  'no-certificate': 'untrusted',
  'sealed-invalid': 'sealed_invalid',
  'master-key': 'error',
  error: 'error',
};
