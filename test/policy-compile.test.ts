/**
 * The policy engine (src/policy/compile.ts and the document readers): the talk's JSON accepted
 * unchanged, every subject kind, deny over allow, the allowlist, methods, path patterns, the
 * default deny, an evaluate that never throws, and invalid documents refused with the exact key.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  allowAllPolicy,
  compilePolicy,
  normalizePath,
  type Decision,
  type PolicyIdentity,
} from '../src/policy/index.js';

// Verbatim from the talk "MTLS in a Microservices" (seed 001).
const TALK_POLICY = `[ { "permission":
    { "method": "GET", "resource": "/user" },
  "allow": [ "web", "fulfillment", "payments" ] },

  { "permission":
    { "method": "POST", "resource": "/user" },
  "allow": [ "signup", "web" ] },

  { "permission":
    { "method": "DELETE", "resource": "/user/.*" },
  "allow": [ "web" ]
} ]`;

const FP = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90';
const OPENSSL_FP = FP.toUpperCase().match(/../g)!.join(':');

function who(fields: Partial<PolicyIdentity> = {}): PolicyIdentity {
  return { name: null, role: null, spiffeId: null, fingerprint: '0'.repeat(64), ...fields };
}

const allowed = (rule: string): Decision => ({ allow: true, rule });
const NO_RULE: Decision = { allow: false, reason: 'NO_MATCHING_RULE', rule: null };

function native(rules: unknown[], extra: Record<string, unknown> = {}) {
  return compilePolicy({ version: 1, ...extra, rules }, 'test');
}

function assertInvalid(document: unknown, message: string): void {
  assert.throws(() => compilePolicy(document, 'policy.json'), {
    name: 'GatehouseError',
    code: 'GH_POLICY_INVALID',
    message: `policy.json: ${message}`,
  });
}

describe('talk format', () => {
  const policy = compilePolicy(JSON.parse(TALK_POLICY), 'talk.json');

  test('talk-format-accepted-unchanged', () => {
    assert.equal(policy.ruleCount, 3);
    assert.equal(policy.name, 'talk.json');
    assert.deepEqual(policy.evaluate(who({ role: 'web' }), 'GET', '/user'), allowed('permission[0] GET /user'));
    assert.deepEqual(policy.evaluate(who({ role: 'payments' }), 'GET', '/user'), allowed('permission[0] GET /user'));
    assert.deepEqual(policy.evaluate(who({ role: 'signup' }), 'POST', '/user'), allowed('permission[1] POST /user'));
    assert.deepEqual(policy.evaluate(who({ role: 'signup' }), 'GET', '/user'), NO_RULE);
    assert.deepEqual(policy.evaluate(who({ role: 'fulfillment' }), 'POST', '/user'), NO_RULE);
  });

  test('talk-format-final-dot-star-means-strictly-below', () => {
    assert.deepEqual(
      policy.evaluate(who({ role: 'web' }), 'DELETE', '/user/42'),
      allowed('permission[2] DELETE /user/.*'),
    );
    assert.deepEqual(
      policy.evaluate(who({ role: 'web' }), 'DELETE', '/user/42/x'),
      allowed('permission[2] DELETE /user/.*'),
    );
    assert.deepEqual(
      policy.evaluate(who({ role: 'web' }), 'DELETE', '/user'),
      NO_RULE,
      'the regex /user/.* does not match /user',
    );
    assert.deepEqual(policy.evaluate(who({ role: 'web' }), 'DELETE', '/users/42'), NO_RULE);
  });

  test('talk-format-allow-lists-roles-not-names', () => {
    assert.deepEqual(policy.evaluate(who({ name: 'web', role: 'db' }), 'GET', '/user'), NO_RULE);
  });

  test('talk-format-regex-beyond-final-dot-star-refused', () => {
    assertInvalid(
      [{ permission: { method: 'GET', resource: '/user/[0-9]+' }, allow: ['web'] }],
      '[0].permission.resource: regular expressions are not supported beyond a final /.* (everything below) or .* (every path)',
    );
  });

  test('talk-format-slash-star-refused-as-regex', () => {
    assertInvalid(
      [{ permission: { method: 'GET', resource: '/user/*' }, allow: ['web'] }],
      '[0].permission.resource: is a regular expression in the talk format, where /* means "any number of slashes"; write /user/.* for everything below /user',
    );
  });

  test('talk-format-unknown-key-refused-with-path', () => {
    assertInvalid(
      [{ permission: { method: 'GET', resource: '/user', host: 'x' }, allow: ['web'] }],
      '[0].permission.host: unknown key',
    );
  });
});

describe('subjects', () => {
  test('allow-by-role', () => {
    const policy = native([{ effect: 'allow', methods: ['GET'], paths: ['/x'], roles: ['web'] }]);
    assert.deepEqual(policy.evaluate(who({ role: 'web' }), 'GET', '/x'), allowed('rules[0]'));
    assert.deepEqual(policy.evaluate(who({ role: 'db' }), 'GET', '/x'), NO_RULE);
  });

  test('allow-by-identity-name', () => {
    const policy = native([{ effect: 'allow', methods: ['GET'], paths: ['/x'], identities: ['x.d.wott.local'] }]);
    assert.deepEqual(policy.evaluate(who({ name: 'x.d.wott.local', role: 'web' }), 'GET', '/x'), allowed('rules[0]'));
    assert.deepEqual(policy.evaluate(who({ name: 'y.d.wott.local', role: 'web' }), 'GET', '/x'), NO_RULE);
    assert.deepEqual(
      policy.evaluate(who({ spiffeId: 'x.d.wott.local' }), 'GET', '/x'),
      NO_RULE,
      'a name matches the CN only',
    );
  });

  test('allow-by-spiffe-id', () => {
    const policy = native([
      { effect: 'allow', methods: ['GET'], paths: ['/x'], identities: ['spiffe://example.org/web/web-1'] },
    ]);
    assert.deepEqual(
      policy.evaluate(who({ name: 'web-1', role: 'web', spiffeId: 'spiffe://example.org/web/web-1' }), 'GET', '/x'),
      allowed('rules[0]'),
    );
    assert.deepEqual(
      policy.evaluate(who({ name: 'web-1', role: 'admin', spiffeId: 'spiffe://example.org/admin/web-1' }), 'GET', '/x'),
      NO_RULE,
    );
  });

  test('allow-by-fingerprint-with-colons', () => {
    const policy = native([{ effect: 'allow', methods: ['GET'], paths: ['/x'], fingerprints: [OPENSSL_FP] }]);
    assert.deepEqual(policy.evaluate(who({ fingerprint: FP }), 'GET', '/x'), allowed('rules[0]'));
    assert.deepEqual(policy.evaluate(who({ fingerprint: FP.replace('a1', 'a2') }), 'GET', '/x'), NO_RULE);
  });

  test('allowlist-blocks-identity-not-listed', () => {
    const policy = native([{ effect: 'allow', methods: '*', paths: ['*'], roles: ['web'] }], {
      allowlist: ['x.d.wott.local', 'spiffe://td/web/w-2'],
    });
    assert.deepEqual(policy.evaluate(who({ name: 'unlisted', role: 'web' }), 'GET', '/'), {
      allow: false,
      reason: 'NOT_ALLOWLISTED',
      rule: null,
    });
    assert.deepEqual(policy.evaluate(who({ name: 'x.d.wott.local', role: 'web' }), 'GET', '/'), allowed('rules[0]'));
    assert.deepEqual(
      policy.evaluate(who({ name: 'w-2', role: 'web', spiffeId: 'spiffe://td/web/w-2' }), 'GET', '/'),
      allowed('rules[0]'),
    );
  });

  test('allowlist-checked-before-deny-rules', () => {
    const policy = native([{ effect: 'deny', methods: '*', paths: ['*'], roles: ['web'] }], { allowlist: ['listed'] });
    assert.equal(
      (policy.evaluate(who({ name: 'other', role: 'web' }), 'GET', '/') as { reason: string }).reason,
      'NOT_ALLOWLISTED',
    );
  });
});

describe('rules', () => {
  test('deny-rule-wins-over-allow', () => {
    const policy = native([
      { id: 'exact-allow', effect: 'allow', methods: ['GET'], paths: ['/admin/panel'], roles: ['web'] },
      { id: 'no-admin', effect: 'deny', methods: '*', paths: ['/admin/*'], roles: ['web'] },
    ]);
    assert.deepEqual(policy.evaluate(who({ role: 'web' }), 'GET', '/admin/panel'), {
      allow: false,
      reason: 'DENIED_BY_RULE',
      rule: 'no-admin',
    });
  });

  test('deny-rule-applies-only-to-its-subjects', () => {
    const policy = native([
      { id: 'all', effect: 'allow', methods: '*', paths: ['*'], roles: ['web', 'admin'] },
      { id: 'no-admin', effect: 'deny', methods: '*', paths: ['/admin/*'], roles: ['web'] },
    ]);
    assert.deepEqual(policy.evaluate(who({ role: 'admin' }), 'GET', '/admin/panel'), allowed('all'));
  });

  test('most-specific-allow-labels-the-decision', () => {
    const policy = native([
      { id: 'everything', effect: 'allow', methods: '*', paths: ['*'], roles: ['web'] },
      { id: 'api', effect: 'allow', methods: '*', paths: ['/api/*'], roles: ['web'] },
      { id: 'api-v1', effect: 'allow', methods: '*', paths: ['/api/v1/*'], roles: ['web'] },
      { id: 'status', effect: 'allow', methods: '*', paths: ['/api/v1/status'], roles: ['web'] },
    ]);
    const web = who({ role: 'web' });
    assert.deepEqual(policy.evaluate(web, 'GET', '/api/v1/status'), allowed('status'));
    assert.deepEqual(policy.evaluate(web, 'GET', '/api/v1/users'), allowed('api-v1'));
    assert.deepEqual(policy.evaluate(web, 'GET', '/api/v2'), allowed('api'));
    assert.deepEqual(policy.evaluate(web, 'GET', '/other'), allowed('everything'));
  });

  test('rule-labels-are-id-or-index', () => {
    const policy = native([
      { effect: 'allow', methods: ['GET'], paths: ['/a'], roles: ['web'] },
      { id: 'b-rule', effect: 'allow', methods: ['GET'], paths: ['/b'], roles: ['web'] },
    ]);
    assert.deepEqual(
      policy.rules.map((r) => r.label),
      ['rules[0]', 'b-rule'],
    );
    assert.equal(policy.rules[1]!.summary, 'allow GET,HEAD /b roles=web');
  });

  test('default-deny-no-matching-rule', () => {
    const policy = native([{ effect: 'allow', methods: ['GET'], paths: ['/a'], roles: ['web'] }]);
    assert.deepEqual(policy.evaluate(who({ role: 'web' }), 'GET', '/b'), NO_RULE);
    assert.deepEqual(policy.evaluate(who({ role: 'db' }), 'GET', '/a'), NO_RULE);
  });
});

describe('methods', () => {
  const policy = native([
    { id: 'read', effect: 'allow', methods: ['GET'], paths: ['/doc/*'], roles: ['web'] },
    { id: 'secret-read', effect: 'deny', methods: ['GET'], paths: ['/doc/secret'], roles: ['web'] },
    { id: 'ops-any', effect: 'allow', methods: '*', paths: ['/ops/*'], roles: ['web'] },
    { id: 'no-delete', effect: 'deny', methods: ['DELETE'], paths: ['/ops/*'], roles: ['web'] },
  ]);
  const web = who({ role: 'web' });

  test('head-allowed-by-get-rule', () => {
    assert.deepEqual(policy.evaluate(web, 'HEAD', '/doc/a'), allowed('read'));
  });

  test('head-denied-by-get-deny-rule', () => {
    assert.deepEqual(policy.evaluate(web, 'HEAD', '/doc/secret'), {
      allow: false,
      reason: 'DENIED_BY_RULE',
      rule: 'secret-read',
    });
  });

  test('post-not-allowed-by-get-rule', () => {
    assert.deepEqual(policy.evaluate(web, 'POST', '/doc/a'), NO_RULE);
  });

  test('method-star-matches-any-method', () => {
    for (const method of ['GET', 'POST', 'PATCH', 'PROPFIND', 'OPTIONS'])
      assert.deepEqual(policy.evaluate(web, method, '/ops/x'), allowed('ops-any'), method);
  });

  test('method-compared-in-upper-case-so-lowercase-cannot-dodge-a-deny', () => {
    assert.deepEqual(policy.evaluate(web, 'delete', '/ops/x'), {
      allow: false,
      reason: 'DENIED_BY_RULE',
      rule: 'no-delete',
    });
  });
});

describe('path patterns', () => {
  const policy = native([
    { id: 'api', effect: 'allow', methods: '*', paths: ['/api/*'], roles: ['web'] },
    { id: 'admin', effect: 'allow', methods: '*', paths: ['/admin'], roles: ['web'] },
    { id: 'root', effect: 'allow', methods: '*', paths: ['/'], roles: ['web'] },
  ]);
  const web = who({ role: 'web' });

  test('prefix-pattern-is-segment-aware', () => {
    for (const path of ['/api', '/api/', '/api/x', '/api/x/y/'])
      assert.deepEqual(policy.evaluate(web, 'GET', path), allowed('api'), path);
    for (const path of ['/apix', '/ap', '/apix/y', '/x/api'])
      assert.deepEqual(policy.evaluate(web, 'GET', path), NO_RULE, path);
  });

  test('exact-pattern-also-matches-trailing-slash', () => {
    assert.deepEqual(policy.evaluate(web, 'GET', '/admin'), allowed('admin'));
    assert.deepEqual(policy.evaluate(web, 'GET', '/admin/'), allowed('admin'));
    assert.deepEqual(policy.evaluate(web, 'GET', '/admin/x'), NO_RULE);
    assert.deepEqual(policy.evaluate(web, 'GET', '/'), allowed('root'));
  });

  test('exact-pattern-is-case-sensitive', () => {
    assert.deepEqual(policy.evaluate(web, 'GET', '/ADMIN'), NO_RULE);
    const upper = normalizePath('/%41DMIN');
    assert.ok(upper.ok);
    assert.deepEqual(policy.evaluate(web, 'GET', upper.path), NO_RULE);
  });

  test('star-pattern-matches-every-path', () => {
    const every = native([{ id: 'all', effect: 'allow', methods: '*', paths: ['*'], roles: ['web'] }]);
    for (const path of ['/', '/a', '/a/b/c/', '/café'])
      assert.deepEqual(every.evaluate(web, 'GET', path), allowed('all'), path);
  });

  test('unicode-pattern-matches-decoded-path', () => {
    const cafe = native([{ id: 'cafe', effect: 'allow', methods: '*', paths: ['/café'], roles: ['web'] }]);
    const path = normalizePath('/caf%C3%A9');
    assert.ok(path.ok);
    assert.deepEqual(cafe.evaluate(web, 'GET', path.path), allowed('cafe'));
  });

  test('thousand-exact-rule-policy-evaluates-correctly', () => {
    const rules = Array.from({ length: 1000 }, (_, i) => ({
      id: `r${i}`,
      effect: 'allow',
      methods: ['GET'],
      paths: [`/item/${i}`],
      roles: [`role-${i}`],
    }));
    const big = native([
      ...rules,
      { id: 'deny-7', effect: 'deny', methods: '*', paths: ['/item/7'], roles: ['role-7'] },
    ]);
    assert.equal(big.ruleCount, 1001);
    assert.deepEqual(big.evaluate(who({ role: 'role-999' }), 'GET', '/item/999'), allowed('r999'));
    assert.deepEqual(big.evaluate(who({ role: 'role-998' }), 'GET', '/item/999'), NO_RULE);
    assert.deepEqual(big.evaluate(who({ role: 'role-7' }), 'GET', '/item/7'), {
      allow: false,
      reason: 'DENIED_BY_RULE',
      rule: 'deny-7',
    });
    assert.deepEqual(big.evaluate(who({ role: 'role-1' }), 'GET', '/item/1000'), NO_RULE);
  });
});

describe('robustness', () => {
  test('evaluate-never-throws-on-odd-identities', () => {
    const policy = native([{ effect: 'allow', methods: '*', paths: ['*'], roles: ['web'], fingerprints: [FP] }]);
    const listed = native([{ effect: 'allow', methods: '*', paths: ['*'], roles: ['web'] }], { allowlist: ['listed'] });
    const odd = [
      who(),
      { name: null, role: null, spiffeId: null, fingerprint: '' },
      null,
      undefined,
      {},
      42,
      'web',
      { name: 7, role: ['web'], spiffeId: {}, fingerprint: null },
      Object.create(null),
      {
        get name(): string {
          throw new Error('getter');
        },
        role: 'web',
        spiffeId: null,
        fingerprint: FP,
      },
    ];
    for (const identity of odd) {
      for (const method of ['GET', '', 'ǆ', undefined, null]) {
        for (const path of ['/', '', 'x', undefined]) {
          for (const p of [policy, listed]) {
            const decision = p.evaluate(
              identity as unknown as PolicyIdentity,
              method as unknown as string,
              path as unknown as string,
            );
            assert.equal(
              decision.allow,
              false,
              `${typeof identity} identity, method ${String(method)}, path ${String(path)}`,
            );
          }
        }
      }
    }
    const partial = { role: 'web' } as unknown as PolicyIdentity;
    assert.deepEqual(policy.evaluate(partial, 'GET', '/'), allowed('rules[0]'), 'missing fields are absent, not fatal');
  });

  test('compiled-policy-is-frozen', () => {
    const policy = native([{ effect: 'allow', methods: '*', paths: ['*'], roles: ['web'] }]);
    assert.ok(Object.isFrozen(policy) && Object.isFrozen(policy.rules));
  });

  test('allow-all-policy-allows-any-verified-client', () => {
    const policy = allowAllPolicy();
    assert.deepEqual(policy.evaluate(who(), 'DELETE', '/anything'), allowed('allow-any-verified-client'));
    assert.equal(policy.denyMessage, null);
  });

  test('name-and-deny-message-carried', () => {
    const policy = native([{ effect: 'allow', methods: '*', paths: ['*'], roles: ['web'] }], {
      name: 'demo',
      denyMessage: 'You shall not pass!',
    });
    assert.equal(policy.name, 'demo');
    assert.equal(policy.denyMessage, 'You shall not pass!');
    assert.equal(
      native([{ effect: 'allow', methods: '*', paths: ['*'], roles: ['web'] }]).name,
      'test',
      'the source names an unnamed policy',
    );
  });
});

describe('invalid documents', () => {
  const rule = { effect: 'allow', methods: ['GET'], paths: ['/a'], roles: ['web'] };
  const doc = (...rules: unknown[]) => ({ version: 1, rules });

  test('unknown-key-refused-with-path', () =>
    assertInvalid(doc(rule, { ...rule, rolez: ['web'] }), 'rules[1].rolez: unknown key'));
  test('unknown-top-level-key-refused', () =>
    assertInvalid({ ...doc(rule), whitelist: ['a'] }, 'whitelist: unknown key'));
  test('pattern-not-starting-with-slash-refused-with-path', () =>
    assertInvalid(
      doc(rule, { ...rule, paths: ['admin'] }),
      'rules[1].paths[0]: must start with / (or be * for every path)',
    ));
  test('pattern-not-normalized-refused', () =>
    assertInvalid(
      doc({ ...rule, paths: ['/a', '/x/../admin'] }),
      'rules[0].paths[1]: must be written normalized and decoded, as the gateway matches it: /admin',
    ));
  test('pattern-percent-encoded-refused', () =>
    assertInvalid(
      doc({ ...rule, paths: ['/caf%C3%A9'] }),
      'rules[0].paths[0]: must be written normalized and decoded, as the gateway matches it: /café',
    ));
  test('pattern-star-in-middle-refused', () =>
    assertInvalid(
      doc({ ...rule, paths: ['/a/*/b'] }),
      'rules[0].paths[0]: may contain * only as a final /* (a prefix) or alone (every path)',
    ));
  test('empty-paths-refused', () => assertInvalid(doc({ ...rule, paths: [] }), 'rules[0].paths: must not be empty'));
  test('empty-roles-refused', () => assertInvalid(doc({ ...rule, roles: [] }), 'rules[0].roles: must not be empty'));
  test('empty-rules-refused', () => assertInvalid(doc(), 'rules: must not be empty'));
  test('empty-allowlist-refused', () => assertInvalid({ ...doc(rule), allowlist: [] }, 'allowlist: must not be empty'));
  test('lowercase-method-refused', () =>
    assertInvalid(doc({ ...rule, methods: ['get'] }), 'rules[0].methods[0]: must be uppercase: GET'));
  test('bad-method-refused', () =>
    assertInvalid(
      doc({ ...rule, methods: ['GET', 'G ET'] }),
      'rules[0].methods[1]: must be an HTTP method such as GET, or *',
    ));
  test('methods-string-other-than-star-refused', () =>
    assertInvalid(
      doc({ ...rule, methods: 'GET' }),
      'rules[0].methods: must be "*" or a non-empty list of methods such as ["GET"]',
    ));
  test('rule-without-subjects-refused', () =>
    assertInvalid(
      doc({ effect: 'deny', methods: '*', paths: ['*'] }),
      'rules[0]: needs at least one of roles, identities or fingerprints',
    ));
  test('bad-effect-refused', () =>
    assertInvalid(doc({ ...rule, effect: 'permit' }), 'rules[0].effect: must be "allow" or "deny"'));
  test('bad-fingerprint-refused', () =>
    assertInvalid(
      doc({ ...rule, fingerprints: [FP.slice(2)] }),
      'rules[0].fingerprints[0]: must be a SHA-256 fingerprint: 64 hex digits, colons allowed',
    ));
  test('bad-identity-refused', () =>
    assertInvalid(
      doc({ ...rule, identities: ['web 1'] }),
      'rules[0].identities[0]: must be a name (1–63 characters from [A-Za-z0-9._-]) or a SPIFFE ID (spiffe://…)',
    ));
  test('bad-spiffe-id-refused', () =>
    assertInvalid(
      doc({ ...rule, identities: ['spiffe://td/web/../admin'] }),
      'rules[0].identities[0]: must be a SPIFFE ID like spiffe://example.org/web/web-1 (lowercase trust domain, no empty, . or .. segments)',
    ));
  test('duplicate-rule-id-refused', () =>
    assertInvalid(doc({ ...rule, id: 'x' }, { ...rule, id: 'x' }), 'rules[1].id: duplicates the id of rules[0]'));
  test('missing-version-refused', () => assertInvalid({ rules: [rule] }, 'version: is required'));
  test('wrong-version-refused', () => assertInvalid({ ...doc(rule), version: 2 }, 'version: must be 1'));
  test('missing-key-refused', () =>
    assertInvalid(doc({ effect: 'allow', paths: ['/a'], roles: ['web'] }), 'rules[0].methods: is required'));
  test('wrong-type-refused', () => assertInvalid(doc({ ...rule, roles: 'web' }), 'rules[0].roles: must be a list'));
  test('non-object-document-refused', () => {
    for (const bad of [null, 'policy', 7, true])
      assertInvalid(bad, 'must be a list of permissions (the talk format) or an object with "version": 1');
  });
  test('several-problems-reported-together-and-capped', () => {
    const rules = Array.from({ length: 7 }, () => ({ ...rule, paths: ['nope'] }));
    assert.throws(
      () => compilePolicy(doc(...rules), 'p'),
      (err: Error) => {
        assert.match(
          err.message,
          /^p: rules\[0\]\.paths\[0\]: must start with \/.*; rules\[4\]\.paths\[0\].*; and 2 more$/,
        );
        return true;
      },
    );
  });
});
