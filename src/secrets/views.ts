/**
 * What operators see of secrets: one secret with its versions and grants (`secret show`, and
 * the answer of every mutation), the inventory (`secret list`), and what an identity is told is
 * granted to it. Metadata only: no value, data key or master key is ever in a view.
 */
import type { SecretListing, SecretVersionRecord } from '../store/store-secrets.js';
import { assertSecretName } from './names.js';
import { notFound, type SecretContext } from './context.js';

export interface SecretVersionView {
  version: number;
  current: boolean;
  createdAt: string;
  /** When an old version stops being readable; null for the current one. */
  expiresAt: string | null;
  size: number;
  checksum: string;
  keyId: string;
  lastReadAt: string | null;
  lastReadBy: string | null;
}

export interface SecretView {
  name: string;
  currentVersion: number;
  createdAt: string;
  updatedAt: string;
  versions: SecretVersionView[];
  grants: Array<{ subject: string; grantedAt: string }>;
}

export interface SecretSummaryView {
  name: string;
  version: number;
  size: number;
  checksum: string;
  versions: number;
  grants: string[];
  createdAt: string;
  updatedAt: string;
}

export interface SecretListingView {
  name: string;
  version: number;
  checksum: string;
  size: number;
  updatedAt: string;
}

export async function showSecret(ctx: SecretContext, name: string): Promise<SecretView> {
  assertSecretName(name);
  const now = ctx.now();
  const secret = await ctx.store.getSecret(name);
  if (!secret) throw notFound(name);
  const [versions, grants] = await Promise.all([
    ctx.store.listSecretVersions(name, now),
    ctx.store.listSecretGrants(name),
  ]);
  return {
    name: secret.name,
    currentVersion: secret.currentVersion,
    createdAt: secret.createdAt.toISOString(),
    updatedAt: secret.updatedAt.toISOString(),
    versions: versions.map((v) => versionView(v, secret.currentVersion)),
    grants: grants.map((g) => ({ subject: g.subject, grantedAt: g.grantedAt.toISOString() })),
  };
}

export async function listSecrets(ctx: SecretContext): Promise<SecretSummaryView[]> {
  const now = ctx.now();
  const secrets = await ctx.store.listSecrets();
  return Promise.all(
    secrets.map(async (s) => {
      const [versions, grants] = await Promise.all([
        ctx.store.listSecretVersions(s.name, now),
        ctx.store.listSecretGrants(s.name),
      ]);
      const current = versions.find((v) => v.version === s.currentVersion);
      return {
        name: s.name,
        version: s.currentVersion,
        size: current?.size ?? 0,
        checksum: current?.checksum ?? '',
        versions: versions.length,
        grants: grants.map((g) => g.subject),
        createdAt: s.createdAt.toISOString(),
        updatedAt: s.updatedAt.toISOString(),
      };
    }),
  );
}

function versionView(v: SecretVersionRecord, currentVersion: number): SecretVersionView {
  return {
    version: v.version,
    current: v.version === currentVersion,
    createdAt: v.createdAt.toISOString(),
    expiresAt: v.expiresAt?.toISOString() ?? null,
    size: v.size,
    checksum: v.checksum,
    keyId: v.keyId,
    lastReadAt: v.lastReadAt?.toISOString() ?? null,
    lastReadBy: v.lastReadBy,
  };
}

export function listingView(l: SecretListing): SecretListingView {
  return { name: l.name, version: l.version, checksum: l.checksum, size: l.size, updatedAt: l.updatedAt.toISOString() };
}
