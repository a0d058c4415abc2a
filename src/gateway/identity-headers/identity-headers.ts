/**
 * The headers that tell the upstream app who is calling, in the spelling of the proxy the app
 * was written for (Gatehouse's own, ingress-nginx, Envoy XFCC, Traefik), and the stripping of
 * any inbound header an app could mistake for one. Stripping fails closed: it removes every
 * name any preset emits, and whole families of look-alikes, whatever preset is configured,
 * so a client can never smuggle in a value under a name the app trusts.
 *
 * Values come only from the verified certificate's DER and are always visible ASCII (see
 * identity-headers-values.ts), so no certificate field can inject a header line.
 *
 * The rest of identity-headers/: identity-headers-dn.ts (Distinguished Names read from the
 * DER), identity-headers-values.ts (visible-ASCII, bounded values) and inbound-headers.ts (what
 * happens to each header a client sends, so its copy of a trusted one never reaches the app).
 */
import type { CertificateInfo, Identity } from '../../pki/certificate.js';
import { sha256Hex } from '../../pki/certificate.js';
import { toPem } from '../../pki/pem.js';
import { GatehouseError } from '../../errors/errors.js';
import { dnUnits, formatDnRfc4514, issuerNameDer, readRdns, traefikDnUnits, type Rdn } from './identity-headers-dn.js';
import {
  assertSafeHeaderValue,
  cutUnits,
  fitElements,
  queryEscape,
  textUnits,
  wholeOrNothing,
  type ValueElement,
  type ValuePart,
} from './identity-headers-values.js';

export const IDENTITY_HEADER_PRESETS = ['default', 'nginx', 'envoy', 'traefik'] as const;
export type IdentityHeaderPreset = (typeof IDENTITY_HEADER_PRESETS)[number];

/** Every header name any preset emits, lowercase, dash form; inbound-headers.ts strips them (and look-alikes) from clients. */
export const IDENTITY_HEADER_NAMES: ReadonlySet<string> = new Set([
  'x-client-verify',
  'x-client-subject',
  'x-client-name',
  'x-client-role',
  'x-client-spiffe-id',
  'x-client-serial',
  'x-client-fingerprint',
  'client-cert',
  'client-cert-chain',
  'ssl-client-verify',
  'ssl-client-subject-dn',
  'ssl-client-issuer-dn',
  'ssl-client-cert',
  'x-forwarded-client-cert',
  'x-forwarded-tls-client-cert',
  'x-forwarded-tls-client-cert-info',
]);
export interface VerifiedPeer {
  cert: CertificateInfo;
  identity: Identity;
  /** Certificates above the leaf (intermediates), leaf excluded; a copy of the leaf is ignored. */
  chainDer?: Buffer[];
}

export interface GatewayIdentity {
  spiffeId: string | null;
}

type Header = [name: string, value: string];

/**
 * The headers to add for a client whose certificate was verified. Never call it before
 * verification: every value here asserts an identity. Throws GH_INTERNAL (fails closed)
 * rather than ever returning a value that is not header-safe.
 */
export function identityHeaders(preset: IdentityHeaderPreset, peer: VerifiedPeer, gateway?: GatewayIdentity): Header[] {
  // Own keys only: a preset named "toString" from a config must not reach Object.prototype.
  const build = Object.hasOwn(PRESETS, preset) ? PRESETS[preset] : undefined;
  if (!build) throw new GatehouseError('GH_INTERNAL', `unknown identity header preset "${String(preset)}"`);
  // Pure: the gateway builds these once per client certificate and keeps them with the peer.
  return build(peer, gateway?.spiffeId ?? null).map(([name, value]): Header => [name, assertSafeHeaderValue(value)]);
}

const PRESETS: Record<IdentityHeaderPreset, (peer: VerifiedPeer, gatewaySpiffeId: string | null) => Header[]> = {
  default: defaultHeaders,
  nginx: nginxHeaders,
  envoy: envoyHeaders,
  traefik: traefikHeaders,
};

function lowerHex(value: string, what: string): string {
  if (!/^[0-9a-f]+$/.test(value)) throw new GatehouseError('GH_INTERNAL', `${what} is not lowercase hex`);
  return value;
}

function intermediates(peer: VerifiedPeer): Buffer[] {
  return (peer.chainDer ?? []).filter((der) => !der.equals(peer.cert.der));
}

/** RFC 8941 §3.3.5 byte sequence, as RFC 9440 §2.2 carries a certificate. */
const byteSequence = (der: Buffer): string => `:${der.toString('base64')}:`;
const optionalText = (name: string, value: string | null): Header[] =>
  value === null ? [] : [[name, cutUnits(textUnits(value))]];
const optionalWhole = (name: string, value: string | null): Header[] => (value === null ? [] : [[name, value]]);

function defaultHeaders(peer: VerifiedPeer): Header[] {
  const { cert, identity } = peer;
  const chain = intermediates(peer);
  return [
    ['X-Client-Verify', 'SUCCESS'],
    ['X-Client-Subject', formatDnRfc4514(readRdns(cert.subjectNameDer))],
    ...optionalText('X-Client-Name', identity.name),
    ...optionalText('X-Client-Role', identity.role),
    ...optionalText('X-Client-Spiffe-Id', identity.spiffeId),
    ['X-Client-Serial', lowerHex(cert.serial, 'serial')],
    ['X-Client-Fingerprint', lowerHex(sha256Hex(cert.der), 'fingerprint')],
    ...optionalWhole('Client-Cert', wholeOrNothing(byteSequence(cert.der))),
    // RFC 9440 §2.3: the chain without the end-entity certificate, as an RFC 8941 list.
    ...(chain.length ? optionalWhole('Client-Cert-Chain', wholeOrNothing(chain.map(byteSequence).join(', '))) : []),
  ];
}

/** ingress-nginx: $ssl_client_verify, $ssl_client_s_dn, $ssl_client_i_dn, $ssl_client_escaped_cert. */
function nginxHeaders({ cert }: VerifiedPeer): Header[] {
  return [
    ['ssl-client-verify', 'SUCCESS'],
    ['ssl-client-subject-dn', formatDnRfc4514(readRdns(cert.subjectNameDer))],
    ['ssl-client-issuer-dn', formatDnRfc4514(readRdns(issuerNameDer(cert)))],
    // nginx's NGX_ESCAPE_URI_COMPONENT and encodeURIComponent agree on every PEM character.
    ...optionalWhole('ssl-client-cert', wholeOrNothing(encodeURIComponent(toPem('CERTIFICATE', cert.der)))),
  ];
}

/**
 * Envoy XFCC element `Key=value`: quoted when the value holds `,` `;` `=` (or `"`, `\`, a
 * space, which a lax parser could also misread), with `"` and `\` backslash-escaped inside.
 */
function xfccElement(
  key: string,
  units: readonly string[],
  options: { quote?: boolean; droppable?: boolean } = {},
): ValueElement {
  const quote = options.quote ?? units.some((u) => /[,;="\\ ]/.test(u));
  const parts: ValuePart[] = quote
    ? [`${key}="`, units.map((u) => u.replace(/["\\]/g, '\\$&')), '"']
    : [`${key}=`, units];
  return { parts, droppable: options.droppable ?? false };
}

/** Envoy's order: By, Hash, Cert, Chain, Subject, URI; absent elements left out. */
function envoyHeaders(peer: VerifiedPeer, gatewaySpiffeId: string | null): Header[] {
  const { cert, identity } = peer;
  const chain = intermediates(peer);
  const elements: ValueElement[] = [
    ...(gatewaySpiffeId ? [xfccElement('By', textUnits(gatewaySpiffeId))] : []),
    { parts: [`Hash=${lowerHex(sha256Hex(cert.der), 'hash')}`], droppable: false },
    xfccElement('Cert', [encodeURIComponent(toPem('CERTIFICATE', cert.der))], { quote: true, droppable: true }),
    ...(chain.length
      ? [
          xfccElement(
            'Chain',
            [encodeURIComponent([cert.der, ...chain].map((d) => toPem('CERTIFICATE', d)).join(''))],
            { quote: true, droppable: true },
          ),
        ]
      : []),
    xfccElement('Subject', dnUnits(readRdns(cert.subjectNameDer)), { quote: true }),
    ...(identity.spiffeId ? [xfccElement('URI', textUnits(identity.spiffeId))] : []),
  ];
  return [['x-forwarded-client-cert', fitElements(elements, ';')]];
}

/** Traefik passTLSClientCert: `Key="value"` fields joined by `;`, the whole url.QueryEscape'd. */
function traefikHeaders({ cert }: VerifiedPeer): Header[] {
  // Traefik leaves out a field whose value is empty.
  const field = (key: string, units: readonly string[]): ValueElement[] =>
    units.length
      ? [{ parts: [queryEscape(`${key}="`), units.map(queryEscape), queryEscape('"')], droppable: false }]
      : [];
  const time = (key: string, date: Date): ValueElement => ({
    parts: [queryEscape(`${key}="${Math.floor(date.getTime() / 1000)}"`)],
    droppable: false,
  });
  const sanUnits: string[] = [];
  // Traefik's getSANs order: DNS, email, IP, URI; `,` `;` `"` hex-escaped so a SAN cannot split the list.
  for (const san of [...cert.sans.dns, ...cert.sans.email, ...cert.sans.ip, ...cert.sans.uri]) {
    const units = textUnits(san, ',;"');
    if (sanUnits.length) units[0] = `,${units[0] ?? ''}`;
    for (const unit of units) sanUnits.push(unit);
  }
  const subject: readonly Rdn[] = readRdns(cert.subjectNameDer);
  const info = fitElements(
    [
      ...field('Subject', traefikDnUnits(subject, true)),
      ...field('Issuer', traefikDnUnits(readRdns(issuerNameDer(cert)), false)),
      time('NB', cert.notBefore),
      time('NA', cert.notAfter),
      ...field('SAN', sanUnits),
    ],
    queryEscape(';'),
  );
  return [
    // The PEM body without armour or newlines, which is the base64 of the DER.
    ...optionalWhole('X-Forwarded-Tls-Client-Cert', wholeOrNothing(queryEscape(cert.der.toString('base64')))),
    ['X-Forwarded-Tls-Client-Cert-Info', info],
  ];
}
