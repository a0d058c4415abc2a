/**
 * The layers of src/ as an allow-list (ALLOWED): each top folder names the folders it may import
 * from; its own is always allowed. Roughly, from the top (docs/architecture.md has the map, what
 * each folder owns and how a request flows through the CA and the gateway):
 *
 *   entry points   docs → cli → demo
 *   servers        dashboard → ca      agent      gateway
 *   services       secrets
 *   domain         policy → posture    store → pki ← tls    metrics    files
 *   leaves         config → errors     log
 *
 * A folder imports along an arrow of its row or from rows below, never up; ALLOWED says
 * exactly which, and a test keeps ALLOWED itself free of cycles. On top of the folders, the
 * file-level import graph of src/ has no cycle. Type-only imports count like value imports for
 * both (test/helpers/architecture.ts says why). The checker also runs on fixture trees
 * (test/fixtures/architecture/, not compiled), so these tests are shown to be able to fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { checkArchitecture, findCycles, readSources, type ArchitectureRules } from './helpers/architecture.js';

/** May import, per top folder of src/. Adding a folder or an arrow is a design decision: say so in docs/architecture.md. */
const ALLOWED: Record<string, readonly string[]> = {
  errors: [],
  log: [],
  config: ['errors'],
  files: ['errors'],
  pki: ['errors'],
  tls: ['errors', 'pki'],
  metrics: ['errors', 'log'],
  // Device posture: read by the agent, scored by the CA, required by the gateway.
  posture: ['config', 'errors'],
  policy: ['errors', 'posture'],
  store: ['errors', 'log', 'pki'],
  secrets: ['config', 'errors', 'files', 'log', 'policy', 'store'],
  // The agent talks to the CA only over HTTPS: no ca/, no store/.
  agent: ['config', 'errors', 'files', 'log', 'pki', 'posture'],
  gateway: ['config', 'errors', 'log', 'metrics', 'pki', 'policy', 'posture', 'tls'],
  ca: ['config', 'errors', 'files', 'log', 'metrics', 'pki', 'posture', 'secrets', 'store', 'tls'],
  // A view over the CA; the CLI mounts it on the CA's listener (startCaServer({ mounts })).
  dashboard: ['ca', 'config', 'errors', 'log', 'pki', 'posture', 'secrets', 'store'],
  demo: ['agent', 'ca', 'config', 'dashboard', 'errors', 'gateway', 'log', 'store'],
  cli: [
    'agent',
    'ca',
    'config',
    'dashboard',
    'demo',
    'errors',
    'files',
    'gateway',
    'log',
    'metrics',
    'pki',
    'policy',
    'posture',
    'secrets',
    'store',
    'tls',
  ],
  // The generated reference (docs/cli.md, docs/errors.md) reads the command table.
  docs: ['cli', 'errors', 'log'],
};

/** Imports the layers do not allow, each with its reason. None today; keep it that way. */
const RULES: ArchitectureRules = { allowed: ALLOWED, exceptions: [] };

const FIXTURES = join('test', 'fixtures', 'architecture');
const files = readSources('src');
const external = (f: (typeof files)[number]) => f.imports.map((i) => i.specifier).filter((s) => !s.startsWith('.'));

test('architecture-src-keeps-its-layers-and-has-no-import-cycle', () => {
  assert.deepEqual(checkArchitecture('src', RULES), []);
});

test('architecture-every-folder-of-src-has-a-rule-and-every-rule-a-folder', () => {
  const folders = readdirSync('src')
    .filter((e) => statSync(join('src', e)).isDirectory())
    .sort();
  assert.deepEqual(Object.keys(ALLOWED).sort(), folders);
  for (const [from, to] of Object.entries(ALLOWED))
    for (const t of to) assert.ok(t in ALLOWED && t !== from, `${from} may import ${t}: no such folder`);
});

test('architecture-the-allowed-arrows-have-no-cycle-so-the-folders-are-layers', () => {
  assert.deepEqual(findCycles(new Map(Object.entries(ALLOWED))), []);
});

test('architecture-checker-reports-upward-imports-in-every-syntax', () => {
  // pki → gateway (a value import), errors → policy (`export type … from`), log → ca (dynamic
  // import()), a folder without a rule and an import() that cannot be followed; gateway → policy
  // and ca → errors are allowed.
  assert.deepEqual(checkArchitecture(join(FIXTURES, 'upward'), RULES), [
    'layer: errors/errors.ts:2 imports policy/rule.ts (type only); errors/ may import no other folder',
    'layer: log/logger.ts:3 imports ca/server.ts (dynamic); log/ may import no other folder',
    'layer: pki/cert.ts:1 imports gateway/listener.ts; pki/ may import errors/',
    'no rule: widgets/widget.ts is in widgets/, which the rules do not list',
    'unresolved: widgets/widget.ts:4 imports a computed specifier, which cannot be checked',
  ]);
});

test('architecture-checker-reports-a-cycle-with-its-path', () => {
  // routes.ts → admin-routes.ts by value, back by `import type`: a cycle all the same.
  assert.deepEqual(checkArchitecture(join(FIXTURES, 'cycle'), RULES), [
    'cycle: ca/admin-routes.ts → ca/routes.ts → ca/admin-routes.ts',
  ]);
  // The shortest way round from the first file, and every file of the tangle when there are more.
  assert.deepEqual(
    findCycles(
      new Map([
        ['a', ['b', 'x']],
        ['b', ['c']],
        ['c', ['a', 'd']],
        ['d', ['d']],
        ['e', ['a']],
        ['x', ['y']],
        ['y', ['a']],
      ]),
    ),
    [
      { path: ['a', 'b', 'c', 'a'], component: ['a', 'b', 'c', 'x', 'y'] },
      { path: ['d', 'd'], component: ['d'] },
    ],
  );
});

test('architecture-checker-reports-stale-exceptions-and-honours-used-ones', () => {
  const upward = join(FIXTURES, 'upward');
  const violations = checkArchitecture(upward, {
    allowed: { ...ALLOWED, widgets: [] },
    exceptions: [
      { from: 'pki/cert.ts', to: 'gateway', reason: 'fixture' },
      { from: 'store', to: 'ca', reason: 'fixture' },
    ],
  });
  assert.ok(!violations.some((v) => v.startsWith('layer: pki/')), violations.join('\n'));
  assert.ok(!violations.some((v) => v.startsWith('no rule:')), violations.join('\n'));
  assert.ok(
    violations.includes('exception: store → ca is allowed as an exception, but no import needs it; remove it'),
    violations.join('\n'),
  );
});

test('architecture-docs-map-names-every-folder-in-its-table-and-its-picture', () => {
  const doc = readFileSync(join('docs', 'architecture.md'), 'utf8');
  const picture = /```text\n([\s\S]*?)```/.exec(doc)?.[1] ?? '';
  for (const folder of Object.keys(ALLOWED)) {
    assert.ok(doc.includes(`| \`${folder}/\` |`), `docs/architecture.md has no row for ${folder}/`);
    assert.match(picture, new RegExp(`\\b${folder}\\b`), `the layer picture in docs/architecture.md lacks ${folder}`);
  }
});

test('architecture-only-pki-imports-x509-libraries', () => {
  const offenders = files
    .filter((f) => f.area !== 'pki' && external(f).some((s) => s.startsWith('@peculiar/') || s === 'reflect-metadata'))
    .map((f) => f.path);
  assert.deepEqual(offenders, []);
});

test('architecture-only-store-imports-the-database-driver', () => {
  assert.deepEqual(
    files
      .filter((f) => f.area !== 'store' && external(f).some((s) => s === 'better-sqlite3' || s === 'pg'))
      .map((f) => f.path),
    [],
  );
});

test('architecture-no-process-exit-outside-cli-main', () => {
  assert.deepEqual(
    files.filter((f) => f.path !== 'cli/main.ts' && /process\.exit\(/.test(f.text)).map((f) => f.path),
    [],
  );
});

test('architecture-identity-never-read-from-node-subject-strings', () => {
  // CVE-2021-44532: Node's flattened subject/subjectAltName strings are not an identity source.
  // peer-certificate.ts reads only the DER (`.raw`) of the chain from getPeerCertificate(true).
  const offenders = files
    .filter(
      (f) =>
        /\.subjectaltname\b|(?<!OID)\.subjectAltName\b/.test(f.text) ||
        (/getPeerCertificate\(/.test(f.text) && f.path !== 'tls/peer-certificate.ts'),
    )
    .map((f) => f.path);
  assert.deepEqual(offenders, []);
});
