/**
 * `POST /v1/posture`: a device's posture report (src/posture), over mutual TLS with its current
 * certificate. The CA validates it, computes the score itself, keeps the newest POSTURE_HISTORY
 * per identity and audits the receipt; a malformed or oversized report is refused, audited
 * (rate limited per source) and stores nothing.
 */
import { GatehouseError, isGatehouseError } from '../errors/errors.js';
import { validatePostureReport } from '../posture/report-schema.js';
import { failingOf, scoreOf } from '../posture/report.js';
import { readBoundedBody, sendJson } from './http-util.js';
import { authenticatePeer } from './peer-auth.js';
import { ADMIN_ROLE } from './active-identities.js';
import { postureStanding } from './posture-standing.js';
import type { RequestScope } from './request-scope.js';

export const POSTURE_PATH = '/v1/posture';
/** A report with the package list of a large server is a few hundred KiB. */
export const MAX_POSTURE_BYTES = 2 * 1024 * 1024;
/** Reports kept per identity (hourly reports: two days). */
export const POSTURE_HISTORY = 48;

export async function routePostureRequest(scope: RequestScope, method: string, url: URL): Promise<void> {
  const { res, authority } = scope;
  if (method === 'GET' || method === 'HEAD') return sendStanding(scope, url);
  if (method !== 'POST') {
    res.setHeader('allow', 'GET, HEAD, POST');
    throw new GatehouseError(
      'GH_METHOD_NOT_ALLOWED',
      `${method} is not allowed on ${POSTURE_PATH}; use POST to report, GET to read a standing`,
    );
  }
  const peer = await authenticatePeer(scope, { allowServerOnly: true });
  const source = scope.req.socket.remoteAddress ?? 'unknown';
  let report;
  try {
    const body = await readBoundedBody(scope.req, MAX_POSTURE_BYTES, 'posture report');
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw new GatehouseError('GH_POSTURE_INVALID', 'the posture report is not valid JSON');
    }
    const checked = validatePostureReport(parsed);
    if (!checked.ok)
      throw new GatehouseError(
        'GH_POSTURE_INVALID',
        `the posture report is not acceptable: ${checked.problems.join('; ')}`,
      );
    report = checked.report;
  } catch (err) {
    await authority.auditAnonymousRefusal(source, {
      type: 'ca.posture_refused',
      actor: peer.record.spiffeId,
      requestId: scope.requestId,
      serial: peer.record.serial,
      details: { code: isGatehouseError(err) ? err.code : 'GH_INTERNAL' },
    });
    throw err;
  }
  const now = authority.now();
  // The CA's own score and failing list: an agent's claim about itself is not taken.
  const score = scoreOf(report.checks);
  const failing = failingOf(report.checks);
  const stored = { ...report, score, failing };
  const record = await authority.store.recordPosture(
    {
      spiffeId: peer.record.spiffeId,
      serial: peer.record.serial,
      receivedAt: now,
      score,
      report: JSON.stringify(stored),
    },
    POSTURE_HISTORY,
    {
      time: now,
      type: 'ca.posture_reported',
      actor: peer.record.spiffeId,
      requestId: scope.requestId,
      serial: peer.record.serial,
      details: { score, failing, checks: report.checks.length, packages: report.packages?.length ?? null },
    },
  );
  sendJson(res, 201, { spiffeId: record.spiffeId, receivedAt: record.receivedAt.toISOString(), score, failing });
}

/**
 * `GET /v1/posture?identity=spiffe://…`: the standing a posture rule is judged on. Readable by
 * the identity itself, by admins, and by identities of a role whose profile is server or both:
 * the services (gateways) that decide access. A laptop cannot read another's. Not audited per
 * call (gateways ask often); refusals are, like every admission refusal.
 */
async function sendStanding(scope: RequestScope, url: URL): Promise<void> {
  const { authority } = scope;
  const peer = await authenticatePeer(scope, { allowServerOnly: true });
  const identity = url.searchParams.get('identity') ?? peer.record.spiffeId;
  const profile = authority.config.roles[peer.record.role]?.profile;
  const reader =
    identity === peer.record.spiffeId || peer.record.role === ADMIN_ROLE || profile === 'server' || profile === 'both';
  if (!reader) {
    await authority.auditAnonymousRefusal(scope.req.socket.remoteAddress ?? 'unknown', {
      type: 'ca.posture_refused',
      actor: peer.record.spiffeId,
      requestId: scope.requestId,
      serial: peer.record.serial,
      details: { code: 'GH_AUTH_FORBIDDEN', read: identity.slice(0, 200) },
    });
    throw new GatehouseError(
      'GH_AUTH_FORBIDDEN',
      `identity ${peer.record.spiffeId} (role ${peer.record.role}, a client profile) may read only its own posture`,
    );
  }
  if (!/^spiffe:\/\/[^\s]{1,2000}$/.test(identity))
    throw new GatehouseError('GH_USAGE', 'identity must be a SPIFFE ID, spiffe://TRUST_DOMAIN/ROLE/NAME');
  sendJson(scope.res, 200, await postureStanding(authority.store, identity));
}
