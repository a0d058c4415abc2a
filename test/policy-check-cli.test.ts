/**
 * `gatehouse policy check` through the real CLI: a certificate made by `openssl` (any CA), the
 * talk-format policy, and the exit codes a script can rely on (0 allowed, 1 refused, 64 usage,
 * 74 unreadable certificate file, 78 invalid policy).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gatehouse } from './helpers/cli.js';
import { makeTempDir } from './helpers/tmp.js';
import { makeCa, makeLeaf, type OpensslCa, type OpensslLeaf } from './helpers/openssl-pki.js';
import { run } from './helpers/run.js';

const tmp = makeTempDir('gatehouse-policy-check-');
let ca: OpensslCa;
let web: OpensslLeaf;
let signup: OpensslLeaf;
let expired: OpensslLeaf;
const files: Record<string, string> = {};

const TALK = [
  { permission: { method: 'GET', resource: '/user' }, allow: ['web', 'fulfillment', 'payments'] },
  { permission: { method: 'POST', resource: '/user' }, allow: ['signup', 'web'] },
  { permission: { method: 'DELETE', resource: '/user/.*' }, allow: ['web'] },
];

before(async () => {
  ca = await makeCa(tmp.dir, 'Policy Check CA');
  web = await makeLeaf(ca, {
    file: 'web',
    subject: '/O=acme/OU=web/CN=api01',
    san: 'URI:spiffe://acme.test/web/api01',
  });
  signup = await makeLeaf(ca, { file: 'signup', subject: '/O=acme/OU=signup/CN=signup01' });
  expired = await makeLeaf(ca, {
    file: 'expired',
    subject: '/OU=web/CN=old01',
    notBefore: new Date(Date.now() - 2 * 86_400_000),
    notAfter: new Date(Date.now() - 86_400_000),
  });
  files.talkJson = join(tmp.dir, 'talk.json');
  writeFileSync(files.talkJson, JSON.stringify(TALK, null, 2));
  files.talkYaml = join(tmp.dir, 'talk.yaml');
  writeFileSync(
    files.talkYaml,
    '- permission: { method: GET, resource: /user }\n  allow: [web, fulfillment, payments]\n- permission: { method: DELETE, resource: /user/.* }\n  allow: [web]\n',
  );
  files.chain = join(tmp.dir, 'chain.pem');
  writeFileSync(files.chain, web.pem + ca.pem);
  files.der = join(tmp.dir, 'web.der');
  writeFileSync(files.der, web.der);
  files.badPolicy = join(tmp.dir, 'bad.json');
  writeFileSync(
    files.badPolicy,
    JSON.stringify([{ permission: { method: 'GET', resource: '/user/[0-9]+' }, allow: ['web'] }]),
  );
});

after(() => tmp.cleanup());

const check = (args: string[]) => gatehouse(['policy', 'check', ...args]);
const fingerprint = (leaf: OpensslLeaf) => createHash('sha256').update(leaf.der).digest('hex');

test('policy-check-allowed-exit-0-names-the-rule', async () => {
  const r = await check(['--policy', files.talkJson!, '--cert', web.certPath, 'GET', '/user']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(
    r.stdout,
    [
      `policy:   ${files.talkJson} (3 rules)`,
      'request:  GET /user',
      `identity: name=api01 role=web spiffeId=spiffe://acme.test/web/api01 fingerprint=${fingerprint(web)}`,
      'path:     /user',
      'decision: ALLOW',
      'rule:     permission[0] GET /user (allow GET,HEAD /user roles=web,fulfillment,payments)',
      '',
    ].join('\n'),
  );
  assert.equal(r.stderr, '');
});

test('policy-check-denied-exit-1-default-deny', async () => {
  const r = await check(['--policy', files.talkJson!, '--cert', signup.certPath, 'DELETE', '/user/7']);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stdout, /^identity: name=signup01 role=signup spiffeId=- /m);
  assert.match(
    r.stdout,
    /^decision: DENY \(NO_MATCHING_RULE\): no rule allows this identity this method on this path \(default deny\)$/m,
  );
  // HEAD is allowed wherever GET is; the method is case-insensitive.
  assert.equal((await check(['--policy', files.talkJson!, '--cert', signup.certPath, 'post', '/user'])).status, 0);
  assert.equal((await check(['--policy', files.talkJson!, '--cert', web.certPath, 'HEAD', '/user'])).status, 0);
});

test('policy-check-path-normalized-as-the-gateway-does-or-refused', async () => {
  const dotdot = await check(['--policy', files.talkJson!, '--cert', web.certPath, 'DELETE', '/user/../admin']);
  assert.equal(dotdot.status, 1);
  assert.match(dotdot.stdout, /^path: {5}\/admin$/m);
  const prefix = await check([
    '--policy',
    files.talkJson!,
    '--cert',
    web.certPath,
    'DELETE',
    '/a/..//user/./7?force=1',
  ]);
  assert.equal(prefix.status, 0, prefix.stdout);
  assert.match(prefix.stdout, /^path: {5}\/user\/7$/m);
  const ambiguous = await check(['--policy', files.talkJson!, '--cert', web.certPath, 'GET', '/user%2F..%2Fadmin']);
  assert.equal(ambiguous.status, 1);
  assert.match(
    ambiguous.stdout,
    /^path: {5}refused as ambiguous \(ENCODED_SLASH\); the gateway answers 400 before any rule$/m,
  );
  assert.match(ambiguous.stdout, /^decision: REFUSED \(GH_PATH_AMBIGUOUS\)$/m);
});

test('policy-check-json-output', async () => {
  const allowed = await check([
    '--policy',
    files.talkYaml!,
    '--cert',
    web.certPath,
    '--json',
    'DELETE',
    '/user/42?x=1',
  ]);
  assert.equal(allowed.status, 0, allowed.stderr);
  assert.deepEqual(JSON.parse(allowed.stdout), {
    allowed: true,
    decision: 'allow',
    reason: null,
    posture: null,
    rule: 'permission[1] DELETE /user/.*',
    ruleSummary: 'allow DELETE /user/.* roles=web',
    policy: { name: files.talkYaml, rules: 2, denyMessage: null },
    request: { method: 'DELETE', path: '/user/42?x=1' },
    path: { normalized: '/user/42', forwarded: '/user/42' },
    identity: { name: 'api01', role: 'web', spiffeId: 'spiffe://acme.test/web/api01', fingerprint: fingerprint(web) },
    certificate: JSON.parse(allowed.stdout).certificate,
  });
  assert.equal(JSON.parse(allowed.stdout).certificate.validity, 'valid');
  const denied = JSON.parse(
    (await check(['--policy', files.talkYaml!, '--cert', signup.certPath, '--json', 'GET', '/user'])).stdout,
  );
  assert.equal(denied.allowed, false);
  assert.equal(denied.decision, 'deny');
  assert.equal(denied.reason, 'NO_MATCHING_RULE');
  const refused = await check(['--policy', files.talkYaml!, '--cert', web.certPath, '--json', 'GET', '/a\\b']);
  assert.equal(refused.status, 1);
  assert.deepEqual(
    { ...JSON.parse(refused.stdout), identity: undefined, certificate: undefined, policy: undefined },
    {
      allowed: false,
      decision: 'refused',
      reason: 'GH_PATH_AMBIGUOUS',
      posture: null,
      rule: null,
      ruleSummary: null,
      request: { method: 'GET', path: '/a\\b' },
      path: { refused: 'BACKSLASH' },
      identity: undefined,
      certificate: undefined,
      policy: undefined,
    },
  );
});

test('policy-check-reads-chain-file-and-der', async () => {
  for (const cert of [files.chain!, files.der!]) {
    const r = await check(['--policy', files.talkJson!, '--cert', cert, '--json', 'GET', '/user']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).identity.fingerprint, fingerprint(web), `${cert}: the leaf, not the CA`);
  }
  // The same answer openssl gives for the certificate's fingerprint.
  const o = await run('openssl', ['x509', '-in', web.certPath, '-noout', '-fingerprint', '-sha256']);
  assert.equal(o.stdout.trim().replace(/^.*=/, '').replace(/:/g, '').toLowerCase(), fingerprint(web));
});

test('policy-check-expired-certificate-warns-on-stderr', async () => {
  const r = await check(['--policy', files.talkJson!, '--cert', expired.certPath, 'GET', '/user']);
  assert.equal(r.status, 0, 'the policy alone would allow it');
  assert.match(
    r.stderr,
    /^warning: the certificate is expired \(.*\); the gateway refuses it with 403 before any policy$/m,
  );
});

test('policy-check-usage-errors-exit-64', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--policy', files.talkJson!, 'GET', '/user'], /--cert is required/],
    [['--policy', files.talkJson!, '--cert', web.certPath, 'GET'], /missing PATH/],
    [['--policy', files.talkJson!, '--cert', web.certPath, 'GET', '/user', 'extra'], /unexpected argument "extra"/],
    [['--policy', files.talkJson!, '--cert', web.certPath, '--nope', 'GET', '/user'], /Unknown option '--nope'/],
    [['--policy', files.talkJson!, '--cert', web.certPath, 'G T', '/user'], /METHOD "G T" is not an HTTP method/],
    [['--policy', files.talkJson!, '--cert', web.keyPath, 'GET', '/user'], /holds no PEM CERTIFICATE block/],
    [['--policy', files.talkJson!, '--cert', files.talkJson!, 'GET', '/user'], /is not an X\.509 certificate/],
  ];
  for (const [args, message] of cases) {
    const r = await check(args);
    assert.equal(r.status, 64, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.match(r.stderr, /\[GH_USAGE\]/);
    assert.equal(r.stdout, '');
  }
});

test('policy-check-bad-files-clear-errors', async () => {
  const missingCert = await check(['--policy', files.talkJson!, '--cert', join(tmp.dir, 'none.pem'), 'GET', '/user']);
  assert.equal(missingCert.status, 74);
  assert.match(missingCert.stderr, /cannot read the certificate file .*none\.pem: ENOENT \[GH_FILE_IO\]/);
  const missingPolicy = await check(['--policy', join(tmp.dir, 'none.json'), '--cert', web.certPath, 'GET', '/user']);
  assert.equal(missingPolicy.status, 78);
  assert.match(missingPolicy.stderr, /none\.json: cannot read the policy file \(ENOENT\) \[GH_POLICY_INVALID\]/);
  const invalid = await check(['--policy', files.badPolicy!, '--cert', web.certPath, 'GET', '/user']);
  assert.equal(invalid.status, 78);
  assert.match(
    invalid.stderr,
    new RegExp(`${files.badPolicy!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*\\[GH_POLICY_INVALID\\]`),
  );
  for (const r of [missingCert, missingPolicy, invalid]) assert.equal(r.stdout, '');
});

test('policy-check-help-documents-exit-codes', async () => {
  const r = await gatehouse(['policy', 'check', '--help']);
  assert.equal(r.status, 0);
  assert.match(
    r.stdout,
    /^Usage: gatehouse policy check --policy FILE --cert FILE \[--posture FILE\] \[--ca URL\] \[--identity DIR\] \[--json\] METHOD PATH$/m,
  );
  assert.match(r.stdout, /Exit codes: 0 allowed; 1 refused/);
});
