/**
 * The admin API, over mutual TLS for identities of role `admin` only. Every call, allowed or
 * refused, leaves an audit event.
 */
import { GatehouseError, isGatehouseError } from '../errors/errors.js';
import { parseDurationMs } from '../config/duration.js';
import { isCrlReason } from '../pki/crl.js';
import { normalizeSerial } from '../pki/certificate.js';
import { certStateAt, type CertRecord, type CertState, type NameReservation } from '../store/store-certificates.js';
import type { TokenRecord } from '../store/store-tokens.js';
import type { ReservedName } from './name-reservations.js';
import { abortRotation, finishRotation, rotationStatus, startRotation } from './root-rotation-ops.js';
import { fleetPosture } from './posture-views.js';
import { importAdvisories, MAX_ADVISORY_BATCH_BYTES, parseAdvisories } from './vuln-import.js';
import { fleetVulns } from './vuln-views.js';
import { readJsonBody, sendJson, stringField } from './http-util.js';
import { requireAdmin } from './peer-auth.js';
import type { RequestScope } from './request-scope.js';
import { MAX_SECRET_BODY_BYTES, decodeBase64Value, parseOverlap } from '../secrets/names.js';

export async function routeAdminRequest(scope: RequestScope, method: string, url: URL): Promise<void> {
  const { authority } = scope;
  const path = url.pathname;
  const { actor } = await requireAdmin(scope, method, path);
  const ctx = { actor, requestId: scope.requestId };
  let status = 500;
  try {
    status = await dispatch(scope, method, url, ctx);
  } catch (err) {
    status = isGatehouseError(err) ? err.spec.http : 500;
    throw err;
  } finally {
    await authority.store
      .appendAudit([
        {
          time: authority.now(),
          type: 'ca.admin_call',
          actor,
          requestId: scope.requestId,
          details: { method, path, status },
        },
      ])
      .catch(() => undefined);
  }
}

async function dispatch(
  scope: RequestScope,
  method: string,
  url: URL,
  ctx: { actor: string; requestId: string },
): Promise<number> {
  const { authority, res } = scope;
  const path = url.pathname;
  let m: RegExpExecArray | null;

  // Root rotation (root-rotation-ops.ts): keys never travel here, so a CA whose root key is
  // offline is rotated on the CA machine only. The running servers take it up from the files.
  if (path === '/admin/rotation/root' && method === 'GET') {
    return reply(res, 200, await rotationStatus({ material: scope.material, store: authority.store, ...ctx }));
  }
  if (path === '/admin/rotation/root' && method === 'POST') {
    await readJsonBody(scope.req, scope.maxBodyBytes);
    return reply(res, 201, await startRotation({ material: scope.material, store: authority.store, ...ctx }));
  }
  if (path === '/admin/rotation/root/finish' && method === 'POST') {
    const body = await readJsonBody(scope.req, scope.maxBodyBytes);
    if (body.force !== undefined && typeof body.force !== 'boolean')
      throw new GatehouseError('GH_BODY_INVALID', 'field "force" must be true or false');
    return reply(
      res,
      200,
      await finishRotation(
        { material: scope.material, store: authority.store, ...ctx },
        { force: body.force === true },
      ),
    );
  }
  if (path === '/admin/rotation/root/abort' && method === 'POST') {
    await readJsonBody(scope.req, scope.maxBodyBytes);
    return reply(res, 200, await abortRotation({ material: scope.material, store: authority.store, ...ctx }));
  }

  if (path === '/admin/tokens' && method === 'POST') {
    const body = await readJsonBody(scope.req, scope.maxBodyBytes);
    const ttl = stringField(body, 'ttl');
    const ttlMs = ttl === undefined ? undefined : parseDurationMs(ttl);
    if (ttlMs === null) throw new GatehouseError('GH_USAGE', `ttl "${ttl}" is not a duration like 15m, 1h or 7d`);
    const uses = body.uses;
    if (uses !== undefined && typeof uses !== 'number')
      throw new GatehouseError('GH_BODY_INVALID', 'field "uses" must be a number');
    const { token, record } = await authority.createToken(
      {
        role: stringField(body, 'role', true),
        name: stringField(body, 'name') ?? null,
        namePattern: stringField(body, 'names') ?? null,
        ...(ttlMs !== undefined ? { ttlMs } : {}),
        ...(uses !== undefined ? { uses } : {}),
      },
      ctx,
    );
    return reply(res, 201, { token, ...tokenView(record) });
  }
  if (path === '/admin/tokens' && method === 'GET') {
    return reply(res, 200, { tokens: (await authority.store.listTokens()).map(tokenView) });
  }
  if ((m = /^\/admin\/tokens\/([0-9a-f]{16})\/revoke$/.exec(path)) && method === 'POST') {
    return reply(res, 200, tokenView(await authority.revokeToken(m[1]!, ctx)));
  }
  if (path === '/admin/certs' && method === 'GET') {
    const within = url.searchParams.get('expiringWithin');
    const withinMs = within ? parseDurationMs(within) : null;
    if (within && withinMs === null)
      throw new GatehouseError('GH_USAGE', `expiringWithin "${within}" is not a duration like 7d`);
    const state = url.searchParams.get('state');
    if (state && !['active', 'expired', 'revoked'].includes(state))
      throw new GatehouseError('GH_USAGE', 'state must be active, expired or revoked');
    const certs = await authority.store.listCerts({
      ...(url.searchParams.get('role') ? { role: url.searchParams.get('role')! } : {}),
      ...(url.searchParams.get('name') ? { name: url.searchParams.get('name')! } : {}),
      ...(state ? { state: state as CertState } : {}),
      ...(withinMs !== null ? { expiringBefore: new Date(authority.now().getTime() + withinMs) } : {}),
      now: authority.now(),
    });
    return reply(res, 200, { certificates: certs.map((c) => certView(c, authority.now())) });
  }
  if ((m = /^\/admin\/certs\/([0-9a-f]{1,40})$/.exec(path)) && method === 'GET') {
    const cert = await authority.store.getCert(normalizeSerial(m[1]!));
    if (!cert) throw new GatehouseError('GH_CERT_NOT_FOUND', `no certificate with serial ${m[1]}`);
    return reply(res, 200, { ...certView(cert, authority.now()), certificate: cert.certPem });
  }
  if ((m = /^\/admin\/certs\/([0-9a-f]{1,40})\/revoke$/.exec(path)) && method === 'POST') {
    const body = await readJsonBody(scope.req, scope.maxBodyBytes);
    const reason = stringField(body, 'reason') ?? 'unspecified';
    if (!isCrlReason(reason))
      throw new GatehouseError(
        'GH_USAGE',
        `reason "${reason}" is not an RFC 5280 reason (keyCompromise, superseded, cessationOfOperation, …)`,
      );
    const cert = await authority.revokeCertificate(m[1]!, reason, ctx);
    await scope.crls.refresh(true);
    return reply(res, 200, certView(cert, authority.now()));
  }
  if (path === '/admin/posture' && method === 'GET') {
    const belowText = url.searchParams.get('below');
    const below = belowText === null ? undefined : Number(belowText);
    if (below !== undefined && (!Number.isInteger(below) || below < 0 || below > 101))
      throw new GatehouseError('GH_USAGE', 'below must be a whole number from 0 to 101');
    const staleText = url.searchParams.get('stale');
    const staleMs = staleText === null ? undefined : parseDurationMs(staleText);
    if (staleMs === null) throw new GatehouseError('GH_USAGE', `stale "${staleText}" is not a duration like 2h`);
    const identities = await fleetPosture(
      authority.store,
      { ...(below !== undefined ? { below } : {}), ...(staleMs !== undefined ? { staleMs } : {}) },
      authority.now(),
    );
    return reply(res, 200, { identities });
  }
  if (path === '/admin/vulns' && method === 'GET') {
    return reply(res, 200, { advisories: await fleetVulns(authority.store, authority.now()) });
  }
  if (path === '/admin/vulns' && method === 'POST') {
    const body = await readJsonBody(scope.req, MAX_ADVISORY_BATCH_BYTES);
    if (!Array.isArray(body.advisories))
      throw new GatehouseError('GH_ADVISORY_INVALID', 'the body must be {"advisories": [OSV records]}');
    const advisories = parseAdvisories(body.advisories, (i) => `advisories[${i}]`);
    return reply(res, 200, await importAdvisories(authority.store, advisories, ctx, authority.now()));
  }
  if (path === '/admin/names' && method === 'GET') {
    return reply(res, 200, { names: (await authority.listNames()).map(nameView) });
  }
  if (path === '/admin/names/release' && method === 'POST') {
    const body = await readJsonBody(scope.req, scope.maxBodyBytes);
    const released = await authority.releaseName(stringField(body, 'role', true), stringField(body, 'name', true), ctx);
    return reply(res, 200, releasedView(released));
  }
  if (path === '/admin/audit' && method === 'GET') {
    const p = url.searchParams;
    const since = p.get('since');
    if (since && Number.isNaN(Date.parse(since)))
      throw new GatehouseError('GH_USAGE', `since "${since}" is not an ISO 8601 time`);
    const after = p.get('after');
    if (after && !/^\d+$/.test(after))
      throw new GatehouseError('GH_USAGE', `after "${after}" is not an event sequence number`);
    const limit = Number(p.get('limit') ?? 500);
    const events = await authority.store.listAudit({
      ...(p.get('type') ? { type: p.get('type')! } : {}),
      ...(p.get('actor') ? { actor: p.get('actor')! } : {}),
      ...(p.get('serial') ? { serial: p.get('serial')! } : {}),
      ...(since ? { since: new Date(since) } : {}),
      ...(after ? { afterSeq: Number(after) } : {}),
      limit: Number.isInteger(limit) && limit > 0 ? Math.min(limit, 10_000) : 500,
    });
    return reply(res, 200, { events });
  }
  if (path === '/admin/secrets' || path.startsWith('/admin/secrets/')) {
    const status = await dispatchSecrets(scope, method, path, ctx);
    if (status !== null) return status;
  }
  throw new GatehouseError('GH_NOT_FOUND', `no admin endpoint ${method} ${path}`);
}

/** The admin API of secrets (docs/secrets.md). Values arrive in base64 and never leave: every answer is metadata. */
async function dispatchSecrets(
  scope: RequestScope,
  method: string,
  path: string,
  ctx: { actor: string; requestId: string },
): Promise<number | null> {
  const { secrets, res } = scope;
  const valueBody = () => readJsonBody(scope.req, Math.max(scope.maxBodyBytes, MAX_SECRET_BODY_BYTES));
  const subjectsOf = (body: Record<string, unknown>, field: string, required: boolean): string[] => {
    const value = body[field];
    if (value === undefined && !required) return [];
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'string'))
      throw new GatehouseError(
        'GH_BODY_INVALID',
        `field "${field}" must be an array of subjects (role:ROLE, name:NAME, id:SPIFFE_ID)`,
      );
    return value as string[];
  };
  if (path === '/admin/secrets' && method === 'POST') {
    const body = await valueBody();
    const value = decodeBase64Value(body.value);
    try {
      return reply(
        res,
        201,
        await secrets.create(
          { name: stringField(body, 'name', true), value, grants: subjectsOf(body, 'grants', false) },
          ctx,
        ),
      );
    } finally {
      value.fill(0);
    }
  }
  if (path === '/admin/secrets' && method === 'GET') return reply(res, 200, { secrets: await secrets.list() });
  const m = /^\/admin\/secrets\/([^/]+)(?:\/(grant|ungrant|rotate|delete))?$/.exec(path);
  if (!m) return null;
  const [, name, action] = m as unknown as [string, string, string | undefined];
  if (action === undefined && method === 'GET') return reply(res, 200, await secrets.show(name));
  if (method !== 'POST' || action === undefined) return null;
  switch (action) {
    case 'grant':
      return reply(
        res,
        200,
        await secrets.grant(name, subjectsOf(await readJsonBody(scope.req, scope.maxBodyBytes), 'subjects', true), ctx),
      );
    case 'ungrant':
      return reply(
        res,
        200,
        await secrets.ungrant(
          name,
          subjectsOf(await readJsonBody(scope.req, scope.maxBodyBytes), 'subjects', true),
          ctx,
        ),
      );
    case 'rotate': {
      const body = await valueBody();
      const overlap = stringField(body, 'overlap');
      const value = decodeBase64Value(body.value);
      try {
        return reply(
          res,
          200,
          await secrets.rotate(name, value, overlap === undefined ? undefined : parseOverlap(overlap), ctx),
        );
      } finally {
        value.fill(0);
      }
    }
    case 'delete':
      return reply(res, 200, await secrets.delete(name, ctx));
  }
  return null;
}

function reply(res: RequestScope['res'], status: number, body: unknown): number {
  sendJson(res, status, body);
  return status;
}

/** Token metadata; the secret is never stored, so it cannot be shown again. */
export function tokenView(t: TokenRecord) {
  return {
    id: t.id,
    role: t.role,
    name: t.name,
    names: t.namePattern,
    uses: t.uses,
    maxUses: t.maxUses,
    expiresAt: t.expiresAt.toISOString(),
    createdAt: t.createdAt.toISOString(),
    createdBy: t.createdBy,
    revokedAt: t.revokedAt?.toISOString() ?? null,
  };
}

export function nameView(n: ReservedName) {
  return {
    spiffeId: n.spiffeId,
    role: n.role,
    name: n.name,
    lineage: n.lineage,
    reservedAt: n.reservedAt.toISOString(),
    newestSerial: n.newestSerial,
    state: n.state,
  };
}

export function releasedView(n: NameReservation) {
  return {
    spiffeId: n.spiffeId,
    role: n.role,
    name: n.name,
    lineage: n.lineage,
    reservedAt: n.reservedAt.toISOString(),
    released: true,
  };
}

export const certState: (c: CertRecord, now: Date) => CertState = certStateAt;

export function certView(c: CertRecord, now: Date) {
  return {
    serial: c.serial,
    fingerprint: c.fingerprint,
    name: c.name,
    role: c.role,
    spiffeId: c.spiffeId,
    state: certState(c, now),
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    issuedAt: c.issuedAt.toISOString(),
    tokenId: c.tokenId,
    renewedFrom: c.renewedFrom,
    lineage: c.lineage,
    supersededBy: c.supersededBy,
    revokedAt: c.revokedAt?.toISOString() ?? null,
    revocationReason: c.revocationReason,
  };
}
