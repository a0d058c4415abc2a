/** Dashboard responses: the security headers every answer carries, and bounded form bodies. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatehouseError } from '../errors/errors.js';
import { renderDocument, type SafeHtml } from './html.js';
import { readBoundedBody } from '../ca/http-util.js';

/**
 * No inline script or style anywhere (so an injected `<script>` or `onerror=` cannot run even if
 * escaping failed), forms post only to this origin, and no page can be framed (clickjacking).
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "object-src 'none'",
].join('; ');

export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
});

export function sendHtml(res: ServerResponse, status: number, doc: SafeHtml, extra: Record<string, string> = {}): void {
  const body = renderDocument(doc);
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    ...extra,
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

export function sendAsset(res: ServerResponse, contentType: string, body: string): void {
  res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** 303 See Other: after a POST, the browser follows with a GET. */
export function redirect(res: ServerResponse, location: string, status = 303): void {
  res.writeHead(status, { ...SECURITY_HEADERS, location, 'content-length': 0 });
  res.end();
}

/** An `application/x-www-form-urlencoded` body, bounded like every CA request body. */
export async function readFormBody(req: IncomingMessage, maxBytes: number): Promise<URLSearchParams> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    req.resume();
    throw new GatehouseError('GH_BODY_INVALID', 'dashboard forms are sent as application/x-www-form-urlencoded');
  }
  return new URLSearchParams((await readBoundedBody(req, maxBytes, 'form')).toString('utf8'));
}
