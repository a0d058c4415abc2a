/**
 * The released error codes, with their HTTP status and exit code. Scripts and dashboards match
 * on them, so they are never renamed, removed or given another status or exit code: adding a
 * code is fine (add it here too), changing one of these is a breaking change and fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERRORS } from '../src/errors/errors.js';
import { GATEWAY_REFUSALS } from '../src/errors/gateway-refusals.js';
import { CA_ERRORS } from '../src/errors/codes-ca.js';
import { ENROLLMENT_ERRORS } from '../src/errors/codes-enrollment.js';
import { POSTURE_ERRORS } from '../src/errors/codes-posture.js';
import { REQUEST_ERRORS } from '../src/errors/codes-requests.js';
import { SECRET_ERRORS } from '../src/errors/codes-secrets.js';
import { SYSTEM_ERRORS } from '../src/errors/codes-system.js';
import { TRUST_ERRORS } from '../src/errors/codes-trust.js';

const RELEASED: Record<string, [http: number, exit: number]> = {
  GH_USAGE: [400, 64],
  GH_CONFIG_INVALID: [500, 78],
  GH_CA_EXISTS: [409, 73],
  GH_CA_NOT_FOUND: [500, 66],
  GH_CA_DIR_PERMS: [500, 77],
  GH_CA_KEY_LOCKED: [500, 77],
  GH_CA_ROOT_KEY_OFFLINE: [500, 69],
  GH_CA_IMPORT_INVALID: [400, 65],
  GH_CA_ROTATION: [409, 75],
  GH_EXTERNAL_CA_UNREACHABLE: [503, 69],
  GH_EXTERNAL_CA_REFUSED: [502, 69],
  GH_EXTERNAL_CA_MISMATCH: [502, 65],
  GH_ROLE_UNKNOWN: [400, 65],
  GH_NAME_INVALID: [400, 65],
  GH_NAME_TAKEN: [409, 73],
  GH_NAME_NOT_FOUND: [404, 66],
  GH_CSR_MALFORMED: [400, 65],
  GH_CSR_SIGNATURE: [400, 65],
  GH_CSR_KEY_UNSUPPORTED: [400, 65],
  GH_CSR_POLICY: [403, 77],
  GH_TOKEN_INVALID: [401, 77],
  GH_TOKEN_EXPIRED: [401, 77],
  GH_TOKEN_REVOKED: [401, 77],
  GH_TOKEN_USED: [409, 77],
  GH_TOKEN_NOT_FOUND: [404, 66],
  GH_CA_PIN_MISMATCH: [502, 77],
  GH_CHAIN_INVALID: [502, 76],
  GH_CRL_INVALID: [502, 65],
  GH_CRL_SIGNATURE: [502, 65],
  GH_AUTH_REQUIRED: [401, 77],
  GH_AUTH_FORBIDDEN: [403, 77],
  GH_CERT_UNTRUSTED: [401, 77],
  GH_CERT_EXPIRED: [401, 77],
  GH_CERT_REVOKED: [403, 77],
  GH_CERT_SUPERSEDED: [409, 77],
  GH_CERT_REUSED: [403, 77],
  GH_CERT_NOT_FOUND: [404, 66],
  GH_BODY_TOO_LARGE: [413, 65],
  GH_BODY_INVALID: [400, 65],
  GH_NOT_FOUND: [404, 66],
  GH_METHOD_NOT_ALLOWED: [405, 64],
  GH_RATE_LIMITED: [429, 75],
  GH_CA_UNREACHABLE: [502, 69],
  GH_AGENT_NOT_ENROLLED: [500, 66],
  GH_AGENT_MUST_REENROLL: [500, 75],
  GH_POLICY_INVALID: [500, 78],
  GH_PATH_AMBIGUOUS: [400, 65],
  GH_AUDIT_BROKEN: [500, 65],
  GH_BACKUP_EXISTS: [409, 73],
  GH_BACKUP_CORRUPT: [500, 65],
  GH_FILE_IO: [500, 74],
  GH_STORE_IO: [500, 74],
  GH_STORE_UNAVAILABLE: [503, 69],
  GH_LISTEN_FAILED: [500, 71],
  GH_DEMO_CHECK_FAILED: [500, 1],
  GH_POSTURE_INVALID: [400, 65],
  GH_POSTURE_REQUIRED: [403, 77],
  GH_ADVISORY_INVALID: [400, 65],
  GH_SECRET_INVALID: [400, 65],
  GH_SECRET_EXISTS: [409, 73],
  GH_SECRET_NOT_FOUND: [404, 66],
  GH_SECRET_NOT_GRANTED: [403, 77],
  GH_SECRET_SEALED_INVALID: [500, 65],
  GH_SECRET_MASTER_KEY: [500, 77],
  GH_INTERNAL: [500, 70],
};

test('no code is defined in two areas (the later spread would silently win)', () => {
  const areas = [
    CA_ERRORS,
    ENROLLMENT_ERRORS,
    TRUST_ERRORS,
    REQUEST_ERRORS,
    SYSTEM_ERRORS,
    POSTURE_ERRORS,
    SECRET_ERRORS,
  ];
  const seen = new Map<string, number>();
  for (const [i, area] of areas.entries()) {
    for (const code of Object.keys(area)) {
      assert.ok(!seen.has(code), `${code} is in area ${seen.get(code)} and area ${i}`);
      seen.set(code, i);
    }
  }
  assert.equal(seen.size + 1, Object.keys(ERRORS).length, 'every code but GH_INTERNAL comes from an area file');
});

test('every released error code still exists with its HTTP status and exit code', () => {
  const changed = Object.entries(RELEASED).flatMap(([code, [http, exit]]) => {
    const spec = (ERRORS as Record<string, { http: number; exit: number }>)[code];
    if (!spec) return [`${code} was removed or renamed`];
    return spec.http !== http || spec.exit !== exit
      ? [`${code} was ${http}/exit ${exit}, is now ${spec.http}/exit ${spec.exit}`]
      : [];
  });
  assert.deepEqual(changed, []);
});

test('a new code is added to the released list in the same change', () => {
  const unlisted = Object.keys(ERRORS).filter((code) => !(code in RELEASED));
  assert.deepEqual(unlisted, [], 'add new codes to RELEASED in test/error-codes-released.test.ts once they ship');
});

/** The gateway's refusal codes and statuses (src/errors/gateway-refusals.ts), released likewise. */
const RELEASED_REFUSALS: Record<string, number> = {
  NO_CERTIFICATE: 400,
  UNTRUSTED: 403,
  EXPIRED: 403,
  NOT_YET_VALID: 403,
  WRONG_PURPOSE: 403,
  REVOKED: 403,
  CRL_STALE: 403,
  CRL_MISSING: 403,
  POLICY_DENIED: 403,
  POSTURE_FAILED: 403,
  POSTURE_UNAVAILABLE: 503,
  PATH_AMBIGUOUS: 400,
  HEADERS_TOO_LARGE: 431,
  NO_ROUTE: 404,
  MISDIRECTED: 421,
  UPSTREAM_UNAVAILABLE: 502,
  UPSTREAM_HEAD_TOO_LARGE: 502,
  UPSTREAM_TIMEOUT: 504,
  INTERNAL: 500,
  MALFORMED_REQUEST: 400,
  REQUEST_TIMEOUT: 408,
  HOST_INVALID: 400,
  FRAMING_INVALID: 400,
  TRANSFER_CODING_UNSUPPORTED: 501,
  VERSION_UNSUPPORTED: 505,
  METHOD_UNSUPPORTED: 501,
};

test('every released gateway refusal code still exists with its status, and new ones are listed', () => {
  const refusals = GATEWAY_REFUSALS as Record<string, { status: number }>;
  const changed = Object.entries(RELEASED_REFUSALS).flatMap(([code, status]) =>
    !refusals[code]
      ? [`${code} was removed or renamed`]
      : refusals[code].status !== status
        ? [`${code} was ${status}, is now ${refusals[code].status}`]
        : [],
  );
  assert.deepEqual(changed, []);
  assert.deepEqual(
    Object.keys(refusals).filter((code) => !(code in RELEASED_REFUSALS)),
    [],
    'add new refusal codes to RELEASED_REFUSALS once they ship',
  );
});
