#!/usr/bin/env node
/**
 * The `gatehouse` entry point: find the command, parse its flags, run it, and turn errors
 * into a message plus the registry's exit code. The only process.exit in the project.
 */
import { readFileSync } from 'node:fs';
import { ERRORS, toGatehouseError } from '../errors/errors.js';
import { helpText, parseCommandArgs, type CommandSpec } from './command.js';
import { COMMANDS } from './commands/index.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

export function topLevelHelp(): string {
  const groups = new Map<string, CommandSpec[]>();
  for (const c of COMMANDS) groups.set(c.path[0]!, [...(groups.get(c.path[0]!) ?? []), c]);
  const lines = [
    'Usage: gatehouse <command> [options]',
    '',
    'Zero-trust machine identity: a CA with join tokens that pin it, and an agent that enrolls and renews.',
    '',
    'Commands:',
  ];
  for (const commands of groups.values()) {
    for (const c of commands) lines.push(`  ${c.path.join(' ').padEnd(18)} ${c.summary.split(/(?<=\.)\s/)[0]}`);
  }
  lines.push('', "Run `gatehouse <command> --help` for a command's options. Docs: docs/cli.md");
  return lines.join('\n') + '\n';
}

export async function main(argv: string[]): Promise<number> {
  const out = (t: string) => void process.stdout.write(t);
  const err = (t: string) => void process.stderr.write(t);
  // `gatehouse help CMD…` is `gatehouse CMD… --help`, as git and kubectl take it.
  if (argv[0] === 'help' && argv.length > 1) return main([...argv.slice(1), '--help']);
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    out(topLevelHelp());
    return argv.length === 0 ? ERRORS.GH_USAGE.exit : 0;
  }
  if (argv[0] === '--version' || argv[0] === 'version') {
    out(`${version()}\n`);
    return 0;
  }
  const spec = COMMANDS.find((c) => c.path.every((p, i) => argv[i] === p));
  if (!spec) {
    const group = COMMANDS.filter((c) => c.path[0] === argv[0]);
    if (group.length && (argv.length === 1 || argv[1] === '--help' || argv[1] === '-h')) {
      out(
        `Usage: gatehouse ${argv[0]} <${group.map((c) => c.path[1]).join('|')}> [options]\n\n${group.map((c) => `  ${c.path.join(' ').padEnd(18)} ${c.summary}`).join('\n')}\n`,
      );
      return argv.length === 1 ? ERRORS.GH_USAGE.exit : 0;
    }
    err(
      `error: unknown command "${argv
        .slice(0, 2)
        .filter((a) => !a.startsWith('-'))
        .join(' ')}"; run \`gatehouse --help\`\n`,
    );
    return ERRORS.GH_USAGE.exit;
  }
  // The first SIGINT or SIGTERM starts the command's stop, which is bounded (src/cli/stop.ts).
  // Later ones are ignored, not fatal: dying on a second signal would leave the stop half done
  // (a port held by a child, a state folder half removed). Ctrl-C under `npm start` always
  // brings two, the terminal's and the one npm forwards.
  const controller = new AbortController();
  const stop = (signal: NodeJS.Signals) => {
    if (!controller.signal.aborted) return controller.abort();
    void import('../log/logger.js').then(({ createLogger }) =>
      createLogger({ level: 'info' }).info('cli.signal_ignored', {
        signal,
        reason: 'already stopping; the stop has a deadline',
      }),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    const { values, positionals } = parseCommandArgs(spec, argv.slice(spec.path.length));
    if (values.help) {
      out(helpText(spec));
      return 0;
    }
    const code = await spec.run({ values, positionals, out, err, env: process.env, signal: controller.signal });
    return typeof code === 'number' ? code : 0;
  } catch (caught) {
    const error = toGatehouseError(caught);
    // A cluster worker's listen failure is reported once, by the primary.
    if (error.code === 'GH_LISTEN_FAILED' && (await (await import('./ca-workers.js')).listenFailedInWorker(error)))
      return error.spec.exit;
    // With --json a script parses the failure too: one JSON object on stderr, stdout left empty.
    if (argv.includes('--json')) {
      err(
        `${JSON.stringify({ error: { code: error.code, message: error.message, fix: error.spec.fix, exit: error.spec.exit } })}\n`,
      );
      return error.spec.exit;
    }
    err(`error: ${error.message} [${error.code}]\n`);
    if (error.code === 'GH_INTERNAL' && caught instanceof Error && caught.stack) err(`${caught.stack}\n`);
    else if (!error.message.includes('--help')) err(`hint: ${error.spec.fix}\n`);
    return error.spec.exit;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

const code = await main(process.argv.slice(2));
// Exit explicitly: a finished command must not linger on a stray handle (a cluster worker's
// shared socket, a keep-alive agent). But only once stdout and stderr are written out: a pipe
// can be asynchronous, and exiting with output queued cut `… --json | jq` at 64 KiB.
await Promise.all([drained(process.stdout), drained(process.stderr)]);
process.exit(code);

function drained(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.writableLength === 0) return resolve();
    stream.once('error', () => resolve()); // a reader that went away (EPIPE): nothing more to wait for
    stream.write('', () => resolve());
  });
}
