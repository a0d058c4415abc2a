/**
 * The policy engine: pure (no clock, no I/O besides loadPolicyFile), compiled once,
 * evaluated per request without throwing. The gateway checks and forwards the same path:
 * normalizePath → evaluate → encodePathForUpstream.
 */
export { normalizePath, encodePathForUpstream, type NormalizedPath, type PathRefusal } from './path.js';
export { compilePolicy, allowAllPolicy, ALLOW_ANY_RULE } from './compile.js';
export { loadPolicyFile, parsePolicyText, explainDecision } from './load.js';
export type { CompiledPolicy, Decision, DenyReason, PolicyIdentity, RuleSummary } from './model.js';
