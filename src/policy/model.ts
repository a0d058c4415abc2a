/**
 * The policy model both document shapes are read into, and the decision types the gateway
 * acts on. A decision is a value, never an exception: the gateway turns a refusal into a 403.
 */
import type { PostureRequirement } from '../posture/requirement.js';

/** What the policy sees of a verified client certificate (see pki/certificate.ts Identity). */
export interface PolicyIdentity {
  /** Subject CN. */
  name: string | null;
  /** Subject OU. */
  role: string | null;
  /** The one spiffe:// URI SAN. */
  spiffeId: string | null;
  /** Lowercase hex SHA-256 of the certificate DER. */
  fingerprint: string;
}

export type DenyReason = 'NO_MATCHING_RULE' | 'DENIED_BY_RULE' | 'NOT_ALLOWLISTED';

/**
 * An allow may come with the posture the deciding rule requires of the device (gateway.md,
 * "Posture"): the gateway then asks the CA before it forwards.
 */
export type Decision =
  | { allow: true; rule: string; posture?: PostureRequirement }
  | { allow: false; reason: DenyReason; rule: string | null };

export interface RuleSummary {
  /** The rule's id, `rules[i]`, or `permission[i] GET /user` for the talk format. */
  label: string;
  effect: 'allow' | 'deny';
  /** One line for humans: `allow GET,HEAD /user roles=web`. */
  summary: string;
}

export interface CompiledPolicy {
  readonly name: string;
  readonly ruleCount: number;
  /** Body for policy refusals (e.g. "You shall not pass!"); null lets the gateway explain. */
  readonly denyMessage: string | null;
  readonly rules: readonly RuleSummary[];
  /** Labels of the rules that require posture: the gateway then needs a CA to ask (`posture.ca`). */
  readonly postureRules: readonly string[];
  /** `normalizedPath` must come from normalizePath. Never throws. */
  evaluate(identity: PolicyIdentity, method: string, normalizedPath: string): Decision;
}

/**
 * `exact` matches the path with or without one trailing slash; `prefix` matches `base` itself
 * (when `includeBase`) and every path below `base/`; `any` matches every path.
 */
export type PathPattern =
  { kind: 'exact'; path: string } | { kind: 'prefix'; base: string; includeBase: boolean } | { kind: 'any' };

/** Who a rule is about; a client matching any one entry is a subject of the rule. */
export interface Subjects {
  roles: ReadonlySet<string>;
  names: ReadonlySet<string>;
  spiffeIds: ReadonlySet<string>;
  fingerprints: ReadonlySet<string>;
}

export interface RuleSpec {
  label: string;
  effect: 'allow' | 'deny';
  /** Uppercase method names, HEAD already added wherever GET is; '*' for any method. */
  methods: ReadonlySet<string> | '*';
  paths: readonly PathPattern[];
  subjects: Subjects;
  /** Allow rules only: what the device's posture must meet for the allow to stand. */
  posture?: PostureRequirement;
}

export interface PolicySpec {
  name: string;
  denyMessage: string | null;
  /** When present, only these identities may pass at all; checked before any rule. */
  allowlist: Subjects | null;
  rules: readonly RuleSpec[];
}
