/**
 * The policy shape from the talk "MTLS in a Microservices" (Diogo Mónica), accepted unchanged:
 *
 *   [ { "permission": { "method": "GET", "resource": "/user" },
 *       "allow": [ "web", "fulfillment", "payments" ] },
 *     { "permission": { "method": "POST", "resource": "/user" },
 *       "allow": [ "signup", "web" ] },
 *     { "permission": { "method": "DELETE", "resource": "/user/.*" },
 *       "allow": [ "web" ] } ]
 *
 * `allow` lists roles: the OU of the client certificate (`CN=api01, OU=web-api`). Every entry
 * is an allow rule; anything not allowed is denied. `resource` is a regular expression in the
 * talk; the forms it uses (an exact path, a final `/.*`) are supported and any other regex
 * syntax is refused rather than matched literally (see path-pattern.ts).
 */
import { z } from 'zod';
import type { PolicySpec, RuleSpec } from './model.js';
import {
  describeIssues,
  expandMethods,
  methodSchema,
  nonEmptyList,
  policyInvalid,
  roleSchema,
  talkResourceSchema,
  toPattern,
} from './schema.js';
import { buildSubjects } from './subjects.js';

const permissionSchema = z.strictObject({
  permission: z.strictObject({
    method: methodSchema,
    resource: talkResourceSchema,
  }),
  allow: nonEmptyList(roleSchema),
});

const talkSchema = nonEmptyList(permissionSchema);

/** The talk format is the only shape whose top level is a list. */
export function isTalkFormat(document: unknown): document is unknown[] {
  return Array.isArray(document);
}

export function readTalkFormat(document: unknown[], source: string): PolicySpec {
  const parsed = talkSchema.safeParse(document);
  if (!parsed.success) throw policyInvalid(source, describeIssues(parsed.error.issues, document));
  const rules = parsed.data.map(({ permission, allow }, index): RuleSpec => ({
    label: `permission[${index}] ${permission.method} ${permission.resource}`,
    effect: 'allow',
    methods: expandMethods([permission.method]),
    paths: [toPattern(permission.resource, true)],
    subjects: buildSubjects({ roles: allow }),
  }));
  return { name: source, denyMessage: null, allowlist: null, rules };
}
