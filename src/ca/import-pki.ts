/**
 * `ca init --import-root …`: an existing PKI (a corporate root, its issuing CA) checked before
 * anything is written. Each refusal says which file is wrong and why, in the terms of RFC 5280,
 * because the person importing usually did not make the certificate and must ask for a new one.
 */
import { readFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { GatehouseError } from '../errors/errors.js';
import type { CaConfig } from '../config/ca-config.js';
import { formatDn, parseCertificate, type CertificateInfo } from '../pki/certificate.js';
import { signedBy } from '../pki/chain.js';
import { describeKey, loadPrivateKey, spkiDer, unacceptableKeyReason } from '../pki/keys.js';
import { OID } from '../pki/oids.js';
import { decodePem } from '../pki/pem.js';

export interface ImportPaths {
  root: string;
  rootKey?: string | undefined;
  intermediate?: string | undefined;
  intermediateKey?: string | undefined;
  /** Registration-authority mode: an external CA signs with the root or this intermediate, and keeps the keys. */
  external?: boolean;
}

export interface ImportedPki {
  rootDer: Buffer;
  /** Used at init only (to sign an intermediate and the first root CRL); never copied into the CA directory. */
  rootKey: KeyObject | null;
  /** Null when Gatehouse is to make its own intermediate under the imported root. */
  intermediate: { der: Buffer; key: KeyObject } | null;
  /** Registration-authority mode: the certificate the external CA signs with (the imported intermediate, or the root). */
  externalIssuerDer: Buffer | null;
}

/** The server certificate `ca serve` issues itself lives 24 h; the issuing CA must outlive it too. */
const SERVER_CERT_LIFETIME_MS = 24 * 3_600_000;

export function readImportedPki(
  paths: ImportPaths,
  passphrase: string | undefined,
  config: Readonly<CaConfig>,
  now: Date,
): ImportedPki {
  if (paths.external) return readExternalPki(paths, config, now);
  if (paths.intermediate && !paths.intermediateKey) {
    throw importError(
      `--import-intermediate needs --import-intermediate-key: Gatehouse signs certificates and CRLs with the issuing CA's key`,
    );
  }
  if (paths.intermediateKey && !paths.intermediate)
    throw importError('--import-intermediate-key needs --import-intermediate (the certificate of that key)');
  if (!paths.intermediate && !paths.rootKey) {
    throw importError(
      'give --import-root-key to let Gatehouse make its issuing CA under the imported root, or --import-intermediate with --import-intermediate-key',
    );
  }
  const root = readOneCertificate(paths.root, 'root');
  const rootKey = paths.rootKey ? readKey(paths.rootKey, passphrase) : null;
  const intermediate = paths.intermediate ? readOneCertificate(paths.intermediate, 'issuing CA') : null;
  const intermediateKey = paths.intermediateKey ? readKey(paths.intermediateKey, passphrase) : null;

  checkRoot(root, paths.root, { signsCrl: rootKey !== null });
  if (rootKey) checkKeyMatches(rootKey, root, paths.rootKey!, paths.root);
  const longest = longestLeafLifetime(config);
  if (intermediate && intermediateKey) {
    checkIntermediate(intermediate, root, paths.intermediate!, paths.root, config);
    checkKeyMatches(intermediateKey, intermediate, paths.intermediateKey!, paths.intermediate!);
    checkLifetime(intermediate, paths.intermediate!, now, longest, root);
  }
  checkLifetime(root, paths.root, now, longest, null);
  return {
    rootDer: root.der,
    rootKey,
    intermediate: intermediate && intermediateKey ? { der: intermediate.der, key: intermediateKey } : null,
    externalIssuerDer: null,
  };
}

/**
 * `--external-ca` with `--import-root` (and the signer's `--import-intermediate`): certificates
 * only, since the external CA keeps its keys. The chain a leaf will have is checked as for an
 * import with keys, less what only a key holder does (sign the CRL).
 */
function readExternalPki(paths: ImportPaths, config: Readonly<CaConfig>, now: Date): ImportedPki {
  if (paths.rootKey || paths.intermediateKey) {
    throw importError(
      `--external-ca: the external CA holds the signing keys; give its certificates only (leave out ${paths.rootKey ? '--import-root-key' : '--import-intermediate-key'})`,
    );
  }
  const root = readOneCertificate(paths.root, 'root');
  const intermediate = paths.intermediate ? readOneCertificate(paths.intermediate, 'issuing CA') : null;
  checkRoot(root, paths.root, { signsCrl: false, signsCa: intermediate !== null });
  const longest = longestLeafLifetime(config);
  if (intermediate) {
    checkIntermediate(intermediate, root, paths.intermediate!, paths.root, config, { signsCrl: false });
    checkLifetime(intermediate, paths.intermediate!, now, longest, root);
  } else {
    checkLeafEku(root, paths.root, config);
  }
  checkLifetime(root, paths.root, now, longest, null);
  return { rootDer: root.der, rootKey: null, intermediate: null, externalIssuerDer: (intermediate ?? root).der };
}

function checkRoot(root: CertificateInfo, path: string, need: { signsCrl: boolean; signsCa?: boolean }): void {
  const what = `${path} (${formatDn(root.subject)})`;
  // A trust anchor is self-issued and self-signed (RFC 5280 §3.2, §6.1.1 (d)).
  if (!root.issuerNameDer.equals(root.subjectNameDer) || !signedBy(root, root)) {
    throw importError(
      `${what} is not a self-signed root: it is issued by ${formatDn(root.issuer)}; import the top of the chain as the root and the CA below it with --import-intermediate`,
    );
  }
  if (!root.isCa)
    throw importError(`${what} is not a CA certificate (basicConstraints cA is not TRUE, RFC 5280 §4.2.1.9)`);
  if (root.keyUsage && !root.keyUsage.includes('keyCertSign'))
    throw importError(`${what} lacks the keyCertSign key usage, so it cannot sign an issuing CA (RFC 5280 §4.2.1.3)`);
  if (need.signsCrl && root.keyUsage && !root.keyUsage.includes('cRLSign'))
    throw importError(`${what} lacks the cRLSign key usage, so it cannot sign the root CRL (RFC 5280 §4.2.1.3)`);
  // An issuing CA sits below the root, so the root must allow at least one CA under it.
  if (need.signsCa !== false && root.pathLen === 0)
    throw importError(
      `${what} has pathLenConstraint 0: it may sign only end-entity certificates, not an issuing CA (RFC 5280 §4.2.1.9)`,
    );
}

function checkIntermediate(
  cert: CertificateInfo,
  root: CertificateInfo,
  path: string,
  rootPath: string,
  config: Readonly<CaConfig>,
  need: { signsCrl: boolean } = { signsCrl: true },
): void {
  const what = `${path} (${formatDn(cert.subject)})`;
  if (!cert.isCa)
    throw importError(`${what} is not a CA certificate (basicConstraints cA is not TRUE, RFC 5280 §4.2.1.9)`);
  if (cert.issuerNameDer.equals(cert.subjectNameDer) && signedBy(cert, cert))
    throw importError(`${what} is a self-signed root, not an issuing CA under ${rootPath}`);
  if (!cert.issuerNameDer.equals(root.subjectNameDer) || !signedBy(cert, root)) {
    throw importError(
      `${what} is not signed by the imported root ${rootPath} (${formatDn(root.subject)}); it names ${formatDn(cert.issuer)} as its issuer`,
    );
  }
  if (cert.authorityKeyId && root.subjectKeyId && !cert.authorityKeyId.equals(root.subjectKeyId)) {
    throw importError(
      `${what} names another key of its issuer (authorityKeyIdentifier ${cert.authorityKeyId.toString('hex')}, the root's is ${root.subjectKeyId.toString('hex')})`,
    );
  }
  for (const usage of need.signsCrl ? (['keyCertSign', 'cRLSign'] as const) : (['keyCertSign'] as const)) {
    if (cert.keyUsage && !cert.keyUsage.includes(usage)) {
      throw importError(
        `${what} lacks the ${usage} key usage; ${need.signsCrl ? 'Gatehouse' : 'the external CA'} signs ${usage === 'keyCertSign' ? 'certificates' : 'the CRL of its certificates'} with it (RFC 5280 §4.2.1.3)`,
      );
    }
  }
  checkLeafEku(cert, path, config);
}

function checkLeafEku(cert: CertificateInfo, path: string, config: Readonly<CaConfig>): void {
  const what = `${path} (${formatDn(cert.subject)})`;
  // TLS verifiers (OpenSSL among them) refuse a chain whose CA restricts its extended key
  // usage to purposes that exclude the leaf's: it must list what the roles issue.
  if (cert.extKeyUsage.length > 0) {
    const needed = new Set<string>();
    for (const role of Object.values(config.roles)) {
      if (role.profile !== 'server') needed.add(OID.clientAuth);
      if (role.profile !== 'client') needed.add(OID.serverAuth);
    }
    needed.add(OID.serverAuth); // `ca serve` issues its own server certificate
    const missing = [...needed].filter((oid) => !cert.extKeyUsage.includes(oid));
    if (missing.length > 0) {
      throw importError(
        `${what} restricts extendedKeyUsage and leaves out ${missing.map(ekuName).join(' and ')}, which the configured roles need; TLS peers would refuse its certificates`,
      );
    }
  }
}

function checkLifetime(
  cert: CertificateInfo,
  path: string,
  now: Date,
  longestMs: number,
  root: CertificateInfo | null,
): void {
  const what = `${path} (${formatDn(cert.subject)})`;
  if (now < cert.notBefore) throw importError(`${what} is not valid yet (notBefore ${cert.notBefore.toISOString()})`);
  if (now > cert.notAfter) throw importError(`${what} expired at ${cert.notAfter.toISOString()}`);
  const until = root && root.notAfter < cert.notAfter ? root.notAfter : cert.notAfter;
  if (until.getTime() - now.getTime() < longestMs) {
    throw importError(
      `${what} ${root && until === root.notAfter ? 'is under a root that expires' : 'expires'} at ${until.toISOString()}, sooner than the longest certificate lifetime configured (${Math.round(longestMs / 3_600_000)} h): certificates would be cut short`,
    );
  }
}

function checkKeyMatches(key: KeyObject, cert: CertificateInfo, keyPath: string, certPath: string): void {
  if (!spkiDer(key).equals(cert.spkiDer))
    throw importError(`the key in ${keyPath} is not the key of ${certPath} (${formatDn(cert.subject)})`);
  const weak = unacceptableKeyReason(key);
  if (weak) throw importError(`the key in ${keyPath} (${describeKey(key)}) cannot be used: ${weak}`);
}

function longestLeafLifetime(config: Readonly<CaConfig>): number {
  return Math.max(SERVER_CERT_LIFETIME_MS, ...Object.values(config.roles).map((r) => r.lifetime));
}

function readOneCertificate(path: string, what: string): CertificateInfo {
  const text = readText(path);
  let ders: Buffer[];
  try {
    ders = decodePem(text, 'CERTIFICATE');
  } catch (cause) {
    throw importError(`${path} is not a PEM certificate file: ${(cause as Error).message}`, cause);
  }
  if (ders.length === 0) throw importError(`${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  if (ders.length > 1)
    throw importError(`${path} holds ${ders.length} certificates; give only the ${what} certificate`);
  try {
    return parseCertificate(ders[0]!);
  } catch (cause) {
    throw importError(`${path} is not a well-formed X.509 certificate: ${(cause as Error).message}`, cause);
  }
}

function readKey(path: string, passphrase: string | undefined): KeyObject {
  try {
    return loadPrivateKey(readText(path), passphrase, path);
  } catch (cause) {
    if (cause instanceof GatehouseError && cause.code === 'GH_CA_KEY_LOCKED') throw cause;
    throw importError(`${path} is not a usable private key: ${(cause as Error).message}`, cause);
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    throw importError(`cannot read ${path}: ${(cause as NodeJS.ErrnoException).code}`, cause);
  }
}

function ekuName(oid: string): string {
  return oid === OID.clientAuth ? 'clientAuth' : oid === OID.serverAuth ? 'serverAuth' : oid;
}

function importError(message: string, cause?: unknown): GatehouseError {
  return new GatehouseError('GH_CA_IMPORT_INVALID', message, cause === undefined ? {} : { cause });
}
