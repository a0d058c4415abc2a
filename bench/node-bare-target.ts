/**
 * The ceiling row of the gateway benchmark: bench/node-bare-server.ts (a bare Node
 * `https.createServer` with the gateway's TLS settings, answering `200 ok` itself) started as a
 * child process with this Node (`process.execPath`), its stderr (the access log) to a file.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GatewayPki } from './gateway-pki.js';
import type { NodeBareOptions } from './node-bare-server.js';
import { freePort, waitForPort } from './ports.js';
import { stopChild, track } from './procs.js';

const SERVER = fileURLToPath(new URL('./node-bare-server.js', import.meta.url));

export interface NodeBareProcess {
  pid: number;
  port: number;
  command: string;
  /** The server's stderr: one JSON line per request when the access log is on. */
  logFile: string;
  stop(): Promise<void>;
}

export async function startNodeBare(
  dir: string,
  options: { pki: GatewayPki; workers: number; accessLog: boolean; profileDir: string | null },
): Promise<NodeBareProcess> {
  const port = await freePort();
  const serverOptions: NodeBareOptions = {
    port,
    cert: options.pki.serverCert,
    key: options.pki.serverKey,
    clientCa: options.pki.clientCaBundle,
    accessLog: options.accessLog,
    workers: options.workers,
  };
  const execArgv: string[] = [];
  if (options.profileDir) {
    mkdirSync(options.profileDir, { recursive: true });
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${options.profileDir}`);
  }
  const args = [...execArgv, SERVER, JSON.stringify(serverOptions)];
  const logFile = join(dir, 'node-bare.log');
  const fd = openSync(logFile, 'a');
  const child = track(spawn(process.execPath, args, { stdio: ['ignore', fd, fd] }));
  closeSync(fd);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  try {
    await waitForPort(port, 30_000, () => exited, 'node-bare server');
  } catch (err) {
    throw new Error(
      `${(err as Error).message}; log:\n${existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-3000) : '(none)'}`,
      { cause: err },
    );
  }
  return {
    pid: child.pid!,
    port,
    logFile,
    command: `node ${[...execArgv, 'dist/bench/node-bare-server.js', `'${JSON.stringify(serverOptions)}'`].join(' ').replaceAll(dir, '$TMP')}`,
    stop: () => stopChild(child, { signal: 'SIGTERM' }, 10_000),
  };
}
