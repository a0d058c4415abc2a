/**
 * The agent checks its own certificate against the CA's current CRL, as every gateway does, so a
 * revoked identity says so at once rather than at its next renewal. A CRL is believed only after
 * pki/crl-verify.ts accepts it (signed by the issuing CA of cert.pem, which chains to ca.pem).
 * The last CRL believed is kept in `crl.pem` for when the CA is unreachable; its mtime is when
 * the CA last handed it over.
 */
import { existsSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { GatehouseError } from '../errors/errors.js';
import { writeFileAtomic } from '../files/atomic-write.js';
import { assertCrlNotOlder, verifyCrlForCertificate, type CrlForCertificate } from '../pki/crl-verify.js';
import { decodePem, toPem } from '../pki/pem.js';
import { readAgentSettings, type LoadedIdentity } from './agent-state.js';
import { CaClient } from './ca-client.js';

/** PEM and 0644 like cert.pem: public data, and `openssl crl -in crl.pem -text` reads it. */
export const CRL_FILE = 'crl.pem';
const CRL_FETCH_TIMEOUT_MS = 10_000;

/**
 * Fetches the CRL of the CA that issued this certificate (DER) over a connection that trusts only
 * the pinned root: `path` is its CRL distribution point on the CA (`crl/<issuer id>`, which stays
 * right after an intermediate rotation), or `crl` for certificates that name none.
 */
export type CrlFetcher = (caUrl: string, rootPem: string, path?: string) => Promise<Buffer>;

export const fetchCaCrl: CrlFetcher = async (caUrl, rootPem, path = 'crl') => {
  const client = new CaClient({ baseUrl: caUrl, rootPem, timeoutMs: CRL_FETCH_TIMEOUT_MS });
  try {
    return await client.getBytes(path, 'application/pkix-crl');
  } finally {
    client.close();
  }
};

export interface RevocationCheck {
  /** What the verdict rests on: a CRL the CA handed over now, the stored one, or nothing. */
  source: 'ca' | 'stored' | 'none';
  revoked: boolean;
  revokedAt: Date | null;
  reason: string | null;
  crlNumber: string | null;
  crlThisUpdate: Date | null;
  crlNextUpdate: Date | null;
  /** The CRL used is past its nextUpdate. */
  crlStale: boolean;
  /** When the CA last handed over a CRL that verified. */
  lastCheckedAt: Date | null;
  /** The CA was not asked (--offline). */
  offline: boolean;
  /** Why the CA could not be asked or did not answer. */
  caProblem: string | null;
  /** Why a CRL (fetched or stored) was refused; a refused CRL is neither believed nor stored. */
  refused: string | null;
  /** Why a good CRL could not be stored (the verdict still stands). */
  storeProblem: string | null;
}

export interface RevocationCheckOptions {
  now: Date;
  /** Default: the URL recorded at enrollment in agent.json. */
  caUrl?: string;
  /** Ask no one: judge by the stored CRL alone. */
  offline?: boolean;
  fetchCrl?: CrlFetcher;
}

interface StoredCrl {
  verified: CrlForCertificate | null;
  checkedAt: Date | null;
  refused: string | null;
}

export async function checkRevocation(
  identity: LoadedIdentity,
  options: RevocationCheckOptions,
): Promise<RevocationCheck> {
  const { now } = options;
  const roots = trustedRootsOf(identity);
  const stored = readStoredCrl(identity, roots, now);
  if (options.offline) return { ...fromStored(stored, null, null), offline: true };
  let caUrl: string | undefined;
  try {
    caUrl = options.caUrl ?? readAgentSettings(identity.dir)?.caUrl;
  } catch (err) {
    return fromStored(stored, (err as Error).message, null);
  }
  if (!caUrl) return fromStored(stored, 'no CA URL: agent.json records none and no --ca was given', null);

  let raw: Buffer;
  try {
    raw = await (options.fetchCrl ?? fetchCaCrl)(caUrl, identity.caPem, crlPathOn(identity.leaf.crlUrls));
  } catch (err) {
    return fromStored(stored, (err as Error).message, null);
  }
  let fresh: CrlForCertificate;
  try {
    fresh = verifyCrlForAnyRoot(raw, identity.chainDer, roots, now);
    if (stored.verified) assertCrlNotOlder(fresh.crl, stored.verified.crl);
  } catch (err) {
    return fromStored(stored, null, `the CRL from ${caUrl} was refused: ${(err as Error).message}`);
  }
  const storeProblem = storeCrl(identity.dir, fresh.crl.der, now);
  return { ...verdict('ca', fresh, now), offline: false, caProblem: null, refused: null, storeProblem };
}

/** Every root in ca.pem: two during a root rotation, and the chain may run to either. */
function trustedRootsOf(identity: LoadedIdentity): Buffer[] {
  const roots = decodePem(identity.caPem, 'CERTIFICATE');
  if (roots.length === 0)
    throw new GatehouseError('GH_FILE_IO', `${join(identity.dir, 'ca.pem')} holds no root certificate`);
  return roots;
}

function verifyCrlForAnyRoot(crl: Buffer, chainDer: readonly Buffer[], roots: Buffer[], now: Date): CrlForCertificate {
  let last: unknown;
  for (const rootDer of roots) {
    try {
      return verifyCrlForCertificate(crl, chainDer, rootDer, now);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

/** The stored CRL is verified again on every read: the file is only as trustworthy as its signature. */
function readStoredCrl(identity: LoadedIdentity, roots: Buffer[], now: Date): StoredCrl {
  const path = join(identity.dir, CRL_FILE);
  if (!existsSync(path)) return { verified: null, checkedAt: null, refused: null };
  try {
    const verified = verifyCrlForAnyRoot(readFileSync(path), identity.chainDer, roots, now);
    return { verified, checkedAt: statSync(path).mtime, refused: null };
  } catch (err) {
    return {
      verified: null,
      checkedAt: null,
      refused: `the stored ${CRL_FILE} was ignored: ${(err as Error).message}`,
    };
  }
}

function fromStored(stored: StoredCrl, caProblem: string | null, refusedFetch: string | null): RevocationCheck {
  const refused = [refusedFetch, stored.refused].filter(Boolean).join('; ') || null;
  const base = stored.verified ? verdict('stored', stored.verified, stored.checkedAt) : verdict('none', null, null);
  return { ...base, offline: false, caProblem, refused, storeProblem: null };
}

function verdict(source: RevocationCheck['source'], checked: CrlForCertificate | null, checkedAt: Date | null) {
  return {
    source,
    revoked: checked?.entry != null,
    revokedAt: checked?.entry?.revokedAt ?? null,
    reason: checked?.entry?.reason ?? null,
    crlNumber: checked?.crl.crlNumber?.toString() ?? null,
    crlThisUpdate: checked?.crl.thisUpdate ?? null,
    crlNextUpdate: checked?.crl.nextUpdate ?? null,
    crlStale: checked?.stale ?? false,
    lastCheckedAt: checkedAt,
  };
}

/** Writes the CRL when it changed, and sets its mtime to `now` either way: the time of the last check. */
function storeCrl(dir: string, der: Buffer, now: Date): string | null {
  const path = join(dir, CRL_FILE);
  const pem = toPem('X509 CRL', der);
  try {
    if (!existsSync(path) || readFileSync(path, 'utf8') !== pem) writeFileAtomic(path, pem, 0o644);
    utimesSync(path, now, now);
    return null;
  } catch (err) {
    return `cannot store ${path}: ${(err as Error).message}`;
  }
}

/**
 * The certificate's own CRL path on the CA (`crl/<issuer id>`, from its distribution point), else
 * `crl`. Only the issuer ID is taken: the CRL is always fetched from the agent's own CA URL.
 */
function crlPathOn(crlUrls: readonly string[]): string {
  for (const candidate of crlUrls) {
    const match = /\/crl\/([0-9a-f]{16})$/.exec(candidate);
    if (match) return `crl/${match[1]}`;
  }
  return 'crl';
}
