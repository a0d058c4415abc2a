import { readFileSync } from 'node:fs';
import { GatehouseError } from '../../errors/errors.js';
import { flag, str, type CommandSpec } from '../command.js';
import { json } from '../output.js';
import type { PostureStanding } from '../../posture/requirement.js';

/** Exit status when the gateway would not forward the request (denied by policy, or the path refused). */
export const POLICY_CHECK_DENIED_EXIT = 1;

/** RFC 9110 §5.6.2 token: what an HTTP method may be made of. */
const METHOD_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;

export const policyCheck: CommandSpec = {
  path: ['policy', 'check'],
  summary:
    'Check what a policy decides for a client certificate, a method and a path, as the gateway would, and say which rule decided.',
  positionals: [
    { name: 'METHOD', description: 'HTTP method, e.g. GET (case-insensitive)', required: true },
    {
      name: 'PATH',
      description: 'Request path as a client sends it, e.g. /user/1 (a query is ignored)',
      required: true,
    },
  ],
  options: {
    policy: {
      type: 'string',
      value: 'FILE',
      required: true,
      description: 'Policy (JSON or YAML), as given to `gatehouse gateway --policy`',
    },
    cert: {
      type: 'string',
      value: 'FILE',
      required: true,
      description: "Client certificate (PEM or DER); in a chain file the first certificate is the client's",
    },
    posture: {
      type: 'string',
      value: 'FILE',
      description:
        "For rules that require posture: the device's standing as the CA gives it (GET /v1/posture?identity=…, JSON)",
    },
    ca: {
      type: 'string',
      value: 'URL',
      description: 'For rules that require posture: ask this CA for the standing, with --identity',
    },
    identity: {
      type: 'string',
      value: 'DIR',
      description: "An identity directory allowed to read posture (the gateway's, or an admin's), with --ca",
    },
    json: { type: 'boolean', description: 'Print the decision as JSON' },
  },
  notes: [
    `Exit codes: 0 allowed; ${POLICY_CHECK_DENIED_EXIT} refused (denied by the policy, the path refused as ambiguous, or a posture the rule requires not met or not known); 64 wrong arguments or a file that is not a certificate; 74 certificate file unreadable; 78 policy invalid.`,
    'The certificate is not verified here: the gateway also checks its chain and validity before the policy, and refuses with 400/403 first.',
  ],
  async run(ctx) {
    const [rawMethod, rawPath] = ctx.positionals as [string, string];
    if (!METHOD_TOKEN.test(rawMethod))
      throw new GatehouseError(
        'GH_USAGE',
        `METHOD "${rawMethod}" is not an HTTP method; see \`gatehouse policy check --help\``,
      );
    const method = rawMethod.toUpperCase();
    const certFile = str(ctx, 'cert')!;
    const { loadPolicyFile, explainDecision, normalizePath, encodePathForUpstream } =
      await import('../../policy/index.js');
    const { parseCertificate, identityOf } = await import('../../pki/certificate.js');
    const { decodePem, looksLikePem } = await import('../../pki/pem.js');

    const policy = loadPolicyFile(str(ctx, 'policy')!);
    let bytes: Buffer;
    try {
      bytes = readFileSync(certFile);
    } catch (cause) {
      throw new GatehouseError(
        'GH_FILE_IO',
        `cannot read the certificate file ${certFile}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`,
        { cause },
      );
    }
    let der: Buffer | undefined = bytes;
    if (looksLikePem(bytes)) {
      der = decodePem(bytes.toString('latin1'), 'CERTIFICATE')[0];
      if (!der)
        throw new GatehouseError(
          'GH_USAGE',
          `${certFile} holds no PEM CERTIFICATE block (a key or a CSR?); pass the client certificate`,
        );
    }
    let cert;
    try {
      cert = parseCertificate(der);
    } catch (cause) {
      throw new GatehouseError(
        'GH_USAGE',
        `${certFile} is not an X.509 certificate (PEM or DER): ${(cause as Error).message}`,
        { cause },
      );
    }
    const who = identityOf(cert);
    const identity = { name: who.name, role: who.role, spiffeId: who.spiffeId, fingerprint: who.fingerprint };

    const query = rawPath.indexOf('?');
    const normalized = normalizePath(query === -1 ? rawPath : rawPath.slice(0, query));
    const decision = normalized.ok ? policy.evaluate(identity, method, normalized.path) : null;
    const postureRequired = decision?.allow === true ? (decision.posture ?? null) : null;
    const standing = postureRequired ? await standingFor(ctx, who.spiffeId) : null;
    const { judgePosture } = await import('../../posture/requirement.js');
    const postureJudged = postureRequired && standing ? judgePosture(postureRequired, standing, new Date()) : null;
    // A posture the rule needs and this check cannot see is not met, as at a gateway that cannot ask.
    const allowed = decision?.allow === true && (postureRequired === null || postureJudged?.met === true);
    const now = Date.now();
    const validity =
      now > cert.notAfter.getTime() ? 'expired' : now < cert.notBefore.getTime() ? 'not yet valid' : 'valid';

    if (flag(ctx, 'json')) {
      const rule = decision?.rule ? policy.rules.find((r) => r.label === decision.rule) : undefined;
      ctx.out(
        json({
          allowed,
          decision: decision === null ? 'refused' : decision.allow ? 'allow' : 'deny',
          reason:
            decision === null
              ? 'GH_PATH_AMBIGUOUS'
              : !decision.allow
                ? decision.reason
                : allowed
                  ? null
                  : 'POSTURE_FAILED',
          posture:
            postureRequired === null
              ? null
              : {
                  required: postureRequired,
                  standing,
                  problems:
                    postureJudged === null
                      ? ['no standing given (--posture FILE, or --ca URL --identity DIR)']
                      : postureJudged.met
                        ? []
                        : postureJudged.problems,
                },
          rule: decision?.rule ?? null,
          ruleSummary: rule?.summary ?? null,
          policy: { name: policy.name, rules: policy.ruleCount, denyMessage: policy.denyMessage },
          request: { method, path: rawPath },
          path: normalized.ok
            ? { normalized: normalized.path, forwarded: encodePathForUpstream(normalized.path) }
            : { refused: normalized.reason },
          identity,
          certificate: {
            serial: cert.serial,
            notBefore: cert.notBefore.toISOString(),
            notAfter: cert.notAfter.toISOString(),
            validity,
          },
        }),
      );
    } else {
      ctx.out(`${explainDecision(policy, identity, method, rawPath, { standing, now: new Date() })}\n`);
      if (validity !== 'valid') {
        ctx.err(
          `warning: the certificate is ${validity} (${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()}); the gateway refuses it with 403 before any policy\n`,
        );
      }
    }
    return allowed ? 0 : POLICY_CHECK_DENIED_EXIT;
  },
};

/** The device's standing from --posture FILE, or from the CA (--ca, --identity); null without either. */
async function standingFor(
  ctx: Parameters<CommandSpec['run']>[0],
  spiffeId: string | null,
): Promise<PostureStanding | null> {
  const { postureStandingSchema } = await import('../../posture/requirement.js');
  const file = str(ctx, 'posture');
  const caUrl = str(ctx, 'ca');
  const identityDir = str(ctx, 'identity');
  if (file !== undefined && (caUrl !== undefined || identityDir !== undefined))
    throw new GatehouseError(
      'GH_USAGE',
      'give the standing with --posture FILE or fetch it with --ca URL --identity DIR, not both',
    );
  let value: unknown;
  if (file !== undefined) {
    try {
      value = JSON.parse(readFileSync(file, 'utf8'));
    } catch (cause) {
      throw new GatehouseError(
        'GH_USAGE',
        `${file} is not a readable JSON posture standing: ${(cause as Error).message}`,
        { cause },
      );
    }
  } else if (caUrl !== undefined || identityDir !== undefined) {
    if (caUrl === undefined || identityDir === undefined)
      throw new GatehouseError('GH_USAGE', '--ca and --identity go together');
    if (spiffeId === null)
      throw new GatehouseError('GH_USAGE', 'the certificate has no SPIFFE ID: its posture cannot be looked up');
    const { CaClient } = await import('../../agent/ca-client.js');
    const { readIdentityDir } = await import('../../files/identity-dir.js');
    const files = readIdentityDir(identityDir);
    const client = new CaClient({
      baseUrl: caUrl,
      rootPem: files.caPem,
      identity: { keyPem: files.keyPem, certPem: files.certPem },
    });
    try {
      value = await client.getJson(`v1/posture?identity=${encodeURIComponent(spiffeId)}`);
    } finally {
      client.close();
    }
  } else {
    return null;
  }
  const parsed = postureStandingSchema.safeParse(value);
  if (!parsed.success)
    throw new GatehouseError(
      'GH_USAGE',
      'the posture standing is not what GET /v1/posture answers: {spiffeId, score, reportedAt, failing, critical}',
    );
  if (parsed.data.spiffeId !== spiffeId)
    throw new GatehouseError(
      'GH_USAGE',
      `the posture standing is of ${parsed.data.spiffeId}, not of the certificate's ${spiffeId ?? '(no SPIFFE ID)'}`,
    );
  return parsed.data;
}
