/**
 * Reading a policy document (an already-parsed JSON or YAML value) into the policy model.
 * Two shapes are accepted:
 *
 * - the talk's shape ("MTLS in a Microservices", Diogo Mónica), unchanged: a list of
 *   `{ permission: { method, resource }, allow: [roles] }` (see talk-format.ts);
 * - the native shape, an object with `"version": 1`:
 *
 *     { "version": 1, "name": "demo", "denyMessage": "You shall not pass!",
 *       "allowlist": ["x.d.wott.local"],
 *       "rules": [
 *         { "id": "devices-read", "effect": "allow", "methods": ["GET"], "paths": ["/*"],
 *           "identities": ["x.d.wott.local", "spiffe://example.org/web/web-1"] },
 *         { "effect": "deny", "methods": "*", "paths": ["/admin/*"], "roles": ["web"] } ] }
 *
 * `allowlist` (the WoTT demo's "whitelist the device") names the only identities that may pass
 * at all. An allow rule may add `"posture": {"minScore": 70, "maxAge": "2h", "noCritical": true}`:
 * the device's latest report, as the CA scored it, must meet it. In YAML, quote a lone star: `methods: '*'` (a bare `*` is a YAML alias).
 */
import { z } from 'zod';
import type { PolicySpec, RuleSpec } from './model.js';
import {
  describeIssues,
  expandMethods,
  fingerprintSchema,
  identitySchema,
  methodsSchema,
  nonEmptyList,
  pathPatternSchema,
  policyInvalid,
  roleSchema,
  ruleIdSchema,
  textSchema,
  toPattern,
} from './schema.js';
import { buildSubjects } from './subjects.js';
import { postureRequirementSchema } from '../posture/requirement.js';
import { isTalkFormat, readTalkFormat } from './talk-format.js';

const ruleSchema = z
  .strictObject({
    id: ruleIdSchema.optional(),
    effect: z.enum(['allow', 'deny']),
    methods: methodsSchema,
    paths: nonEmptyList(pathPatternSchema),
    roles: nonEmptyList(roleSchema).optional(),
    identities: nonEmptyList(identitySchema).optional(),
    fingerprints: nonEmptyList(fingerprintSchema).optional(),
    posture: postureRequirementSchema.optional(),
  })
  .superRefine((rule, ctx) => {
    // A deny needs no proof of health; a posture on one would read as "deny unless healthy".
    if (rule.posture && rule.effect === 'deny')
      ctx.addIssue({ code: 'custom', path: ['posture'], message: 'only an allow rule can require posture' });
    // A rule about nobody is a mistake; a rule about everybody must say so (a role list, or
    // the gateway without --policy), never by leaving subjects out.
    if (!rule.roles && !rule.identities && !rule.fingerprints) {
      ctx.addIssue({ code: 'custom', message: 'needs at least one of roles, identities or fingerprints' });
    }
  });

const nativeSchema = z
  .strictObject({
    version: z.literal(1),
    name: textSchema(128).optional(),
    denyMessage: textSchema(4096).optional(),
    allowlist: nonEmptyList(identitySchema).optional(),
    rules: nonEmptyList(ruleSchema),
  })
  .superRefine((doc, ctx) => {
    const seen = new Map<string, number>();
    doc.rules.forEach((rule, index) => {
      if (rule.id === undefined) return;
      const first = seen.get(rule.id);
      if (first !== undefined)
        ctx.addIssue({ code: 'custom', path: ['rules', index, 'id'], message: `duplicates the id of rules[${first}]` });
      else seen.set(rule.id, index);
    });
  });

type NativeDocument = z.infer<typeof nativeSchema>;

/** Validate and read either shape. Throws GH_POLICY_INVALID naming `source` and the key. */
export function readPolicyDocument(document: unknown, source: string): PolicySpec {
  if (isTalkFormat(document)) return readTalkFormat(document, source);
  if (typeof document !== 'object' || document === null) {
    throw policyInvalid(source, ['must be a list of permissions (the talk format) or an object with "version": 1']);
  }
  const parsed = nativeSchema.safeParse(document);
  if (!parsed.success) throw policyInvalid(source, describeIssues(parsed.error.issues, document));
  return fromNative(parsed.data, source);
}

function fromNative(doc: NativeDocument, source: string): PolicySpec {
  const rules = doc.rules.map((rule, index): RuleSpec => ({
    label: rule.id ?? `rules[${index}]`,
    effect: rule.effect,
    methods: expandMethods(rule.methods),
    paths: rule.paths.map((p) => toPattern(p)),
    subjects: buildSubjects(rule),
    ...(rule.posture ? { posture: rule.posture } : {}),
  }));
  return {
    name: doc.name ?? source,
    denyMessage: doc.denyMessage ?? null,
    allowlist: doc.allowlist ? buildSubjects({ identities: doc.allowlist }) : null,
    rules,
  };
}
