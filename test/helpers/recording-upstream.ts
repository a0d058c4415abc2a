/**
 * A recording upstream app for the request-smuggling tests: it logs every request it parses
 * (method, target, version, raw header list, body, trailers) and answers each with a small
 * framed 200 on a kept-alive connection. Two parsers behind one interface, because a desync is
 * a disagreement between two parsers and the gateway must be safe in front of either:
 *
 * - `node`: node:http (llhttp), with no 'upgrade' listener, so an Upgrade request is answered
 *   200 like any other and the connection goes on being parsed as HTTP/1.1;
 * - `python`: Python 3's http.server (recording_upstream.py) in a child process, which reads
 *   bodies by Content-Length and decodes chunked itself.
 *
 * A request is recorded when its head is parsed (an app's handler runs then) and completed
 * when its body has been read, so a request whose body never arrives still shows up.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pollUntil } from './poll.js';

export type UpstreamKind = 'node' | 'python';

export interface RecordedRequest {
  method: string;
  /** The request target as the app's parser read it. */
  target: string;
  /** `1.1`, `1.0` (node) or `HTTP/1.1` (python): as the parser reports it. */
  version: string;
  /** Raw header list in arrival order, duplicates kept. */
  headers: Array<[string, string]>;
  body: Buffer;
  trailers: Array<[string, string]>;
  /** False while (or if forever) the body is still unread, or when reading it failed. */
  complete: boolean;
  error: string | null;
}

export interface RecordingUpstream {
  kind: UpstreamKind;
  url: string;
  /** Every request parsed so far, in the order their heads were parsed. */
  requests(): RecordedRequest[];
  /** Resolves with requests() once at least `n` were parsed; rejects after `deadlineMs`. */
  waitForCount(n: number, deadlineMs: number): Promise<RecordedRequest[]>;
  /** Resolves once `match` holds for some request; rejects after `deadlineMs`. */
  waitFor(match: (r: RecordedRequest) => boolean, deadlineMs: number): Promise<RecordedRequest>;
  close(): Promise<void>;
}

export function startRecordingUpstream(kind: UpstreamKind): Promise<RecordingUpstream> {
  return kind === 'node' ? startNodeUpstream() : startPythonUpstream();
}

/** Polls `check` every 10 ms until it returns a value, or fails after `deadlineMs`. */
export function waitUntil<T>(check: () => T | undefined, deadlineMs: number, what: string): Promise<T> {
  return pollUntil(what, check, deadlineMs, 10);
}

function withWaits(
  kind: UpstreamKind,
  url: string,
  log: RecordedRequest[],
  close: () => Promise<void>,
): RecordingUpstream {
  return {
    kind,
    url,
    requests: () => [...log],
    waitForCount: (n, deadlineMs) =>
      waitUntil(() => (log.length >= n ? [...log] : undefined), deadlineMs, `${n} upstream requests (${kind})`),
    waitFor: (match, deadlineMs) =>
      waitUntil(() => log.find(match), deadlineMs, `a matching upstream request (${kind})`),
    close,
  };
}

const pairs = (flat: string[]): Array<[string, string]> => {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
};

async function startNodeUpstream(): Promise<RecordingUpstream> {
  const log: RecordedRequest[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const record: RecordedRequest = {
      method: req.method ?? '',
      target: req.url ?? '',
      version: req.httpVersion,
      headers: pairs(req.rawHeaders),
      body: Buffer.alloc(0),
      trailers: [],
      complete: false,
      error: null,
    };
    log.push(record);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('error', (err) => {
      record.error = err.message;
      record.body = Buffer.concat(chunks);
    });
    req.on('end', () => {
      record.body = Buffer.concat(chunks);
      record.trailers = pairs(req.rawTrailers);
      record.complete = true;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 3, connection: 'keep-alive' }).end('ok\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return withWaits(
    'node',
    url,
    log,
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
}

/** recording_upstream.py stays in the source tree (tsc copies no .py): found from here or from cwd. */
function pythonScript(): string {
  const name = join('test', 'helpers', 'recording_upstream.py');
  for (let dir = dirname(fileURLToPath(import.meta.url)); dirname(dir) !== dir; dir = dirname(dir)) {
    if (existsSync(join(dir, name))) return join(dir, name);
  }
  if (existsSync(join(process.cwd(), name))) return join(process.cwd(), name);
  throw new Error(`cannot find ${name} above ${fileURLToPath(import.meta.url)}`);
}

interface PyLine {
  phase: 'listening' | 'head' | 'end';
  port?: number;
  id?: number;
  method?: string;
  target?: string;
  version?: string;
  headers?: Array<[string, string]>;
  body?: string;
  trailers?: Array<[string, string]>;
  complete?: boolean;
  error?: string | null;
}

async function startPythonUpstream(): Promise<RecordingUpstream> {
  // A missing python3 fails loudly: this parser is the point of the second run, never skipped.
  const probe = spawnSync('python3', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0)
    throw new Error(`python3 is required for the Python recording upstream: ${probe.error?.message ?? probe.stderr}`);
  const child: ChildProcess = spawn('python3', ['-u', pythonScript()], { stdio: ['pipe', 'pipe', 'pipe'] });
  const log: RecordedRequest[] = [];
  const byId = new Map<number, RecordedRequest>();
  let stderr = '';
  let partial = '';
  const listening: { port: number | null } = { port: null };
  const onLine = (line: PyLine) => {
    if (line.phase === 'listening') listening.port = line.port!;
    else if (line.phase === 'head') {
      const record: RecordedRequest = {
        method: line.method!,
        target: line.target!,
        version: line.version!,
        headers: line.headers!,
        body: Buffer.alloc(0),
        trailers: [],
        complete: false,
        error: null,
      };
      byId.set(line.id!, record);
      log.push(record);
    } else {
      const record = byId.get(line.id!);
      if (!record) return;
      record.body = Buffer.from(line.body ?? '', 'base64');
      record.trailers = line.trailers ?? [];
      record.complete = line.complete === true;
      record.error = line.error ?? null;
    }
  };
  child.stdout!.on('data', (chunk: Buffer) => {
    partial += chunk.toString('utf8');
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const text = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      if (text.trim()) onLine(JSON.parse(text) as PyLine);
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => void (stderr += chunk.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitUntil(
      () => listening.port ?? (child.exitCode !== null ? -1 : undefined),
      10_000,
      'the Python upstream to listen',
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${stderr}`, { cause: err });
  }
  const port = listening.port;
  if (port === null || port < 0) throw new Error(`the Python upstream exited before listening:\n${stderr}`);
  return withWaits('python', `http://127.0.0.1:${port}`, log, async () => {
    child.stdin!.end();
    const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(killer);
  });
}
