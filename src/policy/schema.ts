/**
 * The zod schemas for the fields both document shapes share (methods, path patterns, roles,
 * identities, fingerprints), and how their issues become one GH_POLICY_INVALID error whose
 * message names each offending key by its path, `policy.json: rules[1].paths[0]: must start
 * with /`. Validation is strict because a typo in a policy fails closed at best (a rule that
 * never matches) and open at worst (a deny that never matches).
 */
import { z } from 'zod';
import { GatehouseError } from '../errors/errors.js';
import type { PathPattern } from './model.js';
import { parsePathPattern, parseTalkResource } from './path-pattern.js';
import { fingerprintProblem, identityProblem, roleProblem } from './subjects.js';

// RFC 9110 §9.1: methods are case-sensitive tokens; registered ones are uppercase.
const METHOD_RE = /^[A-Z][A-Z_-]{0,31}$/;
const RULE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

/** A string checked by `problem`, which returns null when the value is fine. */
function checked(problem: (value: string) => string | null) {
  return z.string().superRefine((value, ctx) => {
    const found = problem(value);
    if (found !== null) ctx.addIssue({ code: 'custom', message: found });
  });
}

/** A list with at least one entry: an empty list is more likely a mistake than a meaning. */
export function nonEmptyList<T extends z.ZodType>(item: T) {
  return z.array(item).min(1);
}

function methodProblem(value: string): string | null {
  if (value === '*' || METHOD_RE.test(value)) return null;
  if (METHOD_RE.test(value.toUpperCase())) return `must be uppercase: ${value.toUpperCase()}`;
  return 'must be an HTTP method such as GET, or *';
}

export const methodSchema = checked(methodProblem);

export const methodsSchema = z.union([z.literal('*'), nonEmptyList(methodSchema)], {
  error: 'must be "*" or a non-empty list of methods such as ["GET"]',
});

export const pathPatternSchema = checked((value) => {
  const parsed = parsePathPattern(value);
  return 'problem' in parsed ? parsed.problem : null;
});

export const talkResourceSchema = checked((value) => {
  const parsed = parseTalkResource(value);
  return 'problem' in parsed ? parsed.problem : null;
});

export const roleSchema = checked(roleProblem);
export const identitySchema = checked(identityProblem);
export const fingerprintSchema = checked(fingerprintProblem);

export const ruleIdSchema = checked((value) =>
  RULE_ID_RE.test(value) ? null : 'must be 1–64 characters from [A-Za-z0-9._:-], starting with a letter or digit',
);

/** Free text shown to people (policy name, deny message): no control characters but newlines. */
export function textSchema(maxChars: number) {
  return z
    .string()
    .min(1)
    .max(maxChars)
    .superRefine((value, ctx) => {
      if (/[\u0000-\u0009\u000b-\u001f\u007f]/.test(value))
        ctx.addIssue({ code: 'custom', message: 'must not contain control characters' });
    });
}

/**
 * The method set a rule applies to. A rule about GET also covers HEAD (RFC 9110 §9.3.2: HEAD
 * is GET without the body), for deny rules too, so HEAD cannot read what GET may not.
 */
export function expandMethods(methods: '*' | readonly string[]): ReadonlySet<string> | '*' {
  if (methods === '*' || methods.includes('*')) return '*';
  const set = new Set(methods);
  if (set.has('GET')) set.add('HEAD');
  return set;
}

/** Patterns already passed their schema, so a problem here is a bug; it fails loudly at load. */
export function toPattern(text: string, talk = false): PathPattern {
  const parsed = talk ? parseTalkResource(text) : parsePathPattern(text);
  if ('problem' in parsed) throw new Error(`unvalidated path pattern ${text}: ${parsed.problem}`);
  return parsed;
}

// ── Reporting ────────────────────────────────────────────────────────────────────────

type Issue = z.core.$ZodIssue;
type Key = PropertyKey;

const MAX_ISSUES = 5;

/** `rules[1].paths[0]`; an empty path (the document itself) stays empty. */
export function formatIssuePath(path: readonly Key[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

export function policyInvalid(source: string, problems: readonly string[]): GatehouseError {
  const shown = problems.slice(0, MAX_ISSUES);
  const more = problems.length > shown.length ? `; and ${problems.length - shown.length} more` : '';
  return new GatehouseError('GH_POLICY_INVALID', `${source}: ${shown.join('; ')}${more}`, { details: { problems } });
}

/** One `path: problem` line per issue; unknown keys get one line each, at their own path. */
export function describeIssues(issues: readonly Issue[], input: unknown): string[] {
  return issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => at([...issue.path, key], 'unknown key'));
    }
    return [at(issue.path, problemOf(issue, valueAt(input, issue.path)))];
  });
}

function at(path: readonly Key[], problem: string): string {
  const where = formatIssuePath(path);
  return where === '' ? problem : `${where}: ${problem}`;
}

function problemOf(issue: Issue, value: unknown): string {
  // Optional keys never get here when absent, so an absent value is a missing required key.
  if (
    value === undefined &&
    (issue.code === 'invalid_type' || issue.code === 'invalid_value' || issue.code === 'invalid_union')
  )
    return 'is required';
  switch (issue.code) {
    case 'invalid_type':
      return `must be ${article(issue.expected)}`;
    case 'too_small':
      return issue.origin === 'array' || issue.origin === 'string' ? 'must not be empty' : issue.message;
    case 'too_big':
      if (issue.origin === 'string') return `must be at most ${String(issue.maximum)} characters`;
      if (issue.origin === 'array') return `must have at most ${String(issue.maximum)} entries`;
      return issue.message;
    case 'invalid_value':
      return `must be ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}`;
    default:
      // custom, invalid_format and invalid_union carry the messages our schemas set.
      return issue.message;
  }
}

function article(expected: string): string {
  switch (expected) {
    case 'array':
      return 'a list';
    case 'object':
      return 'an object';
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'true or false';
    default:
      return expected;
  }
}

function valueAt(input: unknown, path: readonly Key[]): unknown {
  let value = input;
  for (const key of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<Key, unknown>)[key];
  }
  return value;
}
