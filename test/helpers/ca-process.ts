/** `gatehouse ca serve` as a real child process on port 0; resolves once it logs ca.listening. */
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI_PATH } from './cli.js';
import { findLog } from './log-lines.js';

export interface CaProcess {
  url: string;
  /** http://HOST:PORT/metrics when the CA serves metrics (--metrics-listen). */
  metricsUrl: string | null;
  child: ChildProcess;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function startCaProcess(
  caDir: string,
  extraArgs: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<CaProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [CLI_PATH, 'ca', 'serve', '--dir', caDir, '--listen', '127.0.0.1:0', ...extraArgs],
      { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`CA did not start:\n${output}`));
    }, 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const listening = findLog(output, 'ca.listening');
      if (listening) {
        child.stdout!.off('data', onData);
        child.stderr!.off('data', onData);
        child.stdout!.on('data', (more: Buffer) => void (output += more.toString()));
        child.stderr!.on('data', (more: Buffer) => void (output += more.toString()));
        clearTimeout(timer);
        resolve({
          url: String(listening.url),
          metricsUrl: typeof listening.metrics === 'string' ? listening.metrics : null,
          child,
          output: () => output,
          stop: async (signal = 'SIGTERM') => {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            return exited;
          },
        });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`CA exited with ${code} before starting:\n${output}`));
    });
  });
}
