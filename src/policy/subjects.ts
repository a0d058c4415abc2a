/**
 * Subjects: who a rule (or the allowlist) is about. A role is the certificate's OU, a name its
 * CN, a SPIFFE ID its one spiffe:// URI SAN, a fingerprint the SHA-256 of its DER.
 *
 * A name alone is matched whatever the role: the CA keeps a name unique per role, not across
 * roles, so a rule that must pin both names a SPIFFE ID (`spiffe://td/role/name`) instead.
 */
import type { PolicyIdentity, Subjects } from './model.js';

// The CA's safe name set (config/patterns.ts, which policy/ may not import): the SPIFFE
// path-segment alphabet. An entry outside it could never match a certificate the CA issues.
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
// SPIFFE ID spec §2.1–2.2: lowercase trust domain, path segments from the same safe set.
const SPIFFE_ID_RE = /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;
const FINGERPRINT_RE = /^[0-9a-f]{64}$/;

export function roleProblem(role: string): string | null {
  return NAME_RE.test(role)
    ? null
    : 'must be a role name: 1–63 characters from [A-Za-z0-9._-], starting with a letter or digit';
}

/** An identity entry is a SPIFFE ID when it starts with spiffe://, a certificate name otherwise. */
export function identityProblem(entry: string): string | null {
  if (entry.startsWith('spiffe://')) {
    const segments = entry.slice('spiffe://'.length).split('/').slice(1);
    if (!SPIFFE_ID_RE.test(entry) || segments.some((s) => s === '.' || s === '..')) {
      return 'must be a SPIFFE ID like spiffe://example.org/web/web-1 (lowercase trust domain, no empty, . or .. segments)';
    }
    return null;
  }
  if (!NAME_RE.test(entry) || entry === '.' || entry === '..') {
    return 'must be a name (1–63 characters from [A-Za-z0-9._-]) or a SPIFFE ID (spiffe://…)';
  }
  return null;
}

/**
 * Lowercase hex SHA-256 with any colons removed, or null. Upper case is accepted too because
 * `openssl x509 -fingerprint -sha256` prints it that way; hex has no case ambiguity.
 */
export function normalizeFingerprint(text: string): string | null {
  const hex = text.replaceAll(':', '').toLowerCase();
  return FINGERPRINT_RE.test(hex) ? hex : null;
}

export function fingerprintProblem(text: string): string | null {
  return normalizeFingerprint(text) === null ? 'must be a SHA-256 fingerprint: 64 hex digits, colons allowed' : null;
}

export function buildSubjects(input: {
  roles?: readonly string[] | undefined;
  identities?: readonly string[] | undefined;
  fingerprints?: readonly string[] | undefined;
}): Subjects {
  const identities = input.identities ?? [];
  return {
    roles: new Set(input.roles ?? []),
    names: new Set(identities.filter((i) => !i.startsWith('spiffe://'))),
    spiffeIds: new Set(identities.filter((i) => i.startsWith('spiffe://'))),
    fingerprints: new Set((input.fingerprints ?? []).map((f) => normalizeFingerprint(f) ?? f)),
  };
}

/** An identity read defensively: anything that is not a string counts as absent. */
export interface SafeIdentity {
  name: string | null;
  role: string | null;
  spiffeId: string | null;
  fingerprint: string | null;
}

export function readIdentity(identity: PolicyIdentity | null | undefined): SafeIdentity {
  const text = (value: unknown): string | null => (typeof value === 'string' && value !== '' ? value : null);
  const record = (typeof identity === 'object' && identity !== null ? identity : {}) as Partial<
    Record<keyof PolicyIdentity, unknown>
  >;
  const fingerprint = text(record.fingerprint);
  return {
    name: text(record.name),
    role: text(record.role),
    spiffeId: text(record.spiffeId),
    fingerprint: fingerprint === null ? null : normalizeFingerprint(fingerprint),
  };
}

/** True when the identity is any one of the subjects. Absent fields never match. */
export function matchesSubjects(subjects: Subjects, who: SafeIdentity): boolean {
  return (
    (who.role !== null && subjects.roles.has(who.role)) ||
    (who.name !== null && subjects.names.has(who.name)) ||
    (who.spiffeId !== null && subjects.spiffeIds.has(who.spiffeId)) ||
    (who.fingerprint !== null && subjects.fingerprints.has(who.fingerprint))
  );
}

export function describeSubjects(subjects: Subjects): string {
  const parts: string[] = [];
  const add = (label: string, values: ReadonlySet<string>) => {
    if (values.size > 0) parts.push(`${label}=${[...values].join(',')}`);
  };
  add('roles', subjects.roles);
  add('names', subjects.names);
  add('spiffeIds', subjects.spiffeIds);
  add('fingerprints', subjects.fingerprints);
  return parts.join(' ');
}
