/**
 * The deployment files and copy-paste commands that no test can run here (systemd units, the
 * Dockerfile and docker-compose.yml: there is no Docker daemon, and systemd is not PID 1, in the
 * test environment), checked for what can be checked without running them: every `gatehouse …`
 * command they show parses with the CLI's own option definitions and has its required options,
 * the Dockerfile copies paths that exist and is based on a supported Node.js line.
 * test/deploy-systemd.test.ts checks the units with systemd-analyze.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { COMMANDS } from '../src/cli/commands/index.js';
import { parseCommandArgs } from '../src/cli/command.js';
import { fencedBlocks } from './helpers/proxy-peers.js';

/** Words of one shell command line, quotes removed; stops at a pipe, redirection, `;`, `&` or comment. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  const end = () => {
    if (inWord) words.push(word);
    word = '';
    inWord = false;
  };
  for (let i = 0; i < line.length;) {
    const c = line[i]!;
    const placeholder = /^<[A-Z_]+>/.exec(line.slice(i));
    if (c === "'") {
      const close = line.indexOf("'", i + 1);
      word += line.slice(i + 1, close < 0 ? line.length : close);
      i = close < 0 ? line.length : close + 1;
      inWord = true;
    } else if (c === '"') {
      // Up to the closing quote, skipping over $( … ) which may hold quotes of its own.
      let j = i + 1;
      let depth = 0;
      while (j < line.length && !(line[j] === '"' && depth === 0)) {
        if (line.startsWith('$(', j)) depth++;
        else if (line[j] === ')' && depth > 0) depth--;
        else if (line[j] === '\\') j++;
        j++;
      }
      word += line.slice(i + 1, j);
      i = j + 1;
      inWord = true;
    } else if (/\s/.test(c)) {
      end();
      i++;
    } else if (placeholder) {
      word += placeholder[0];
      i += placeholder[0].length;
      inWord = true;
    } else if ('|;&<>)'.includes(c) || (c === '#' && !inWord)) {
      // `2> ca.log`: the digits name the file descriptor of the redirection, not an argument.
      if ('<>'.includes(c) && /^\d+$/.test(word)) inWord = false;
      break;
    } else if (c === '\\' && i + 1 < line.length) {
      word += line[i + 1];
      i += 2;
      inWord = true;
    } else {
      word += c;
      i++;
      inWord = true;
    }
  }
  end();
  return words;
}

/** Every `gatehouse …` invocation in a piece of shell text, as argument lists (after `gatehouse`). */
function gatehouseInvocations(text: string): string[][] {
  const logical = text
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .filter((l) => !l.trim().startsWith('#'));
  const found: string[][] = [];
  for (const line of logical) {
    for (const m of line.matchAll(/(?<=^|[\s/"'(=])gatehouse(?=\s)/g)) {
      const args = shellWords(line.slice(m.index! + 'gatehouse'.length));
      // `cd /opt/gatehouse && …` names the directory, not the command.
      if (args.length > 0) found.push(args);
    }
  }
  return found;
}

/** Parses like the CLI does; returns a problem, or null when the command line is valid. */
function checkInvocation(args: string[]): string | null {
  if (args[0] === '--help' || args[0] === '--version') return null;
  const spec = [...COMMANDS]
    .sort((a, b) => b.path.length - a.path.length)
    .find((c) => c.path.every((p, i) => args[i] === p));
  if (!spec) return `no command "gatehouse ${args.slice(0, 2).join(' ')}"`;
  try {
    const { values } = parseCommandArgs(spec, args.slice(spec.path.length));
    if (values.help) return null;
    const missing = Object.entries(spec.options)
      .filter(([name, o]) => o.required && values[name] === undefined)
      .map(([name]) => `--${name}`);
    return missing.length ? `missing ${missing.join(', ')}` : null;
  } catch (err) {
    return (err as Error).message;
  }
}

function assertAllValid(where: string, invocations: string[][]): number {
  for (const args of invocations) {
    const problem = checkInvocation(args);
    assert.equal(problem, null, `${where}: \`gatehouse ${args.join(' ')}\`: ${problem}`);
  }
  return invocations.length;
}

test('shell-words-split-like-a-shell-for-the-doc-commands', () => {
  assert.deepEqual(shellWords(` agent run --on-renew 'a "b" c' --dir x | jq .`), [
    'agent',
    'run',
    '--on-renew',
    'a "b" c',
    '--dir',
    'x',
  ]);
  assert.deepEqual(shellWords(' cert revoke "$(gatehouse agent whoami --json | jq -r .serial)" --dir ./ca # note'), [
    'cert',
    'revoke',
    '$(gatehouse agent whoami --json | jq -r .serial)',
    '--dir',
    './ca',
  ]);
  assert.deepEqual(shellWords(' cert revoke <SERIAL> --dir ./ca > out'), [
    'cert',
    'revoke',
    '<SERIAL>',
    '--dir',
    './ca',
  ]);
  assert.deepEqual(shellWords(' ca serve --dir ./ca 2> ca.log &'), ['ca', 'serve', '--dir', './ca']);
  assert.match(checkInvocation(['agent', 'run', '--frobnicate']) ?? '', /frobnicate/);
  assert.match(checkInvocation(['agent', 'enroll', '--dir', 'x']) ?? '', /--ca is required/);
  assert.match(checkInvocation(['agnet', 'run']) ?? '', /no command/);
});

test('docs-gatehouse-commands-parse-with-the-cli-options', () => {
  const markdown = [
    'README.md',
    'docs/deploy.md',
    ...readdirSync('docs/recipes')
      .filter((f) => f.endsWith('.md'))
      .map((f) => join('docs/recipes', f)),
  ];
  let count = 0;
  for (const file of markdown) {
    for (const { lang, code } of fencedBlocks(file)) {
      if (['sh', 'bash', ''].includes(lang)) count += assertAllValid(file, gatehouseInvocations(code));
    }
  }
  assert.ok(count >= 25, `expected the docs to show at least 25 gatehouse commands, found ${count}`);
});

test('systemd-units-run-valid-gatehouse-commands', () => {
  const units = readdirSync('docs/deploy').filter((f) => /\.(service|timer|path)$/.test(f));
  assert.deepEqual(units.sort(), [
    'gatehouse-agent-reload.path',
    'gatehouse-agent-reload.service',
    'gatehouse-agent.service',
    'gatehouse-ca.service',
    'gatehouse-crl-refresh.service',
    'gatehouse-crl-refresh.timer',
    'gatehouse-gateway.service',
  ]);
  // Every ExecStart= of the CA, gateway and agent units runs a valid `gatehouse …` command
  // (test/deploy-systemd.test.ts checks the units themselves with systemd-analyze).
  for (const unit of ['gatehouse-agent.service', 'gatehouse-ca.service', 'gatehouse-gateway.service']) {
    const execStart = /^ExecStart=(.+)$/m.exec(readFileSync(join('docs/deploy', unit), 'utf8'))![1]!;
    assert.equal(assertAllValid(unit, gatehouseInvocations(execStart)), 1, unit);
  }
  assert.match(
    readFileSync('docs/deploy/gatehouse-agent.service', 'utf8'),
    /^RestartPreventExitStatus=75$/m,
    'exit 75 (enroll again) is not restarted',
  );
  // The CRL refresh unit calls the script with the four arguments it takes.
  const refresh = /^ExecStart=(.+)$/m.exec(readFileSync('docs/deploy/gatehouse-crl-refresh.service', 'utf8'))![1]!;
  assert.equal(shellWords(refresh).length, 5, refresh);
  assert.match(readFileSync('docs/deploy/gatehouse-crl-refresh.timer', 'utf8'), /^OnUnitActiveSec=5min$/m);
});

test('docker-compose-services-run-valid-gatehouse-commands', () => {
  const compose = parseYaml(readFileSync('docker-compose.yml', 'utf8'), { merge: true }) as {
    services: Record<string, { image?: string; entrypoint?: string[]; command?: string[] }>;
  };
  let count = 0;
  for (const [name, service] of Object.entries(compose.services)) {
    if (service.image !== 'gatehouse:local') continue;
    if (service.entrypoint?.[0] === '/bin/sh') {
      count += assertAllValid(`docker-compose.yml ${name}`, gatehouseInvocations(service.command!.join('\n')));
    } else {
      assert.equal(service.entrypoint, undefined, `${name}: the image's entry point is gatehouse`);
      count += assertAllValid(`docker-compose.yml ${name}`, [service.command!.map(String)]);
    }
  }
  assert.ok(
    count >= 6,
    `compose runs ca init, token create, ca serve, agent enroll, agent run and gateway; found ${count}`,
  );
  const comments = readFileSync('docker-compose.yml', 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('#'))
    .map((l) => l.replace(/^#\s?/, ''))
    .join('\n');
  assertAllValid(
    'docker-compose.yml header',
    gatehouseInvocations(
      comments
        .split('\n')
        .filter((l) => l.startsWith('  '))
        .join('\n'),
    ),
  );
});

test('dockerfile-copies-paths-that-exist-and-runs-as-non-root', () => {
  const dockerfile = readFileSync('Dockerfile', 'utf8');
  const ignored = readFileSync('.dockerignore', 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+)$/gm)) {
    const sources = m[1]!.trim().split(/\s+/).slice(0, -1);
    for (const source of sources) {
      assert.ok(existsSync(source), `Dockerfile copies ${source}, which does not exist`);
      assert.ok(!ignored.includes(source), `Dockerfile copies ${source}, which .dockerignore leaves out`);
    }
  }
  // The runtime stage copies dist/src from the build and the wrapper runs its main.js.
  assert.match(dockerfile, /^COPY --from=build \/src\/dist\/src \.\/dist\/src$/m);
  assert.ok(existsSync('dist/src/cli/main.js'), 'npm run build makes dist/src/cli/main.js');
  assert.match(dockerfile, /exec node \/app\/dist\/src\/cli\/main\.js/);
  const stages = dockerfile.split(/^FROM /m).slice(1);
  assert.equal(stages.length, 2, 'a build stage and a runtime stage');
  // Both stages on the same image, so the native addon built in one runs in the other.
  const images = stages.map((stage) => stage.split(/\s/)[0]!);
  assert.equal(images[0], images[1], 'the build and runtime stages use the same base image');
  assert.match(stages[1]!, /^USER node$/m, 'the runtime stage drops root');
  assert.doesNotMatch(stages[1]!.split(/^USER node$/m)[1]!, /^USER /m, 'and does not take it back');
});

/**
 * End of life of the Node.js release lines (https://github.com/nodejs/Release, schedule.json):
 * up to Node 26, odd lines are never LTS and end two months after the next even line is out;
 * from Node 27 every line becomes LTS.
 *   18 LTS       2025-04-30      21 current   2024-06-01
 *   20 LTS       2026-04-30      23 current   2025-06-01
 *   22 LTS       2027-04-30      25 current   2026-06-01
 *   24 LTS       2028-04-30      26 LTS       2029-04-30 (LTS from 2026-10-28)
 * A line newer than the table passes; one in it must not have reached its end of life.
 */
const NODE_END_OF_LIFE: Record<number, string> = {
  18: '2025-04-30',
  19: '2023-06-01',
  20: '2026-04-30',
  21: '2024-06-01',
  22: '2027-04-30',
  23: '2025-06-01',
  24: '2028-04-30',
  25: '2026-06-01',
  26: '2029-04-30',
};

function nodeLineProblem(image: string, now: Date): string | null {
  const m = /^node:(\d+)(?:[.-]|$)/.exec(image);
  if (!m) return `${image} is not an official node image with a major version`;
  const major = Number(m[1]);
  const end = NODE_END_OF_LIFE[major];
  if (end === undefined)
    return major > Math.max(...Object.keys(NODE_END_OF_LIFE).map(Number))
      ? null
      : `Node ${major} is long past its end of life`;
  if (new Date(`${end}T23:59:59Z`) <= now) return `Node ${major} reached its end of life on ${end}`;
  if (major % 2 === 1) return `Node ${major} is an odd, non-LTS line`;
  return null;
}

test('dockerfile-base-image-is-a-supported-node-lts-line', () => {
  assert.equal(
    nodeLineProblem('node:20-bookworm-slim', new Date('2026-12-02')),
    'Node 20 reached its end of life on 2026-04-30',
  );
  assert.equal(nodeLineProblem('node:25-trixie-slim', new Date('2026-05-02')), 'Node 25 is an odd, non-LTS line');
  assert.equal(nodeLineProblem('node:26-trixie-slim', new Date('2026-12-02')), null);
  assert.equal(nodeLineProblem('node:28-trixie-slim', new Date('2028-12-02')), null);
  const images = [...readFileSync('Dockerfile', 'utf8').matchAll(/^FROM (\S+)/gm)].map((m) => m[1]!);
  assert.ok(images.length > 0);
  for (const image of images) assert.equal(nodeLineProblem(image, new Date()), null, `Dockerfile: FROM ${image}`);
});
