/**
 * A real `cfssl serve` (Debian golang-cfssl) as the external signing CA of registration-authority
 * mode: a root made by our pki signs leaves directly, with profiles client, server, both and an
 * HMAC-authenticated one (authed, clientAuth). Optionally HTTPS (-tls-cert/-tls-key) and mutual
 * TLS (-mutual-tls-ca). Stopped by the test that started it.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildRootCertificate } from '../../src/pki/ca-certificates.js';
import { generatePrivateKey, privateKeyToPem, spkiDer } from '../../src/pki/keys.js';
import {
  buildLeafCertificate,
  prepareSigningAuthority,
  randomSerial,
  type LeafProfile,
  type SigningAuthority,
} from '../../src/pki/leaf-certificate.js';
import { toPem } from '../../src/pki/pem.js';
import { requireTool, startProxyOnFreePort, type ProxyProcess } from './proxy-peers.js';

export const CFSSL_EXPIRY_HOURS = 24;
export const AUTHED_PROFILE = 'authed';
/** serverAuth, HMAC-authenticated: for the CA's own HTTPS certificate in registration-authority mode. */
export const AUTHED_SERVER_PROFILE = 'authed-server';

export interface TestCa {
  certDer: Buffer;
  certPem: string;
  keyPem: string;
  authority: SigningAuthority;
}

export interface CfsslServer {
  url: string;
  ca: TestCa;
  authKeyHex: string;
  proc: ProxyProcess;
  close(): Promise<void>;
}

export interface CfsslServerOptions {
  dir: string;
  /** Serve HTTPS with this certificate (from any CA) instead of plain HTTP. */
  tls?: { certPem: string; keyPem: string };
  /** Require client certificates issued by this CA (-mutual-tls-ca). */
  mutualTlsCaPem?: string;
}

export async function makeTestCa(commonName: string): Promise<TestCa> {
  const key = generatePrivateKey('p256');
  const now = Date.now();
  const validity = { notBefore: new Date(now - 3_600_000), notAfter: new Date(now + 30 * 86_400_000) };
  const certDer = await buildRootCertificate(key, { commonName, organization: 'Gatehouse tests', ...validity });
  return {
    certDer,
    certPem: toPem('CERTIFICATE', certDer),
    keyPem: privateKeyToPem(key),
    authority: prepareSigningAuthority(certDer, key),
  };
}

/** A TLS credential from `ca`: a server cert for 127.0.0.1, or a client cert. */
export function issueTlsCredential(
  ca: TestCa,
  name: string,
  profile: LeafProfile,
): { certPem: string; keyPem: string } {
  const key = generatePrivateKey('p256');
  const now = Date.now();
  const der = buildLeafCertificate(ca.authority, {
    serial: randomSerial(),
    commonName: name,
    organization: 'Gatehouse tests',
    organizationalUnit: 'tls',
    spkiDer: spkiDer(key),
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 86_400_000),
    profile,
    dns: profile === 'client' ? [] : ['localhost'],
    ip: profile === 'client' ? [] : ['127.0.0.1'],
    uri: [],
    email: [],
  });
  return { certPem: toPem('CERTIFICATE', der), keyPem: privateKeyToPem(key) };
}

/**
 * cfssl signs with the default profile when the named one does not exist (signer.Profile). A
 * default bound to an auth key nobody holds makes an unknown profile a refusal on both endpoints
 * ("authentication required" on sign, "invalid token" on authsign) instead of a silent fallback.
 */
function cfsslConfig(authKeyHex: string): object {
  const profile = (usages: string[]) => ({
    expiry: `${CFSSL_EXPIRY_HOURS}h`,
    usages: ['digital signature', ...usages],
  });
  return {
    signing: {
      default: { ...profile(['client auth']), auth_key: 'nobody' },
      profiles: {
        client: profile(['client auth']),
        server: profile(['server auth']),
        both: profile(['server auth', 'client auth']),
        [AUTHED_PROFILE]: { ...profile(['client auth']), auth_key: 'gatehouse' },
        [AUTHED_SERVER_PROFILE]: { ...profile(['server auth']), auth_key: 'gatehouse' },
      },
    },
    auth_keys: {
      gatehouse: { type: 'standard', key: authKeyHex },
      nobody: { type: 'standard', key: randomBytes(32).toString('hex') },
    },
  };
}

export async function startCfsslServer(options: CfsslServerOptions): Promise<CfsslServer> {
  const cfssl = requireTool('cfssl', 'golang-cfssl');
  const ca = await makeTestCa('cfssl Test Root');
  const authKeyHex = randomBytes(16).toString('hex');
  const file = (name: string, text: string) => {
    const path = join(options.dir, name);
    writeFileSync(path, text, { mode: 0o600 });
    return path;
  };
  const config = file('config.json', JSON.stringify(cfsslConfig(authKeyHex)));
  const base = ['-ca', file('ca.pem', ca.certPem), '-ca-key', file('ca-key.pem', ca.keyPem), '-config', config];
  const tls = options.tls
    ? ['-tls-cert', file('tls.pem', options.tls.certPem), '-tls-key', file('tls-key.pem', options.tls.keyPem)]
    : [];
  const mutual = options.mutualTlsCaPem ? ['-mutual-tls-ca', file('client-ca.pem', options.mutualTlsCaPem)] : [];
  const proc = await startProxyOnFreePort((port) => ({
    name: 'cfssl serve',
    command: cfssl,
    port,
    readyTimeoutMs: 15_000,
    args: ['serve', '-address', '127.0.0.1', '-port', String(port), ...base, ...tls, ...mutual, '-loglevel', '1'],
  }));
  const url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${proc.port}`;
  return { url, ca, authKeyHex, proc, close: () => proc.stop() };
}
