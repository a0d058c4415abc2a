/**
 * Keeps the CA's two CRLs current: the issuing intermediate's (regenerated on every revocation
 * and well before nextUpdate) and the root's. OpenSSL-based verifiers (nginx, Node) need a CRL
 * for every CA in the chain once any CRL is configured, so the root's is served too.
 * Revocations made by another process (the CLI on the CA dir, another replica) are noticed by
 * polling the store's revocation version, which is one indexed read.
 */
import type { KeyObject } from 'node:crypto';
import { GatehouseError } from '../errors/errors.js';
import type { CaConfig } from '../config/ca-config.js';
import type { Logger } from '../log/logger.js';
import { buildCrl } from '../pki/crl.js';
import { prepareSigningAuthority, type SigningAuthority } from '../pki/leaf-certificate.js';
import { toPem } from '../pki/pem.js';
import type { Store } from '../store/store.js';

export type CrlScope = 'intermediate' | 'root';

export interface PublishedCrl {
  der: Buffer;
  pem: string;
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  /** The store's revocation version this CRL reflects (intermediate CRL only). */
  revocationVersion?: number;
}

export const ROOT_CRL_META_KEY = 'crl:root';
const INTERMEDIATE_CRL_META_KEY = 'crl:intermediate';
const META_KEY: Record<CrlScope, string> = { root: ROOT_CRL_META_KEY, intermediate: INTERMEDIATE_CRL_META_KEY };

/** How long before nextUpdate a running CA replaces each CRL. */
export function crlRenewBeforeMs(config: CaConfig, scope: CrlScope): number {
  return scope === 'root' ? config.crl.rootLifetime / 3 : config.crl.renewBefore;
}

/** The CRL last published for a scope (by any process on this store), or null before the first. */
export async function loadPublishedCrl(store: Store, scope: CrlScope): Promise<PublishedCrl | null> {
  const stored = await store.getMeta(META_KEY[scope]);
  if (!stored) return null;
  const parsed = JSON.parse(stored) as { der: string; number: string; thisUpdate: string; nextUpdate: string; revocationVersion?: number };
  const der = Buffer.from(parsed.der, 'base64');
  return {
    der, pem: toPem('X509 CRL', der), number: BigInt(parsed.number), thisUpdate: new Date(parsed.thisUpdate), nextUpdate: new Date(parsed.nextUpdate),
    ...(parsed.revocationVersion !== undefined ? { revocationVersion: parsed.revocationVersion } : {}),
  };
}

export async function generateRootCrl(store: Store, root: SigningAuthority, config: CaConfig, now: Date): Promise<PublishedCrl> {
  const number = await store.nextCrlNumber('root');
  // The root signs only the intermediate; revoking an intermediate means a new CA, so the list is empty.
  const nextUpdate = new Date(Math.min(now.getTime() + config.crl.rootLifetime, root.notAfter.getTime()));
  const der = buildCrl(root, { crlNumber: number, thisUpdate: now, nextUpdate, entries: [] });
  const crl: PublishedCrl = { der, pem: toPem('X509 CRL', der), number, thisUpdate: now, nextUpdate };
  await store.setMeta(ROOT_CRL_META_KEY, serializeCrl(crl));
  return crl;
}

function serializeCrl(crl: PublishedCrl): string {
  return JSON.stringify({ der: crl.der.toString('base64'), number: crl.number.toString(), thisUpdate: crl.thisUpdate.toISOString(), nextUpdate: crl.nextUpdate.toISOString(), revocationVersion: crl.revocationVersion });
}

export class CrlPublisher {
  private intermediate: PublishedCrl | null = null;
  private root: PublishedCrl | null = null;
  private seenRevocationVersion = -1;
  private timer: NodeJS.Timeout | null = null;
  private refreshing: Promise<void> | null = null;
  private readonly rootAuthority: SigningAuthority | null;

  constructor(
    private readonly deps: {
      config: Readonly<CaConfig>;
      store: Store;
      issuer: SigningAuthority;
      rootDer: Buffer;
      rootKey: KeyObject | null;
      logger: Logger;
      now: () => Date;
    },
  ) {
    this.rootAuthority = deps.rootKey ? prepareSigningAuthority(deps.rootDer, deps.rootKey) : null;
  }

  /** The CRLs this CA publishes: the root's is left out when its own PKI publishes it (crl.rootCrl: external). */
  scopes(): CrlScope[] {
    return this.deps.config.crl.rootCrl === 'external' ? ['intermediate'] : ['intermediate', 'root'];
  }

  current(scope: CrlScope): PublishedCrl {
    if (!this.scopes().includes(scope)) {
      throw new GatehouseError('GH_NOT_FOUND', "this CA does not publish the root's CRL: the root was imported and its own PKI publishes it (crl.rootCrl: external)");
    }
    const crl = scope === 'root' ? this.root : this.intermediate;
    if (!crl) throw new GatehouseError('GH_INTERNAL', `the ${scope} CRL has not been generated yet`);
    return crl;
  }

  start(checkIntervalMs = 2000): void {
    this.timer = setInterval(() => {
      this.refresh().catch((err) => this.deps.logger.error('ca.crl_refresh_failed', { err }));
    }, checkIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Regenerates what is stale. Concurrent callers share one run. */
  refresh(force = false): Promise<void> {
    if (!this.refreshing) {
      this.refreshing = this.doRefresh(force).finally(() => {
        this.refreshing = null;
      });
      return this.refreshing;
    }
    return force ? this.refreshing.then(() => this.refresh(true)) : this.refreshing;
  }

  private async doRefresh(force: boolean): Promise<void> {
    const { config, store, logger } = this.deps;
    const now = this.deps.now();
    const version = await store.revocationVersion();
    const staleAt = (crl: PublishedCrl | null, renewBeforeMs: number) => !crl || crl.nextUpdate.getTime() - now.getTime() <= renewBeforeMs;
    if (force || version !== this.seenRevocationVersion || staleAt(this.intermediate, config.crl.renewBefore)) {
      // Another worker or replica may already have published a CRL for this revocation state:
      // serve that one, so clients see one CRL number rather than one per process.
      const shared = force ? null : await loadPublishedCrl(store, 'intermediate');
      if (shared && shared.revocationVersion === version && !staleAt(shared, config.crl.renewBefore)) {
        this.intermediate = shared;
      } else {
        const entries = await store.listRevokedUnexpired(now);
        const number = await store.nextCrlNumber('intermediate');
        const nextUpdate = new Date(now.getTime() + config.crl.lifetime);
        const der = buildCrl(this.deps.issuer, { crlNumber: number, thisUpdate: now, nextUpdate, entries });
        this.intermediate = { der, pem: toPem('X509 CRL', der), number, thisUpdate: now, nextUpdate, revocationVersion: version };
        await store.setMeta(INTERMEDIATE_CRL_META_KEY, serializeCrl(this.intermediate));
        logger.info('ca.crl_generated', { scope: 'intermediate', number: number.toString(), entries: entries.length, nextUpdate: nextUpdate.toISOString() });
      }
      this.seenRevocationVersion = version;
    }
    if (this.scopes().includes('root')) await this.refreshRoot(now);
  }

  private async refreshRoot(now: Date): Promise<void> {
    const { config, store, logger } = this.deps;
    if (!this.root) this.root = await loadPublishedCrl(store, 'root');
    const rootRenewBefore = crlRenewBeforeMs(config, 'root');
    if (this.root && this.root.nextUpdate.getTime() - now.getTime() > rootRenewBefore) return;
    if (this.rootAuthority) {
      this.root = await generateRootCrl(store, this.rootAuthority, config, now);
      logger.info('ca.crl_generated', { scope: 'root', number: this.root.number.toString(), nextUpdate: this.root.nextUpdate.toISOString() });
      return;
    }
    if (!this.root) throw new GatehouseError('GH_CA_ROOT_KEY_OFFLINE', 'no root CRL is stored and the root key is offline; run `gatehouse ca root-crl --root-key FILE`');
    logger.warn('ca.root_crl_expiring', { nextUpdate: this.root.nextUpdate.toISOString(), fix: 'run `gatehouse ca root-crl --dir DIR --root-key FILE` with the offline root key' });
  }
}
