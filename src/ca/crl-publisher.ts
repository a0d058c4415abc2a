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
import { issuerIdOf } from './issuers.js';
import { parseCrl, verifyCrlSignature } from '../pki/crl-parse.js';

/** A stored root CRL only if this root signed it: after a root rotation the store may still hold the previous one's. */
function signedByRoot(crl: PublishedCrl | null, rootDer: Buffer): PublishedCrl | null {
  if (!crl) return null;
  try {
    verifyCrlSignature(parseCrl(crl.der), rootDer);
    return crl;
  } catch {
    return null;
  }
}

export type CrlScope = 'intermediate' | 'root';

export interface PublishedCrl {
  der: Buffer;
  pem: string;
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  /** The store's revocation version this CRL reflects (intermediate CRL only). */
  revocationVersion?: number;
  /** issuerIdOf the signing intermediate (intermediate CRLs written since rotation exists). */
  issuerId?: string;
}

/** A CA certificate and the CRL it signs: one entry of /crls. */
export interface CrlOfIssuer {
  issuerDer: Buffer;
  issuerId: string;
  crl: PublishedCrl;
}

export const ROOT_CRL_META_KEY = 'crl:root';
const INTERMEDIATE_CRL_META_KEY = 'crl:intermediate';
const META_KEY: Record<CrlScope, string> = { root: ROOT_CRL_META_KEY, intermediate: INTERMEDIATE_CRL_META_KEY };

/** How long before nextUpdate a running CA replaces each CRL. */
export function crlRenewBeforeMs(config: CaConfig, scope: CrlScope): number {
  return scope === 'root' ? config.crl.rootLifetime / 3 : config.crl.renewBefore;
}

/** The CRL last published for a scope (by any process on this store), or null before the first. */
export async function loadPublishedCrl(
  store: Store,
  scope: CrlScope,
  metaKey = META_KEY[scope],
): Promise<PublishedCrl | null> {
  const stored = await store.getMeta(metaKey);
  if (!stored) return null;
  const parsed = JSON.parse(stored) as {
    der: string;
    number: string;
    thisUpdate: string;
    nextUpdate: string;
    revocationVersion?: number;
    issuerId?: string;
  };
  const der = Buffer.from(parsed.der, 'base64');
  return {
    der,
    pem: toPem('X509 CRL', der),
    number: BigInt(parsed.number),
    thisUpdate: new Date(parsed.thisUpdate),
    nextUpdate: new Date(parsed.nextUpdate),
    ...(parsed.revocationVersion !== undefined ? { revocationVersion: parsed.revocationVersion } : {}),
    ...(parsed.issuerId !== undefined ? { issuerId: parsed.issuerId } : {}),
  };
}

export async function generateRootCrl(
  store: Store,
  root: SigningAuthority,
  config: CaConfig,
  now: Date,
): Promise<PublishedCrl> {
  const number = await store.nextCrlNumber('root');
  // The root signs only the intermediate; revoking an intermediate means a new CA, so the list is empty.
  const nextUpdate = new Date(Math.min(now.getTime() + config.crl.rootLifetime, root.notAfter.getTime()));
  const der = buildCrl(root, { crlNumber: number, thisUpdate: now, nextUpdate, entries: [] });
  const crl: PublishedCrl = { der, pem: toPem('X509 CRL', der), number, thisUpdate: now, nextUpdate };
  await store.setMeta(ROOT_CRL_META_KEY, serializeCrl(crl));
  return crl;
}

function serializeCrl(crl: PublishedCrl): string {
  return JSON.stringify({
    der: crl.der.toString('base64'),
    number: crl.number.toString(),
    thisUpdate: crl.thisUpdate.toISOString(),
    nextUpdate: crl.nextUpdate.toISOString(),
    revocationVersion: crl.revocationVersion,
    issuerId: crl.issuerId,
  });
}

export class CrlPublisher {
  /** By issuerIdOf: the current issuing CA's CRL and those of retired ones still needed. */
  private intermediates = new Map<string, { issuer: SigningAuthority; crl: PublishedCrl; seenVersion: number }>();
  private root: PublishedCrl | null = null;
  private timer: NodeJS.Timeout | null = null;
  private refreshing: Promise<void> | null = null;
  private rootAuthority: SigningAuthority | null;
  private rootDer: Buffer;

  constructor(
    private readonly deps: {
      config: Readonly<CaConfig>;
      store: Store;
      /**
       * The issuing CAs now: the current one first, then retired ones (issuers.ts). Read on every
       * refresh. `current` is null when this CA does not hold the issuing key (an external CA).
       */
      issuers: () => { current: SigningAuthority | null; retired: readonly SigningAuthority[] };
      rootDer: Buffer;
      rootKey: KeyObject | null;
      logger: Logger;
      now: () => Date;
    },
  ) {
    this.rootAuthority = deps.rootKey ? prepareSigningAuthority(deps.rootDer, deps.rootKey) : null;
    this.rootDer = deps.rootDer;
  }

  /** A finished root rotation: the next root's CRL (written by `ca rotate finish`) is read from the store. */
  useRoot(rootDer: Buffer, rootKey: KeyObject | null): void {
    if (rootDer.equals(this.rootDer)) return;
    this.rootDer = rootDer;
    this.rootAuthority = rootKey ? prepareSigningAuthority(rootDer, rootKey) : null;
    this.root = null;
  }

  /** The CRLs this CA publishes: the root's is left out when its own PKI publishes it (crl.rootCrl: external). */
  scopes(): CrlScope[] {
    const scopes: CrlScope[] = this.deps.issuers().current ? ['intermediate'] : [];
    return this.deps.config.crl.rootCrl === 'external' ? scopes : [...scopes, 'root'];
  }

  /** The root's CRL, or the current issuing CA's. */
  current(scope: CrlScope): PublishedCrl {
    if (!this.scopes().includes(scope)) {
      throw new GatehouseError(
        'GH_NOT_FOUND',
        scope === 'root'
          ? "this CA does not publish the root's CRL: the root was imported and its own PKI publishes it (crl.rootCrl: external)"
          : 'this CA does not publish a CRL for its certificates: an external CA signs them and holds the issuing key, so its CRL is the one to use',
      );
    }
    const current = this.deps.issuers().current;
    const crl = scope === 'root' ? this.root : current && this.intermediates.get(issuerIdOf(current.certDer))?.crl;
    if (!crl) throw new GatehouseError('GH_INTERNAL', `the ${scope} CRL has not been generated yet`);
    return crl;
  }

  /** The CRL of one issuing CA, current or retired, by its ID (/crl/<id>), or null. */
  ofIssuer(issuerId: string): PublishedCrl | null {
    return this.intermediates.get(issuerId)?.crl ?? null;
  }

  /** Every CRL this CA signs, each with its signer's certificate: the current issuing CA's, retired ones', then the root's (/crls). */
  all(): CrlOfIssuer[] {
    const current = this.deps.issuers().current;
    const currentId = current ? issuerIdOf(current.certDer) : null;
    const list: CrlOfIssuer[] = [...this.intermediates.entries()]
      .map(([issuerId, e]) => ({ issuerDer: e.issuer.certDer, issuerId, crl: e.crl }))
      .sort((a, b) => Number(b.issuerId === currentId) - Number(a.issuerId === currentId));
    if (this.scopes().includes('root') && this.root)
      list.push({ issuerDer: this.rootDer, issuerId: issuerIdOf(this.rootDer), crl: this.root });
    return list;
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
      this.refreshing = this.doRefresh(force, this.deps.issuers()).finally(() => {
        this.refreshing = null;
      });
      return this.refreshing;
    }
    return force ? this.refreshing.then(() => this.refresh(true)) : this.refreshing;
  }

  /**
   * Publishes the CRLs of a set of issuing CAs about to be put in force, before it is: a gateway
   * that fetches /crls when it first sees a certificate of the new one must find its CRL there.
   */
  async prepare(issuers: { current: SigningAuthority | null; retired: readonly SigningAuthority[] }): Promise<void> {
    await this.refreshing?.catch(() => undefined);
    this.refreshing = this.doRefresh(false, issuers).finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async doRefresh(
    force: boolean,
    issuers: { current: SigningAuthority | null; retired: readonly SigningAuthority[] },
  ): Promise<void> {
    const now = this.deps.now();
    const version = await this.deps.store.revocationVersion();
    const { current, retired } = issuers;
    const wanted = new Map(
      [...(current ? [current] : []), ...retired].map((issuer) => [issuerIdOf(issuer.certDer), issuer]),
    );
    for (const id of this.intermediates.keys()) if (!wanted.has(id)) this.intermediates.delete(id);
    for (const [id, issuer] of wanted) {
      // The current issuer's CRL keeps the meta key it always had; a retired one's gets its own.
      await this.refreshIntermediate(
        issuer,
        id,
        issuer === current ? INTERMEDIATE_CRL_META_KEY : `${INTERMEDIATE_CRL_META_KEY}:${id}`,
        version,
        now,
        force,
      );
    }
    if (this.scopes().includes('root')) await this.refreshRoot(now);
  }

  private async refreshIntermediate(
    issuer: SigningAuthority,
    issuerId: string,
    metaKey: string,
    version: number,
    now: Date,
    force: boolean,
  ): Promise<void> {
    const { config, store, logger } = this.deps;
    const staleAt = (crl: PublishedCrl | undefined) =>
      !crl || crl.nextUpdate.getTime() - now.getTime() <= config.crl.renewBefore;
    const have = this.intermediates.get(issuerId);
    // The same key with another certificate (a root rotation's finish): /crls must carry the one in force.
    if (have && !have.issuer.certDer.equals(issuer.certDer)) this.intermediates.set(issuerId, { ...have, issuer });
    if (!force && have && have.seenVersion === version && !staleAt(have.crl)) return;
    // Another worker or replica may already have published a CRL for this revocation state:
    // serve that one, so clients see one CRL number rather than one per process.
    const shared = force ? null : await loadPublishedCrl(store, 'intermediate', metaKey);
    if (shared && shared.revocationVersion === version && shared.issuerId === issuerId && !staleAt(shared)) {
      this.intermediates.set(issuerId, { issuer, crl: shared, seenVersion: version });
      return;
    }
    // Serials are random and unique in this store, so every issuing CA's CRL lists every revoked,
    // unexpired serial: an entry a CA never issued matches nothing it signed (RFC 5280 §5.3).
    const entries = await store.listRevokedUnexpired(now);
    // One counter for all issuing CAs: still strictly increasing for each of them (RFC 5280 §5.2.3).
    const number = await store.nextCrlNumber('intermediate');
    const nextUpdate = new Date(now.getTime() + config.crl.lifetime);
    const der = buildCrl(issuer, { crlNumber: number, thisUpdate: now, nextUpdate, entries });
    const crl: PublishedCrl = {
      der,
      pem: toPem('X509 CRL', der),
      number,
      thisUpdate: now,
      nextUpdate,
      revocationVersion: version,
      issuerId,
    };
    this.intermediates.set(issuerId, { issuer, crl, seenVersion: version });
    await store.setMeta(metaKey, serializeCrl(crl));
    logger.info('ca.crl_generated', {
      scope: 'intermediate',
      issuerId,
      number: number.toString(),
      entries: entries.length,
      nextUpdate: nextUpdate.toISOString(),
    });
  }

  private async refreshRoot(now: Date): Promise<void> {
    const { config, store, logger } = this.deps;
    if (!this.root) this.root = signedByRoot(await loadPublishedCrl(store, 'root'), this.rootDer);
    const rootRenewBefore = crlRenewBeforeMs(config, 'root');
    if (this.root && this.root.nextUpdate.getTime() - now.getTime() > rootRenewBefore) return;
    if (this.rootAuthority) {
      this.root = await generateRootCrl(store, this.rootAuthority, config, now);
      logger.info('ca.crl_generated', {
        scope: 'root',
        number: this.root.number.toString(),
        nextUpdate: this.root.nextUpdate.toISOString(),
      });
      return;
    }
    if (!this.root)
      throw new GatehouseError(
        'GH_CA_ROOT_KEY_OFFLINE',
        'no root CRL is stored and the root key is offline; run `gatehouse ca root-crl --root-key FILE`',
      );
    logger.warn('ca.root_crl_expiring', {
      nextUpdate: this.root.nextUpdate.toISOString(),
      fix: 'run `gatehouse ca root-crl --dir DIR --root-key FILE` with the offline root key',
    });
  }
}
