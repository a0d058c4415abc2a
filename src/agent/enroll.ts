/**
 * `gatehouse agent enroll`: pin the CA from the token, make a key that never leaves this
 * machine, send only the CSR, verify what comes back against the pinned root, then write the
 * identity atomically. Nothing is written unless every step succeeded.
 */
import { GatehouseError } from '../errors/errors.js';
import { writeIdentityDir, ensurePrivateDir } from '../files/identity-dir.js';
import { buildCsrPem } from '../pki/csr-build.js';
import { generatePrivateKey, privateKeyToPem, spkiDer, type KeyType } from '../pki/keys.js';
import { verifyChainToOneOf } from '../pki/chain.js';
import { nextTrustBundle, type BundleUpdate } from './trust-bundle.js';
import { decodePem } from '../pki/pem.js';
import { identityOf, type Identity } from '../pki/certificate.js';
import type { KeyObject } from 'node:crypto';
import { hostname } from 'node:os';
import { CaClient, fetchPinnedRoot } from './ca-client.js';
import { writeAgentSettings } from './agent-state.js';

export interface EnrollOptions {
  caUrl: string;
  token: string;
  dir: string;
  name?: string;
  dns?: string[];
  ip?: string[];
  keyType?: KeyType;
  now?: () => Date;
}

export interface IssuedChain {
  certificate: string;
  chain: string;
  root: string;
  /** The CA's trust bundle (PEM), its cross-certificates and retired root fingerprints: trust-bundle.ts. Absent from CAs before 0.2. */
  roots?: string;
  crossCertificates?: string;
  retiredRoots?: string[];
}

/** The token's pin is its third dash-separated field; the agent needs nothing else from it. */
export function pinFromToken(token: string): string {
  const m = /^GHTKN-1-([0-9a-f]{64})-/.exec(token.trim());
  if (!m)
    throw new GatehouseError(
      'GH_TOKEN_INVALID',
      'join token must look like GHTKN-1-<root sha256>-<id>-<secret>; copy it whole from `gatehouse token create`',
    );
  return m[1]!;
}

/**
 * Checks a returned chain against the roots this agent trusts (one of them: during a root
 * rotation ca.pem holds two) and our own key before anything is written.
 */
export function acceptIssuedChain(
  response: IssuedChain,
  trustedPem: string,
  key: KeyObject,
  now: Date,
): { chainDer: Buffer[]; identity: Identity } {
  const chainDer = decodePem(response.chain, 'CERTIFICATE');
  const roots = decodePem(trustedPem, 'CERTIFICATE');
  const path = verifyChainToOneOf(chainDer, roots, now);
  if (!spkiDer(key).equals(path[0]!.spkiDer))
    throw new GatehouseError('GH_CHAIN_INVALID', 'the CA returned a certificate for a different key');
  return { chainDer, identity: identityOf(path[0]!) };
}

export async function enroll(options: EnrollOptions): Promise<Identity> {
  const pin = pinFromToken(options.token);
  const { rootPem } = await fetchPinnedRoot(options.caUrl, pin);
  const key = generatePrivateKey(options.keyType ?? 'p256');
  // Without --name the CSR carries no CN: a token that fixes the name decides it, else the host name is the hint.
  const csr = await buildCsrPem(key, {
    ...(options.name ? { commonName: options.name } : {}),
    dns: options.dns ?? [],
    ip: options.ip ?? [],
  });
  const client = new CaClient({ baseUrl: options.caUrl, rootPem });
  let response: IssuedChain;
  try {
    response = await client.postJson<IssuedChain>('enroll', {
      token: options.token.trim(),
      csr,
      ...(options.name ? {} : { nameHint: defaultName() }),
    });
  } finally {
    client.close();
  }
  const now = (options.now ?? (() => new Date()))();
  const { identity, chainDer } = acceptIssuedChain(response, rootPem, key, now);
  // During a root rotation the CA also hands out the next root, vouched for by the pinned one.
  const bundle = trustBundleAfter(response, rootPem, chainDer, now);
  ensurePrivateDir(options.dir);
  writeIdentityDir(options.dir, { keyPem: privateKeyToPem(key), certPem: response.chain, caPem: bundle.pem });
  writeAgentSettings(options.dir, {
    caUrl: options.caUrl,
    rootFingerprint: pin,
    caRoots: caRootsAfter({ rootFingerprint: pin }, bundle),
  });
  return identity;
}

/** The trust bundle to write with an issued chain: ca.pem updated as the CA's answer allows (trust-bundle.ts). */
export function trustBundleAfter(
  response: IssuedChain,
  currentPem: string,
  chainDer: Buffer[],
  now: Date,
  caRoots: readonly string[] = [],
): BundleUpdate {
  if (typeof response.roots !== 'string')
    return { pem: currentPem, changed: false, added: [], removed: [], refused: [] };
  return nextTrustBundle(
    currentPem,
    {
      roots: decodePem(response.roots, 'CERTIFICATE'),
      cross: decodePem(typeof response.crossCertificates === 'string' ? response.crossCertificates : '', 'CERTIFICATE'),
      retired: Array.isArray(response.retiredRoots) ? response.retiredRoots.filter((f) => typeof f === 'string') : [],
    },
    chainDer,
    now,
    new Set(caRoots),
  );
}

/** agent.json's caRoots after a bundle update: what the CA gave, less what it retired. */
export function caRootsAfter(
  settings: { rootFingerprint: string; caRoots?: string[] } | null,
  bundle: BundleUpdate,
): string[] {
  const before = settings?.caRoots ?? (settings ? [settings.rootFingerprint.toLowerCase()] : []);
  return [...new Set([...before, ...bundle.added])].filter((f) => !bundle.removed.includes(f));
}

/** The host name reduced to the safe name alphabet, like Docker Swarm's node names. */
export function defaultName(): string {
  const host = hostname() || 'machine';
  const cleaned = host
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 63);
  return cleaned || 'machine';
}
