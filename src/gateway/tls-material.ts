/**
 * The gateway's TLS material: its certificate chain and key, and the bundle of CAs client
 * certificates must chain to. Loaded and checked as a unit (the key must match the
 * certificate), so a reload either swaps all of it or none of it: an agent renewal that is
 * caught between writing cert.pem and key.pem fails the check and keeps the last good state.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { GatehouseError } from '../errors/errors.js';
import { parseCertificatePem, identityOf, type CertificateInfo } from '../pki/certificate.js';

/** TLS 1.2 limited to AEAD suites; TLS 1.3 suites are all AEAD. */
export const TLS12_AEAD_CIPHERS = 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305';

export interface TlsFiles {
  cert: string;
  key: string;
  clientCa: string;
}

export interface TlsMaterial {
  context: SecureContextOptions;
  serverCert: CertificateInfo;
  serverSpiffeId: string | null;
  /** DER of every CA in the client trust bundle. */
  trustedCas: CertificateInfo[];
}

export function loadTlsMaterial(files: TlsFiles, now: Date = new Date()): TlsMaterial {
  const certPem = readText(files.cert, 'server certificate');
  const keyPem = readText(files.key, 'server key');
  const caPem = readText(files.clientCa, 'client CA bundle');
  const chain = parseAll(certPem, files.cert);
  const trustedCas = parseAll(caPem, files.clientCa);
  const serverCert = chain[0]!;
  if (serverCert.notAfter <= now) {
    throw new GatehouseError('GH_CONFIG_INVALID', `server certificate ${files.cert} expired at ${serverCert.notAfter.toISOString()}; renew it (gatehouse agent renew)`);
  }
  const notCa = trustedCas.filter((c) => !c.isCa);
  if (notCa.length) throw new GatehouseError('GH_CONFIG_INVALID', `client CA bundle ${files.clientCa} holds a certificate that is not a CA (serial ${notCa[0]!.serial})`);
  const context: SecureContextOptions = {
    cert: certPem, key: keyPem, ca: caPem,
    minVersion: 'TLSv1.2', ciphers: TLS12_AEAD_CIPHERS, honorCipherOrder: true,
  };
  try {
    // Builds the OpenSSL context once, which is where a key that does not match the
    // certificate, or an encrypted key, is detected.
    createSecureContext(context);
  } catch (cause) {
    throw new GatehouseError('GH_CONFIG_INVALID', `cannot use ${files.cert} with ${files.key}: ${(cause as Error).message}`, { cause });
  }
  return { context, serverCert, serverSpiffeId: identityOf(serverCert).spiffeId, trustedCas };
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    throw new GatehouseError('GH_CONFIG_INVALID', `cannot read ${what} ${path}: ${(cause as NodeJS.ErrnoException).code}`, { cause });
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
