/** Runs the built CLI as a user would: a separate `node dist/src/cli/main.js` process. */
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { run, type RunResult } from './run.js';

export const CLI_PATH = resolve('dist/src/cli/main.js');

export function gatehouse(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  return run(process.execPath, [CLI_PATH, ...args], {
    env: { ...process.env, GATEHOUSE_LOG_LEVEL: 'debug', ...options.env },
    ...(options.input !== undefined ? { input: options.input } : {}),
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
}

/** Runs the CLI and asserts it exits 0 (naming the command and its stderr otherwise); returns stdout. */
export async function gatehouseOk(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const r = await gatehouse(args, { env });
  assert.equal(r.status, 0, `gatehouse ${args.join(' ')}:\n${r.stderr}`);
  return r.stdout;
}
