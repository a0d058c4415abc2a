/**
 * HTTPS helpers for the CA API tests: one request per fresh https.Agent (so each identity gets
 * its own TLS connection and no session is reused), JSON error assertions, CSRs and enrolled
 * identities made through the real HTTP API.
 */
import assert from 'node:assert/strict';
import { Agent, request } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import * as pki from '../../src/pki/index.js';
import type { CaFixture } from './ca-fixture.js';
import { run, type RunResult } from './run.js';

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each test reads the fields it expects
  json: any;
}

export interface CaRequestOptions {
  method?: string;
  body?: string | Buffer | object;
  headers?: Record<string, string>;
  /** Trust anchor for the CA's server certificate (PEM). */
  ca: string;
  /** Client identity for mutual TLS (PEM): key and certificate chain. */
  key?: string;
  cert?: string;
  /** Send the body with chunked transfer encoding (no content-length). */
  chunked?: boolean;
  timeoutMs?: number;
}

/** One HTTPS request on a new https.Agent that is destroyed afterwards. */
export function caRequest(baseUrl: string, path: string, options: CaRequestOptions): Promise<HttpResult> {
  const agent = new Agent({
    ca: options.ca,
    keepAlive: false,
    maxCachedSessions: 0,
    ...(options.key ? { key: options.key } : {}),
    ...(options.cert ? { cert: options.cert } : {}),
  });
  const url = new URL(path, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  let payload: Buffer | undefined;
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.body !== undefined) {
    payload = Buffer.isBuffer(options.body)
      ? options.body
      : Buffer.from(typeof options.body === 'string' ? options.body : JSON.stringify(options.body));
    headers['content-type'] ??= 'application/json';
    if (!options.chunked) headers['content-length'] = String(payload.length);
  }
  return new Promise<HttpResult>((resolve, reject) => {
    const req = request(
      url,
      { method: options.method ?? (payload ? 'POST' : 'GET'), agent, headers, timeout: options.timeoutMs ?? 30_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const text = body.toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json });
        });
      },
    );
    req.on('timeout', () =>
      req.destroy(new Error(`no answer from ${url.href} within ${options.timeoutMs ?? 30_000} ms`)),
    );
    req.on('error', reject);
    if (payload && options.chunked) {
      // Several writes without a content-length: Node sends Transfer-Encoding: chunked.
      const step = 8192;
      for (let i = 0; i < payload.length; i += step) req.write(payload.subarray(i, i + step));
      req.end();
    } else {
      req.end(payload);
    }
  }).finally(() => agent.destroy());
}

/** Asserts the documented JSON error shape and returns the error object. */
export function expectError(
  res: HttpResult,
  status: number,
  code: string,
  what = '',
): { code: string; message: string; requestId: string } {
  const context = `${what ? `${what}: ` : ''}HTTP ${res.status} ${res.text.slice(0, 500)}`;
  assert.equal(res.status, status, context);
  assert.ok(res.json && typeof res.json === 'object' && res.json.error, `error body expected; ${context}`);
  const err = res.json.error as { code: string; message: string; requestId: string };
  assert.equal(err.code, code, context);
  assert.equal(typeof err.message, 'string', context);
  assert.ok(err.message.length > 0, `error message is empty; ${context}`);
  assert.match(err.requestId, /^[0-9a-f]{16}$/, `requestId; ${context}`);
  assert.equal(res.headers['x-request-id'], err.requestId, `x-request-id header matches the body; ${context}`);
  assert.match(String(res.headers['content-type']), /^application\/json/, context);
  return err;
}

export function rootPemOf(fixture: CaFixture): string {
  return fixture.server.authority.rootPem;
}

export function intermediatePemOf(fixture: CaFixture): string {
  return fixture.server.authority.intermediatePem;
}

export interface KeyAndCsr {
  key: KeyObject;
  keyPem: string;
  csr: string;
}

export async function newCsr(
  request: { commonName?: string; dns?: string[]; ip?: string[] },
  keyType: pki.KeyType = 'p256',
): Promise<KeyAndCsr> {
  const key = pki.generatePrivateKey(keyType);
  const csr = await pki.buildCsrPem(key, request);
  return { key, keyPem: pki.privateKeyToPem(key), csr };
}

/** A key and CSR made by `openssl req -new` in `dir`; `addext` values are passed as -addext. */
export async function opensslCsr(
  dir: string,
  file: string,
  subject: string,
  options: { newkey?: string[]; addext?: string[] } = {},
): Promise<{ keyPath: string; csrPath: string; keyPem: string; csr: string }> {
  const keyPath = join(dir, `${file}.key.pem`);
  const csrPath = join(dir, `${file}.csr.pem`);
  const newkey = options.newkey ?? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  const r = await run('openssl', [
    'req',
    '-new',
    ...newkey,
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    csrPath,
    '-subj',
    subject,
    ...(options.addext ?? []).flatMap((e) => ['-addext', e]),
  ]);
  assert.equal(r.status, 0, `openssl req failed: ${output(r)}`);
  return { keyPath, csrPath, keyPem: readFileSync(keyPath, 'utf8'), csr: readFileSync(csrPath, 'utf8') };
}

export function output(r: RunResult): string {
  return `status ${r.status}\nstdout:\n${r.stdout.slice(0, 4000)}\nstderr:\n${r.stderr.slice(0, 4000)}`;
}

export function enrollRequest(
  fixture: CaFixture,
  body: object | string | Buffer,
  extra: Partial<CaRequestOptions> = {},
): Promise<HttpResult> {
  return caRequest(fixture.url, 'enroll', { method: 'POST', ca: rootPemOf(fixture), body, ...extra });
}

export interface EnrolledIdentity {
  keyPem: string;
  /** Leaf then intermediate, as returned in `chain`. */
  certPem: string;
  leafPem: string;
  rootPem: string;
  serial: string;
  fingerprint: string;
  name: string;
  role: string;
  spiffeId: string;
  response: Record<string, string>;
}

/** Creates a token in-process and enrolls a fresh key through POST /enroll. */
export async function enrollIdentity(
  fixture: CaFixture,
  request: { role: string; name: string; dns?: string[]; ip?: string[] },
): Promise<EnrolledIdentity> {
  const { token } = await fixture.server.authority.createToken({ role: request.role }, { actor: 'test' });
  const made = await newCsr({ commonName: request.name, dns: request.dns ?? [], ip: request.ip ?? [] });
  const res = await enrollRequest(fixture, { token, csr: made.csr });
  assert.equal(res.status, 201, `enroll ${request.role}/${request.name}: HTTP ${res.status} ${res.text}`);
  const r = res.json as Record<string, string>;
  return {
    keyPem: made.keyPem,
    certPem: r.chain!,
    leafPem: r.certificate!,
    rootPem: r.root!,
    serial: r.serial!,
    fingerprint: r.fingerprint!,
    name: r.name!,
    role: r.role!,
    spiffeId: r.spiffeId!,
    response: r,
  };
}

export interface IdentityFilesPem {
  key: string;
  cert: string;
  ca: string;
}

export function readIdentityPem(dir: string): IdentityFilesPem {
  return {
    key: readFileSync(join(dir, 'key.pem'), 'utf8'),
    cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    ca: readFileSync(join(dir, 'ca.pem'), 'utf8'),
  };
}

/** Splits a PEM bundle into its CERTIFICATE blocks (PEM text each). */
export function splitCertificates(pem: string): string[] {
  return pki.decodePem(pem, 'CERTIFICATE').map((der) => pki.toPem('CERTIFICATE', der));
}

export function writeText(dir: string, name: string, text: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}
