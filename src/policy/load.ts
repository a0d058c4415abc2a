/**
 * The engine's two outside edges. loadPolicyFile is the one place in policy/ that does I/O:
 * JSON or YAML is chosen by extension (.json, .yaml, .yml), any other name is tried as JSON,
 * then as YAML, and every failure is GH_POLICY_INVALID naming the file, so a reload that fails
 * keeps the previous policy. explainDecision backs `gatehouse policy check`: what the path
 * normalizes to (and what the app would receive), who the identity is, which rule decided.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { GatehouseError } from '../errors/errors.js';
import type { CompiledPolicy, PolicyIdentity } from './model.js';
import { compilePolicy } from './compile.js';
import { encodePathForUpstream, normalizePath } from './path.js';
import {
  describeRequirement,
  judgePosture,
  type PostureRequirement,
  type PostureStanding,
} from '../posture/requirement.js';

// A policy is a few kilobytes; a far larger file is a wrong path or a mistake, not a policy.
const MAX_POLICY_BYTES = 4 * 1024 * 1024;

export function loadPolicyFile(path: string): CompiledPolicy {
  return compilePolicy(parsePolicyText(readPolicyText(path), path), path);
}

function readPolicyText(path: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? (cause as Error).message;
    throw new GatehouseError('GH_POLICY_INVALID', `${path}: cannot read the policy file (${code})`, { cause });
  }
  if (bytes.length > MAX_POLICY_BYTES) {
    throw new GatehouseError(
      'GH_POLICY_INVALID',
      `${path}: policy file is ${bytes.length} bytes; the limit is ${MAX_POLICY_BYTES}`,
    );
  }
  try {
    // fatal: a policy in another encoding would otherwise be read with U+FFFD in its names.
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (cause) {
    throw new GatehouseError('GH_POLICY_INVALID', `${path}: policy file is not valid UTF-8`, { cause });
  }
}

/** Exported for `gatehouse policy check` on text from stdin; `source` names it in errors. */
export function parsePolicyText(text: string, source: string): unknown {
  const extension = extname(source).toLowerCase();
  if (extension === '.json') return parseJson(text, source);
  if (extension === '.yaml' || extension === '.yml') return parseYamlText(text, source);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return parseYamlText(text, source);
  }
}

function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new GatehouseError('GH_POLICY_INVALID', `${source}: not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

function parseYamlText(text: string, source: string): unknown {
  try {
    // YAML 1.2 core schema: `yes`/`on` stay strings. Duplicate keys are an error (the
    // default), so a second `effect:` cannot quietly override the first.
    return parseYaml(text, { version: '1.2', schema: 'core', uniqueKeys: true, maxAliasCount: 100 }) as unknown;
  } catch (cause) {
    const message = (cause as Error).message.split('\n')[0] ?? 'parse error';
    throw new GatehouseError('GH_POLICY_INVALID', `${source}: not valid YAML: ${message}`, { cause });
  }
}

const REASONS = {
  NO_MATCHING_RULE: 'no rule allows this identity this method on this path (default deny)',
  DENIED_BY_RULE: 'a deny rule matched; deny wins over every allow',
  NOT_ALLOWLISTED: 'the identity is not on the policy allowlist, so no rule is considered',
} as const;

/**
 * `rawPath` is a request target as a client would send it; anything from `?` on is ignored,
 * as the gateway forwards the query untouched and the policy does not look at it.
 */
/** What `policy check` knows of the device's posture: the CA's standing (--posture, --ca), or nothing. */
export interface PostureContext {
  standing: PostureStanding | null;
  now: Date;
}

export function explainDecision(
  policy: CompiledPolicy,
  identity: PolicyIdentity,
  method: string,
  rawPath: string,
  posture: PostureContext = { standing: null, now: new Date() },
): string {
  const cut = rawPath.indexOf('?');
  const pathPart = cut === -1 ? rawPath : rawPath.slice(0, cut);
  const lines = [
    `policy:   ${show(policy.name)} (${policy.ruleCount} ${policy.ruleCount === 1 ? 'rule' : 'rules'})`,
    `request:  ${show(method)} ${show(rawPath)}`,
    `identity: ${describeIdentity(identity)}`,
  ];
  const normalized = normalizePath(pathPart);
  if (!normalized.ok) {
    lines.push(`path:     refused as ambiguous (${normalized.reason}); the gateway answers 400 before any rule`);
    lines.push('decision: REFUSED (GH_PATH_AMBIGUOUS)');
    return lines.join('\n');
  }
  const forwarded = encodePathForUpstream(normalized.path);
  lines.push(
    `path:     ${show(normalized.path)}${forwarded === normalized.path ? '' : ` (sent to the app as ${forwarded})`}`,
  );
  const decision = policy.evaluate(identity, method, normalized.path);
  if (decision.allow && decision.posture) {
    lines.push(...explainPosture(decision.posture, posture));
  } else if (decision.allow) {
    lines.push('decision: ALLOW');
  } else {
    lines.push(`decision: DENY (${decision.reason}): ${REASONS[decision.reason]}`);
    if (policy.denyMessage !== null) lines.push(`body:     ${show(policy.denyMessage)}`);
  }
  if (decision.rule !== null) {
    const rule = policy.rules.find((r) => r.label === decision.rule);
    lines.push(`rule:     ${decision.rule}${rule ? ` (${rule.summary})` : ''}`);
  }
  return lines.join('\n');
}

function explainPosture(requirement: PostureRequirement, { standing, now }: PostureContext): string[] {
  const required = `posture:  the rule requires ${describeRequirement(requirement)}`;
  if (standing === null) {
    return [
      required,
      'decision: ALLOW only if the posture meets it: the gateway asks the CA (pass --posture FILE or --ca URL --identity DIR to judge it here)',
    ];
  }
  const seen = `standing: score ${standing.score ?? 'none'}, reported ${standing.reportedAt ?? 'never'}${standing.failing.length ? `, failing ${standing.failing.map((f) => f.id).join(', ')}` : ''}${standing.critical.length ? `, critical ${standing.critical.join(', ')}` : ''}`;
  const judged = judgePosture(requirement, standing, now);
  return [
    required,
    seen,
    judged.met
      ? 'decision: ALLOW (the posture meets the rule)'
      : `decision: REFUSED (POSTURE_FAILED): ${judged.problems.join('; ')}`,
  ];
}

function describeIdentity(identity: PolicyIdentity): string {
  const field = (value: unknown) => (typeof value === 'string' && value !== '' ? show(value) : '-');
  const who = (identity ?? {}) as Partial<PolicyIdentity>;
  return `name=${field(who.name)} role=${field(who.role)} spiffeId=${field(who.spiffeId)} fingerprint=${field(who.fingerprint)}`;
}

/** Quote a value only when it holds something a terminal would render misleadingly. */
function show(value: string): string {
  return /^[\x20-\x7e\u00a0-\uffff]*$/.test(value) && !/[\u2028\u2029\u202a-\u202e\u2066-\u2069]/.test(value)
    ? value
    : JSON.stringify(value);
}
