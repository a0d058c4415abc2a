import { GatehouseError, toGatehouseError } from '../../errors/errors.js';
import { formatRemaining, parseDurationMs } from '../../config/duration.js';
import { flag, str, type CommandSpec, caDirOf } from '../command.js';
import { json, table } from '../output.js';

export const checkCommand: CommandSpec = {
  path: ['check'],
  summary:
    'Check the CA for cron and CI: certificates, CA certificates and CRLs that run out within a window. Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.',
  options: {
    dir: { type: 'string', value: 'DIR', description: 'CA directory (or GATEHOUSE_CA_DIR)' },
    'expiring-within': {
      type: 'string',
      value: 'DURATION',
      required: true,
      description: 'Window, e.g. 8h for 24 h certificates or 7d for long-lived ones',
    },
    at: {
      type: 'string',
      value: 'TIME',
      description: 'Check as of this ISO 8601 instant instead of now (e.g. before a holiday)',
    },
    json: { type: 'boolean', description: 'Print JSON' },
  },
  notes: [
    "WARNING (exit 1): an identity's newest active certificate, or the root or intermediate certificate, expires within the window; or a CRL has less than min(window, its renew margin) left (crl.renewBefore; crl.rootLifetime/3 for the root's), which a running CA would have replaced.",
    'CRITICAL (exit 2): a CRL is past its nextUpdate, missing or does not verify; a CA certificate has expired.',
    'UNKNOWN (exit 3): the check could not run (no CA in DIR, unreadable store). Bad arguments exit 64.',
    "Renewed or replaced certificates and the CA's own HTTPS certificate are left out. Reads only; needs no passphrase.",
  ],
  async run(ctx) {
    const dir = caDirOf(ctx);
    const within = str(ctx, 'expiring-within')!;
    const windowMs = parseDurationMs(within);
    if (windowMs === null)
      throw new GatehouseError('GH_USAGE', `--expiring-within "${within}" is not a duration like 8h or 7d`);
    const atText = str(ctx, 'at');
    const now = atText === undefined ? new Date() : new Date(atText);
    if (Number.isNaN(now.getTime()) || (atText !== undefined && !/^\d{4}-\d\d-\d\d/.test(atText)))
      throw new GatehouseError('GH_USAGE', `--at "${atText}" is not an ISO 8601 time like 2026-01-31T12:00:00Z`);

    const { CHECK_EXIT, checkCa } = await import('../../ca/expiry-check.js');
    let report;
    try {
      const { loadCaPublic } = await import('../../ca/ca-dir.js');
      const { openCaStore } = await import('../../ca/store-open.js');
      const ca = loadCaPublic(dir, { env: ctx.env });
      const store = await openCaStore(ca.dir, ca.config, { readonly: true });
      try {
        report = await checkCa({
          store,
          config: ca.config,
          rootDer: ca.rootDer,
          intermediateDer: ca.intermediateDer,
          rootKeyOnline: ca.rootKeyOnline,
          now,
          windowMs,
        });
      } finally {
        await store.close();
      }
    } catch (caught) {
      const error = toGatehouseError(caught);
      ctx.out(
        flag(ctx, 'json')
          ? json({ level: 'UNKNOWN', error: { code: error.code, message: error.message } })
          : `UNKNOWN: ${error.message} [${error.code}]\n`,
      );
      return CHECK_EXIT.UNKNOWN;
    }
    if (flag(ctx, 'json')) {
      ctx.out(json(report));
      return CHECK_EXIT[report.level];
    }
    const { findings, checked } = report;
    if (findings.length === 0) {
      const crls = checked.crls.map((c) => `${c.scope} CRL #${c.number} until ${c.nextUpdate}`).join(', ');
      ctx.out(`OK: nothing runs out within ${within} (${checked.activeCertificates} active certificates; ${crls})\n`);
      return CHECK_EXIT.OK;
    }
    const critical = findings.filter((f) => f.level === 'CRITICAL').length;
    ctx.out(
      `${report.level}: ${findings.length} finding${findings.length === 1 ? '' : 's'} within ${within}${critical ? `, ${critical} critical` : ''} (as of ${report.at})\n`,
    );
    ctx.out(
      table(
        findings.map((f) => ({
          ...f,
          serial: f.serial ?? (f.crlNumber ? `#${f.crlNumber}` : null),
          remaining:
            f.remainingSeconds === null
              ? null
              : f.remainingSeconds < 0
                ? `-${formatRemaining(f.remainingSeconds * 1000)}`
                : formatRemaining(f.remainingSeconds * 1000),
        })),
        ['level', 'kind', 'name', 'role', 'serial', 'notAfter', 'remaining'],
      ),
    );
    ctx.out(`\n${findings.map((f) => `${f.name}: ${f.message}`).join('\n')}\n`);
    return CHECK_EXIT[report.level];
  },
};
