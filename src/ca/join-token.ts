/**
 * Join tokens, after Docker Swarm's `SWMTKN-1-<root digest>-<secret>`:
 *
 *   GHTKN-1-<sha256 of the root certificate DER, hex>-<token id, 16 hex>-<secret, 32 base32>
 *
 * The fixed prefix lets secret scanners find leaked tokens. The root digest lets a new machine
 * pin the CA before it trusts anything it receives. The secret carries 160 random bits and is
 * stored only as its SHA-256 (a high-entropy secret needs no slow KDF); the ID finds the row so
 * the comparison itself can be constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { GatehouseError } from '../errors/errors.js';

export const TOKEN_PREFIX = 'GHTKN-1-';
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const TOKEN_RE = /^GHTKN-1-([0-9a-f]{64})-([0-9a-f]{16})-([a-z2-7]{32})$/;

export interface ParsedToken {
  rootFingerprint: string;
  id: string;
  secret: string;
}

export function parseJoinToken(token: string): ParsedToken {
  const match = TOKEN_RE.exec(token.trim());
  if (!match) {
    throw new GatehouseError(
      'GH_TOKEN_INVALID',
      token.trim().startsWith(TOKEN_PREFIX)
        ? 'join token is malformed (truncated or mistyped?)'
        : `join token must start with ${TOKEN_PREFIX}`,
    );
  }
  return { rootFingerprint: match[1]!, id: match[2]!, secret: match[3]! };
}

export function newJoinToken(rootFingerprint: string): { token: string; id: string; secretHash: string } {
  const id = randomBytes(8).toString('hex');
  const secret = base32(randomBytes(20));
  return { token: `${TOKEN_PREFIX}${rootFingerprint}-${id}-${secret}`, id, secretHash: hashSecret(secret) };
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Constant-time comparison of a presented secret with a stored hash. */
export function secretMatches(secret: string, storedHash: string | null): boolean {
  const presented = Buffer.from(hashSecret(secret), 'hex');
  // Compare against a dummy when the ID is unknown, so "unknown" and "wrong" cost the same.
  const stored = storedHash && /^[0-9a-f]{64}$/.test(storedHash) ? Buffer.from(storedHash, 'hex') : Buffer.alloc(32);
  return timingSafeEqual(presented, stored) && storedHash !== null;
}

function base32(bytes: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}
