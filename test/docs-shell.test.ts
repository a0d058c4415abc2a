/**
 * The README and the docs' walkthroughs, run as written: every shell block of each document in one
 * bash session (test/helpers/doc-blocks.ts), starting in the checkout as a reader does after
 * `npm ci && npm run build`. A block that cannot run here carries `<!-- doc-test: skip REASON -->`.
 *
 * Ports: the docs use the fixed ports a reader sees (8443, 9443, 9000, 9090, 9091). No other test
 * file binds them (they all listen on port 0, which the kernel takes from 32768-60999), so this file
 * can run next to the others; within the file the documents run one after the other, and each
 * session's processes are gone, ports freed, before the next starts. A port already taken (a demo
 * still running) fails the document up front, naming the port.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import {
  loadDoc,
  parseMarkdown,
  runDocument,
  runSession,
  withPrerequisites,
  type SessionOptions,
} from './helpers/doc-blocks.js';
import { makeTempDir } from './helpers/tmp.js';
import { portIsFree, procInfo } from './helpers/procs.js';

const REPO = resolve('.');

const DOCUMENTS = [
  'README.md',
  'CONTRIBUTING.md',
  'docs/gateway.md',
  'docs/agent.md',
  'docs/lineage.md',
  'docs/operations.md',
  'docs/secrets.md',
  'docs/dashboard.md',
  'docs/deploy.md',
  'docs/recipes/README.md',
  'docs/recipes/nginx.md',
  'docs/recipes/haproxy.md',
  'docs/recipes/caddy.md',
  'docs/recipes/clients.md',
  'docs/recipes/kubernetes-ingress-nginx.md',
  'docs/recipes/traefik.md',
];

/**
 * A reader's shell, minus what would leak between the test and the machine: HOME and TMPDIR point
 * into the test's folder (so `mktemp -d` and ~/.config/gatehouse land there and are removed), and no
 * GATEHOUSE_* variable of the environment the tests run in reaches the docs.
 */
function sessionOptions(dir: string): SessionOptions {
  const home = join(dir, 'home');
  const tmp = join(dir, 'tmp');
  mkdirSync(home);
  mkdirSync(tmp);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('GATEHOUSE_') && !k.startsWith('npm_')) env[k] = v;
  return { cwd: REPO, env: { ...env, HOME: home, TMPDIR: tmp, LC_ALL: 'C.UTF-8' } };
}

/**
 * Files in the checkout that git does not track, ignored ones included (`!! .gatehouse/`): what a
 * walkthrough writing into the repository's tree adds. Tracked files are left out: in a shared
 * working tree people edit them while the test runs, and no doc block writes one.
 */
const untrackedInCheckout = () =>
  execFileSync('git', ['status', '--porcelain', '--untracked-files=all', '--ignored=matching'], {
    cwd: REPO,
    encoding: 'utf8',
  })
    .split('\n')
    .filter((l) => l.startsWith('?? ') || l.startsWith('!! '))
    .sort();

async function assertPortsFree(file: string): Promise<void> {
  for (const doc of withPrerequisites(loadDoc(file))) {
    for (const block of doc.blocks) {
      if (block.annotation?.kind !== 'background') continue;
      for (const port of block.annotation.ports) {
        assert.ok(
          await portIsFree(port),
          `127.0.0.1:${port}, which ${doc.file}:${block.line} listens on, is taken by another process (a demo still running?)`,
        );
      }
    }
  }
}

const slug = (file: string) =>
  file
    .replace(/^docs\//, '')
    .replace(/\.md$/, '')
    .replace(/\//g, '-')
    .toLowerCase();

for (const file of DOCUMENTS) {
  test(`docs-shell-${slug(file)}-runs-as-written`, { timeout: 180_000 }, async () => {
    await assertPortsFree(file);
    const { dir, cleanup } = makeTempDir('gatehouse-docs-shell-');
    const before = file === 'README.md' ? untrackedInCheckout() : [];
    try {
      const result = await runDocument(file, sessionOptions(dir));
      // Every shell block of the document (and of what it runs after) was run, or skipped with a reason.
      const shellBlocks = result.docs.flatMap((d) => d.blocks.filter((b) => b.shell || b.annotation?.kind === 'file'));
      assert.equal(result.outcomes.length, shellBlocks.length);
      for (const o of result.outcomes)
        assert.ok(o.skipped === null ? o.exit !== null : o.skipped.length > 0, `${o.block.file}:${o.block.line}`);
      const own = result.outcomes.filter((o) => o.block.file === file);
      console.log(
        `# ${file}: ${own.filter((o) => o.skipped === null).length} blocks ran, ${own.filter((o) => o.skipped !== null).length} skipped`,
      );

      if (file === 'README.md') {
        assert.deepEqual(untrackedInCheckout(), before, 'the README walkthrough wrote nothing into the checkout');
        const state = result.finalCwd;
        assert.ok(
          state.startsWith(join(dir, 'tmp')),
          `the walkthrough's folders are in the scratch folder, not ${state}`,
        );
        const tokens = readdirSync(state).filter((f) => /token/.test(f));
        assert.deepEqual(tokens.sort(), ['gw-token.txt', 'token.txt']);
        for (const t of tokens)
          assert.equal(
            (statSync(join(state, t)).mode & 0o777).toString(8),
            '600',
            `${t} is readable by its owner alone`,
          );
      }
    } finally {
      cleanup();
    }
  });
}

test('docs-shell-covers-every-document-with-shell-blocks', () => {
  const tracked = execFileSync('git', ['ls-files', '*.md'], { cwd: REPO, encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
  const withShell = tracked.filter((f) => loadDoc(f).blocks.some((b) => b.shell));
  assert.deepEqual(
    withShell.filter((f) => !DOCUMENTS.includes(f)),
    [],
    'a document with shell blocks that this test does not run',
  );
});

// ---------------------------------------------------------------- the harness itself

/** Runs a markdown text as a document, in a scratch folder; resolves with the error message, or null. */
async function failureOf(markdown: string, options: Partial<SessionOptions> = {}): Promise<string | null> {
  const { dir, cleanup } = makeTempDir('gatehouse-doc-blocks-');
  try {
    const doc = parseMarkdown(markdown, 'sample.md');
    await runSession([doc], { ...sessionOptions(dir), cwd: dir, ...options });
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    cleanup();
  }
}

test('doc-blocks-failing-command-names-its-file-line-command-and-output', async () => {
  const message = await failureOf(
    [
      '# Sample',
      '',
      '```sh',
      'echo first block',
      '```',
      '',
      'Then:',
      '',
      '```sh',
      'echo before',
      'ls /nonexistent-doc-blocks-path',
      'echo never printed',
      '```',
      '',
    ].join('\n'),
  );
  assert.ok(message, 'the failing block fails the run');
  assert.match(message, /^sample\.md:11: exit 2 from: ls \/nonexistent-doc-blocks-path/);
  assert.match(message, /--- its output ---\nbefore\nls: cannot access/);
  assert.doesNotMatch(
    message.split('--- its output ---')[1]!,
    /never printed/,
    'the block stops at its first failing command',
  );
});

test('doc-blocks-pipes-fail-and-state-carries-over-between-blocks', async () => {
  assert.match((await failureOf('```sh\nfalse | cat\n```\n'))!, /^sample\.md:2: exit 1 from: false \| cat/, 'pipefail');
  assert.equal(
    await failureOf(
      '```sh\nX=kept; mkdir sub; cd sub\n```\n\n```bash\n[ "$X" = kept ] && [ "${PWD##*/}" = sub ]\necho "$X" > here.txt\n```\n',
    ),
    null,
  );
  assert.match(
    (await failureOf('```sh\necho "$NOT_SET_ANYWHERE"\n```\n'))!,
    /^sample\.md:1: the shell exited .*set -u/s,
  );
});

test('doc-blocks-blocking-command-is-stopped-by-the-block-deadline-and-killed', async () => {
  const { dir, cleanup } = makeTempDir('gatehouse-doc-blocks-');
  try {
    const pidFile = join(dir, 'daemon.pid');
    // A server started without `&` and without an annotation: what the README's `agent run` line did.
    const doc = parseMarkdown(`\`\`\`sh\nsleep 300 &\necho $! > '${pidFile}'\nwait\n\`\`\`\n`, 'sample.md');
    const started = Date.now();
    await assert.rejects(
      runSession([doc], { ...sessionOptions(dir), cwd: dir, blockTimeoutMs: 1500 }),
      (err: Error) => {
        assert.match(err.message, /^sample\.md:1: the block did not finish within 1\.5 s: .*needs `&`/);
        return true;
      },
    );
    assert.ok(Date.now() - started < 30_000);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    const left = procInfo(pid);
    assert.ok(left === null || left.state === 'Z', 'the background process was killed with the session');
  } finally {
    cleanup();
  }
});

test('doc-blocks-background-job-that-dies-fails-before-its-port-deadline', async () => {
  const started = Date.now();
  const message = await failureOf(
    '<!-- doc-test: background port=1 -->\n```sh\nsh -c "echo cannot listen >&2; exit 71" &\n```\n',
    { portTimeoutMs: 60_000 },
  );
  assert.match(message!, /^sample\.md:2: a background job ended before 127\.0\.0\.1:1 accepted connections: .*Exit 71/);
  assert.ok(Date.now() - started < 20_000, 'seen at once, not at the deadline');
  assert.match(
    (await failureOf('<!-- doc-test: background port=1 -->\n```sh\nsleep 30 &\n```\n', { portTimeoutMs: 500 }))!,
    /nothing accepted connections on 127\.0\.0\.1:1 within 0\.5 s/,
  );
});

test('doc-blocks-expect-exit-and-skip-and-file', async () => {
  assert.equal(
    await failureOf('<!-- doc-test: expect-exit 3 -->\n```sh\necho ok\nsh -c "exit 3"   # demonstrates exit 3\n```\n'),
    null,
  );
  assert.match(
    (await failureOf('<!-- doc-test: expect-exit 3 -->\n```sh\nsh -c "exit 4"\n```\n'))!,
    /^sample\.md:3: exit 4 \(the block expects its last command to exit 3\)/,
  );
  assert.match(
    (await failureOf('<!-- doc-test: expect-exit 3 -->\n```sh\nsh -c "exit 3"\necho after\n```\n'))!,
    /^sample\.md:3: exit 3 \(the block expects/,
    'only the last command may fail',
  );
  assert.match(
    (await failureOf('<!-- doc-test: expect-exit 3 -->\n```sh\necho fine\n```\n'))!,
    /exited 0, but its annotation expects 3/,
  );
  assert.equal(await failureOf('<!-- doc-test: skip needs a cluster -->\n```sh\nkubectl apply -f x.yaml\n```\n'), null);
  assert.equal(
    await failureOf(
      '<!-- doc-test: file conf/app.yaml -->\n```yaml\nkey: value\n```\n\n```sh\ngrep -qx "key: value" conf/app.yaml\n```\n',
    ),
    null,
  );
});

test('doc-blocks-refuses-malformed-annotations-and-console-blocks', () => {
  const refused = (md: string, why: RegExp) => assert.throws(() => parseMarkdown(md, 'sample.md'), why);
  refused('<!-- doc-test: skip -->\n```sh\nx\n```\n', /^Error: sample\.md:1: "skip" needs a reason/);
  refused('<!-- doc-test: backgrund port=1 -->\n```sh\nx\n```\n', /unknown doc-test annotation/);
  refused('<!-- doc-test: background -->\n```sh\nx\n```\n', /needs port=PORT/);
  refused(
    '<!-- doc-test: skip reason -->\n\nText.\n```sh\nx\n```\n',
    /sample\.md:1: annotation not on the line just before a code block/,
  );
  refused('Text\n\n```console\n$ gatehouse --help\n```\n', /sample\.md:3: a `console` block cannot run as written/);
  refused('```sh\nnever closed\n', /sample\.md:1: code block never closed/);
  const doc = parseMarkdown(
    '````md\n```sh\nnot a block of its own\n```\n````\n\n~~~bash\necho tilde\n~~~\n\n```text\nout\n```\n',
    'sample.md',
  );
  assert.deepEqual(
    doc.blocks.map((b) => [b.line, b.lang, b.shell]),
    [
      [1, 'md', false],
      [7, 'bash', true],
      [11, 'text', false],
    ],
  );
});

test('doc-blocks-after-runs-the-prerequisite-first-in-the-same-session', async () => {
  const { dir, cleanup } = makeTempDir('gatehouse-doc-blocks-');
  try {
    writeFileSync(join(dir, 'first.md'), '```sh\nFROM_FIRST=yes\n```\n');
    writeFileSync(
      join(dir, 'second.md'),
      'After [first](first.md):\n<!-- doc-test: after first.md -->\n\n```sh\n[ "$FROM_FIRST" = yes ]\n```\n',
    );
    const second = relative(REPO, join(dir, 'second.md'));
    const result = await runDocument(second, { ...sessionOptions(dir), cwd: dir });
    assert.deepEqual(
      result.docs.map((d) => relative(dir, d.file)),
      ['first.md', 'second.md'],
    );
    assert.deepEqual(
      result.outcomes.map((o) => o.exit),
      [0, 0],
    );
  } finally {
    cleanup();
  }
});
