/**
 * The four root rotation operations as the CLI (on the CA directory) and the admin API (on a
 * running CA) both run them, each reading the CA directory as it is now and auditing what it did.
 * Their results are plain JSON views: what `--json` prints and what the admin API answers.
 */
import type { KeyObject } from 'node:crypto';
import { join, resolve } from 'node:path';
import { withDirLock } from '../files/dir-lock.js';
import { readImportedPki } from './import-pki.js';
import { GatehouseError } from '../errors/errors.js';
import { prepareSigningAuthority } from '../pki/leaf-certificate.js';
import type { Store } from '../store/store.js';
import { CA_FILES, caPath, loadIssuerMaterial, loadRootMaterial, readKeyFile, type CaMaterial } from './ca-dir.js';
import { generateRootCrl } from './crl-publisher.js';
import { loadRootRotation, type RootRotationState } from './root-rotation.js';
import {
  abortRootRotation,
  assertRotationCanStart,
  finishRootRotation,
  startRootRotation,
} from './root-rotation-steps.js';
import { rotationProgress } from './rotation-progress.js';
import { lastNotAfter } from './active-identities.js';

const ROTATION_LOCK = '.root-rotation.lock';

export interface RotationDeps {
  material: CaMaterial;
  store: Store;
  actor: string;
  requestId?: string | null;
}

export type StartView = RootRotationState & {
  nextRootKeyFile: string;
  issuerNotAfter: string;
  retiredIssuerId: string;
};
export type StatusView =
  | { phase: 'none' }
  | (RootRotationState & {
      identities: { total: number; moved: number };
      trustBundles: { total: number; updated: number };
      pending: Array<{ spiffeId: string; serial: string; notAfter: string }>;
    });
export type FinishView = RootRotationState & { notMoved: string[] };

/** Files on the CA machine (CLI only: keys never travel to the admin API); keys are read with the CA's passphrase. */
export interface StartOptions {
  /** The current root key when it is not in the CA directory. */
  rootKeyFile?: string | null;
  nextRootKeyOut?: string | null;
  /** An existing root to rotate to, checked as `ca init --import-root` checks one. */
  importRoot?: { certPath: string; keyPath: string } | null;
}

/**
 * One rotation command at a time per CA directory, root or intermediate: both rewrite the issuing
 * CA's files, and the CLI and a running CA's admin API share the lock.
 */
export function withRotationLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const path = join(dir, ROTATION_LOCK);
  return withDirLock(
    path,
    (holder) =>
      new GatehouseError(
        'GH_CA_ROTATION',
        `another rotation command holds ${path} (pid ${holder.pid ?? '?'} on ${holder.host ?? '?'} since ${holder.since ?? '?'}); wait for it, or remove the file if none is running`,
      ),
    fn,
  );
}

function locked<T>(deps: RotationDeps, fn: () => Promise<T>): Promise<T> {
  return withRotationLock(deps.material.dir, fn);
}

export function startRotation(deps: RotationDeps, options: StartOptions = {}): Promise<StartView> {
  return locked(deps, () => startRotationLocked(deps, options));
}

async function startRotationLocked(deps: RotationDeps, options: StartOptions): Promise<StartView> {
  const { material, store } = deps;
  refuseExternal(material);
  // Before any key is asked for: an operator told "pass --root-key" would find out only then.
  assertRotationCanStart(material.dir, new Date());
  const root = loadRootMaterial(material);
  const rootKey = options.rootKeyFile ? readKeyFile(options.rootKeyFile, material.passphrase) : root.rootKey;
  const imported = options.importRoot ? importedRoot(options.importRoot, material) : null;
  if (!rootKey) {
    throw new GatehouseError(
      'GH_CA_ROOT_KEY_OFFLINE',
      material.config.crl.rootCrl === 'external'
        ? 'the root was imported without its key: its own PKI replaces it'
        : "the root key is kept offline; pass --root-key FILE (and --next-root-key-out FILE for the next root's key), on the CA machine",
    );
  }
  const offline = material.config.keys.root === null;
  if (offline && !options.nextRootKeyOut && !imported)
    throw new GatehouseError(
      'GH_USAGE',
      'the root key is kept offline, so the next one is too: pass --next-root-key-out FILE',
    );
  if (!offline && options.nextRootKeyOut)
    throw new GatehouseError(
      'GH_USAGE',
      '--next-root-key-out is for a CA whose root key is kept offline; this one keeps it in DIR, and so will the next',
    );
  const issuer = loadIssuerMaterial(material);
  const now = new Date();
  const result = await startRootRotation({
    dir: material.dir,
    config: material.config,
    rootDer: root.rootDer,
    rootKey,
    passphrase: material.passphrase,
    now,
    nextRootKeyOut: options.nextRootKeyOut ? resolve(options.nextRootKeyOut) : null,
    imported,
    lastLeafNotAfter: await lastNotAfter(store, now),
    current: {
      der: issuer.intermediateDer,
      key: issuer.intermediateKey,
      certPath: caPath(material.dir, CA_FILES.intermediateCert),
      keyPath: caPath(material.dir, material.config.keys.intermediate!),
    },
  });
  await store.appendAudit([
    {
      time: now,
      type: 'ca.root_rotation_started',
      actor: deps.actor,
      requestId: deps.requestId ?? null,
      details: {
        previousRoot: result.state.previousRoot,
        nextRoot: result.state.nextRoot,
        issuerId: result.issuer.id,
        retiredIssuerId: result.retiredIssuerId,
        nextRootKeyOffline: result.state.nextRootKey === 'offline',
        imported: imported !== null,
      },
    },
  ]);
  return {
    ...result.state,
    nextRootKeyFile: result.nextRootKeyPath,
    issuerNotAfter: result.issuer.notAfter.toISOString(),
    retiredIssuerId: result.retiredIssuerId,
  };
}

export async function rotationStatus(deps: RotationDeps): Promise<StatusView> {
  const rotation = loadRootRotation(deps.material.dir);
  if (!rotation) return { phase: 'none' };
  const progress = await rotationProgress(deps.store, rotation.state.issuerId, new Date());
  return {
    ...rotation.state,
    identities: { total: progress.total, moved: progress.moved },
    trustBundles: { total: progress.total, updated: progress.moved },
    pending: progress.pending.map((p) => ({ ...p, notAfter: p.notAfter.toISOString() })),
  };
}

export function finishRotation(
  deps: RotationDeps,
  options: { force: boolean; nextRootKeyFile?: string | null },
): Promise<FinishView> {
  return locked(deps, () => finishRotationLocked(deps, options));
}

async function finishRotationLocked(
  deps: RotationDeps,
  options: { force: boolean; nextRootKeyFile?: string | null },
): Promise<FinishView> {
  const { material, store } = deps;
  refuseExternal(material);
  const rotation = loadRootRotation(material.dir);
  if (!rotation || rotation.state.phase !== 'rotating')
    throw new GatehouseError(
      'GH_CA_ROTATION',
      rotation
        ? `the root rotation started at ${rotation.state.startedAt} is already ${rotation.state.phase}`
        : 'no root rotation is in progress; start one with `gatehouse ca rotate root`',
    );
  const now = new Date();
  const progress = await rotationProgress(store, rotation.state.issuerId, now);
  if (progress.pending.length > 0 && !options.force) {
    const list = progress.pending
      .slice(0, 5)
      .map((p) => p.spiffeId)
      .join(', ');
    throw new GatehouseError(
      'GH_CA_ROTATION',
      `${progress.pending.length} of ${progress.total} active identities have not moved to the new chain yet (${list}${progress.pending.length > 5 ? ', …' : ''}); they move at their next renewal. Wait (gatehouse ca rotate status), or pass --force: those machines must then enroll again`,
    );
  }
  const { state, nextRootKey } = finishRootRotation({
    dir: material.dir,
    config: material.config,
    rotation,
    nextRootKey: options.nextRootKeyFile ? readKeyFile(options.nextRootKeyFile, material.passphrase) : null,
    passphrase: material.passphrase,
    lastLeafNotAfter: await lastNotAfter(store, now),
    forced: options.force,
    now,
  });
  // The next root's first CRL, so /crl/root is signed by the root in force from the start.
  if (material.config.crl.rootCrl !== 'external')
    await generateRootCrl(store, prepareSigningAuthority(rotation.nextRootDer, nextRootKey), material.config, now);
  await store.appendAudit([
    {
      time: now,
      type: 'ca.root_rotation_finished',
      actor: deps.actor,
      requestId: deps.requestId ?? null,
      details: {
        previousRoot: state.previousRoot,
        nextRoot: state.nextRoot,
        forced: options.force,
        notMoved: progress.pending.length,
        bundleUntil: state.bundleUntil,
      },
    },
  ]);
  return { ...state, notMoved: progress.pending.map((p) => p.spiffeId) };
}

export function abortRotation(deps: RotationDeps): Promise<RootRotationState> {
  return locked(deps, () => abortRotationLocked(deps));
}

async function abortRotationLocked(deps: RotationDeps): Promise<RootRotationState> {
  const { material, store } = deps;
  const rotation = loadRootRotation(material.dir);
  if (!rotation || rotation.state.phase !== 'rotating')
    throw new GatehouseError(
      'GH_CA_ROTATION',
      rotation
        ? `the root rotation started at ${rotation.state.startedAt} is already ${rotation.state.phase}`
        : 'no root rotation is in progress',
    );
  const now = new Date();
  const state = abortRootRotation(material.dir, rotation, await lastNotAfter(store, now), now);
  await store.appendAudit([
    {
      time: now,
      type: 'ca.root_rotation_aborted',
      actor: deps.actor,
      requestId: deps.requestId ?? null,
      details: { previousRoot: state.previousRoot, nextRoot: state.nextRoot },
    },
  ]);
  return state;
}

function importedRoot(
  paths: { certPath: string; keyPath: string },
  material: CaMaterial,
): { der: Buffer; key: KeyObject; keyPath: string } {
  const checked = readImportedPki(
    { root: paths.certPath, rootKey: paths.keyPath },
    material.passphrase,
    material.config,
    new Date(),
  );
  return { der: checked.rootDer, key: checked.rootKey!, keyPath: resolve(paths.keyPath) };
}

function refuseExternal(material: CaMaterial): void {
  if (material.config.externalCa)
    throw new GatehouseError(
      'GH_CA_ROTATION',
      "the external CA signs this CA's certificates and holds its root: rotate the root there",
    );
  if (material.config.keys.intermediate === null)
    throw new GatehouseError('GH_CA_ROTATION', 'this CA holds no issuing key');
}
