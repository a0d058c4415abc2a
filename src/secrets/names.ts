/**
 * What a secret may be called and who it may be granted to.
 *
 * A name becomes a file name in the agent's secrets folder, so it is one path segment from a
 * safe alphabet: never `.`/`..`, never a separator, never one of the identity files the agent
 * may link into the same folder. The check is case-insensitive for those, because a
 * case-insensitive file system (macOS, Windows) makes `Cert.pem` the same file as `cert.pem`.
 *
 * A grant subject uses the forms a gateway policy already knows (src/policy/subjects.ts):
 * `role:ROLE`, `name:NAME` (any role, as in a policy) or `id:spiffe://TRUST_DOMAIN/ROLE/NAME`.
 * A fingerprint is not offered: it changes at every renewal, so a grant by fingerprint would
 * stop working within a day.
 */
import { GatehouseError } from '../errors/errors.js';
import { identityProblem, roleProblem } from '../policy/subjects.js';
import { parseDurationMs } from '../config/duration.js';

export const SECRET_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Identity files the agent may put (as links) in the secrets folder. */
export const RESERVED_SECRET_NAMES = ['cert.pem', 'key.pem', 'ca.pem', 'crl.pem'] as const;
/** Docker Swarm's limit (500 KiB); the value must fit in one HTTP response and one database row. */
export const MAX_SECRET_BYTES = 500 * 1024;
/** Subjects one secret may be granted to: a bound on the row count and on the admin request body. */
export const MAX_GRANTS_PER_SECRET = 256;

export function secretNameProblem(name: string): string | null {
  if (!SECRET_NAME_RE.test(name) || name === '.' || name === '..') {
    return 'use 1–128 characters from A–Z a–z 0–9 . _ -, starting with a letter or digit (it becomes a file name)';
  }
  if ((RESERVED_SECRET_NAMES as readonly string[]).includes(name.toLowerCase())) {
    return `${RESERVED_SECRET_NAMES.join(', ')} are reserved for the identity files the agent keeps beside secrets`;
  }
  return null;
}

export function assertSecretName(name: string): void {
  const problem = secretNameProblem(name);
  // The name is echoed only when it is in the safe alphabet (a bad one may hold anything).
  if (problem)
    throw new GatehouseError(
      'GH_SECRET_INVALID',
      `secret name ${SECRET_NAME_RE.test(name) ? `"${name}" ` : ''}is not allowed: ${problem}`,
    );
}

export function assertSecretValue(value: Buffer): void {
  if (value.length === 0)
    throw new GatehouseError('GH_SECRET_INVALID', 'the secret value is empty; a secret holds 1 byte to 500 KiB');
  if (value.length > MAX_SECRET_BYTES)
    throw new GatehouseError(
      'GH_SECRET_INVALID',
      `the secret value is ${value.length} bytes; the limit is ${MAX_SECRET_BYTES} bytes (500 KiB)`,
    );
}

export type SubjectKind = 'role' | 'name' | 'id';

export interface GrantSubject {
  kind: SubjectKind;
  value: string;
  /** The canonical form, as stored: `role:web`. */
  text: string;
}

/** Shown in errors: what a subject may look like. */
export const SUBJECT_FORMS = 'role:ROLE, name:NAME or id:spiffe://TRUST_DOMAIN/ROLE/NAME';

/**
 * A subject from `kind:value`. `strict` (granting) also checks it against the CA's roles and
 * trust domain; without it (ungranting) the syntax alone, so a grant to a role since removed
 * from the config can still be taken back.
 */
export function parseSubject(
  text: string,
  ca: { trustDomain: string; roles: readonly string[]; strict?: boolean },
): GrantSubject {
  const strict = ca.strict ?? true;
  const colon = text.indexOf(':');
  const kind = colon > 0 ? text.slice(0, colon) : '';
  const value = colon > 0 ? text.slice(colon + 1) : '';
  // Echoed only within a bound: the subject is operator input, not a secret, but may be garbage.
  const shown = JSON.stringify(text.length > 140 ? `${text.slice(0, 140)}…` : text);
  const bad = (why: string) => new GatehouseError('GH_SECRET_INVALID', `grant subject ${shown} ${why}`);
  switch (kind) {
    case 'role': {
      const problem = roleProblem(value);
      if (problem) throw bad(problem);
      if (strict && !ca.roles.includes(value))
        throw bad(`names a role this CA does not have (roles: ${ca.roles.join(', ')})`);
      break;
    }
    case 'name': {
      if (value.startsWith('spiffe://')) throw bad('is a SPIFFE ID: write it as id:spiffe://…');
      const problem = identityProblem(value);
      if (problem) throw bad('must name an identity: 1–63 characters from [A-Za-z0-9._-]');
      break;
    }
    case 'id': {
      if (!value.startsWith('spiffe://')) throw bad('must be id:spiffe://TRUST_DOMAIN/ROLE/NAME');
      const problem = identityProblem(value);
      if (problem) throw bad(problem);
      if (strict && !value.startsWith(`spiffe://${ca.trustDomain}/`))
        throw bad(`is outside this CA's trust domain ${ca.trustDomain}: no identity it issues could match`);
      break;
    }
    default:
      throw bad(`is not one of ${SUBJECT_FORMS}`);
  }
  return { kind: kind as SubjectKind, value, text: `${kind}:${value}` };
}

/** Every subject an identity is: what a grant must name for it to read. */
export function subjectsOf(identity: { role: string; name: string; spiffeId: string }): string[] {
  return [`role:${identity.role}`, `name:${identity.name}`, `id:${identity.spiffeId}`];
}

/** A rotation overlap as written on the command line or in a request: a duration (`90s`, `1h`), or `0`. */
export function parseOverlap(text: string): number {
  const ms = text.trim() === '0' ? 0 : parseDurationMs(text);
  if (ms === null)
    throw new GatehouseError(
      'GH_SECRET_INVALID',
      `overlap ${JSON.stringify(text.slice(0, 40))} is not a duration like 90s, 1h or 7d (or 0 to delete the old version at once)`,
    );
  return ms;
}

/** Base64 of a value (the admin API's JSON carries values so), strictly: the canonical encoding only. */
export function decodeBase64Value(text: unknown, field = 'value'): Buffer {
  // Never echo the text: it is the secret.
  const bad = () =>
    new GatehouseError(
      'GH_SECRET_INVALID',
      `field "${field}" must be the secret value in standard base64 (RFC 4648 §4, padded)`,
    );
  if (typeof text !== 'string' || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw bad();
  const value = Buffer.from(text, 'base64');
  if (value.toString('base64') !== text) throw bad();
  return value;
}

/** The largest JSON body of a create or rotate request: a 500 KiB value in base64 and room for the rest. */
export const MAX_SECRET_BODY_BYTES = Math.ceil(MAX_SECRET_BYTES / 3) * 4 + 64 * 1024;
