import { readFileSync } from 'node:fs';
import { GatehouseError } from '../../errors/errors.js';
import { parseDurationMs } from '../../config/duration.js';
import { isCrlReason, CRL_REASONS } from '../../pki/crl.js';
import { writeFileAtomic } from '../../files/atomic-write.js';
import { silentLogger } from '../../log/logger.js';
import type { CertState } from '../../store/store-certificates.js';
import { localActor } from '../local-actor.js';
import { flag, str, type CommandSpec, caDirOf } from '../command.js';
import { openAdmin, TARGET_OPTIONS } from '../admin-target.js';
import { json, keyValues, table } from '../output.js';

export const certList: CommandSpec = {
  path: ['cert', 'list'],
  summary: 'List issued certificates from the inventory, and the reserved names that have no active certificate.',
  options: {
    'expiring-within': {
      type: 'string',
      value: 'DURATION',
      description: 'Only active certificates expiring within DURATION (e.g. 7d)',
    },
    role: { type: 'string', value: 'ROLE', description: 'Only this role' },
    state: { type: 'string', value: 'STATE', description: 'Only active, expired or revoked' },
    json: { type: 'boolean', description: 'Print JSON' },
    ...TARGET_OPTIONS,
  },
  async run(ctx) {
    const within = str(ctx, 'expiring-within');
    const withinMs = within === undefined ? undefined : parseDurationMs(within);
    if (withinMs === null)
      throw new GatehouseError('GH_USAGE', `--expiring-within "${within}" is not a duration like 7d`);
    const state = str(ctx, 'state');
    if (state && !['active', 'expired', 'revoked'].includes(state))
      throw new GatehouseError('GH_USAGE', '--state must be active, expired or revoked');
    const admin = await openAdmin(ctx);
    try {
      const certs = await admin.listCerts({
        ...(str(ctx, 'role') ? { role: str(ctx, 'role')! } : {}),
        ...(state ? { state: state as CertState } : {}),
        ...(withinMs !== undefined ? { expiringWithinMs: withinMs } : {}),
      });
      if (flag(ctx, 'json')) return void ctx.out(json(certs));
      ctx.out(table(certs, ['serial', 'name', 'role', 'state', 'notAfter']));
      // Names whose certificates are all revoked or expired are still taken: say so beside the list.
      const reserved = (await admin.listNames()).filter(
        (n) => n.state !== 'active' && (!str(ctx, 'role') || n.role === str(ctx, 'role')),
      );
      if (reserved.length)
        ctx.out(
          `\nreserved names with no active certificate (re-enroll with \`token create --name\`, or \`name release\`):\n${table(reserved, ['spiffeId', 'state', 'newestSerial'])}`,
        );
    } finally {
      await admin.close();
    }
  },
};

export const certShow: CommandSpec = {
  path: ['cert', 'show'],
  summary: 'Show one certificate from the inventory.',
  positionals: [{ name: 'SERIAL', description: 'Serial in hex (colons allowed)', required: true }],
  options: {
    pem: { type: 'boolean', description: 'Print only the certificate PEM' },
    json: { type: 'boolean', description: 'Print JSON' },
    ...TARGET_OPTIONS,
  },
  async run(ctx) {
    const admin = await openAdmin(ctx);
    try {
      const cert = await admin.getCert(ctx.positionals[0]!);
      if (flag(ctx, 'pem')) ctx.out(cert.certificate);
      else if (flag(ctx, 'json')) ctx.out(json(cert));
      else
        ctx.out(
          keyValues([
            ['serial', cert.serial],
            ['fingerprint', cert.fingerprint],
            ['name', cert.name],
            ['role', cert.role],
            ['spiffe id', cert.spiffeId],
            ['state', cert.state],
            ['not before', cert.notBefore],
            ['not after', cert.notAfter],
            ['issued at', cert.issuedAt],
            ['token', cert.tokenId],
            ['renewed from', cert.renewedFrom],
            ['lineage', cert.lineage],
            ['renewed by', cert.supersededBy],
            ['revoked at', cert.revokedAt],
            ['revocation reason', cert.revocationReason],
          ]),
        );
    } finally {
      await admin.close();
    }
  },
};

export const certRevoke: CommandSpec = {
  path: ['cert', 'revoke'],
  summary:
    'Revoke a certificate and the rest of its lineage (the certificates it renewed and that renewed it). The CRL is regenerated at once (remote) or within seconds by the running CA (local).',
  positionals: [{ name: 'SERIAL', description: 'Serial in hex (colons allowed)', required: true }],
  options: {
    reason: {
      type: 'string',
      value: 'REASON',
      description: `RFC 5280 reason: ${CRL_REASONS.filter(Boolean).join(', ')} (default unspecified)`,
    },
    json: { type: 'boolean', description: 'Print JSON' },
    ...TARGET_OPTIONS,
  },
  async run(ctx) {
    const reason = str(ctx, 'reason') ?? 'unspecified';
    if (!isCrlReason(reason))
      throw new GatehouseError('GH_USAGE', `--reason must be one of ${CRL_REASONS.filter(Boolean).join(', ')}`);
    const admin = await openAdmin(ctx);
    try {
      const cert = await admin.revokeCert(ctx.positionals[0]!, reason);
      ctx.out(
        flag(ctx, 'json')
          ? json(cert)
          : `certificate ${cert.serial} (${cert.name}, role ${cert.role}) revoked at ${cert.revokedAt} (${cert.revocationReason})\n`,
      );
    } finally {
      await admin.close();
    }
  },
};

export const certSign: CommandSpec = {
  path: ['cert', 'sign'],
  summary:
    "Sign a CSR offline for a role, on the CA machine: for servers that cannot run the agent. The role's rules apply.",
  options: {
    dir: { type: 'string', value: 'DIR', description: 'CA directory (or GATEHOUSE_CA_DIR)' },
    csr: { type: 'string', value: 'FILE', required: true, description: 'PKCS#10 CSR, PEM or DER' },
    role: { type: 'string', value: 'ROLE', required: true, description: 'Role to issue for' },
    name: { type: 'string', value: 'NAME', description: "Identity name (default: the CSR's CN)" },
    out: {
      type: 'string',
      value: 'FILE',
      description: 'Write the chain (leaf then intermediate) here instead of stdout',
    },
    'passphrase-file': { type: 'string', value: 'FILE', description: 'Passphrase for encrypted CA keys' },
    json: { type: 'boolean', description: 'Print the certificate record and the chain as JSON' },
  },
  async run(ctx) {
    const dir = caDirOf(ctx);
    let csr: Buffer;
    try {
      csr = readFileSync(str(ctx, 'csr')!);
    } catch (cause) {
      throw new GatehouseError(
        'GH_FILE_IO',
        `cannot read ${str(ctx, 'csr')}: ${(cause as NodeJS.ErrnoException).code}`,
        { cause },
      );
    }
    const { loadCaMaterial } = await import('../../ca/ca-dir.js');
    const { Authority } = await import('../../ca/authority.js');
    const { externalCaFrom } = await import('../../ca/external-ca.js');
    const { openCaStore } = await import('../../ca/store-open.js');
    const material = loadCaMaterial(dir, { passphraseFile: str(ctx, 'passphrase-file') });
    const store = await openCaStore(dir, material.config);
    try {
      const authority = new Authority({
        ...material,
        externalCa: externalCaFrom(material.config, material.dir),
        store,
        logger: silentLogger,
      });
      const issued = await authority.signCsr(csr, str(ctx, 'role')!, str(ctx, 'name') ?? null, { actor: localActor() });
      if (flag(ctx, 'json')) {
        if (str(ctx, 'out')) writeFileAtomic(str(ctx, 'out')!, issued.chainPem, 0o644);
        const { certView } = await import('../../ca/admin-routes.js');
        ctx.out(
          json({
            ...certView(issued.record, new Date()),
            chain: issued.chainPem,
            ...(str(ctx, 'out') ? { out: str(ctx, 'out') } : {}),
          }),
        );
      } else if (str(ctx, 'out')) {
        writeFileAtomic(str(ctx, 'out')!, issued.chainPem, 0o644);
        ctx.err(
          `wrote ${str(ctx, 'out')}: serial ${issued.record.serial}, ${issued.record.spiffeId}, expires ${issued.record.notAfter.toISOString()}\n`,
        );
      } else ctx.out(issued.chainPem);
    } finally {
      await store.close();
    }
  },
};
