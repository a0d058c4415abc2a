/**
 * Registration-authority mode as the Authority sees it: an external signer reached with the
 * settings of `externalCa` in gatehouse.yaml, and the signer profile for each role. Files are
 * read once, when the CA starts (or `ca init` runs); a missing or unreadable one is a config error.
 */
import { readFileSync } from 'node:fs';
import { GatehouseError } from '../errors/errors.js';
import type { CaConfig } from '../config/ca-config.js';
import { assertPrivateFile } from '../files/identity-dir.js';
import type { LeafProfile } from '../pki/leaf-certificate.js';
import { caPath } from './ca-dir.js';
import { ExternalSigner, type ExternalSignRequest } from './external-signer.js';

export interface ExternalCa {
  /** The signer's endpoint as messages and audit events show it (no userinfo, no query). */
  readonly displayUrl: string;
  sign(request: ExternalSignRequest): Promise<Buffer>;
  /** The signer profile for a role: externalCa.profiles, else the role's certificate profile name. */
  profileFor(role: string, profile: LeafProfile): string;
}

export function externalCaFrom(config: Readonly<CaConfig>, dir: string): ExternalCa | null {
  const settings = config.externalCa;
  if (!settings) return null;
  const read = (file: string, what: string, secret: boolean) => {
    const path = caPath(dir, file);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (cause) {
      throw new GatehouseError(
        'GH_CONFIG_INVALID',
        `externalCa: cannot read ${what} ${path}: ${(cause as NodeJS.ErrnoException).code}`,
        { cause },
      );
    }
    if (secret) assertPrivateFile(path);
    return text;
  };
  const tls = settings.tls
    ? {
        caPem: read(settings.tls.ca, "the signer's CA certificate (tls.ca)", false),
        ...(settings.tls.cert && settings.tls.key
          ? {
              certPem: read(settings.tls.cert, 'the client certificate (tls.cert)', false),
              keyPem: read(settings.tls.key, 'the client key (tls.key)', true),
            }
          : {}),
      }
    : null;
  const signer = new ExternalSigner({
    url: settings.url,
    authKeyHex: settings.authKeyFile ? read(settings.authKeyFile, 'the auth key (authKeyFile)', true).trim() : null,
    tls,
    timeoutMs: settings.timeout,
  });
  const profiles = settings.profiles;
  return {
    displayUrl: signer.displayUrl,
    sign: (request) => signer.sign(request),
    profileFor: (role, profile) => (Object.hasOwn(profiles, role) ? profiles[role]! : profile),
  };
}
