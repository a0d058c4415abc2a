/**
 * Which identity headers the app receives, in the spelling of the proxy it was written for,
 * and which inbound headers are removed first. Stripping covers every preset, both dash and
 * underscore spellings, any case and repeats: an app must never see a client-supplied value
 * under a name it trusts.
 */
import { createHash } from 'node:crypto';
import type { CertificateInfo, Identity } from '../pki/certificate.js';
import { toPem } from '../pki/pem.js';
import { assertSafeHeaderValue, escapeDnValue, escapeHeaderText, formatSubjectRfc4514 } from './header-values.js';

const text = (value: string | null): string | null => (value === null ? null : escapeHeaderText(value));

export type HeaderPreset = 'default' | 'nginx' | 'envoy' | 'traefik';

export const IDENTITY_HEADER_NAMES = new Set([
  'x-client-verify', 'x-client-subject', 'x-client-name', 'x-client-role', 'x-client-spiffe-id', 'x-client-serial', 'x-client-fingerprint',
  'client-cert', 'client-cert-chain',
  'ssl-client-verify', 'ssl-client-subject-dn', 'ssl-client-issuer-dn', 'ssl-client-cert',
  'x-forwarded-client-cert',
  'x-forwarded-tls-client-cert', 'x-forwarded-tls-client-cert-info',
]);
const IDENTITY_PREFIXES = ['x-client-', 'ssl-client-', 'x-forwarded-tls-client-', 'x-ssl-client-'];

export function isIdentityHeaderName(name: string): boolean {
  const n = name.toLowerCase().replace(/_/g, '-');
  return IDENTITY_HEADER_NAMES.has(n) || IDENTITY_PREFIXES.some((p) => n.startsWith(p));
}

/** Node's flat rawHeaders list without any identity header. */
export function stripIdentityHeaders(rawHeaders: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (!isIdentityHeaderName(rawHeaders[i]!)) out.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  return out;
}

export interface VerifiedPeer {
  cert: CertificateInfo;
  identity: Identity;
}

export function identityHeaders(preset: HeaderPreset, peer: VerifiedPeer, gatewaySpiffeId: string | null = null): Array<[string, string]> {
  const { cert, identity } = peer;
  const subject = formatSubjectRfc4514(cert.subject);
  const pem = toPem('CERTIFICATE', cert.der);
  let headers: Array<[string, string | null]>;
  switch (preset) {
    case 'default':
      headers = [
        ['X-Client-Verify', 'SUCCESS'], ['X-Client-Subject', subject], ['X-Client-Name', text(identity.name)], ['X-Client-Role', text(identity.role)],
        ['X-Client-Spiffe-Id', text(identity.spiffeId)], ['X-Client-Serial', identity.serial], ['X-Client-Fingerprint', identity.fingerprint],
        ['Client-Cert', `:${cert.der.toString('base64')}:`], // RFC 9440 §2.2, an RFC 8941 byte sequence
      ];
      break;
    case 'nginx': // ingress-nginx: $ssl_client_verify, $ssl_client_s_dn, $ssl_client_i_dn, $ssl_client_escaped_cert
      headers = [['ssl-client-verify', 'SUCCESS'], ['ssl-client-subject-dn', subject], ['ssl-client-issuer-dn', formatSubjectRfc4514(cert.issuer)], ['ssl-client-cert', encodeURIComponent(pem)]];
      break;
    case 'envoy': {
      const parts = [
        gatewaySpiffeId ? `By=${escapeHeaderText(gatewaySpiffeId)}` : null,
        `Hash=${createHash('sha256').update(cert.der).digest('hex')}`,
        `Cert="${encodeURIComponent(pem)}"`,
        `Subject="${subject.replace(/["\\]/g, (c) => `\\${c}`)}"`,
        identity.spiffeId ? `URI=${escapeHeaderText(identity.spiffeId)}` : null,
      ];
      headers = [['x-forwarded-client-cert', parts.filter(Boolean).join(';')]];
      break;
    }
    case 'traefik': {
      const info = [
        `Subject="${subject}"`, `Issuer="${formatSubjectRfc4514(cert.issuer)}"`,
        `NB="${Math.floor(cert.notBefore.getTime() / 1000)}"`, `NA="${Math.floor(cert.notAfter.getTime() / 1000)}"`,
        `SAN="${[...cert.sans.dns, ...cert.sans.uri, ...cert.sans.ip].map(escapeDnValue).join(',')}"`,
      ].join(';');
      headers = [['X-Forwarded-Tls-Client-Cert', encodeURIComponent(cert.der.toString('base64'))], ['X-Forwarded-Tls-Client-Cert-Info', encodeURIComponent(info)]];
      break;
    }
  }
  return headers.filter((h): h is [string, string] => h[1] !== null).map(([name, value]) => [name, assertSafeHeaderValue(value)]);
}
