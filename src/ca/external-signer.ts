/**
 * Client of an external cfssl-compatible signer, for registration-authority mode: Gatehouse
 * keeps enrollment, tokens, inventory and audit, and the signer only signs (as Docker Swarm's
 * `--external-ca`). One POST per request to /api/v1/cfssl/sign, or /api/v1/cfssl/authsign when
 * an auth key is set. What the signer returns is untrusted until external-check.ts accepts it.
 *
 * Plain http:// is accepted, but authsign's HMAC protects only the integrity of the request:
 * the answer (the certificate) is unauthenticated and the CSR and names travel in clear. Use
 * https:// with the signer's CA, and mutual TLS where the signer supports it.
 */
import { createHmac } from 'node:crypto';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { GatehouseError } from '../errors/errors.js';
import { decodePem } from '../pki/pem.js';

export interface ExternalSignerOptions {
  url: string;
  authKeyHex?: string | null;
  tls?: { caPem: string; certPem?: string; keyPem?: string } | null;
  timeoutMs?: number;
  maxResponseBytes?: number;
}

export interface ExternalSignRequest {
  csrPem: string;
  profile: string;
  subject: { commonName: string; organization: string; organizationalUnit: string };
  hosts: string[];
}

const SIGN_PATH = '/api/v1/cfssl/sign';
const AUTHSIGN_PATH = '/api/v1/cfssl/authsign';
const DEFAULT_TIMEOUT_MS = 5000; // Swarm's external CA client
const DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024; // Swarm's bound on a signer's answer
const MAX_SIGNER_TEXT = 300;

interface RawAnswer {
  status: number;
  body: Buffer;
}

interface CfsslAnswer {
  success?: unknown;
  result?: { certificate?: unknown } | null;
  errors?: Array<{ code?: unknown; message?: unknown }> | null;
}

export class ExternalSigner {
  private readonly endpoint: URL;
  /** The endpoint as messages show it: no userinfo, no query. */
  readonly displayUrl: string;
  private readonly authKey: Buffer | null;
  private readonly tls: ExternalSignerOptions['tls'];
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;

  constructor(options: ExternalSignerOptions) {
    this.authKey = parseAuthKey(options.authKeyHex);
    this.endpoint = endpointUrl(options.url, this.authKey ? AUTHSIGN_PATH : SIGN_PATH);
    this.displayUrl = `${this.endpoint.protocol}//${this.endpoint.host}${this.endpoint.pathname}`;
    this.tls = options.tls ?? null;
    if (this.tls && this.endpoint.protocol !== 'https:')
      throw configError('externalCa.tls is set but the URL is not https://');
    this.timeoutMs = positive(options.timeoutMs, DEFAULT_TIMEOUT_MS, 'timeoutMs');
    this.maxResponseBytes = positive(options.maxResponseBytes, DEFAULT_MAX_RESPONSE_BYTES, 'maxResponseBytes');
  }

  /** Sends the request and returns the leaf certificate's DER, unchecked. */
  async sign(request: ExternalSignRequest): Promise<Buffer> {
    const answer = await this.post(this.body(request));
    return this.certificateFrom(answer);
  }

  /** The cfssl sign request; wrapped in an AuthenticatedRequest for authsign. */
  private body(request: ExternalSignRequest): Buffer {
    const signRequest = Buffer.from(
      JSON.stringify({
        certificate_request: request.csrPem,
        profile: request.profile,
        hosts: request.hosts, // cfssl: a non-null "hosts" replaces every SAN of the CSR
        subject: {
          CN: request.subject.commonName,
          names: [{ O: request.subject.organization, OU: request.subject.organizationalUnit }],
        },
      }),
    );
    if (!this.authKey) return signRequest;
    // cfssl auth.Standard: token = HMAC-SHA256(hex-decoded key, request bytes); both fields
    // are Go []byte, so base64 in JSON. The signer verifies the HMAC over these exact bytes.
    const token = createHmac('sha256', this.authKey).update(signRequest).digest();
    return Buffer.from(JSON.stringify({ token: token.toString('base64'), request: signRequest.toString('base64') }));
  }

  private post(body: Buffer): Promise<RawAnswer> {
    const send = this.endpoint.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const fail = (err: GatehouseError) => {
        clearTimeout(timer);
        req.destroy();
        reject(err);
      };
      const req = send(this.endpoint, this.requestOptions(body.length), (res) =>
        this.read(res, resolve, fail, () => clearTimeout(timer)),
      );
      // One deadline for connect, TLS, request and the whole answer: a signer that trickles
      // bytes cannot hold an enrollment longer than timeoutMs.
      const timer = setTimeout(
        () => fail(this.unreachable(`did not answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      req.on('error', (err) => fail(this.unreachable(describeNetworkError(err), err)));
      req.end(body);
    });
  }

  private requestOptions(length: number): RequestOptions & Record<string, unknown> {
    const options: RequestOptions & Record<string, unknown> = {
      method: 'POST',
      agent: false, // no pooled connection or cached TLS session outlives this request
      headers: { 'content-type': 'application/json', 'content-length': String(length), accept: 'application/json' },
    };
    if (this.tls) {
      // `ca` replaces Node's bundled roots: only the configured CA can vouch for the signer.
      options.ca = this.tls.caPem;
      if (this.tls.certPem) options.cert = this.tls.certPem;
      if (this.tls.keyPem) options.key = this.tls.keyPem;
    }
    return options;
  }

  /** Reads at most maxResponseBytes; past that the connection is cut, nothing more is buffered. */
  private read(
    res: IncomingMessage,
    resolve: (a: RawAnswer) => void,
    fail: (e: GatehouseError) => void,
    done: () => void,
  ): void {
    const limit = this.maxResponseBytes;
    const declared = Number(res.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      fail(this.unreachable(`answered with a body of ${declared} bytes, over the ${limit}-byte limit`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) fail(this.unreachable(`answered with a body over the ${limit}-byte limit`));
      else chunks.push(chunk);
    });
    res.on('error', (err) => fail(this.unreachable(`broke off its answer: ${err.message}`, err)));
    res.on('end', () => {
      if (size > limit) return;
      done();
      resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) });
    });
  }

  private certificateFrom(answer: RawAnswer): Buffer {
    const parsed = parseCfsslAnswer(answer.body);
    if (!parsed) return this.failWithoutCfsslBody(answer);
    if (parsed.success !== true) {
      const why = signerErrors(parsed);
      throw new GatehouseError(
        'GH_EXTERNAL_CA_REFUSED',
        `the external CA at ${this.displayUrl} refused the request (HTTP ${answer.status}): ${why}`,
      );
    }
    const pem = typeof parsed.result?.certificate === 'string' ? parsed.result.certificate : '';
    let certs: Buffer[] = [];
    try {
      certs = decodePem(pem, 'CERTIFICATE');
    } catch {
      /* counted below */
    }
    if (answer.status !== 200 || certs.length !== 1) {
      const what = certs.length === 0 ? 'no PEM certificate' : `${certs.length} certificates instead of one`;
      throw this.unreachable(`answered success with HTTP ${answer.status} and ${what} in result.certificate`);
    }
    return certs[0]!;
  }

  /**
   * No cfssl body: a 4xx is a refusal (retrying the same request will not help, e.g. a wrong
   * path); anything else means the signer, or a proxy in front of it, is not working.
   */
  private failWithoutCfsslBody(answer: RawAnswer): never {
    const excerpt = bounded(answer.body.toString('utf8').replace(/\s+/g, ' ').trim()) || '(empty body)';
    if (answer.status >= 400 && answer.status < 500) {
      const what = `refused the request with HTTP ${answer.status} and no cfssl answer: ${excerpt}`;
      throw new GatehouseError('GH_EXTERNAL_CA_REFUSED', `the external CA at ${this.displayUrl} ${what}`);
    }
    throw this.unreachable(`answered HTTP ${answer.status} with a body that is not a cfssl JSON answer: ${excerpt}`);
  }

  private unreachable(what: string, cause?: unknown): GatehouseError {
    return new GatehouseError(
      'GH_EXTERNAL_CA_UNREACHABLE',
      `the external CA at ${this.displayUrl} ${what}`,
      cause === undefined ? {} : { cause },
    );
  }
}

function parseCfsslAnswer(body: Buffer): CfsslAnswer | null {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    return value !== null && typeof value === 'object' && 'success' in value ? (value as CfsslAnswer) : null;
  } catch {
    return null;
  }
}

/** cfssl's own code and message, e.g. "1000: invalid token", bounded so a signer cannot flood the log. */
function signerErrors(answer: CfsslAnswer): string {
  const errors = Array.isArray(answer.errors) ? answer.errors : [];
  const text = errors.map((e) => `${String(e?.code ?? '?')}: ${String(e?.message ?? '')}`).join('; ');
  return bounded(text) || 'no error given';
}

function bounded(text: string): string {
  const clean = text.replace(/[\x00-\x1f\x7f]/g, ' ');
  return clean.length > MAX_SIGNER_TEXT ? `${clean.slice(0, MAX_SIGNER_TEXT)}…` : clean;
}

/** Node's network and TLS errors in words; TLS verification codes come from OpenSSL. */
function describeNetworkError(err: Error & { code?: string }): string {
  const code = err.code ?? '';
  if (code === 'ECONNREFUSED') return 'refused the connection (nothing listens there)';
  if (code === 'ECONNRESET') return 'reset the connection';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `could not be resolved (${code})`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return `presented a TLS certificate not valid for this host: ${err.message}`;
  if (/CERT|SELF_SIGNED|UNABLE_TO|SIGNATURE/.test(code))
    return `presented a TLS certificate that the configured CA does not verify (${code}: ${err.message})`;
  if (/SSL|TLS|alert/i.test(code + err.message))
    return `failed the TLS handshake: ${code ? `${code}: ` : ''}${err.message}`;
  return `could not be reached: ${code ? `${code}: ` : ''}${err.message}`;
}

function endpointUrl(base: string, path: string): URL {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw configError('externalCa.url is not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw configError(`externalCa.url must be http:// or https://, not ${url.protocol}//`);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${path}`;
  url.hash = '';
  return url;
}

/** Never echoes the key: a config error must not put the secret in a log. */
function parseAuthKey(hex: string | null | undefined): Buffer | null {
  if (hex === null || hex === undefined) return null;
  const trimmed = hex.trim();
  if (trimmed.length === 0 || trimmed.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(trimmed)) {
    throw configError('externalCa.authKey must be a non-empty, even-length hex string (cfssl "standard" auth key)');
  }
  return Buffer.from(trimmed, 'hex');
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw configError(`externalCa.${name} must be a positive number`);
  return value;
}

function configError(message: string): GatehouseError {
  return new GatehouseError('GH_CONFIG_INVALID', message);
}
