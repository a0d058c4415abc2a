/**
 * Lets a bench module be both a script (`node dist/bench/issuance.js`) and a part of
 * `node dist/bench/main.js`: the script form runs only when the module is the entry point.
 */
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupAll, installCleanupHandlers } from './procs.js';

export function isEntryPoint(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(fileURLToPath(moduleUrl)) === realpathSync(resolve(script));
  } catch {
    return false;
  }
}

/** Runs one bench as the whole process: child processes and temp dirs are cleaned up, a failure exits 1. */
export function runAsScript(name: string, bench: () => Promise<void>): void {
  installCleanupHandlers();
  bench().then(
    () => cleanupAll(),
    (err: Error) => {
      process.stderr.write(`${name} bench failed: ${err.stack ?? err.message}\n`);
      cleanupAll();
      process.exitCode = 1;
    },
  );
}
