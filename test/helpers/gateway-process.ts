/**
 * `gatehouse gateway` as a real child process (the built CLI), listening on 127.0.0.1 port 0.
 * Resolves once the CLI prints `Gatehouse gateway listening on https://HOST:PORT`; collects
 * its stderr, where the gateway writes one JSON object per line (access log, warnings).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI_PATH } from './cli.js';

export type LogLine = Record<string, unknown> & { event?: string; level?: string };

export interface GatewayProcessOptions {
  cert: string;
  key: string;
  clientCa: string;
  upstream: string;
  policy?: string;
  headers?: string;
  /** Default 127.0.0.1:0. */
  listen?: string;
  /** Further flags, appended as given. */
  extraArgs?: string[];
  env?: NodeJS.ProcessEnv;
  startTimeoutMs?: number;
}

export interface GatewayProcess {
  port: number;
  /** `https://localhost:PORT` (the server certificate names localhost and 127.0.0.1). */
  url: string;
  child: ChildProcess;
  /** Every JSON line written to stderr so far, parsed. */
  logs(): LogLine[];
  /** All of stderr so far, as text (JSON lines and the rest). */
  stderr(): string;
  /** Polls logs() until a line matches, or fails with the log so far after `timeoutMs`. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** SIGTERM (or `signal`), then waits for the exit; SIGKILL after `timeoutMs`. Resolves to the exit code, or the signal name. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | string | null>;
}

export function gatewayArgs(options: GatewayProcessOptions): string[] {
  return [
    'gateway',
    '--listen',
    options.listen ?? '127.0.0.1:0',
    '--cert',
    options.cert,
    '--key',
    options.key,
    '--client-ca',
    options.clientCa,
    '--upstream',
    options.upstream,
    ...(options.policy ? ['--policy', options.policy] : []),
    ...(options.headers ? ['--headers', options.headers] : []),
    ...(options.extraArgs ?? []),
  ];
}

export function startGatewayProcess(options: GatewayProcessOptions): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [CLI_PATH, ...gatewayArgs(options)], {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  const lines: LogLine[] = [];
  let partial = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    stderr += text;
    partial += text;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      if (!line.startsWith('{')) continue;
      try {
        lines.push(JSON.parse(line) as LogLine);
      } catch {
        // Not a log object: kept in stderr() only.
      }
    }
  });
  child.stdout!.on('data', (chunk: Buffer) => void (stdout += chunk.toString('utf8')));
  const exited = new Promise<number | string | null>((done) =>
    child.once('exit', (code, signal) => done(code ?? signal)),
  );

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gateway did not start within ${options.startTimeoutMs ?? 30_000} ms:\n${stderr}${stdout}`));
    }, options.startTimeoutMs ?? 30_000);
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited (${code ?? signal}) before listening:\n${stderr}${stdout}`));
    };
    child.once('exit', onExit);
    const onData = () => {
      const listening = lines.find((l) => l.msg === 'gateway.listening');
      const m = listening && /^https:\/\/([^\s:]+|\[[^\]]+\]):(\d+)$/.exec(String(listening.url));
      if (!m) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      child.stderr!.off('data', onData);
      const port = Number(m[2]);
      const gateway: GatewayProcess = {
        port,
        url: `https://localhost:${port}`,
        child,
        logs: () => [...lines],
        stderr: () => stderr,
        waitForLog: async (match, timeoutMs = 5000) => {
          const deadline = Date.now() + timeoutMs;
          for (;;) {
            const found = lines.find(match);
            if (found) return found;
            if (Date.now() > deadline)
              throw new Error(
                `no matching gateway log line within ${timeoutMs} ms; log so far:\n${stderr.slice(-8000)}`,
              );
            await new Promise((r) => setTimeout(r, 25));
          }
        },
        stop: async (signal = 'SIGTERM', timeoutMs = 10_000) => {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill(signal);
            const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
            const code = await exited;
            clearTimeout(killer);
            return code;
          }
          return exited;
        },
      };
      resolve(gateway);
    };
    child.stderr!.on('data', onData);
  });
}
