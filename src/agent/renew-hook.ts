/**
 * The operator's `agent run --on-renew` hook: one shell command run after a renewal, a change of
 * the secrets folder and a revocation, told which by GATEHOUSE_EVENT. Shared by the renewal loop
 * and the stop on revocation (revocation-watch.ts).
 */
import { spawn } from 'node:child_process';
import type { Logger } from '../log/logger.js';

/** Runs the operator's hook through the shell, as certbot's --deploy-hook does. A failing hook is logged, not fatal. */
export function runHook(command: string, env: Record<string, string>, logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(command, {
      shell: true,
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, ...env },
    });
    child.on('error', (err) => {
      logger.error('agent.hook_failed', { command, trigger: env.GATEHOUSE_EVENT, reason: err.message });
      resolve();
    });
    child.on('exit', (code, sig) => {
      if (code === 0) logger.info('agent.hook_ran', { command, trigger: env.GATEHOUSE_EVENT });
      else logger.error('agent.hook_failed', { command, trigger: env.GATEHOUSE_EVENT, exitCode: code, signal: sig });
      resolve();
    });
  });
}
