import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { GatehouseError } from '../../errors/errors.js';
import { parseDurationMs } from '../../config/duration.js';
import { checkStatusWithRevocation, formatRemaining, STATUS_EXIT } from '../../agent/status.js';
import { loadIdentity } from '../../agent/agent-state.js';
import { writeFileAtomic } from '../../files/atomic-write.js';
import { readPassphraseFile } from '../passphrase.js';
import { serverLogger, logLevelOption } from '../server-log.js';
import { isKeyType, KEY_TYPES } from '../../pki/keys.js';
import { formatDn } from '../../pki/certificate.js';
import { decodePem } from '../../pki/pem.js';
import { flag, list, str, type CommandContext, type CommandSpec } from '../command.js';
import { json, keyValues } from '../output.js';

const DIR_OPTION = {
  type: 'string' as const,
  value: 'DIR',
  description: 'Identity directory (default GATEHOUSE_AGENT_DIR or ~/.gatehouse/identity)',
};
const SECRETS_DIR_OPTION = {
  type: 'string' as const,
  value: 'DIR',
  description: 'Secrets folder (default DIR/secrets; e.g. /run/gatehouse/secrets, a tmpfs)',
};
const LINK_IDENTITY_OPTION = {
  type: 'boolean' as const,
  description: 'Also link cert.pem, key.pem and ca.pem into the secrets folder',
};

export function agentDir(ctx: CommandContext): string {
  return resolve(str(ctx, 'dir') ?? ctx.env.GATEHOUSE_AGENT_DIR ?? join(homedir(), '.gatehouse', 'identity'));
}

function readToken(ctx: CommandContext): string {
  const direct = str(ctx, 'token');
  const file = str(ctx, 'token-file');
  if (direct && file) throw new GatehouseError('GH_USAGE', 'give either --token or --token-file, not both');
  if (file) {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (cause) {
      throw new GatehouseError('GH_FILE_IO', `cannot read ${file}: ${(cause as NodeJS.ErrnoException).code}`, {
        cause,
      });
    }
  }
  const token = direct ?? ctx.env.GATEHOUSE_TOKEN;
  if (!token)
    throw new GatehouseError(
      'GH_USAGE',
      'a join token is required: --token-file FILE, GATEHOUSE_TOKEN, or --token TOKEN',
    );
  return token;
}

export const agentEnroll: CommandSpec = {
  path: ['agent', 'enroll'],
  summary:
    'Enroll this machine: pin the CA from the token, generate a key locally, and write key.pem (0600), cert.pem and ca.pem.',
  options: {
    ca: { type: 'string', value: 'URL', required: true, description: 'CA URL, e.g. https://ca.example.internal:8443' },
    token: {
      type: 'string',
      value: 'TOKEN',
      description: 'Join token (visible in the process list: prefer --token-file or GATEHOUSE_TOKEN)',
    },
    'token-file': { type: 'string', value: 'FILE', description: 'Read the join token from FILE' },
    name: {
      type: 'string',
      value: 'NAME',
      description: "Identity name (default: the token's name, else the host name)",
    },
    dir: DIR_OPTION,
    dns: { type: 'string', value: 'NAME', multiple: true, description: 'DNS SAN to request (server roles)' },
    ip: { type: 'string', value: 'ADDR', multiple: true, description: 'IP SAN to request (server roles)' },
    'key-type': { type: 'string', value: 'TYPE', description: `Key type: ${KEY_TYPES.join(', ')} (default p256)` },
    json: { type: 'boolean', description: 'Print the identity as JSON' },
  },
  notes: ['The private key never leaves this machine; only the CSR is sent.'],
  async run(ctx) {
    const keyType = str(ctx, 'key-type') ?? 'p256';
    if (!isKeyType(keyType)) throw new GatehouseError('GH_USAGE', `--key-type must be one of ${KEY_TYPES.join(', ')}`);
    const dir = agentDir(ctx);
    const { enroll } = await import('../../agent/enroll.js');
    const identity = await enroll({
      caUrl: str(ctx, 'ca')!,
      token: readToken(ctx),
      dir,
      keyType,
      dns: list(ctx, 'dns'),
      ip: list(ctx, 'ip'),
      ...(str(ctx, 'name') ? { name: str(ctx, 'name')! } : {}),
    });
    ctx.out(
      flag(ctx, 'json')
        ? json({ dir, ...identity })
        : `enrolled ${identity.spiffeId} (serial ${identity.serial}, expires ${identity.notAfter.toISOString()}) into ${dir}\n`,
    );
  },
};

export const agentWhoami: CommandSpec = {
  path: ['agent', 'whoami'],
  summary: "Print this machine's identity: name, role, SPIFFE ID, serial and expiry.",
  options: { dir: DIR_OPTION, json: { type: 'boolean', description: 'Print JSON' } },
  async run(ctx) {
    const loaded = loadIdentity(agentDir(ctx));
    const id = loaded.identity;
    const view = {
      name: id.name,
      role: id.role,
      org: id.org,
      spiffeId: id.spiffeId,
      serial: id.serial,
      fingerprint: id.fingerprint,
      notBefore: id.notBefore.toISOString(),
      notAfter: id.notAfter.toISOString(),
      issuer: formatDn(loaded.leaf.issuer),
      dir: loaded.dir,
    };
    if (flag(ctx, 'json')) return void ctx.out(json(view));
    const remaining = id.notAfter.getTime() - Date.now();
    ctx.out(
      keyValues([
        ['name', view.name],
        ['role', view.role],
        ['org', view.org],
        ['spiffe id', view.spiffeId],
        ['serial', view.serial],
        ['fingerprint', view.fingerprint],
        ['not before', view.notBefore],
        ['expires', `${view.notAfter} (${remaining > 0 ? `in ${formatRemaining(remaining)}` : 'EXPIRED'})`],
        ['issuer', view.issuer],
      ]),
    );
  },
};

export const agentStatus: CommandSpec = {
  path: ['agent', 'status'],
  summary:
    'Check the identity for monitoring, revocation included. Exit 0 OK, 1 WARNING (close to expiry, revocation unknown), 2 CRITICAL (expired, revoked, invalid), 3 UNKNOWN (not enrolled).',
  options: {
    dir: DIR_OPTION,
    'warn-within': {
      type: 'string',
      value: 'DURATION',
      description: 'Warn when less than DURATION remains (default: a quarter of the lifetime)',
    },
    ca: {
      type: 'string',
      value: 'URL',
      description: 'CA URL to fetch the CRL from (default: the one recorded at enrollment)',
    },
    offline: {
      type: 'boolean',
      description: 'Do not contact the CA: judge revocation by the stored CRL (crl.pem) alone',
    },
    json: { type: 'boolean', description: 'Print JSON' },
  },
  notes: [
    "Fetches the CA's CRL (GET /crl, over the pinned connection) each time, verifies it (signed by the issuing CA in cert.pem, which chains to ca.pem) and keeps it in DIR/crl.pem.",
    'A CRL that lists the certificate is CRITICAL, whether fetched now or stored. With the CA unreachable the stored CRL decides: not listed and within its nextUpdate keeps the expiry-based level; no usable CRL, or one past its nextUpdate, is WARNING.',
  ],
  async run(ctx) {
    const report = await checkStatusWithRevocation(agentDir(ctx), {
      now: new Date(),
      ...optionalDuration(ctx, 'warn-within', 'warnWithinMs'),
      ...(str(ctx, 'ca') ? { caUrl: str(ctx, 'ca')! } : {}),
      ...(flag(ctx, 'offline') ? { offline: true } : {}),
    });
    ctx.out(flag(ctx, 'json') ? json(report) : `${report.level}: ${report.message}\n`);
    return STATUS_EXIT[report.level];
  },
};

/** `--NAME DURATION` as `{ [key]: ms }`, or nothing when absent. */
function optionalDuration<K extends string>(ctx: CommandContext, name: string, key: K): Partial<Record<K, number>> {
  const text = str(ctx, name);
  if (text === undefined) return {};
  const ms = parseDurationMs(text);
  if (ms === null) throw new GatehouseError('GH_USAGE', `--${name} "${text}" is not a duration like 6h`);
  return { [key]: ms } as Partial<Record<K, number>>;
}

export const agentRenew: CommandSpec = {
  path: ['agent', 'renew'],
  summary: 'Renew now, once, with a new key (mutual TLS with the current certificate).',
  options: {
    dir: DIR_OPTION,
    ca: { type: 'string', value: 'URL', description: 'CA URL (default: the one recorded at enrollment)' },
    json: { type: 'boolean', description: 'Print JSON' },
  },
  async run(ctx) {
    const { renewOnce } = await import('../../agent/renew.js');
    const { previous, current } = await renewOnce({
      dir: agentDir(ctx),
      ...(str(ctx, 'ca') ? { caUrl: str(ctx, 'ca')! } : {}),
    });
    ctx.out(
      flag(ctx, 'json')
        ? json({ previous, current })
        : `renewed ${current.spiffeId}: serial ${previous.serial} → ${current.serial}, expires ${current.notAfter.toISOString()}\n`,
    );
  },
};

export const agentReport: CommandSpec = {
  path: ['agent', 'report'],
  summary:
    "Check this machine's security posture (OS support, automatic updates, SSH settings, risky listening services, time sync, the key's file modes) and send the report to the CA now.",
  options: {
    dir: DIR_OPTION,
    ca: { type: 'string', value: 'URL', description: 'CA URL (default: the one recorded at enrollment)' },
    'dry-run': { type: 'boolean', description: 'Print the report without sending it' },
    root: {
      type: 'string',
      value: 'DIR',
      description: 'Read the system below DIR instead of / (an image or a test tree)',
    },
    json: { type: 'boolean', description: "Print the report (and the CA's answer) as JSON" },
  },
  notes: [
    "The score is 100 × the weight of passing checks over the weight of decided ones; checks that cannot tell (another OS, not readable without root) count neither way. The CA computes it again from the checks. Installed packages (from the dpkg database) go with the report for the CVE audit. Run as root for the full picture (other users' sockets, firewall files).",
  ],
  async run(ctx) {
    const { reportPosture } = await import('../../agent/posture-report.js');
    const outcome = await reportPosture({
      dir: agentDir(ctx),
      ...(str(ctx, 'ca') ? { caUrl: str(ctx, 'ca')! } : {}),
      ...(str(ctx, 'root') ? { root: str(ctx, 'root')! } : {}),
      dryRun: flag(ctx, 'dry-run'),
    });
    if (flag(ctx, 'json'))
      return void ctx.out(json({ ...outcome.report, ...(outcome.received ? { received: outcome.received } : {}) }));
    const { report, received } = outcome;
    ctx.out(
      `score ${report.score ?? 'none (no check could decide)'}${received ? `, recorded by the CA at ${received.receivedAt}` : ' (dry run: not sent)'}\n`,
    );
    for (const c of report.checks) ctx.out(`  ${c.verdict.toUpperCase().padEnd(7)} ${c.id.padEnd(18)} ${c.reason}\n`);
    if (report.packages) ctx.out(`  ${report.packages.length} installed packages listed for the CVE audit\n`);
  },
};

export const agentRun: CommandSpec = {
  path: ['agent', 'run'],
  summary:
    "Keep the identity fresh: renew at ~2/3 of the lifetime with jitter and a new key, retry with backoff, check the CA's CRL every few minutes, run a hook after each renewal and on revocation.",
  options: {
    dir: DIR_OPTION,
    ca: { type: 'string', value: 'URL', description: 'CA URL (default: the one recorded at enrollment)' },
    'on-renew': {
      type: 'string',
      value: 'CMD',
      description:
        'Shell command run after the new files are in place (e.g. "systemctl reload nginx"), and once on revocation',
    },
    'revocation-check-interval': {
      type: 'string',
      value: 'DURATION',
      description: "How often to check the certificate against the CA's CRL (default 5m)",
    },
    'secrets-dir': SECRETS_DIR_OPTION,
    'secrets-interval': {
      type: 'string',
      value: 'DURATION',
      description: 'How often to sync the secrets folder (default 5m; also at start and after each renewal)',
    },
    'link-identity': LINK_IDENTITY_OPTION,
    'no-secrets': { type: 'boolean', description: 'Do not sync secrets' },
    'posture-interval': {
      type: 'string',
      value: 'DURATION',
      description:
        "How often to report the machine's posture to the CA (default 1h, jittered; also after each renewal)",
    },
    'no-posture': { type: 'boolean', description: "Do not report the machine's posture" },
    'log-level': logLevelOption(),
  },
  notes: [
    'The hook gets GATEHOUSE_DIR, GATEHOUSE_SERIAL and GATEHOUSE_EVENT (renewed, secrets-changed or revoked; on secrets-changed also GATEHOUSE_SECRETS_DIR; on revoked also GATEHOUSE_REVOKED_AT and GATEHOUSE_REVOCATION_REASON).',
    'Secrets granted to this identity (gatehouse secret grant) are kept as files, mode 0400, in the secrets folder; a secret no longer granted is removed at the next sync. A failed sync (agent.secrets_sync_failed) leaves the folder as it was. Put the folder on a tmpfs so values never touch a disk (docs/secrets.md).',
    'A CA that cannot be reached for a revocation check is logged (agent.revocation_check_failed) and asked again at the next interval; the last CRL believed stays in DIR/crl.pem.',
    'Exit 75 when renewal has become impossible: expired, or revoked (agent.cert_revoked, seen in the CRL or in a refused renewal). The machine must enroll again with a new token.',
    'Logs JSON lines to stderr (time, level, msg, fields). Stops on SIGINT or SIGTERM.',
  ],
  async run(ctx) {
    const logger = serverLogger(ctx);
    const { runAgent } = await import('../../agent/renew-scheduler.js');
    const interval = optionalDuration(ctx, 'revocation-check-interval', 'revocationCheckIntervalMs');
    if (interval.revocationCheckIntervalMs === 0)
      throw new GatehouseError('GH_USAGE', '--revocation-check-interval must be longer than 0');
    const secretsInterval = optionalDuration(ctx, 'secrets-interval', 'intervalMs');
    if (secretsInterval.intervalMs === 0)
      throw new GatehouseError('GH_USAGE', '--secrets-interval must be longer than 0');
    if (
      flag(ctx, 'no-secrets') &&
      (str(ctx, 'secrets-dir') || secretsInterval.intervalMs || flag(ctx, 'link-identity'))
    ) {
      throw new GatehouseError(
        'GH_USAGE',
        '--no-secrets cannot be combined with --secrets-dir, --secrets-interval or --link-identity',
      );
    }
    const secrets = flag(ctx, 'no-secrets')
      ? null
      : {
          ...secretsInterval,
          ...(str(ctx, 'secrets-dir') ? { dir: str(ctx, 'secrets-dir')! } : {}),
          linkIdentity: flag(ctx, 'link-identity'),
        };
    const postureInterval = optionalDuration(ctx, 'posture-interval', 'intervalMs');
    if (postureInterval.intervalMs === 0)
      throw new GatehouseError(
        'GH_USAGE',
        '--posture-interval must be longer than 0 (use --no-posture to turn reports off)',
      );
    if (flag(ctx, 'no-posture') && postureInterval.intervalMs)
      throw new GatehouseError('GH_USAGE', '--no-posture cannot be combined with --posture-interval');
    await runAgent({
      dir: agentDir(ctx),
      logger,
      signal: ctx.signal,
      ...interval,
      secrets,
      posture: flag(ctx, 'no-posture') ? null : postureInterval,
      ...(str(ctx, 'ca') ? { caUrl: str(ctx, 'ca')! } : {}),
      ...(str(ctx, 'on-renew') ? { onRenew: str(ctx, 'on-renew')! } : {}),
    });
  },
};

export const agentSecretsSync: CommandSpec = {
  path: ['agent', 'secrets', 'sync'],
  summary:
    'Sync the secrets folder once: write every secret granted to this identity (0400), remove those no longer granted.',
  options: {
    dir: DIR_OPTION,
    ca: { type: 'string', value: 'URL', description: 'CA URL (default: the one recorded at enrollment)' },
    'secrets-dir': SECRETS_DIR_OPTION,
    'link-identity': LINK_IDENTITY_OPTION,
    json: { type: 'boolean', description: 'Print JSON' },
  },
  notes: [
    'Only files the agent wrote are removed (it records them in .gatehouse-secrets.json in the folder). Values are never printed.',
    'Exit 0 also when nothing changed; `agent run` does the same sync on a schedule and runs its hook with GATEHOUSE_EVENT=secrets-changed.',
  ],
  async run(ctx) {
    const { syncSecrets } = await import('../../agent/secrets-sync.js');
    const result = await syncSecrets({
      dir: agentDir(ctx),
      ...(str(ctx, 'ca') ? { caUrl: str(ctx, 'ca')! } : {}),
      ...(str(ctx, 'secrets-dir') ? { secretsDir: str(ctx, 'secrets-dir')! } : {}),
      linkIdentity: flag(ctx, 'link-identity'),
    });
    if (flag(ctx, 'json')) return void ctx.out(json(result));
    const lines = [
      ...result.written.map((w) => `wrote ${w.name} (version ${w.version})`),
      ...result.removed.map((name) => `removed ${name} (no longer granted)`),
      `${result.changed ? 'changed' : 'unchanged'}: ${result.written.length + result.unchanged.length} secret(s) in ${result.secretsDir}`,
    ];
    ctx.out(`${lines.join('\n')}\n`);
  },
};

export const agentExport: CommandSpec = {
  path: ['agent', 'export'],
  summary: 'Export the identity as PKCS#12 (key, certificate chain and root) for browsers and tools.',
  options: {
    p12: { type: 'string', value: 'FILE', required: true, description: 'Output file (written 0600)' },
    'passphrase-file': {
      type: 'string',
      value: 'FILE',
      required: true,
      description: 'Protect the export with the passphrase in FILE',
    },
    dir: DIR_OPTION,
  },
  async run(ctx) {
    const loaded = loadIdentity(agentDir(ctx));
    const passphrase = readPassphraseFile(str(ctx, 'passphrase-file')!);
    const roots = decodePem(loaded.caPem, 'CERTIFICATE');
    const { buildPkcs12 } = await import('../../pki/pkcs12.js');
    const p12 = buildPkcs12({
      privateKey: loaded.key,
      certificatesDer: [...loaded.chainDer, ...roots],
      passphrase,
      friendlyName: loaded.identity.spiffeId ?? loaded.identity.name ?? 'gatehouse',
    });
    writeFileAtomic(str(ctx, 'p12')!, p12, 0o600);
    ctx.out(`wrote ${str(ctx, 'p12')} (${loaded.identity.spiffeId})\n`);
  },
};
