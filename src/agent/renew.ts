/**
 * One renewal: a new key, a CSR for the same name and SANs, sent over mutual TLS with the
 * current certificate; the answer is verified against the pinned root and written atomically.
 * The current identity stays in place until the new one is complete on disk.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { GatehouseError } from '../errors/errors.js';
import { writeNewFile } from '../files/atomic-write.js';
import { writeIdentityDir } from '../files/identity-dir.js';
import { buildCsrPem } from '../pki/csr-build.js';
import { generatePrivateKey, privateKeyToPem, type KeyType } from '../pki/keys.js';
import { decodePem } from '../pki/pem.js';
import type { Identity } from '../pki/certificate.js';
import { CaClient } from './ca-client.js';
import { loadIdentity, readAgentSettings, writeAgentSettings, type LoadedIdentity } from './agent-state.js';

/** The key of a renewal in flight, in the identity directory. */
export const PENDING_KEY_FILE = 'renewal-key.pem';
import { acceptIssuedChain, caRootsAfter, trustBundleAfter, type IssuedChain } from './enroll.js';
import type { BundleUpdate } from './trust-bundle.js';

export interface RenewOptions {
  dir: string;
  caUrl?: string;
  keyType?: KeyType;
  now?: () => Date;
}

export async function renewOnce(
  options: RenewOptions,
): Promise<{ previous: Identity; current: Identity; bundle: BundleUpdate }> {
  const now = options.now ?? (() => new Date());
  const current = loadIdentity(options.dir);
  const settings = readAgentSettings(options.dir);
  const caUrl = options.caUrl ?? settings?.caUrl;
  if (!caUrl)
    throw new GatehouseError(
      'GH_USAGE',
      `no CA URL: pass --ca, or enroll ${options.dir} with \`gatehouse agent enroll\` so agent.json records it`,
    );
  if (decodePem(current.caPem, 'CERTIFICATE').length === 0)
    throw new GatehouseError('GH_FILE_IO', `${options.dir}/ca.pem holds no root certificate`);
  if (current.leaf.notAfter <= now()) {
    throw new GatehouseError(
      'GH_AGENT_MUST_REENROLL',
      `the certificate expired at ${current.leaf.notAfter.toISOString()}; an expired certificate cannot be renewed. Enroll this machine again with a new join token: gatehouse agent enroll --ca ${caUrl} --token <TOKEN> --dir ${options.dir}`,
    );
  }

  const key = pendingRenewalKey(options.dir, current, options.keyType ?? keyTypeOf(current.key));
  const csr = await buildCsrPem(key, {
    commonName: current.identity.name ?? 'unnamed',
    dns: current.leaf.sans.dns,
    ip: current.leaf.sans.ip,
  });
  const client = new CaClient({
    baseUrl: caUrl,
    rootPem: current.caPem,
    identity: { keyPem: current.keyPem, certPem: current.certPem },
  });
  let response: IssuedChain;
  try {
    response = await client.postJson<IssuedChain>('renew', { csr });
  } catch (err) {
    if (err instanceof GatehouseError && MUST_REENROLL.has(err.code)) {
      const advice = /enroll again/.test(err.message) ? '' : '. This machine must enroll again with a new join token.';
      throw new GatehouseError('GH_AGENT_MUST_REENROLL', `${err.message}${advice}`, { cause: err });
    }
    throw err;
  } finally {
    client.close();
  }
  const { identity, chainDer } = acceptIssuedChain(response, current.caPem, key, now());
  // The trust bundle is written with the certificate, in the same atomic identity write.
  const caRoots = caRootsAfter(settings, { pem: '', changed: false, added: [], removed: [], refused: [] });
  const bundle = trustBundleAfter(response, current.caPem, chainDer, now(), caRoots);
  writeIdentityDir(options.dir, { keyPem: privateKeyToPem(key), certPem: response.chain, caPem: bundle.pem });
  // Which roots came from the CA, for the next answer that retires one (after the identity: a
  // crash between the two leaves a taken root unrecorded, which only means it is never dropped).
  if (bundle.changed && settings)
    writeAgentSettings(options.dir, { ...settings, caRoots: caRootsAfter(settings, bundle) });
  rmSync(join(options.dir, PENDING_KEY_FILE), { force: true });
  return { previous: current.identity, current: identity, bundle };
}

/** Refusals after which this certificate can never renew again. */
const MUST_REENROLL = new Set([
  'GH_CERT_REVOKED',
  'GH_CERT_EXPIRED',
  'GH_CERT_UNTRUSTED',
  'GH_CERT_REUSED',
  'GH_CERT_SUPERSEDED',
]);

/**
 * The key a renewal asks to certify, kept (0600) until the renewal is on disk. The CA lets only
 * the newest certificate renew, and takes an old one presented with a *different* key for a copy
 * of the identity (it revokes them all); a renewal whose answer was lost must therefore be asked
 * again with the same key, which the CA answers with the same certificate (docs/lineage.md).
 */
function pendingRenewalKey(dir: string, current: LoadedIdentity, keyType: KeyType): KeyObject {
  const path = join(dir, PENDING_KEY_FILE);
  try {
    const pending = createPrivateKey(readFileSync(path, 'utf8'));
    const samePublicKey = createPublicKey(pending).export({ type: 'spki', format: 'der' }).equals(current.leaf.spkiDer);
    if (!samePublicKey && keyTypeOf(pending) === keyType) return pending;
    // A pending key that is already the current key (a crash after the write) or of another type: start over.
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') rmSync(path, { force: true });
  }
  rmSync(path, { force: true });
  const key = generatePrivateKey(keyType);
  writeNewFile(path, privateKeyToPem(key), 0o600);
  return key;
}

function keyTypeOf(key: KeyObject): KeyType {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519';
  if (key.asymmetricKeyType === 'rsa')
    return d.modulusLength === 4096 ? 'rsa4096' : d.modulusLength === 3072 ? 'rsa3072' : 'rsa2048';
  return d.namedCurve === 'secp384r1' ? 'p384' : 'p256';
}
