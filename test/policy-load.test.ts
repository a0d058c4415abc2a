/**
 * Loading policy files (JSON, YAML, by extension or by trying both) and explaining decisions,
 * as `gatehouse policy check` will. Every failure is GH_POLICY_INVALID naming the file.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { explainDecision, loadPolicyFile, type PolicyIdentity } from '../src/policy/index.js';
import { makeTempDir } from './helpers/tmp.js';

let tmp: { dir: string; cleanup: () => void };
before(() => {
  tmp = makeTempDir('gatehouse-policy-');
});
after(() => tmp.cleanup());

function file(name: string, text: string): string {
  const path = join(tmp.dir, name);
  writeFileSync(path, text);
  return path;
}

const NATIVE = {
  version: 1,
  name: 'demo',
  denyMessage: 'You shall not pass!',
  rules: [
    { id: 'read', effect: 'allow', methods: ['GET'], paths: ['/*'], roles: ['web'] },
    { id: 'no-admin', effect: 'deny', methods: '*', paths: ['/admin/*'], roles: ['web'] },
  ],
};

const TALK_YAML = `# the talk's policy, in YAML
- permission: { method: GET, resource: /user }
  allow: [web, fulfillment, payments]
- permission: { method: DELETE, resource: /user/.* }
  allow: [web]
`;

const web: PolicyIdentity = {
  name: 'web-1',
  role: 'web',
  spiffeId: 'spiffe://td/web/web-1',
  fingerprint: 'ab'.repeat(32),
};

function assertInvalid(path: string, message: string | RegExp): void {
  assert.throws(
    () => loadPolicyFile(path),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'GH_POLICY_INVALID');
      if (typeof message === 'string') assert.equal(err.message, message);
      else assert.match(err.message, message);
      return true;
    },
  );
}

test('load-json-file', () => {
  const policy = loadPolicyFile(file('p.json', JSON.stringify(NATIVE)));
  assert.equal(policy.name, 'demo');
  assert.deepEqual(policy.evaluate(web, 'GET', '/hello'), { allow: true, rule: 'read' });
});

test('load-yaml-file-talk-format', () => {
  const path = file('talk.yaml', TALK_YAML);
  const policy = loadPolicyFile(path);
  assert.equal(policy.name, path);
  assert.deepEqual(policy.evaluate(web, 'DELETE', '/user/1'), { allow: true, rule: 'permission[1] DELETE /user/.*' });
});

test('load-unknown-extension-tries-json-then-yaml', () => {
  assert.equal(loadPolicyFile(file('policy', JSON.stringify(NATIVE))).ruleCount, 2);
  assert.equal(loadPolicyFile(file('policy.conf', TALK_YAML)).ruleCount, 2);
});

test('load-missing-file-names-path', () => {
  const path = join(tmp.dir, 'missing.json');
  assertInvalid(path, `${path}: cannot read the policy file (ENOENT)`);
});

test('load-bad-json-names-file', () => {
  const path = file('bad.json', '{"version": 1,');
  assertInvalid(path, new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid JSON: `));
});

test('load-bad-yaml-names-file', () => {
  const path = file('bad.yml', 'rules: [unclosed');
  assertInvalid(path, /bad\.yml: not valid YAML: /);
});

test('load-yaml-duplicate-key-refused', () => {
  const path = file('dup.yaml', 'version: 1\nversion: 1\nrules: []\n');
  assertInvalid(path, /dup\.yaml: not valid YAML: Map keys must be unique/);
});

test('load-yaml-bare-star-is-an-alias-error-not-a-wildcard', () => {
  const path = file(
    'star.yaml',
    'version: 1\nrules:\n  - effect: allow\n    methods: *\n    paths: ["*"]\n    roles: [web]\n',
  );
  assertInvalid(path, /star\.yaml: not valid YAML: /);
});

test('load-invalid-document-names-file-and-key', () => {
  const path = file('p2.json', JSON.stringify({ ...NATIVE, rules: [{ ...NATIVE.rules[0], paths: ['admin'] }] }));
  assertInvalid(path, `${path}: rules[0].paths[0]: must start with / (or be * for every path)`);
});

test('load-non-utf8-file-refused', () => {
  const path = join(tmp.dir, 'latin1.json');
  writeFileSync(path, Buffer.from([0x5b, 0xe9, 0x5d]));
  assertInvalid(path, `${path}: policy file is not valid UTF-8`);
});

test('explain-shows-normalized-path-identity-decision-and-rule', () => {
  const policy = loadPolicyFile(file('explain.json', JSON.stringify(NATIVE)));
  const text = explainDecision(policy, web, 'GET', '/a/../admin/panel?x=1');
  assert.equal(
    text,
    [
      'policy:   demo (2 rules)',
      'request:  GET /a/../admin/panel?x=1',
      'identity: name=web-1 role=web spiffeId=spiffe://td/web/web-1 fingerprint=' + 'ab'.repeat(32),
      'path:     /admin/panel',
      'decision: DENY (DENIED_BY_RULE): a deny rule matched; deny wins over every allow',
      'body:     You shall not pass!',
      'rule:     no-admin (deny * /admin/* roles=web)',
    ].join('\n'),
  );
  assert.match(
    explainDecision(policy, web, 'GET', '/caf%C3%A9'),
    /^path: {5}\/café \(sent to the app as \/caf%C3%A9\)$/m,
  );
  assert.match(
    explainDecision(policy, web, 'GET', '/hello'),
    /^decision: ALLOW\nrule: {5}read \(allow GET,HEAD \* roles=web\)$/m,
  );
  assert.match(
    explainDecision(policy, { ...web, role: 'db' }, 'GET', '/hello'),
    /^decision: DENY \(NO_MATCHING_RULE\)/m,
  );
});

test('explain-ambiguous-path-refused-before-rules', () => {
  const policy = loadPolicyFile(file('explain2.json', JSON.stringify(NATIVE)));
  const text = explainDecision(
    policy,
    { name: null, role: null, spiffeId: null, fingerprint: 'ab'.repeat(32) },
    'GET',
    '/%2Fadmin',
  );
  assert.match(text, /^identity: name=- role=- spiffeId=- fingerprint=/m);
  assert.match(text, /^path: {5}refused as ambiguous \(ENCODED_SLASH\)/m);
  assert.match(text, /^decision: REFUSED \(GH_PATH_AMBIGUOUS\)$/m);
});
