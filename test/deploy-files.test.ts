/**
 * The deployment files and copy-paste commands that no test can run here (systemd units, the
 * Dockerfile and docker-compose.yml: there is no Docker daemon or systemd in the test
 * environment), checked for what can be checked without running them: every `gatehouse …`
 * command they show parses with the CLI's own option definitions and has its required options,
 * and the Dockerfile copies paths that exist.
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
  const logical = text.replace(/\\\n\s*/g, ' ').split('\n').filter((l) => !l.trim().startsWith('#'));
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
  const spec = [...COMMANDS].sort((a, b) => b.path.length - a.path.length).find((c) => c.path.every((p, i) => args[i] === p));
  if (!spec) return `no command "gatehouse ${args.slice(0, 2).join(' ')}"`;
  try {
    const { values } = parseCommandArgs(spec, args.slice(spec.path.length));
    if (values.help) return null;
    const missing = Object.entries(spec.options).filter(([name, o]) => o.required && values[name] === undefined).map(([name]) => `--${name}`);
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
  assert.deepEqual(shellWords(` agent run --on-renew 'a "b" c' --dir x | jq .`), ['agent', 'run', '--on-renew', 'a "b" c', '--dir', 'x']);
  assert.deepEqual(shellWords(' cert revoke "$(gatehouse agent whoami --json | jq -r .serial)" --dir ./ca # note'), ['cert', 'revoke', '$(gatehouse agent whoami --json | jq -r .serial)', '--dir', './ca']);
  assert.deepEqual(shellWords(' cert revoke <SERIAL> --dir ./ca > out'), ['cert', 'revoke', '<SERIAL>', '--dir', './ca']);
  assert.match(checkInvocation(['agent', 'run', '--frobnicate']) ?? '', /frobnicate/);
  assert.match(checkInvocation(['agent', 'enroll', '--dir', 'x']) ?? '', /--ca is required/);
  assert.match(checkInvocation(['agnet', 'run']) ?? '', /no command/);
});

test('docs-gatehouse-commands-parse-with-the-cli-options', () => {
  const markdown = ['README.md', 'docs/deploy.md', ...readdirSync('docs/recipes').filter((f) => f.endsWith('.md')).map((f) => join('docs/recipes', f))];
  let count = 0;
  for (const file of markdown) {
    for (const { lang, code } of fencedBlocks(file)) {
      if (['sh', 'bash', ''].includes(lang)) count += assertAllValid(file, gatehouseInvocations(code));
    }
  }
  assert.ok(count >= 25, `expected the docs to show at least 25 gatehouse commands, found ${count}`);
});

test('systemd-units-run-valid-gatehouse-commands', () => {
  const units = readdirSync('docs/deploy').filter((f) => /\.(service|timer)$/.test(f));
  assert.deepEqual(units.sort(), ['gatehouse-agent.service', 'gatehouse-crl-refresh.service', 'gatehouse-crl-refresh.timer']);
  const agent = readFileSync('docs/deploy/gatehouse-agent.service', 'utf8');
  const execStart = /^ExecStart=(.+)$/m.exec(agent)![1]!;
  assert.equal(assertAllValid('gatehouse-agent.service', gatehouseInvocations(execStart)), 1);
  assert.match(agent, /^RestartPreventExitStatus=75$/m, 'exit 75 (enroll again) is not restarted');
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
  assert.ok(count >= 6, `compose runs ca init, token create, ca serve, agent enroll, agent run and gateway; found ${count}`);
  const comments = readFileSync('docker-compose.yml', 'utf8').split('\n').filter((l) => l.startsWith('#')).map((l) => l.replace(/^#\s?/, '')).join('\n');
  assertAllValid('docker-compose.yml header', gatehouseInvocations(comments.split('\n').filter((l) => l.startsWith('  ')).join('\n')));
});

test('dockerfile-copies-paths-that-exist-and-runs-as-non-root', () => {
  const dockerfile = readFileSync('Dockerfile', 'utf8');
  const ignored = readFileSync('.dockerignore', 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);
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
  assert.match(stages[1]!, /^USER node$/m, 'the runtime stage drops root');
  assert.doesNotMatch(stages[1]!.split(/^USER node$/m)[1]!, /^USER /m, 'and does not take it back');
});
