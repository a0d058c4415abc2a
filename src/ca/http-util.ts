/** Small HTTP helpers for the CA API: request IDs, bounded JSON bodies and JSON errors. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { GatehouseError, toGatehouseError } from '../errors/errors.js';
import type { Logger } from '../log/logger.js';
import { publicMessage, STORE_RETRY_AFTER_S } from '../errors/public-error.js';

export function newRequestId(): string {
  return randomBytes(8).toString('hex');
}

/** The whole body, refused with GH_BODY_TOO_LARGE past `maxBytes` (declared or as it arrives). */
export async function readBoundedBody(req: IncomingMessage, maxBytes: number, what = 'request body'): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume();
    throw new GatehouseError('GH_BODY_TOO_LARGE', `${what} of ${declared} bytes exceeds the ${maxBytes}-byte limit`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      req.resume();
      throw new GatehouseError('GH_BODY_TOO_LARGE', `${what} exceeds the ${maxBytes}-byte limit`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  const body = await readBoundedBody(req, maxBytes);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new GatehouseError('GH_BODY_INVALID', 'request body is not valid JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new GatehouseError('GH_BODY_INVALID', 'request body must be a JSON object');
  return parsed as Record<string, unknown>;
}

export function stringField(body: Record<string, unknown>, name: string, required: true): string;
export function stringField(body: Record<string, unknown>, name: string, required?: false): string | undefined;
export function stringField(body: Record<string, unknown>, name: string, required = false): string | undefined {
  const value = body[name];
  if (value === undefined || value === null) {
    if (required) throw new GatehouseError('GH_BODY_INVALID', `field "${name}" is required`);
    return undefined;
  }
  if (typeof value !== 'string') throw new GatehouseError('GH_BODY_INVALID', `field "${name}" must be a string`);
  return value;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/** The log line of a failed request: everything, at error level when the caller was not told why. */
export function logRequestFailure(logger: Logger, error: GatehouseError, requestId: string): void {
  // A 429 is logged by its limiter, once a minute (rate-limit.ts): per request, a flood would fill the log.
  const log = error.code === 'GH_RATE_LIMITED' ? logger.debug : error.spec.expose ? logger.info : logger.error;
  log('ca.request_failed', {
    requestId,
    code: error.code,
    err: error,
    details: error.details,
    cause: error.cause instanceof Error ? error.cause.stack : undefined,
  });
}

/** An error as JSON, its message as publicMessage allows (errors/public-error.ts). */
export function sendError(res: ServerResponse, err: unknown, requestId: string, logger: Logger): number {
  const error = toGatehouseError(err);
  const spec = error.spec;
  logRequestFailure(logger, error, requestId);
  // RFC 9110 §10.2.3: a 503 says when to come back; agents and gateways honour it.
  if (!res.headersSent && spec.http === 503 && !res.hasHeader('retry-after'))
    res.setHeader('retry-after', String(STORE_RETRY_AFTER_S));
  if (!res.headersSent)
    sendJson(res, spec.http, { error: { code: error.code, message: publicMessage(error, requestId), requestId } });
  else res.destroy();
  return spec.http;
}
