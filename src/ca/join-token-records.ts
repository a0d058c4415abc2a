/**
 * Join tokens as the CA keeps them: made for a role (and maybe a name or a name pattern),
 * checked when a machine enrolls with one, revoked. The token's text format and its secret are
 * join-token.ts; this module owns the rules a token request must meet and what a presented token
 * must be to admit an enrollment. A refused token is audited without its secret.
 */
import type { CaConfig } from '../config/ca-config.js';
import { compileNamePattern, isSafeName, NAME_PATTERN_RE } from '../config/patterns.js';
import { GatehouseError } from '../errors/errors.js';
import type { TokenRecord } from '../store/store-tokens.js';
import type { AuthorityContext, RequestContext } from './authority-context.js';
import { roleConfig } from './issuance-rules.js';
import { newJoinToken, parseJoinToken, secretMatches } from './join-token.js';
import { auditRefusal } from './refusal-events.js';

export interface TokenRequest {
  role: string;
  name?: string | null;
  namePattern?: string | null;
  ttlMs?: number;
  uses?: number;
}

export async function createJoinToken(
  ca: AuthorityContext,
  request: TokenRequest,
  ctx: RequestContext,
): Promise<{ token: string; record: TokenRecord }> {
  const { authority } = ca;
  const now = authority.now();
  const { ttlMs, uses } = checkTokenRequest(authority.config, request);
  const { token, id, secretHash } = newJoinToken(authority.rootFingerprint);
  const record: TokenRecord = {
    id,
    secretHash,
    role: request.role,
    name: request.name ?? null,
    namePattern: request.namePattern ?? null,
    maxUses: uses,
    uses: 0,
    expiresAt: new Date(now.getTime() + ttlMs),
    createdAt: now,
    createdBy: ctx.actor,
    revokedAt: null,
  };
  await authority.store.insertToken(record, {
    time: now,
    type: 'ca.token_created',
    actor: ctx.actor,
    tokenId: id,
    requestId: ctx.requestId ?? null,
    details: {
      role: record.role,
      name: record.name,
      namePattern: record.namePattern,
      maxUses: uses,
      expiresAt: record.expiresAt.toISOString(),
    },
  });
  ca.logger.info('ca.token_created', {
    tokenId: id,
    role: record.role,
    actor: ctx.actor,
    requestId: ctx.requestId,
  });
  return { token, record };
}

/** The role exists, the name or pattern is one the role allows, TTL and uses within bounds: the TTL and uses to record. */
function checkTokenRequest(config: Readonly<CaConfig>, request: TokenRequest): { ttlMs: number; uses: number } {
  roleConfig(config, request.role);
  if (request.name && request.namePattern)
    throw new GatehouseError('GH_USAGE', 'give either a name or a name pattern, not both');
  if (request.name && !isSafeName(request.name))
    throw new GatehouseError(
      'GH_NAME_INVALID',
      `name ${JSON.stringify(request.name)} is not allowed: use 1–63 characters from A–Z a–z 0–9 . _ -`,
    );
  if (request.namePattern && !NAME_PATTERN_RE.test(request.namePattern))
    throw new GatehouseError(
      'GH_NAME_INVALID',
      `name pattern ${JSON.stringify(request.namePattern)} may use only A–Z a–z 0–9 . _ - and *`,
    );
  if (request.name) {
    const rolePattern = roleConfig(config, request.role).names;
    if (!compileNamePattern(rolePattern).test(request.name))
      throw new GatehouseError(
        'GH_NAME_INVALID',
        `name "${request.name}" does not match role ${request.role}'s pattern "${rolePattern}"`,
      );
  }
  const ttlMs = request.ttlMs ?? config.tokens.defaultTtl;
  if (ttlMs <= 0 || ttlMs > config.tokens.maxTtl)
    throw new GatehouseError(
      'GH_USAGE',
      `token TTL must be between 1s and ${config.tokens.maxTtl / 1000}s (tokens.maxTtl)`,
    );
  const uses = request.uses ?? 1;
  if (!Number.isInteger(uses) || uses < 1 || uses > 10_000)
    throw new GatehouseError('GH_USAGE', 'token uses must be an integer from 1 to 10000');
  return { ttlMs, uses };
}

export async function revokeJoinToken(ca: AuthorityContext, id: string, ctx: RequestContext): Promise<TokenRecord> {
  const now = ca.authority.now();
  const record = await ca.authority.store.revokeToken(id, now, {
    time: now,
    type: 'ca.token_revoked',
    actor: ctx.actor,
    tokenId: id,
    requestId: ctx.requestId ?? null,
  });
  if (!record) throw new GatehouseError('GH_TOKEN_NOT_FOUND', `no join token with ID ${id}`);
  return record;
}

/** The record of a presented token that may admit an enrollment now: of this CA's root, known, unrevoked, unexpired, with a use left. */
export async function checkJoinToken(
  ca: AuthorityContext,
  tokenText: string,
  now: Date,
  ctx: RequestContext,
): Promise<TokenRecord> {
  const { authority } = ca;
  let tokenId: string | null = null;
  try {
    const parsed = parseJoinToken(tokenText);
    tokenId = parsed.id;
    if (parsed.rootFingerprint !== authority.rootFingerprint) {
      const rotation = authority.rotation?.state;
      if (rotation?.phase === 'finished' && parsed.rootFingerprint === rotation.previousRoot) {
        throw new GatehouseError(
          'GH_TOKEN_INVALID',
          `join token pins the root ${rotation.previousRoot}, which the root rotation finished at ${rotation.finishedAt} replaced with ${rotation.nextRoot}; make a new token (gatehouse token create), which pins the new root`,
        );
      }
      throw new GatehouseError(
        'GH_TOKEN_INVALID',
        'join token was made for a different CA (its root fingerprint does not match this CA)',
      );
    }
    const record = await authority.store.getToken(parsed.id);
    if (!secretMatches(parsed.secret, record?.secretHash ?? null) || !record) {
      throw new GatehouseError('GH_TOKEN_INVALID', 'join token is not known to this CA');
    }
    if (record.revokedAt) throw new GatehouseError('GH_TOKEN_REVOKED', `join token ${record.id} was revoked`);
    if (record.expiresAt <= now)
      throw new GatehouseError(
        'GH_TOKEN_EXPIRED',
        `join token ${record.id} expired at ${record.expiresAt.toISOString()}`,
      );
    if (record.uses >= record.maxUses)
      throw new GatehouseError(
        'GH_TOKEN_USED',
        `join token ${record.id} has no uses left (${record.uses}/${record.maxUses} used)`,
      );
    return record;
  } catch (err) {
    await auditRefusal(ca, 'ca.token_refused', err, ctx, now, { tokenId });
    throw err;
  }
}
