/**
 * The dependency direction stays as designed: cli → ca | agent → pki | store | config → errors.
 * The agent talks to the CA only over HTTPS, and only pki/ touches X.509/ASN.1 libraries.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Modules that import nothing of Gatehouse, which any layer may use (durations as operators write them). */
const SHARED_LEAVES = new Set(['config/duration.js']);

const files = sources('src').map((file) => {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:import|export)[^'"]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)|^import\s+'([^']+)'/gm)].map((m) => m[1] ?? m[2] ?? m[3]!);
  const area = relative('src', file).split('/')[0]!;
  const internal = specifiers.filter((s) => s.startsWith('.')).map((s) => relative('src', resolve(dirname(file), s)))
    .filter((target) => !SHARED_LEAVES.has(target)).map((target) => target.split('/')[0]!);
  return { file, text, area, specifiers, internal };
});

const FORBIDDEN: Record<string, string[]> = {
  errors: ['config', 'log', 'pki', 'store', 'ca', 'agent', 'cli', 'files', 'tls'],
  pki: ['config', 'store', 'ca', 'agent', 'cli', 'files', 'tls', 'log'],
  store: ['ca', 'agent', 'cli', 'config', 'files', 'tls'],
  config: ['ca', 'agent', 'cli', 'store'],
  files: ['ca', 'agent', 'cli', 'store', 'pki'],
  agent: ['ca', 'cli', 'store'],
  ca: ['agent', 'cli', 'gateway'],
  policy: ['config', 'log', 'pki', 'store', 'ca', 'agent', 'cli', 'files', 'tls', 'gateway'],
  gateway: ['ca', 'agent', 'cli', 'store'],
  metrics: ['config', 'pki', 'store', 'ca', 'agent', 'cli', 'files', 'tls', 'policy', 'gateway'],
  tls: ['ca', 'agent', 'cli', 'store', 'gateway', 'policy'],
  dashboard: ['agent', 'cli', 'gateway', 'policy', 'files'],
  // Device posture (issue 15): read by the agent, scored by the CA; depends on nothing of theirs.
  posture: ['log', 'pki', 'store', 'ca', 'agent', 'cli', 'files', 'tls', 'gateway', 'policy', 'metrics', 'dashboard', 'secrets'],
};

test('architecture-shared-leaves-import-nothing-of-gatehouse', () => {
  for (const leaf of SHARED_LEAVES) {
    const source = files.find((f) => relative('src', f.file) === leaf.replace(/\.js$/, '.ts'));
    assert.ok(source, leaf);
    assert.deepEqual(source.specifiers.filter((s) => s.startsWith('.')), [], `${leaf} must stay a leaf`);
  }
});

test('architecture-imports-point-only-down', () => {
  const violations = files.flatMap((f) => f.internal.filter((target) => FORBIDDEN[f.area]?.includes(target)).map((t) => `${f.file} imports ${t}/`));
  assert.deepEqual(violations, []);
});

test('architecture-only-pki-imports-x509-libraries', () => {
  const offenders = files.filter((f) => f.area !== 'pki' && f.specifiers.some((s) => s.startsWith('@peculiar/') || s === 'reflect-metadata')).map((f) => f.file);
  assert.deepEqual(offenders, []);
});

test('architecture-only-store-imports-the-database-driver', () => {
  assert.deepEqual(files.filter((f) => f.area !== 'store' && f.specifiers.some((s) => s === 'better-sqlite3' || s === 'pg')).map((f) => f.file), []);
});

test('architecture-no-process-exit-outside-cli-main', () => {
  assert.deepEqual(files.filter((f) => f.file !== join('src', 'cli', 'main.ts') && /process\.exit\(/.test(f.text)).map((f) => f.file), []);
});

test('architecture-identity-never-read-from-node-subject-strings', () => {
  // CVE-2021-44532: Node's flattened subject/subjectAltName strings are not an identity source.
  // peer-certificate.ts reads only the DER (`.raw`) of the chain from getPeerCertificate(true).
  const offenders = files.filter((f) => /\.subjectaltname\b|(?<!OID)\.subjectAltName\b/.test(f.text) || (/getPeerCertificate\(/.test(f.text) && f.file !== join('src', 'tls', 'peer-certificate.ts'))).map((f) => f.file);
  assert.deepEqual(offenders, []);
});

test('architecture-ca-never-imports-the-dashboard', () => {
  // The dashboard is a view over the CA: it imports ca/, and the CLI mounts it (startCaServer({ mounts })).
  const offenders = files.filter((f) => f.area === 'ca' && f.internal.includes('dashboard')).map((f) => f.file);
  assert.deepEqual(offenders, []);
});
