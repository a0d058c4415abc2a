/**
 * What a role allows, applied to a parsed CSR. The CA decides the subject, as Docker Swarm
 * does: `CN=<name>, OU=<role>, O=<org>` plus `spiffe://<trust-domain>/<role>/<name>`. A CSR may
 * ask only for what its role allows; anything else is refused with what and why.
 */
import { GatehouseError } from '../errors/errors.js';
import type { CaConfig, RoleConfig } from '../config/ca-config.js';
import { compileNamePattern, dnsMatches, isSafeName, DNS_NAME_RE } from '../config/patterns.js';
import type { ParsedCsr } from '../pki/csr.js';
import { OID } from '../pki/oids.js';

export interface NameConstraint {
  /** The token fixes the name. */
  exact?: string | null;
  /** The token restricts names to this glob. */
  pattern?: string | null;
  /** The agent's suggestion (its host name) when the CSR has no CN and the token fixes none. */
  hint?: string | null;
}

export interface ApprovedRequest {
  name: string;
  role: string;
  spiffeId: string;
  dns: string[];
  ip: string[];
}

const ALLOWED_REQUESTED_EXTENSIONS = new Set<string>([
  OID.subjectAltName,
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.subjectKeyIdentifier,
]);

export function spiffeIdFor(config: CaConfig, role: string, name: string): string {
  return `spiffe://${config.trustDomain}/${role}/${name}`;
}

export function roleConfig(config: CaConfig, role: string): RoleConfig {
  const found = Object.hasOwn(config.roles, role) ? config.roles[role] : undefined;
  if (!found)
    throw new GatehouseError(
      'GH_ROLE_UNKNOWN',
      `role "${role}" is not defined in the CA config (roles: ${Object.keys(config.roles).join(', ')})`,
    );
  return found;
}

export function decideName(csr: ParsedCsr, role: string, rules: RoleConfig, constraint: NameConstraint): string {
  const cns = csr.subject.filter((a) => a.type === 'CN').map((a) => a.value);
  if (cns.length > 1) throw new GatehouseError('GH_CSR_POLICY', 'CSR subject has more than one CN');
  const name = cns[0] ?? constraint.exact ?? constraint.hint ?? null;
  if (name === null)
    throw new GatehouseError(
      'GH_NAME_INVALID',
      'no identity name: put it in the CSR CN (agent: --name NAME), or create the token with --name',
    );
  if (!isSafeName(name)) {
    throw new GatehouseError(
      'GH_NAME_INVALID',
      `name ${JSON.stringify(name)} is not allowed: use 1–63 characters from A–Z a–z 0–9 . _ - starting with a letter or digit`,
    );
  }
  if (constraint.exact && name !== constraint.exact) {
    throw new GatehouseError(
      'GH_NAME_INVALID',
      `this token enrolls only the name "${constraint.exact}", not "${name}"`,
    );
  }
  if (constraint.pattern && !compileNamePattern(constraint.pattern).test(name)) {
    throw new GatehouseError(
      'GH_NAME_INVALID',
      `name "${name}" does not match the token's pattern "${constraint.pattern}"`,
    );
  }
  if (!compileNamePattern(rules.names).test(name)) {
    throw new GatehouseError(
      'GH_NAME_INVALID',
      `name "${name}" does not match role ${role}'s pattern "${rules.names}"`,
    );
  }
  return name;
}

export function approveCsr(config: CaConfig, csr: ParsedCsr, role: string, name: string): ApprovedRequest {
  const rules = roleConfig(config, role);
  const spiffeId = spiffeIdFor(config, role, name);
  const refuse = (what: string) => {
    throw new GatehouseError('GH_CSR_POLICY', `${what} (role ${role}, profile ${rules.profile})`);
  };

  if (csr.requestsCa) refuse('CSR asks for CA:TRUE; Gatehouse issues only end-entity certificates to roles');
  for (const attr of csr.subject) {
    const fixed = attr.type === 'OU' ? role : attr.type === 'O' ? config.org : null;
    if (attr.type === 'CN') continue;
    if (fixed === null) refuse(`CSR subject may contain only CN (the CA sets OU and O); found ${attr.type}`);
    if (attr.value !== fixed)
      refuse(`CSR subject asks for ${attr.type}=${attr.value}; the CA sets ${attr.type}=${fixed}`);
  }
  const unknownExtension = csr.extensionOids.find((oid) => !ALLOWED_REQUESTED_EXTENSIONS.has(oid));
  if (unknownExtension) refuse(`CSR requests extension ${unknownExtension}, which Gatehouse does not issue`);
  const allowedEku = new Set<string>([
    ...(rules.profile !== 'client' ? [OID.serverAuth] : []),
    ...(rules.profile !== 'server' ? [OID.clientAuth] : []),
  ]);
  const badEku = csr.requestedEku.find((oid) => !allowedEku.has(oid));
  if (badEku) refuse(`CSR requests extended key usage ${ekuName(badEku)}, which the profile does not include`);

  const { sans } = csr;
  if (sans.other.length)
    refuse(`CSR requests a SAN of a type Gatehouse does not issue (GeneralName tag ${sans.other[0]})`);
  if (sans.email.length) refuse(`CSR requests email SAN ${sans.email[0]}; email SANs are not issued`);
  const foreignUri = sans.uri.find((u) => u !== spiffeId);
  if (foreignUri) refuse(`CSR requests URI SAN ${foreignUri}; the CA sets the URI SAN to ${spiffeId}`);

  if (rules.profile === 'client' && (sans.dns.length || sans.ip.length)) {
    refuse(
      `CSR requests ${sans.dns.length ? `DNS SAN ${sans.dns[0]}` : `IP SAN ${sans.ip[0]}`}; DNS and IP SANs are issued only to server profiles`,
    );
  }
  for (const dns of sans.dns) {
    if (!DNS_NAME_RE.test(dns)) refuse(`CSR requests DNS SAN ${JSON.stringify(dns)}, which is not a valid DNS name`);
    if (!rules.dns.some((p) => dnsMatches(p, dns)))
      refuse(`DNS SAN ${dns} is not allowed (allowed: ${rules.dns.join(', ') || 'none'})`);
  }
  for (const ip of sans.ip) {
    if (!rules.ip.includes(ip)) refuse(`IP SAN ${ip} is not allowed (allowed: ${rules.ip.join(', ') || 'none'})`);
  }
  return { name, role, spiffeId, dns: dedupe(sans.dns.map((d) => d.toLowerCase())), ip: dedupe(sans.ip) };
}

function ekuName(oid: string): string {
  return oid === OID.serverAuth ? 'serverAuth' : oid === OID.clientAuth ? 'clientAuth' : oid;
}

function dedupe(values: string[]): string[] {
  return [...new Set(values)];
}
