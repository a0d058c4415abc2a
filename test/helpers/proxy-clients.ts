/**
 * The client side of the interop tests: curl and `openssl s_client` against a proxy on
 * localhost, their answers parsed, and what the echo app says it received. Re-exported by
 * proxy-peers.ts.
 */
import assert from 'node:assert/strict';
import { run, type RunResult } from './run.js';

export interface HttpAnswer {
  status: number;
  headers: Map<string, string>;
  body: string;
}

export function parseHttp(text: string): HttpAnswer | null {
  const start = text.search(/HTTP\/1\.[01] \d{3}/);
  if (start < 0) return null;
  const rest = text.slice(start);
  const end = rest.indexOf('\r\n\r\n');
  const head = end < 0 ? rest : rest.slice(0, end);
  const [statusLine, ...lines] = head.split('\r\n');
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  let body = end < 0 ? '' : rest.slice(end + 4);
  const length = headers.get('content-length');
  if (length !== undefined) body = Buffer.from(body, 'utf8').subarray(0, Number(length)).toString('utf8');
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine!)![1]), headers, body };
}

export interface CurlAnswer {
  /** curl's exit status: 0 when an HTTP answer came back, 35/56/… when TLS was refused. */
  exit: number | null;
  http: HttpAnswer | null;
  stderr: string;
}

export interface ClientCert {
  certPath: string;
  keyPath: string;
}

/** curl to https://localhost:PORT/PATH over HTTP/1.1, trusting `cacert`, optionally with a client certificate. */
export async function curlProxy(
  port: number,
  options: { cacert: string; client?: ClientCert; headers?: string[]; path?: string },
): Promise<CurlAnswer> {
  const r = await run(
    'curl',
    [
      '-sS',
      '-i',
      '--http1.1',
      '--max-time',
      '15',
      '--cacert',
      options.cacert,
      ...(options.client ? ['--cert', options.client.certPath, '--key', options.client.keyPath] : []),
      ...(options.headers ?? []).flatMap((h) => ['-H', h]),
      `https://localhost:${port}${options.path ?? '/'}`,
    ],
    { timeoutMs: 30_000 },
  );
  return { exit: r.status, http: parseHttp(r.stdout), stderr: r.stderr };
}

export function describeAnswer(a: CurlAnswer): string {
  return `curl exit ${a.exit}; ${a.http ? `HTTP ${a.http.status} ${a.http.body.slice(0, 600)}` : 'no HTTP answer'}; stderr: ${a.stderr.trim().slice(0, 600)}`;
}

export interface Echoed {
  url: string;
  rawHeaders: string[];
}

/** The echo app's view of a request that reached it. */
export function echoedBy(answer: CurlAnswer): Echoed {
  assert.equal(answer.http?.status, 200, describeAnswer(answer));
  try {
    return JSON.parse(answer.http!.body) as Echoed;
  } catch {
    assert.fail(`the app's echo was expected, got: ${answer.http!.body.slice(0, 500)}`);
  }
}

/** Every header the app received whose name starts with X-Client- or X_Client_, as [lowercase name, value]. */
export function clientIdentityHeaders(echoed: Echoed): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < echoed.rawHeaders.length; i += 2) {
    const name = echoed.rawHeaders[i]!.toLowerCase();
    if (/^x[-_]client[-_]/.test(name)) out.push([name, echoed.rawHeaders[i + 1]!]);
  }
  return out.sort((a, b) => a[0].localeCompare(b[0]) || a[1].localeCompare(b[1]));
}

/** Forged identity headers a client might send: the two the recipes set, an underscore twin, and a role. */
export const FORGED_HEADERS = [
  'X-Client-Subject: CN=admin-1,OU=admin,O=Acme Interop',
  'X-Client-Verify: SUCCESS',
  'X_Client_Subject: CN=admin-2,OU=admin,O=Acme Interop',
  'X-Client-Role: admin',
];

export interface SClientAnswer {
  exit: number | null;
  reused: boolean;
  protocol: string;
  http: HttpAnswer | null;
  /** Serial (lowercase hex) of the certificate the server presented, when the handshake got that far. */
  serverSerial: string | null;
  raw: RunResult;
}

const SCLIENT_REQUEST = 'GET /session HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n';

/**
 * One `openssl s_client` connection with one request. `-ign_eof` reads on after stdin ends,
 * until the server closes (Connection: close), so TLS 1.3 tickets sent after the handshake
 * arrive and `-sess_out` saves a resumable session.
 */
export async function sClient(port: number, cafile: string, args: string[]): Promise<SClientAnswer> {
  const raw = await run(
    'openssl',
    ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-CAfile', cafile, '-ign_eof', ...args],
    { input: SCLIENT_REQUEST, timeoutMs: 20_000 },
  );
  const summary = /^(New|Reused), (\S+), Cipher is (\S+)/m.exec(raw.stdout);
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(raw.stdout)?.[0];
  let serverSerial: string | null = null;
  if (pem) {
    const x = await run('openssl', ['x509', '-noout', '-serial'], { input: `${pem}\n` });
    serverSerial = /serial=([0-9A-F]+)/i.exec(x.stdout)?.[1]?.toLowerCase() ?? null;
  }
  return {
    exit: raw.status,
    reused: summary?.[1] === 'Reused',
    protocol: summary?.[2] ?? '',
    http: parseHttp(raw.stdout),
    serverSerial,
    raw,
  };
}

/**
 * The alert a server sends when it refuses the handshake, as `openssl s_client` reports it.
 * No request is sent: with TLS 1.3 the client finishes its side of the handshake before the
 * server has judged its certificate, and data sent then can make the server's TCP stack answer
 * with a reset that loses the alert (curl then reports only "connection reset" or "getpeername"),
 * so curl shows that the request was refused and this shows why.
 */
export async function handshakeAlert(port: number, cafile: string, args: string[] = []): Promise<string> {
  const r = await run(
    'openssl',
    ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-CAfile', cafile, '-ign_eof', ...args],
    { input: '', timeoutMs: 20_000 },
  );
  return (
    /alert [a-z ]+/.exec(`${r.stderr}\n${r.stdout}`)?.[0] ?? `(no alert; exit ${r.status}; ${r.stderr.slice(-500)})`
  );
}

export const TLS_VERSIONS = [
  ['tls13', ['-tls1_3']],
  ['tls12', ['-tls1_2']],
] as const;
