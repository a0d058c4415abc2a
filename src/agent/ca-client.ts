/**
 * The agent's (and the remote CLI's) HTTPS client for the CA. It talks to the CA only over
 * HTTPS, as step-ca's client does, and trusts exactly one thing: the root pinned by the join
 * token (or by `ca.pem` after enrollment). A new https.Agent is made per client so a rotated
 * certificate is never hidden behind a pooled connection or a cached session.
 */
import { request, Agent } from 'node:https';
import { GatehouseError, ERRORS, type ErrorCode } from '../errors/errors.js';
import { decodePem } from '../pki/pem.js';
import { sha256Hex } from '../pki/certificate.js';
import { toPem } from '../pki/pem.js';
import { DEFAULT_RETRY_CAP_MS } from './renew-timing.js';

export interface ClientIdentity {
  keyPem: string;
  certPem: string;
}

export interface CaClientOptions {
  baseUrl: string;
  rootPem: string;
  identity?: ClientIdentity;
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 15_000;
/**
 * The largest answer read from a CA: a secret (500 KiB) and a certificate chain fit many times
 * over. A pinned CA is trusted for what it says, not for how much: a broken or hostile one must
 * not make an agent buffer without end.
 */
export const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const LONG_DAY = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTH = `(${MONTHS.join('|')})`;
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
// RFC 9110 §5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms a recipient must accept.
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`);
const RFC850_DATE = new RegExp(`^${LONG_DAY}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`);
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`);

function httpDate(text: string, now: Date): number | null {
  let m = IMF_FIXDATE.exec(text);
  let parts: [string, string, string, string, string, string] | null = m
    ? [m[3]!, m[2]!, m[1]!, m[4]!, m[5]!, m[6]!]
    : null;
  if (!parts && (m = RFC850_DATE.exec(text))) {
    // Two-digit years: within 50 years from now (RFC 9110 §5.6.7).
    const yy = Number(m[3]);
    const thisYear = now.getUTCFullYear();
    const century = Math.floor(thisYear / 100) * 100;
    const year = century + yy > thisYear + 50 ? century - 100 + yy : century + yy;
    parts = [String(year), m[2]!, m[1]!, m[4]!, m[5]!, m[6]!];
  }
  if (!parts && (m = ASCTIME_DATE.exec(text))) parts = [m[6]!, m[1]!, m[2]!.trim(), m[3]!, m[4]!, m[5]!];
  if (!parts) return null;
  const [year, month, day, hh, mm, ss] = parts;
  const time = Date.UTC(Number(year), MONTHS.indexOf(month), Number(day), Number(hh), Number(mm), Number(ss));
  // Date.UTC rolls 31 Feb over into March: such a date is garbage, not a date.
  const check = new Date(time);
  if (check.getUTCDate() !== Number(day) || Number(hh) > 23 || Number(mm) > 59 || Number(ss) > 60) return null;
  return time;
}

/**
 * A Retry-After header (RFC 9110 §10.2.3) as milliseconds from `now`: delay-seconds or an
 * HTTP-date, at most `capMs`; a date already past is 0. Anything else (empty, negative,
 * fractional, a date in another format, several differing values) is null: ignored, the
 * caller's own backoff applies.
 */
export function parseRetryAfter(
  header: string | string[] | undefined,
  now: Date = new Date(),
  capMs = DEFAULT_RETRY_CAP_MS,
): number | null {
  const values = header === undefined ? [] : Array.isArray(header) ? header : [header];
  if (values.length === 0 || values.some((v) => v !== values[0])) return null;
  const text = values[0]!.trim();
  if (/^\d+$/.test(text)) return Math.min(capMs, Number(text) * 1000);
  const at = httpDate(text, now);
  if (at === null) return null;
  return Math.min(capMs, Math.max(0, at - now.getTime()));
}

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function send(
  url: URL,
  method: string,
  agent: Agent,
  body: string | undefined,
  timeoutMs: number,
  accept = 'application/json',
  maxBytes = MAX_RESPONSE_BYTES,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        agent,
        timeout: timeoutMs,
        headers: {
          accept,
          ...(body !== undefined
            ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
            : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let received = 0;
        res.on('data', (c: Buffer) => {
          received += c.length;
          if (received <= maxBytes) return void chunks.push(c);
          chunks.length = 0;
          reject(
            new GatehouseError(
              'GH_CA_UNREACHABLE',
              `the CA at ${url.origin} answered ${url.pathname} with more than ${maxBytes} bytes; refusing to read on`,
            ),
          );
          req.destroy();
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      reject(
        new GatehouseError('GH_CA_UNREACHABLE', `cannot reach the CA at ${url.origin}: ${err.code ?? err.message}`, {
          cause: err,
        }),
      );
    });
    req.end(body);
  });
}

function parseUrl(baseUrl: string, path: string): URL {
  let url: URL;
  try {
    url = new URL(path, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  } catch {
    throw new GatehouseError('GH_USAGE', `CA URL "${baseUrl}" is not a valid URL`);
  }
  if (url.protocol !== 'https:') throw new GatehouseError('GH_USAGE', `CA URL must be https:// (got ${url.protocol})`);
  return url;
}

/**
 * Fetches /roots without trusting the TLS connection, then keeps only the root whose SHA-256
 * matches the pin. Nothing else from this connection is used, so an attacker in the middle
 * can at most refuse service.
 */
export async function fetchPinnedRoot(
  baseUrl: string,
  pinnedFingerprint: string,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<{ rootDer: Buffer; rootPem: string }> {
  const agent = new Agent({ rejectUnauthorized: false, maxCachedSessions: 0 });
  try {
    const res = await send(
      parseUrl(baseUrl, 'roots'),
      'GET',
      agent,
      undefined,
      timeoutMs,
      'application/pem-certificate-chain',
    );
    if (res.status !== 200) throw new GatehouseError('GH_CA_UNREACHABLE', `GET /roots answered HTTP ${res.status}`);
    const roots = decodePem(res.body.toString('utf8'), 'CERTIFICATE');
    const match = roots.find((der) => sha256Hex(der) === pinnedFingerprint.toLowerCase());
    if (!match) {
      const seen = roots.map((der) => sha256Hex(der)).join(', ') || 'none';
      const rotated = await replacedInRotation(baseUrl, pinnedFingerprint, agent, timeoutMs);
      if (rotated) {
        throw new GatehouseError(
          'GH_CA_PIN_MISMATCH',
          `the join token pins the root ${pinnedFingerprint}, which the CA at ${baseUrl} says it replaced with ${rotated.nextRoot} in a root rotation finished at ${rotated.finishedAt}; make a new token (gatehouse token create), which pins the new root. Refusing to continue`,
        );
      }
      throw new GatehouseError(
        'GH_CA_PIN_MISMATCH',
        `the CA at ${baseUrl} presented root(s) ${seen}, but the join token pins ${pinnedFingerprint}; refusing to continue (wrong URL, or someone in the middle)`,
      );
    }
    return { rootDer: match, rootPem: toPem('CERTIFICATE', match) };
  } finally {
    agent.destroy();
  }
}

/**
 * For the message only, never for trust (the connection is not authenticated yet): whether the
 * CA says the pinned root is the one a finished root rotation replaced.
 */
async function replacedInRotation(
  baseUrl: string,
  pin: string,
  agent: Agent,
  timeoutMs: number,
): Promise<{ nextRoot: string; finishedAt: string } | null> {
  try {
    const res = await send(
      parseUrl(baseUrl, 'roots?format=json'),
      'GET',
      agent,
      undefined,
      timeoutMs,
      'application/json',
    );
    const rotation = (
      JSON.parse(res.body.toString('utf8')) as {
        rotation?: { phase?: unknown; previousRoot?: unknown; nextRoot?: unknown; finishedAt?: unknown } | null;
      }
    ).rotation;
    if (rotation?.phase !== 'finished' || rotation.previousRoot !== pin.toLowerCase()) return null;
    const hex = (v: unknown) => (typeof v === 'string' && /^[0-9a-f]{64}$/.test(v) ? v : '?');
    return {
      nextRoot: hex(rotation.nextRoot),
      finishedAt: typeof rotation.finishedAt === 'string' ? rotation.finishedAt.slice(0, 40) : '?',
    };
  } catch {
    return null;
  }
}

export class CaClient {
  private readonly agent: Agent;
  private readonly timeoutMs: number;

  constructor(private readonly options: CaClientOptions) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.agent = new Agent({
      ca: options.rootPem,
      minVersion: 'TLSv1.2',
      keepAlive: true,
      maxCachedSessions: 0,
      ...(options.identity ? { key: options.identity.keyPem, cert: options.identity.certPem } : {}),
    });
  }

  async getJson<T>(path: string): Promise<T> {
    return this.decode<T>(
      await send(parseUrl(this.options.baseUrl, path), 'GET', this.agent, undefined, this.timeoutMs),
      path,
    );
  }

  async postJson<T>(path: string, body: unknown): Promise<T> {
    return this.decode<T>(
      await send(parseUrl(this.options.baseUrl, path), 'POST', this.agent, JSON.stringify(body), this.timeoutMs),
      path,
    );
  }

  async getBytes(path: string, accept: string): Promise<Buffer> {
    const res = await send(parseUrl(this.options.baseUrl, path), 'GET', this.agent, undefined, this.timeoutMs, accept);
    if (res.status !== 200) this.decode(res, path);
    return res.body;
  }

  /** The body of a 200, with the secret's version header (GET /v1/secrets/NAME). */
  async getBytesWithHeaders(path: string, accept: string): Promise<{ body: Buffer; version: string | null }> {
    const res = await send(parseUrl(this.options.baseUrl, path), 'GET', this.agent, undefined, this.timeoutMs, accept);
    if (res.status !== 200) this.decode(res, path);
    const version = res.headers['gatehouse-secret-version'];
    return { body: res.body, version: typeof version === 'string' ? version : null };
  }

  close(): void {
    this.agent.destroy();
  }

  /**
   * A CA refusal keeps the CA's error code, so callers and exit codes can tell why. A 503 (the
   * CA cannot reach its store) or 429 (rate limited) keeps the CA's Retry-After as
   * details.retryAfterMs, which `agent run` waits for at least before it asks again.
   */
  private decode<T>(res: RawResponse, path: string): T {
    const retryAfterMs = res.status === 503 || res.status === 429 ? parseRetryAfter(res.headers['retry-after']) : null;
    const details = { status: res.status, ...(retryAfterMs !== null ? { retryAfterMs } : {}) };
    let parsed: unknown;
    try {
      parsed = JSON.parse(res.body.toString('utf8'));
    } catch {
      throw new GatehouseError(
        'GH_CA_UNREACHABLE',
        `the CA answered ${path} with HTTP ${res.status} and a body that is not JSON`,
        { details },
      );
    }
    if (res.status >= 200 && res.status < 300) return parsed as T;
    const error = (parsed as { error?: { code?: string; message?: string; requestId?: string } }).error;
    const code = error?.code && Object.hasOwn(ERRORS, error.code) ? (error.code as ErrorCode) : 'GH_CA_UNREACHABLE';
    throw new GatehouseError(
      code,
      `CA refused ${path}: ${error?.message ?? `HTTP ${res.status}`}${error?.requestId && !error.message?.includes(error.requestId) ? ` (requestId ${error.requestId})` : ''}`,
      { details },
    );
  }
}

/** The Retry-After a CA sent with this refusal, in ms (already capped), or null. */
export function retryAfterOf(err: unknown): number | null {
  const value = err instanceof GatehouseError ? err.details?.retryAfterMs : undefined;
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : null;
}
