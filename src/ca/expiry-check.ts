/**
 * `gatehouse check`: what will stop working soon, for cron and CI. Reads the CA directory and
 * its store only (no keys, no running CA), at an instant the caller chooses, and reports with
 * Nagios exit semantics like `agent status`: WARNING when something runs out within its
 * window, CRITICAL when something already has.
 *
 * What counts:
 * - an identity's newest active certificate expiring within the window. A certificate that was
 *   renewed or replaced (an unrevoked one for the same role and name was issued after it) is left out:
 *   its machine already holds the successor. The CA's own HTTPS certificate (role ca-server) is
 *   left out too: `ca serve` renews it itself and issues a new one at every start.
 * - the root and intermediate certificates expiring within the window, or expired.
 * - each CRL past its nextUpdate (CRITICAL), missing or not verifying (CRITICAL), or with less
 *   than min(window, renew margin) left, where the renew margin is when a running CA replaces it
 *   (crl.renewBefore; crl.rootLifetime / 3 for the root's). A CRL inside its margin means no CA
 *   process is renewing it; relying parties that check CRLs fail closed once it lapses.
 */
import { formatRemaining } from '../config/duration.js';
import type { CaConfig } from '../config/ca-config.js';
import { parseCertificate } from '../pki/certificate.js';
import { parseCrl, verifyCrlSignature } from '../pki/crl-parse.js';
import type { Store } from '../store/store.js';
import { SELF_RENEWED_ROLES } from './active-identities.js';
import { crlRenewBeforeMs, loadPublishedCrl, type CrlScope } from './crl-publisher.js';

export type CheckLevel = 'OK' | 'WARNING' | 'CRITICAL' | 'UNKNOWN';
export const CHECK_EXIT: Record<CheckLevel, number> = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 };

export interface Finding {
  level: 'WARNING' | 'CRITICAL';
  kind: 'certificate' | 'ca-certificate' | 'crl';
  name: string;
  /** The identity's role; `root` or `intermediate` for CA certificates; null for CRLs. */
  role: string | null;
  serial: string | null;
  crlNumber: string | null;
  /** notAfter, or a CRL's nextUpdate (ISO 8601). */
  notAfter: string | null;
  /** Seconds from the check instant to notAfter; negative once past. */
  remainingSeconds: number | null;
  message: string;
}

export interface CheckInput {
  store: Store;
  config: Readonly<CaConfig>;
  rootDer: Buffer;
  intermediateDer: Buffer;
  rootKeyOnline: boolean;
  now: Date;
  windowMs: number;
}

export interface CheckReport {
  level: CheckLevel;
  at: string;
  windowSeconds: number;
  findings: Finding[];
  /** What was looked at, for the OK line and for JSON consumers. */
  checked: {
    activeCertificates: number;
    caCertificates: Array<{ role: 'root' | 'intermediate'; notAfter: string }>;
    crls: Array<{ scope: CrlScope; number: string | null; nextUpdate: string | null; thresholdSeconds: number }>;
  };
}

export async function checkCa(input: CheckInput): Promise<CheckReport> {
  const { now, windowMs } = input;
  const findings: Finding[] = [];
  const checked: CheckReport['checked'] = {
    activeCertificates: (await input.store.countCertsByState(now)).active,
    caCertificates: [],
    crls: [],
  };
  const seconds = (until: Date) => Math.round((until.getTime() - now.getTime()) / 1000);

  for (const [role, der] of [
    ['root', input.rootDer],
    ['intermediate', input.intermediateDer],
  ] as const) {
    const cert = parseCertificate(der);
    checked.caCertificates.push({ role, notAfter: cert.notAfter.toISOString() });
    const remainingMs = cert.notAfter.getTime() - now.getTime();
    if (remainingMs >= windowMs) continue;
    const name = cert.subject.find((a) => a.type === 'CN')?.value ?? role;
    const consequence =
      role === 'root'
        ? 'every certificate of this CA stops verifying then'
        : 'certificates issued from now on are cut to end then; plan a new intermediate';
    findings.push({
      level: remainingMs <= 0 ? 'CRITICAL' : 'WARNING',
      kind: 'ca-certificate',
      name,
      role,
      serial: cert.serial,
      crlNumber: null,
      notAfter: cert.notAfter.toISOString(),
      remainingSeconds: seconds(cert.notAfter),
      message:
        remainingMs <= 0
          ? `the ${role} CA certificate expired ${formatRemaining(remainingMs)} ago`
          : `the ${role} CA certificate expires in ${formatRemaining(remainingMs)}: ${consequence}`,
    });
  }

  // Only the CRLs this CA signs: none for its certificates when an external CA signs them, and
  // not the root's when an imported root's own PKI publishes it.
  const scopes: CrlScope[] = [
    ...(input.config.keys.intermediate !== null ? ['intermediate' as const] : []),
    ...(input.config.crl.rootCrl !== 'external' ? ['root' as const] : []),
  ];
  for (const scope of scopes) findings.push(...(await checkCrl(input, scope, checked)));

  const expiring = await input.store.listCerts({
    expiringBefore: new Date(now.getTime() + windowMs),
    excludeSuperseded: true,
    now,
  });
  for (const cert of expiring.sort((a, b) => a.notAfter.getTime() - b.notAfter.getTime())) {
    if (SELF_RENEWED_ROLES.has(cert.role)) continue;
    const remainingMs = cert.notAfter.getTime() - now.getTime();
    findings.push({
      level: 'WARNING',
      kind: 'certificate',
      name: cert.name,
      role: cert.role,
      serial: cert.serial,
      crlNumber: null,
      notAfter: cert.notAfter.toISOString(),
      remainingSeconds: seconds(cert.notAfter),
      message: `${cert.spiffeId} expires in ${formatRemaining(remainingMs)} and has no successor: is \`gatehouse agent run\` renewing it?`,
    });
  }

  const level: CheckLevel = findings.some((f) => f.level === 'CRITICAL')
    ? 'CRITICAL'
    : findings.length
      ? 'WARNING'
      : 'OK';
  return { level, at: now.toISOString(), windowSeconds: Math.round(windowMs / 1000), findings, checked };
}

async function checkCrl(input: CheckInput, scope: CrlScope, checked: CheckReport['checked']): Promise<Finding[]> {
  const { now } = input;
  const thresholdMs = Math.min(input.windowMs, crlRenewBeforeMs(input.config, scope));
  const name = `${scope} CRL`;
  const finding = (level: Finding['level'], message: string, extra: Partial<Finding> = {}): Finding[] => [
    {
      level,
      kind: 'crl',
      name,
      role: null,
      serial: null,
      crlNumber: null,
      notAfter: null,
      remainingSeconds: null,
      message,
      ...extra,
    },
  ];
  const published = await loadPublishedCrl(input.store, scope);
  if (!published) {
    checked.crls.push({ scope, number: null, nextUpdate: null, thresholdSeconds: thresholdMs / 1000 });
    return finding(
      'CRITICAL',
      scope === 'root'
        ? 'no root CRL is published: run `gatehouse ca root-crl --dir DIR --root-key FILE`'
        : 'no intermediate CRL is published yet: `gatehouse ca serve` publishes one when it starts',
    );
  }
  let crl;
  try {
    crl = parseCrl(published.der);
    verifyCrlSignature(crl, scope === 'root' ? input.rootDer : input.intermediateDer);
  } catch (err) {
    checked.crls.push({
      scope,
      number: published.number.toString(),
      nextUpdate: null,
      thresholdSeconds: thresholdMs / 1000,
    });
    return finding('CRITICAL', `the published ${name} is not valid: ${(err as Error).message}`);
  }
  const number = (crl.crlNumber ?? published.number).toString();
  checked.crls.push({
    scope,
    number,
    nextUpdate: crl.nextUpdate?.toISOString() ?? null,
    thresholdSeconds: thresholdMs / 1000,
  });
  if (!crl.nextUpdate) return [];
  const remainingMs = crl.nextUpdate.getTime() - now.getTime();
  if (remainingMs >= thresholdMs) return [];
  const renewer =
    scope === 'root' && !input.rootKeyOnline
      ? 'the root key is offline, so only `gatehouse ca root-crl --dir DIR --root-key FILE` renews it'
      : `a running \`gatehouse ca serve\` replaces it when less than ${formatRemaining(crlRenewBeforeMs(input.config, scope))} remain: is it running?`;
  const extra = {
    crlNumber: number,
    notAfter: crl.nextUpdate.toISOString(),
    remainingSeconds: Math.round(remainingMs / 1000),
  };
  if (remainingMs <= 0)
    return finding(
      'CRITICAL',
      `${name} #${number} passed its nextUpdate ${formatRemaining(remainingMs)} ago: relying parties that check CRLs refuse every certificate it covers; ${renewer}`,
      extra,
    );
  return finding(
    'WARNING',
    `${name} #${number} reaches its nextUpdate in ${formatRemaining(remainingMs)}; ${renewer}`,
    extra,
  );
}
