/**
 * What an agent directory holds: the identity files (see files/identity-dir.ts) and
 * `agent.json`, which remembers the CA URL and pinned root for renewals.
 */
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { GatehouseError } from '../errors/errors.js';
import { readIdentityDir } from '../files/identity-dir.js';
import { parseCertificate, identityOf, type CertificateInfo, type Identity } from '../pki/certificate.js';
import { loadPrivateKey, spkiDer } from '../pki/keys.js';
import { decodePem } from '../pki/pem.js';

export { readAgentSettings, writeAgentSettings, type AgentSettings } from '../files/agent-settings.js';

export interface LoadedIdentity {
  dir: string;
  key: KeyObject;
  keyPem: string;
  certPem: string;
  caPem: string;
  leaf: CertificateInfo;
  chainDer: Buffer[];
  identity: Identity;
}

export function loadIdentity(dir: string): LoadedIdentity {
  const files = readIdentityDir(dir);
  const chainDer = decodePem(files.certPem, 'CERTIFICATE');
  if (chainDer.length === 0) throw new GatehouseError('GH_FILE_IO', `${join(dir, 'cert.pem')} holds no certificate`);
  const leaf = parseCertificate(chainDer[0]!);
  const key = loadPrivateKey(files.keyPem, undefined, join(dir, 'key.pem'));
  if (!spkiDer(key).equals(leaf.spkiDer)) {
    throw new GatehouseError('GH_FILE_IO', `${join(dir, 'key.pem')} does not match the certificate in cert.pem`);
  }
  return {
    dir,
    key,
    keyPem: files.keyPem,
    certPem: files.certPem,
    caPem: files.caPem,
    leaf,
    chainDer,
    identity: identityOf(leaf),
  };
}
