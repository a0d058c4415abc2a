/**
 * Cross-site request forgery defence for the dashboard's forms, two independent layers:
 *
 * 1. A synchronizer token in every form: `<issued-at seconds>.<HMAC-SHA256 hex>` over the admin
 *    certificate's fingerprint and the issue time. It is bound to the certificate that loaded the
 *    form (another admin's token, or one from before this admin renewed, does not verify) and
 *    expires after TOKEN_LIFETIME_MS.
 * 2. Fetch metadata: a browser's POST must say `Sec-Fetch-Site: same-origin`, and an `Origin`
 *    header, when it names an origin, must be this server's. `Origin: null` is not a refusal by
 *    itself: the dashboard sends `Referrer-Policy: no-referrer`, and under that policy the Fetch
 *    standard serializes the origin of a same-origin form POST as "null". A request carrying
 *    neither header (no browser sends a POST that way since 2023) is refused: fail closed.
 *
 * The HMAC key is derived (HKDF) from the issuing intermediate's private key, so every
 * `ca serve --workers` process computes the same key without sharing state, and it changes
 * when the intermediate does. HKDF with its own label reveals nothing about the signing key.
 * In registration-authority mode, where no issuing key is held, it is derived from the secrets
 * master key instead (shared the same way, by the CA directory).
 */
import { createHmac, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export const CSRF_FIELD = 'csrf';
export const TOKEN_LIFETIME_MS = 8 * 3_600_000;
/** Tolerated clock difference between workers for a token that appears to come from the future. */
const FUTURE_SKEW_MS = 60_000;
const TOKEN_RE = /^(\d{1,12})\.([0-9a-f]{64})$/;

const keys = new WeakMap<KeyObject | Buffer, Buffer>();

/** `secret`: the issuing CA's private key, or a secret key's bytes. */
export function csrfKeyFor(secret: KeyObject | Buffer): Buffer {
  let key = keys.get(secret);
  if (!key) {
    const ikm = Buffer.isBuffer(secret) ? secret : secret.export({ format: 'der', type: 'pkcs8' });
    key = Buffer.from(hkdfSync('sha256', ikm, Buffer.alloc(0), 'gatehouse dashboard csrf v1', 32));
    keys.set(secret, key);
  }
  return key;
}

function mac(key: Buffer, fingerprint: string, issuedSec: number): Buffer {
  return createHmac('sha256', key).update(`gatehouse-dashboard-csrf\u0000${fingerprint}\u0000${issuedSec}`).digest();
}

export function issueCsrfToken(key: Buffer, fingerprint: string, now: Date): string {
  const issuedSec = Math.floor(now.getTime() / 1000);
  return `${issuedSec}.${mac(key, fingerprint, issuedSec).toString('hex')}`;
}

export type CsrfVerdict = { ok: true } | { ok: false; reason: string };

export function verifyCsrfToken(
  key: Buffer,
  fingerprint: string,
  token: string | null | undefined,
  now: Date,
): CsrfVerdict {
  if (!token) return { ok: false, reason: 'the form carries no CSRF token' };
  const m = TOKEN_RE.exec(token);
  if (!m) return { ok: false, reason: "the form's CSRF token is malformed" };
  const issuedSec = Number(m[1]);
  const expected = mac(key, fingerprint, issuedSec);
  if (!timingSafeEqual(expected, Buffer.from(m[2]!, 'hex')))
    return { ok: false, reason: "the form's CSRF token was not issued to this certificate" };
  const ageMs = now.getTime() - issuedSec * 1000;
  if (ageMs > TOKEN_LIFETIME_MS) return { ok: false, reason: 'the form has expired: reload the page and submit again' };
  if (ageMs < -FUTURE_SKEW_MS) return { ok: false, reason: "the form's CSRF token is dated in the future" };
  return { ok: true };
}

/** Checks Sec-Fetch-Site and Origin against this server's origin (`https://` + the Host header). */
export function checkFetchMetadata(headers: IncomingHttpHeaders): CsrfVerdict {
  const site = headerValue(headers['sec-fetch-site']);
  const origin = headerValue(headers.origin);
  const host = headerValue(headers.host);
  if (site !== undefined && site !== 'same-origin')
    return { ok: false, reason: `the form was submitted from another site (Sec-Fetch-Site: ${site})` };
  if (origin !== undefined && origin !== 'null') {
    if (!host || origin.toLowerCase() !== `https://${host.toLowerCase()}`)
      return { ok: false, reason: `the form was submitted from another origin (${origin})` };
  }
  if (site === undefined && (origin === undefined || origin === 'null')) {
    return {
      ok: false,
      reason:
        'the request says neither where it comes from (Origin) nor whether it is same-origin (Sec-Fetch-Site); use a current browser',
    };
  }
  return { ok: true };
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
