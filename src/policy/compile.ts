/**
 * Compiling a policy once into an index, so that a request looks only at the rules that can
 * match its path: exact paths in a Map, prefixes longest-first, then the rules for every path.
 *
 * Decision order, all failing closed:
 *   1. an allowlist, when present, is checked first: an identity not on it is refused;
 *   2. any matching deny rule wins over every allow;
 *   3. otherwise the most specific matching allow (exact, longest prefix, then `*`) allows;
 *   4. nothing matched: refused (default deny).
 */
import type {
  CompiledPolicy,
  Decision,
  PathPattern,
  PolicyIdentity,
  PolicySpec,
  RuleSpec,
  RuleSummary,
} from './model.js';
import { readPolicyDocument } from './document.js';
import { exactKey, formatPathPattern, prefixMatches } from './path-pattern.js';
import { describeSubjects, matchesSubjects, readIdentity, type SafeIdentity } from './subjects.js';
import { describeRequirement } from '../posture/requirement.js';

export const ALLOW_ANY_RULE = 'allow-any-verified-client';

interface PrefixEntry {
  base: string;
  includeBase: boolean;
  rule: RuleSpec;
}

interface RuleIndex {
  exact: Map<string, RuleSpec[]>;
  /** Longest base first; equal lengths keep document order (Array#sort is stable). */
  prefixes: PrefixEntry[];
  everywhere: RuleSpec[];
}

const NO_MATCH: Decision = Object.freeze({ allow: false, reason: 'NO_MATCHING_RULE', rule: null });

/** Validate `document` (either shape) and compile it. Throws GH_POLICY_INVALID naming `source`. */
export function compilePolicy(document: unknown, source = 'policy'): CompiledPolicy {
  return buildPolicy(readPolicyDocument(document, source));
}

/** The gateway without --policy: any client whose certificate verified is allowed. */
export function allowAllPolicy(): CompiledPolicy {
  const decision: Decision = Object.freeze({ allow: true, rule: ALLOW_ANY_RULE });
  const rule: RuleSummary = { label: ALLOW_ANY_RULE, effect: 'allow', summary: 'allow * * any verified client' };
  return Object.freeze({
    name: ALLOW_ANY_RULE,
    ruleCount: 1,
    denyMessage: null,
    rules: Object.freeze([rule]),
    postureRules: Object.freeze([]),
    evaluate: () => decision,
  });
}

export function buildPolicy(spec: PolicySpec): CompiledPolicy {
  const index = indexRules(spec.rules);
  const allowlist = spec.allowlist;
  const decide = (identity: PolicyIdentity, method: string, path: string): Decision => {
    const who = readIdentity(identity);
    if (allowlist !== null && !matchesSubjects(allowlist, who))
      return { allow: false, reason: 'NOT_ALLOWLISTED', rule: null };
    // Only output of normalizePath is meaningful here; anything else matches nothing.
    if (typeof path !== 'string' || !path.startsWith('/')) return NO_MATCH;
    return decideByRules(index, who, upperAscii(method), path);
  };
  const summaries: RuleSummary[] = spec.rules.map((rule) =>
    Object.freeze({ label: rule.label, effect: rule.effect, summary: describeRule(rule) }),
  );
  return Object.freeze({
    name: spec.name,
    ruleCount: spec.rules.length,
    denyMessage: spec.denyMessage,
    rules: Object.freeze(summaries),
    postureRules: Object.freeze(spec.rules.filter((r) => r.posture !== undefined).map((r) => r.label)),
    evaluate(identity: PolicyIdentity, method: string, normalizedPath: string): Decision {
      // Evaluation never throws; should a bug make it, the request is refused, not allowed.
      try {
        return decide(identity, method, normalizedPath);
      } catch {
        return NO_MATCH;
      }
    },
  });
}

function indexRules(rules: readonly RuleSpec[]): RuleIndex {
  const index: RuleIndex = { exact: new Map(), prefixes: [], everywhere: [] };
  for (const rule of rules) {
    for (const pattern of rule.paths) addPattern(index, rule, pattern);
  }
  index.prefixes.sort((a, b) => b.base.length - a.base.length);
  return index;
}

function addPattern(index: RuleIndex, rule: RuleSpec, pattern: PathPattern): void {
  switch (pattern.kind) {
    case 'exact': {
      const key = exactKey(pattern.path);
      const bucket = index.exact.get(key) ?? [];
      // `/a` and `/a/` share a key; one entry per rule is enough.
      if (bucket[bucket.length - 1] !== rule) bucket.push(rule);
      index.exact.set(key, bucket);
      break;
    }
    case 'prefix':
      index.prefixes.push({ base: pattern.base, includeBase: pattern.includeBase, rule });
      break;
    case 'any':
      if (index.everywhere[index.everywhere.length - 1] !== rule) index.everywhere.push(rule);
      break;
  }
}

function decideByRules(index: RuleIndex, who: SafeIdentity, method: string, path: string): Decision {
  let allowedBy: RuleSpec | null = null;
  // Returns true when a deny rule matched, which ends the search.
  const visit = (rule: RuleSpec): boolean => {
    if (!methodApplies(rule, method) || !matchesSubjects(rule.subjects, who)) return false;
    if (rule.effect === 'deny') return true;
    allowedBy ??= rule;
    return false;
  };
  for (const rule of index.exact.get(exactKey(path)) ?? []) {
    if (visit(rule)) return { allow: false, reason: 'DENIED_BY_RULE', rule: rule.label };
  }
  for (const entry of index.prefixes) {
    if (prefixMatches(entry, path) && visit(entry.rule))
      return { allow: false, reason: 'DENIED_BY_RULE', rule: entry.rule.label };
  }
  for (const rule of index.everywhere) {
    if (visit(rule)) return { allow: false, reason: 'DENIED_BY_RULE', rule: rule.label };
  }
  if (allowedBy === null) return NO_MATCH;
  // The most specific allow decides, with its posture requirement (a broader allow's does not apply).
  const { label, posture } = allowedBy as RuleSpec;
  return posture ? { allow: true, rule: label, posture } : { allow: true, rule: label };
}

function methodApplies(rule: RuleSpec, method: string): boolean {
  return rule.methods === '*' || rule.methods.has(method);
}

/**
 * Methods are case-sensitive (RFC 9110 §9.1), but some servers fold case; comparing in upper
 * case means a deny on DELETE also stops `delete`. ASCII only, so `ß` cannot become `SS`.
 */
function upperAscii(method: unknown): string {
  if (typeof method !== 'string') return '';
  return method.replace(/[a-z]+/g, (run) => run.toUpperCase());
}

function describeRule(rule: RuleSpec): string {
  const methods = rule.methods === '*' ? '*' : [...rule.methods].join(',');
  const posture = rule.posture ? ` posture(${describeRequirement(rule.posture)})` : '';
  return `${rule.effect} ${methods} ${rule.paths.map(formatPathPattern).join(',')} ${describeSubjects(rule.subjects)}${posture}`;
}
