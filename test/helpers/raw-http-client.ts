/**
 * A raw HTTP/1.x client over mutual TLS for the request-smuggling tests: it writes exact bytes
 * (no HTTP library normalizes anything), possibly in several writes with waits driven by what
 * came back, reads until the server closes or goes quiet, and splits the answer into
 * responses with a strict splitter (CRLF only, framed by Content-Length or chunked).
 */
import { connect, type TLSSocket } from 'node:tls';

/**
 * One step of an exchange: bytes to write (each a write of its own, so a TLS record of its
 * own), or a wait for the answer so far to match (`waitFor`) or to hold `responses` complete
 * responses; a wait that times out is not an error, the next step just goes ahead.
 */
export type Step =
  string | Buffer | { waitFor: RegExp; deadlineMs?: number } | { responses: number; deadlineMs?: number };

export interface RawResponse {
  version: string;
  status: number;
  reason: string;
  headers: Array<[string, string]>;
  body: Buffer;
}

export interface RawExchange {
  raw: Buffer;
  responses: RawResponse[];
  /** Bytes after the last complete response (garbage, or a response cut short). */
  rest: Buffer;
  /** 'close': the server closed (or reset) the connection; 'idle': it went quiet; 'deadline': maxMs passed. */
  endedBy: 'close' | 'idle' | 'deadline';
  error: string | null;
}

export interface RawOptions {
  port: number;
  /** PEM of the CA the gateway's certificate chains to. */
  ca: string;
  /** Client certificate and key (PEM); omitted: no client certificate. */
  cert?: string;
  key?: string;
  steps: Step[];
  /** Quiet time after the last byte (either way) that ends the exchange. Default 200 ms. */
  idleMs?: number;
  /** While fewer complete final responses than this arrived, quiet does not end the exchange. */
  minResponses?: number;
  /** Hard limit for the whole exchange. Default 4 s. */
  maxMs?: number;
  /** Responses carry no body whatever their headers say (answers to HEAD). */
  bodiless?: boolean | undefined;
}

export function header(r: RawResponse, name: string): string | undefined {
  return r.headers.find(([n]) => n.toLowerCase() === name)?.[1];
}

/** Final responses only (1xx interim responses dropped). */
export function finalResponses(x: RawExchange): RawResponse[] {
  return x.responses.filter((r) => r.status >= 200);
}

export async function rawExchange(options: RawOptions): Promise<RawExchange> {
  const started = Date.now();
  const maxMs = options.maxMs ?? 4000;
  const idleMs = options.idleMs ?? 200;
  const chunks: Buffer[] = [];
  let lastActivity = Date.now();
  let closed = false;
  let error: string | null = null;
  const socket: TLSSocket = connect({
    host: '127.0.0.1',
    port: options.port,
    servername: 'localhost',
    ca: options.ca,
    cert: options.cert,
    key: options.key,
    rejectUnauthorized: true,
    ALPNProtocols: ['http/1.1'],
  });
  socket.on('data', (d: Buffer) => {
    chunks.push(d);
    lastActivity = Date.now();
  });
  socket.on('error', (err: NodeJS.ErrnoException) => {
    error ??= err.code ?? err.message;
    closed = true;
  });
  socket.on('close', () => {
    closed = true;
  });
  const received = () => Buffer.concat(chunks);
  const split = () => splitResponses(received(), { bodiless: options.bodiless === true, closed });
  const waitFor = async (done: () => boolean, deadlineMs: number) => {
    const deadline = Math.min(Date.now() + deadlineMs, started + maxMs);
    while (!done() && !closed && Date.now() < deadline) await tick();
  };

  await new Promise<void>((resolve) => {
    socket.once('secureConnect', () => resolve());
    socket.once('close', () => resolve());
  });
  for (const step of options.steps) {
    if (closed) break;
    if (typeof step === 'string' || Buffer.isBuffer(step)) {
      const bytes = typeof step === 'string' ? Buffer.from(step, 'latin1') : step;
      await new Promise<void>((resolve) => socket.write(bytes, () => resolve()));
      lastActivity = Date.now();
    } else if ('waitFor' in step) {
      await waitFor(() => step.waitFor.test(received().toString('latin1')), step.deadlineMs ?? 1000);
    } else {
      await waitFor(
        () => split().responses.filter((r) => r.status >= 200).length >= step.responses,
        step.deadlineMs ?? 2000,
      );
    }
  }
  const minResponses = options.minResponses ?? 0;
  const quiet = () =>
    Date.now() - lastActivity >= idleMs && split().responses.filter((r) => r.status >= 200).length >= minResponses;
  while (!closed && !quiet() && Date.now() - started < maxMs) await tick();
  const endedBy = closed ? 'close' : quiet() ? 'idle' : 'deadline';
  socket.destroy();
  const { responses, rest } = splitResponses(received(), {
    bodiless: options.bodiless === true,
    closed: endedBy === 'close',
  });
  return { raw: received(), responses, rest, endedBy, error };
}

const tick = () => new Promise((r) => setTimeout(r, 5));

/**
 * Strict response splitter: a status line and header lines ending in CRLF, then a body framed
 * by RFC 9112 §6.3 (no body for 1xx/204/304 or HEAD; chunked; Content-Length; else until the
 * connection closed). Stops at the first thing that is not a complete response.
 */
export function splitResponses(
  data: Buffer,
  options: { bodiless: boolean; closed: boolean },
): { responses: RawResponse[]; rest: Buffer } {
  const responses: RawResponse[] = [];
  let at = 0;
  for (;;) {
    const parsed = parseOne(data, at, options);
    if (!parsed) break;
    responses.push(parsed.response);
    at = parsed.end;
  }
  return { responses, rest: data.subarray(at) };
}

function parseOne(
  data: Buffer,
  at: number,
  options: { bodiless: boolean; closed: boolean },
): { response: RawResponse; end: number } | null {
  const headEnd = data.indexOf('\r\n\r\n', at, 'latin1');
  if (headEnd < 0) return null;
  const lines = data.subarray(at, headEnd).toString('latin1').split('\r\n');
  const status = /^HTTP\/(\d\.\d) (\d{3}) ?([^\r\n]*)$/.exec(lines[0]!);
  if (!status) return null;
  const headers: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0 || /[\r\n]/.test(line)) return null;
    headers.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
  const response: RawResponse = {
    version: status[1]!,
    status: Number(status[2]),
    reason: status[3]!,
    headers,
    body: Buffer.alloc(0),
  };
  const bodyStart = headEnd + 4;
  if (options.bodiless || response.status < 200 || response.status === 204 || response.status === 304)
    return { response, end: bodyStart };
  if (/chunked/i.test(header(response, 'transfer-encoding') ?? '')) {
    const decoded = decodeChunked(data, bodyStart);
    if (!decoded) return null;
    response.body = decoded.body;
    return { response, end: decoded.end };
  }
  const length = header(response, 'content-length');
  if (length !== undefined) {
    if (!/^\d+$/.test(length)) return null;
    const end = bodyStart + Number(length);
    if (end > data.length) return null;
    response.body = data.subarray(bodyStart, end);
    return { response, end };
  }
  if (!options.closed) return null;
  response.body = data.subarray(bodyStart);
  return { response, end: data.length };
}

function decodeChunked(data: Buffer, at: number): { body: Buffer; end: number } | null {
  const parts: Buffer[] = [];
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at, 'latin1');
    if (lineEnd < 0) return null;
    const size = parseInt(data.subarray(at, lineEnd).toString('latin1').split(';')[0]!.trim(), 16);
    if (!Number.isFinite(size)) return null;
    at = lineEnd + 2;
    if (size === 0) {
      const trailersEnd = data.indexOf('\r\n', at, 'latin1') === at ? at : data.indexOf('\r\n\r\n', at, 'latin1');
      if (trailersEnd < 0) return null;
      return { body: Buffer.concat(parts), end: trailersEnd === at ? at + 2 : trailersEnd + 4 };
    }
    if (at + size + 2 > data.length) return null;
    parts.push(data.subarray(at, at + size));
    at += size + 2;
  }
}
