/**
 * Admin operations run either locally on the CA directory or remotely through the admin API
 * with an admin identity. Both return the same views, so commands print them the same way.
 */
import { localActor } from './local-actor.js';
import { GatehouseError } from '../errors/errors.js';
import { Authority } from '../ca/authority.js';
import type { TokenRequest } from '../ca/join-token-records.js';
import { loadCaMaterial } from '../ca/ca-dir.js';
import { externalCaFrom } from '../ca/external-ca.js';
import { certView, nameView, releasedView, tokenView } from '../ca/admin-routes.js';
import { silentLogger } from '../log/logger.js';
import { openCaStore } from '../ca/store-open.js';
import type { CertState } from '../store/store-certificates.js';
import type { AdvisoryImport } from '../store/store-posture.js';
import type { CrlReason } from '../pki/crl.js';
import { formatDuration } from '../config/duration.js';
import { CaClient } from '../agent/ca-client.js';
import { readAgentSettings } from '../agent/agent-state.js';
import { readIdentityDir } from '../files/identity-dir.js';
import { str, type CommandContext } from './command.js';
import { activeContext } from './contexts.js';
import { decodePem } from '../pki/pem.js';
import { normalizeSerial, sha256Hex } from '../pki/certificate.js';
import { MasterKeyRing } from '../secrets/master-key.js';
import {
  abortRotation,
  finishRotation,
  rotationStatus,
  startRotation,
  type FinishView,
  type StartOptions,
  type StartView,
  type StatusView,
} from '../ca/root-rotation-ops.js';
import type { RootRotationState } from '../ca/root-rotation.js';
import { fleetPosture, type PostureQuery, type PostureView } from '../ca/posture-views.js';
import { fleetVulns, type FleetVuln } from '../ca/vuln-views.js';
import { ADVISORY_BATCH, importAdvisories, parseAdvisories } from '../ca/vuln-import.js';
import type { FeedRecord } from '../posture/vulns/feed.js';
import { SecretService } from '../secrets/service.js';
import type { RekeyResult } from '../secrets/rekey.js';
import type { SecretSummaryView, SecretView } from '../secrets/views.js';

export type TokenView = ReturnType<typeof tokenView>;
export type CertView = ReturnType<typeof certView>;
export type NameView = ReturnType<typeof nameView>;
export type ReleasedNameView = ReturnType<typeof releasedView>;

export interface CertQuery {
  role?: string;
  state?: CertState;
  expiringWithinMs?: number;
}

export interface AdminOps {
  createToken(request: TokenRequest): Promise<TokenView & { token: string }>;
  listTokens(): Promise<TokenView[]>;
  revokeToken(id: string): Promise<TokenView>;
  listCerts(query: CertQuery): Promise<CertView[]>;
  getCert(serial: string): Promise<CertView & { certificate: string }>;
  revokeCert(serial: string, reason: CrlReason): Promise<CertView>;
  listNames(): Promise<NameView[]>;
  releaseName(role: string, name: string): Promise<ReleasedNameView>;
  createSecret(name: string, value: Buffer, grants: string[]): Promise<SecretView>;
  listSecrets(): Promise<SecretSummaryView[]>;
  showSecret(name: string): Promise<SecretView>;
  grantSecret(name: string, subjects: string[]): Promise<SecretView>;
  ungrantSecret(name: string, subjects: string[]): Promise<SecretView>;
  rotateSecret(name: string, value: Buffer, overlapMs: number | undefined): Promise<SecretView>;
  deleteSecret(name: string): Promise<{ name: string; deleted: true; versions: number }>;
  /** Local only: it rewrites the key file in the CA directory. */
  rekeySecrets(): Promise<RekeyResult>;
  /** Key options (an offline or imported root key) are local only: keys never travel to the admin API. */
  rootRotationStart(options: StartOptions): Promise<StartView>;
  rootRotationStatus(): Promise<StatusView>;
  rootRotationFinish(options: { force: boolean; nextRootKeyFile?: string | null }): Promise<FinishView>;
  rootRotationAbort(): Promise<RootRotationState>;
  fleetPosture(query: PostureQuery): Promise<PostureView[]>;
  /** Checks every record first; locally one transaction, remotely one per batch of ADVISORY_BATCH. */
  importAdvisories(records: readonly FeedRecord[]): Promise<AdvisoryImport>;
  fleetVulns(): Promise<FleetVuln[]>;
  close(): Promise<void>;
}

/**
 * Local (--dir, GATEHOUSE_CA_DIR) or remote (--identity [--ca], else a saved context): explicit
 * flags first, then the environment, then the current context.
 */
export async function openAdmin(ctx: CommandContext): Promise<AdminOps> {
  const identityDir = str(ctx, 'identity');
  const contextName = str(ctx, 'context');
  const dir = str(ctx, 'dir') ?? (identityDir || contextName ? undefined : ctx.env.GATEHOUSE_CA_DIR);
  if (dir && (identityDir || contextName))
    throw new GatehouseError('GH_USAGE', 'give either --dir (local) or --identity/--context (remote), not both');
  if (dir) return openLocalAdmin(dir, str(ctx, 'passphrase-file'));
  if (identityDir) return openRemoteAdmin(identityDir, str(ctx, 'ca'));
  const context = activeContext(ctx.env, contextName);
  if (context) return openRemoteAdmin(context.identityDir, str(ctx, 'ca') ?? context.caUrl, context.rootFingerprint);
  throw new GatehouseError(
    'GH_USAGE',
    'say where the CA is: --dir CA_DIR on the CA machine, or --identity ADMIN_DIR [--ca URL] remotely, or save that once with `gatehouse context add NAME --ca URL --identity ADMIN_DIR`',
  );
}

export async function openLocalAdmin(dir: string, passphraseFile?: string): Promise<AdminOps> {
  const material = loadCaMaterial(dir, { passphraseFile });
  const store = await openCaStore(material.dir, material.config);
  const authority = new Authority({
    ...material,
    externalCa: externalCaFrom(material.config, material.dir),
    store,
    logger: silentLogger,
  });
  const ctx = { actor: localActor() };
  const secrets = new SecretService({
    store,
    config: material.config,
    keys: new MasterKeyRing(material.dir, material.passphrase),
    logger: silentLogger,
  });
  return {
    createToken: async (request) => {
      const { token, record } = await authority.createToken(request, ctx);
      return { token, ...tokenView(record) };
    },
    listTokens: async () => (await store.listTokens()).map(tokenView),
    revokeToken: async (id) => tokenView(await authority.revokeToken(id, ctx)),
    listCerts: async (q) =>
      (
        await store.listCerts({
          ...(q.role ? { role: q.role } : {}),
          ...(q.state ? { state: q.state } : {}),
          ...(q.expiringWithinMs !== undefined ? { expiringBefore: new Date(Date.now() + q.expiringWithinMs) } : {}),
        })
      ).map((c) => certView(c, new Date())),
    getCert: async (serial) => {
      const cert = await store.getCert(normalizeSerial(serial));
      if (!cert) throw new GatehouseError('GH_CERT_NOT_FOUND', `no certificate with serial ${serial} in the inventory`);
      return { ...certView(cert, new Date()), certificate: cert.certPem };
    },
    revokeCert: async (serial, reason) => certView(await authority.revokeCertificate(serial, reason, ctx), new Date()),
    listNames: async () => (await authority.listNames()).map(nameView),
    releaseName: async (role, name) => releasedView(await authority.releaseName(role, name, ctx)),
    createSecret: (name, value, grants) => secrets.create({ name, value, grants }, ctx),
    listSecrets: () => secrets.list(),
    showSecret: (name) => secrets.show(name),
    grantSecret: (name, subjects) => secrets.grant(name, subjects, ctx),
    ungrantSecret: (name, subjects) => secrets.ungrant(name, subjects, ctx),
    rotateSecret: (name, value, overlapMs) => secrets.rotate(name, value, overlapMs, ctx),
    deleteSecret: (name) => secrets.delete(name, ctx),
    rekeySecrets: () => secrets.rekey(ctx),
    rootRotationStart: (options) => startRotation({ material, store, ...ctx }, options),
    rootRotationStatus: () => rotationStatus({ material, store, ...ctx }),
    rootRotationFinish: (options) => finishRotation({ material, store, ...ctx }, options),
    rootRotationAbort: () => abortRotation({ material, store, ...ctx }),
    fleetPosture: (query) => fleetPosture(store, query, new Date()),
    importAdvisories: (records) =>
      importAdvisories(
        store,
        parseAdvisories(
          records.map((r) => r.value),
          (i) => records[i]!.where,
        ),
        ctx,
        new Date(),
      ),
    fleetVulns: () => fleetVulns(store, new Date()),
    close: () => store.close(),
  };
}

/** `pinnedRoot`: a context's root fingerprint; the identity's ca.pem must still hold that root. */
export function openRemoteAdmin(identityDir: string, caUrl?: string, pinnedRoot?: string): AdminOps {
  const files = readIdentityDir(identityDir);
  if (pinnedRoot !== undefined) {
    const [root] = decodePem(files.caPem, 'CERTIFICATE');
    const actual = root ? sha256Hex(root) : 'none';
    if (actual !== pinnedRoot)
      throw new GatehouseError(
        'GH_CA_PIN_MISMATCH',
        `${identityDir}/ca.pem holds root ${actual}, but the context was saved with root ${pinnedRoot}; if the CA's root really changed, add the context again with --force`,
      );
  }
  const baseUrl = caUrl ?? readAgentSettings(identityDir)?.caUrl;
  if (!baseUrl) throw new GatehouseError('GH_USAGE', `no CA URL: pass --ca URL (no agent.json in ${identityDir})`);
  const client = new CaClient({
    baseUrl,
    rootPem: files.caPem,
    identity: { keyPem: files.keyPem, certPem: files.certPem },
  });
  return {
    createToken: (r) =>
      client.postJson('admin/tokens', {
        role: r.role,
        ...(r.name ? { name: r.name } : {}),
        ...(r.namePattern ? { names: r.namePattern } : {}),
        ...(r.ttlMs !== undefined ? { ttl: formatDuration(r.ttlMs) } : {}),
        ...(r.uses !== undefined ? { uses: r.uses } : {}),
      }),
    listTokens: async () => (await client.getJson<{ tokens: TokenView[] }>('admin/tokens')).tokens,
    revokeToken: (id) => client.postJson(`admin/tokens/${encodeURIComponent(id)}/revoke`, {}),
    listCerts: async (q) => {
      const params = new URLSearchParams();
      if (q.role) params.set('role', q.role);
      if (q.state) params.set('state', q.state);
      if (q.expiringWithinMs !== undefined) params.set('expiringWithin', formatDuration(q.expiringWithinMs));
      return (await client.getJson<{ certificates: CertView[] }>(`admin/certs?${params}`)).certificates;
    },
    getCert: (serial) => client.getJson(`admin/certs/${encodeURIComponent(serial.toLowerCase().replace(/:/g, ''))}`),
    revokeCert: (serial, reason) =>
      client.postJson(`admin/certs/${encodeURIComponent(serial.toLowerCase().replace(/:/g, ''))}/revoke`, { reason }),
    listNames: async () => (await client.getJson<{ names: NameView[] }>('admin/names')).names,
    releaseName: (role, name) => client.postJson('admin/names/release', { role, name }),
    createSecret: (name, value, grants) =>
      client.postJson('admin/secrets', { name, value: value.toString('base64'), grants }),
    listSecrets: async () => (await client.getJson<{ secrets: SecretSummaryView[] }>('admin/secrets')).secrets,
    showSecret: (name) => client.getJson(`admin/secrets/${encodeURIComponent(name)}`),
    grantSecret: (name, subjects) => client.postJson(`admin/secrets/${encodeURIComponent(name)}/grant`, { subjects }),
    ungrantSecret: (name, subjects) =>
      client.postJson(`admin/secrets/${encodeURIComponent(name)}/ungrant`, { subjects }),
    rotateSecret: (name, value, overlapMs) =>
      client.postJson(`admin/secrets/${encodeURIComponent(name)}/rotate`, {
        value: value.toString('base64'),
        ...(overlapMs !== undefined ? { overlap: overlapMs === 0 ? '0' : formatDuration(overlapMs) } : {}),
      }),
    deleteSecret: (name) => client.postJson(`admin/secrets/${encodeURIComponent(name)}/delete`, {}),
    rekeySecrets: async () => {
      throw new GatehouseError(
        'GH_USAGE',
        '`secret rekey` works only on the CA machine, on the CA directory (--dir): it rewrites the master key file there',
      );
    },
    rootRotationStart: (options) => {
      if (options.rootKeyFile || options.nextRootKeyOut || options.importRoot)
        throw new GatehouseError(
          'GH_USAGE',
          '--root-key, --next-root-key-out and --import-root work only on the CA machine (--dir): keys never travel to the admin API',
        );
      return client.postJson('admin/rotation/root', {});
    },
    rootRotationStatus: () => client.getJson('admin/rotation/root'),
    rootRotationFinish: (options) => {
      if (options.nextRootKeyFile)
        throw new GatehouseError(
          'GH_USAGE',
          '--next-root-key works only on the CA machine (--dir): keys never travel to the admin API',
        );
      return client.postJson('admin/rotation/root/finish', { force: options.force });
    },
    rootRotationAbort: () => client.postJson('admin/rotation/root/abort', {}),
    fleetPosture: async (query) => {
      const params = new URLSearchParams();
      if (query.below !== undefined) params.set('below', String(query.below));
      if (query.staleMs !== undefined) params.set('stale', formatDuration(query.staleMs));
      return (await client.getJson<{ identities: PostureView[] }>(`admin/posture?${params}`)).identities;
    },
    importAdvisories: async (records) => {
      parseAdvisories(
        records.map((r) => r.value),
        (i) => records[i]!.where,
      ); // every record checked before any is sent
      const total: AdvisoryImport = { added: 0, updated: 0, unchanged: 0 };
      for (let i = 0; i < records.length; i += ADVISORY_BATCH) {
        const counts = await client.postJson<AdvisoryImport>('admin/vulns', {
          advisories: records.slice(i, i + ADVISORY_BATCH).map((r) => r.value),
        });
        total.added += counts.added;
        total.updated += counts.updated;
        total.unchanged += counts.unchanged;
      }
      return total;
    },
    fleetVulns: async () => (await client.getJson<{ advisories: FleetVuln[] }>('admin/vulns')).advisories,
    close: async () => client.close(),
  };
}
