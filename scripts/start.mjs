#!/usr/bin/env node
/**
 * `npm start`: build, then run `gatehouse demo` in this very process, with the arguments given
 * after `npm start --` (e.g. `npm start -- --keep`).
 *
 * Why this file, and the `exec` in package.json's "start" script: npm runs a script as
 * `sh -c '<script>'`, and on SIGINT or SIGTERM it forwards the signal to that shell and nothing
 * else (npm 11: @npmcli/run-script's signal-manager; npm then exits as its child did). The script
 * was `npm run build --silent && node dist/src/cli/main.js demo`, and dash does not exec the last
 * command of an `&&` list: the shell stayed between npm and the demo. A SIGTERM killed the
 * shell, npm exited, and the demo ran on, orphaned, holding its ports and its CA keys (the next
 * `npm start` failed on them); a SIGINT was held by the shell until the demo exited, that is
 * never. Now `exec` turns the shell into this process, so npm's signal reaches it:
 *
 * - while building, the build runs in its own process group (npm, its shell, tsc), which a
 *   signal stops as a whole before this process exits by the same signal;
 * - then the demo runs here, in-process (no second node in between), and its own handling
 *   (src/cli/main.ts) stops it cleanly: servers closed within a deadline, ports freed, the
 *   state folder removed.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const main = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));

// npm tells its scripts where it lives; run as `node scripts/start.mjs`, use the npm on PATH.
const [npm, npmArgs] = process.env.npm_execpath ? [process.execPath, [process.env.npm_execpath]] : ['npm', []];
const build = spawn(npm, [...npmArgs, 'run', 'build', '--silent'], { stdio: 'inherit', detached: true });
let stoppedBy = null;
const stop = (signal) => {
  stoppedBy ??= signal;
  try {
    process.kill(-build.pid, signal);
  } catch {
    // the group is already gone
  }
};
for (const signal of SIGNALS) process.on(signal, stop);
const code = await new Promise((resolve) => {
  build.once('error', (err) => {
    console.error(`npm start: cannot run the build (${err.message})`);
    resolve(1);
  });
  build.once('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)));
});
for (const signal of SIGNALS) process.off(signal, stop);
if (stoppedBy) {
  process.exitCode = stoppedBy === 'SIGINT' ? 130 : stoppedBy === 'SIGTERM' ? 143 : 129;
  process.kill(process.pid, stoppedBy);
} else if (code !== 0) {
  process.exitCode = code;
} else {
  process.argv = [process.argv[0], main, 'demo', ...process.argv.slice(2)];
  await import(pathToFileURL(main).href);
}
