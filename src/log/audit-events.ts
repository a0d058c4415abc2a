/** The closed list of audit event names (`area.noun_verb`). Documented in docs/audit.md. */
export const AUDIT_EVENTS = [
  'ca.initialized',
  'ca.token_created',
  'ca.token_used',
  'ca.token_refused',
  'ca.token_revoked',
  'ca.cert_issued',
  'ca.cert_renewed',
  'ca.cert_refused',
  'ca.cert_revoked',
  'ca.cert_renewal_replayed',
  'ca.cert_reuse_detected',
  'ca.name_replaced',
  'ca.name_released',
  'ca.crl_generated',
  'ca.admin_call',
  'ca.admin_refused',
] as const;

export type AuditEventType = (typeof AUDIT_EVENTS)[number];
