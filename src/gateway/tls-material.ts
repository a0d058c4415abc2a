/**
 * The gateway's TLS material: its certificate chain and key, and the bundle of CAs client
 * certificates must chain to. Loaded and checked as a unit (the key must match the
 * certificate), so a reload either swaps all of it or none of it: an agent renewal that is
 * caught between writing cert.pem and key.pem fails the check and keeps the last good state.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { isIP } from 'node:net';
import { GatehouseError } from '../errors/errors.js';
import { parseCertificatePem, identityOf, type CertificateInfo } from '../pki/certificate.js';
import { verifyChainToOneOf } from '../pki/chain.js';
import { OID } from '../pki/oids.js';
import { dnsMatches } from '../config/patterns.js';
import { isLoopbackHost, splitHostPort } from '../config/listen.js';
import { TLS12_AEAD_CIPHERS } from '../tls/ciphers.js';

export interface TlsFiles {
  cert: string;
  key: string;
  clientCa: string;
  /** Names clients use to reach the gateway, besides a specific listen address. */
  serverNames?: readonly string[];
  /** The server certificate may chain to a CA outside clientCa. */
  serverCertFromOtherCa?: boolean;
}

/** How to get a certificate a gateway can serve, for every refusal below. */
const ENROLL_GATEWAY_HINT =
  'enroll the gateway with a role of profile server, naming what clients connect to, e.g. gatehouse token create --role gateway --name gw-1, then gatehouse agent enroll --ca URL --token-file FILE --dir DIR --dns gw.example.internal --ip 127.0.0.1';

export interface TlsMaterial {
  context: SecureContextOptions;
  serverCert: CertificateInfo;
  serverSpiffeId: string | null;
  /** DER of every CA in the client trust bundle. */
  trustedCas: CertificateInfo[];
}

/**
 * `listen` is the gateway's listen address: a specific host there is a name clients use, so the
 * certificate must cover it (the wildcard addresses 0.0.0.0 and :: name nothing).
 */
export function loadTlsMaterial(files: TlsFiles, now: Date = new Date(), listen?: string): TlsMaterial {
  const certPem = readText(files.cert, 'server certificate');
  const keyPem = readText(files.key, 'server key');
  const caPem = readText(files.clientCa, 'client CA bundle');
  const chain = parseAll(certPem, files.cert);
  const trustedCas = parseAll(caPem, files.clientCa);
  const serverCert = chain[0]!;
  if (serverCert.notAfter <= now) {
    throw new GatehouseError(
      'GH_CONFIG_INVALID',
      `server certificate ${files.cert} expired at ${serverCert.notAfter.toISOString()}; renew it (gatehouse agent renew)`,
    );
  }
  if (serverCert.notBefore > now) {
    throw new GatehouseError(
      'GH_CONFIG_INVALID',
      `server certificate ${files.cert} is not valid until ${serverCert.notBefore.toISOString()} (is this clock right?)`,
    );
  }
  const notCa = trustedCas.filter((c) => !c.isCa);
  if (notCa.length)
    throw new GatehouseError(
      'GH_CONFIG_INVALID',
      `client CA bundle ${files.clientCa} holds a certificate that is not a CA (serial ${notCa[0]!.serial})`,
    );
  checkServesAsServer(serverCert, files.cert);
  // Configured names are what clients use; without them, the listen host stands for them.
  checkCoversNames(serverCert, files.cert, files.serverNames?.length ? files.serverNames : listenNames(listen));
  if (!files.serverCertFromOtherCa) checkChainsToClientCa(chain, trustedCas, files, now);
  const context: SecureContextOptions = {
    cert: certPem,
    key: keyPem,
    ca: caPem,
    minVersion: 'TLSv1.2',
    ciphers: TLS12_AEAD_CIPHERS,
    honorCipherOrder: true,
  };
  try {
    // Builds the OpenSSL context once, which is where a key that does not match the
    // certificate, or an encrypted key, is detected.
    createSecureContext(context);
  } catch (cause) {
    throw new GatehouseError(
      'GH_CONFIG_INVALID',
      `cannot use ${files.cert} with ${files.key}: ${(cause as Error).message}`,
      { cause },
    );
  }
  return { context, serverCert, serverSpiffeId: identityOf(serverCert).spiffeId, trustedCas };
}

/**
 * Clients check a server certificate's purpose (RFC 5280 §4.2.1.12): one whose extended key usage
 * lacks serverAuth (a client identity) is refused by every TLS client, so the gateway says so now.
 */
function checkServesAsServer(cert: CertificateInfo, path: string): void {
  const eku = cert.extKeyUsage;
  if (eku.length > 0 && !eku.includes(OID.serverAuth) && !eku.includes(OID.anyExtendedKeyUsage)) {
    throw new GatehouseError(
      'GH_CONFIG_INVALID',
      `server certificate ${path} (${identityOf(cert).spiffeId ?? `serial ${cert.serial}`}) is not valid for TLS servers: its extended key usage lacks serverAuth, so clients will refuse it; ${ENROLL_GATEWAY_HINT}`,
    );
  }
  const ku = cert.keyUsage;
  if (ku && !ku.includes('digitalSignature') && !ku.includes('keyEncipherment')) {
    throw new GatehouseError(
      'GH_CONFIG_INVALID',
      `server certificate ${path} has a key usage without digitalSignature or keyEncipherment, which a TLS handshake needs (RFC 5280 §4.2.1.3); ${ENROLL_GATEWAY_HINT}`,
    );
  }
}

/** A specific listen host is a name clients use; 0.0.0.0 and :: are every address and name none. */
function listenNames(listen: string | undefined): string[] {
  if (!listen) return [];
  const { host } = splitHostPort(listen);
  return host === '0.0.0.0' || host === '::' || host === '' ? [] : [host];
}

/** Each name must be in the subjectAltName: clients match it there, never in the CN (RFC 9525 §6.3). */
function checkCoversNames(cert: CertificateInfo, path: string, names: readonly string[]): void {
  const missing = [...new Set(names)].filter((name) => !covers(cert, name));
  if (missing.length === 0) return;
  const sans = [...cert.sans.dns.map((d) => `DNS:${d}`), ...cert.sans.ip.map((i) => `IP:${i}`)].join(', ') || 'none';
  throw new GatehouseError(
    'GH_CONFIG_INVALID',
    `server certificate ${path} does not cover ${missing.join(', ')}, which clients connect to (its names: ${sans}); clients will refuse it. Listen on an address it names, set tls.serverNames to the names it was issued for, or ${ENROLL_GATEWAY_HINT}`,
  );
}

function covers(cert: CertificateInfo, name: string): boolean {
  const bare = name.replace(/^\[|\]$/g, '');
  if (!isIP(bare)) return cert.sans.dns.some((pattern) => dnsMatches(pattern, bare));
  // Clients of a loopback listener may say localhost, which names only loopback.
  return (
    cert.sans.ip.includes(bare) || (isLoopbackHost(bare) && cert.sans.dns.some((d) => d.toLowerCase() === 'localhost'))
  );
}

/**
 * The clients of a Gatehouse gateway trust the CA that issued their own identities: a server
 * certificate that does not chain to a CA of the client bundle is one they cannot verify. A
 * gateway with a public or corporate server certificate says so with tls.serverCertFromOtherCa.
 */
function checkChainsToClientCa(
  chain: CertificateInfo[],
  trustedCas: CertificateInfo[],
  files: TlsFiles,
  now: Date,
): void {
  try {
    verifyChainToOneOf(
      chain.map((c) => c.der),
      trustedCas.map((c) => c.der),
      now,
    );
  } catch (err) {
    throw new GatehouseError(
      'GH_CONFIG_INVALID',
      `server certificate ${files.cert} does not chain to a CA of the client CA bundle ${files.clientCa} (${(err as Error).message}); clients that trust that CA will refuse it. Put the issuing intermediate after the certificate in ${files.cert}, use a certificate from that CA (${ENROLL_GATEWAY_HINT}), or set tls.serverCertFromOtherCa: true for a server certificate from another CA`,
      { cause: err },
    );
  }
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    throw new GatehouseError(
      'GH_CONFIG_INVALID',
      `cannot read ${what} ${path}: ${(cause as NodeJS.ErrnoException).code}`,
      { cause },
    );
  }
}

function parseAll(pem: string, path: string): CertificateInfo[] {
  let certs: CertificateInfo[];
  try {
    certs = parseCertificatePem(pem);
  } catch (cause) {
    throw new GatehouseError('GH_CONFIG_INVALID', `${path}: ${(cause as Error).message}`, { cause });
  }
  if (certs.length === 0) throw new GatehouseError('GH_CONFIG_INVALID', `${path} holds no PEM certificate`);
  return certs;
}
