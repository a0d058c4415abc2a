/**
 * Root rotation without an outage (`gatehouse ca rotate root|status|finish|abort`), as files in
 * the CA directory that every running `ca serve` reloads within seconds:
 *
 *   rotation/root.json            the state (rotating, finished, aborted) and its fingerprints
 *   rotation/previous-root.pem    the root being replaced          rotation/next-root.pem
 *   rotation/cross-next.pem       the next root, certified by the previous one (agents take the
 *                                 next root only with it: src/agent/trust-bundle.ts)
 *   rotation/cross-previous.pem   the previous root, certified by the next one (for machines
 *                                 that enroll after the finish, while older chains still run)
 *   rotation/intermediate-next.pem  the new issuing CA, certified by the next root
 *   rotation/next-root-key.pem    the next root's key until the finish, when the root key is kept here
 *
 * Why the chain moves in two steps: Gatehouse roots say pathLen 1, so a cross-certified root
 * cannot sit between a root and an issuing CA (openssl, Go and GnuTLS refuse the path), and
 * openssl and GnuTLS do not backtrack between two certificates of one issuing CA. So the new
 * issuing CA gets two certificates: until the finish it is handed out certified by the previous
 * root, which every peer trusts; from the finish on, certified by the next root, which every
 * moved machine received in its trust bundle. The previous root stays in the bundles agents get
 * until the last certificate issued before the finish has expired (bundleUntil), then is retired.
 */
import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { GatehouseError } from '../errors/errors.js';
import { writeFileAtomic, writeNewFile } from '../files/atomic-write.js';
import { assertPrivateFile } from '../files/identity-dir.js';
import type { CaConfig } from '../config/ca-config.js';
import { buildCrossCertificate, buildIntermediateCertificate, buildRootCertificate } from '../pki/ca-certificates.js';
import { formatDn, parseCertificate, sha256Hex } from '../pki/certificate.js';
import { generatePrivateKey, loadPrivateKey, privateKeyToPem, spkiDer } from '../pki/keys.js';
import { keyIdentifier } from '../pki/leaf-certificate.js';
import { decodePem, toPem } from '../pki/pem.js';
import { fileStamp, keyTypeOf, rotateIntermediate } from './issuers.js';

export const ROTATION_DIR = 'rotation';
const FILES = {
  state: 'root.json',
  previousRoot: 'previous-root.pem',
  previousRootKey: 'previous-root-key.pem',
  nextRoot: 'next-root.pem',
  nextRootKey: 'next-root-key.pem',
  crossNext: 'cross-next.pem',
  crossPrevious: 'cross-previous.pem',
  intermediateNext: 'intermediate-next.pem',
} as const;

const YEAR_MS = 365 * 86_400_000;

const stateSchema = z.strictObject({
  format: z.literal(1),
  phase: z.enum(['rotating', 'finished', 'aborted']),
  startedAt: z.string(),
  previousRoot: z.string().regex(/^[0-9a-f]{64}$/),
  nextRoot: z.string().regex(/^[0-9a-f]{64}$/),
  /** The new issuing CA (issuerIdOf): a certificate it signed has moved. */
  issuerId: z.string().regex(/^[0-9a-f]{16}$/),
  nextRootKey: z.enum(['ca-dir', 'offline']),
  finishedAt: z.string().nullable(),
  abortedAt: z.string().nullable(),
  /** After a finish or abort: until then agents still get the root being left in their bundle. */
  bundleUntil: z.string().nullable(),
  forced: z.boolean().default(false),
  /** Roots of earlier rotations agents must still drop (an aborted next root, a finished rotation's previous root). */
  retiredRoots: z.array(z.string().regex(/^[0-9a-f]{64}$/)).default([]),
});

export type RootRotationState = z.output<typeof stateSchema>;

/** A rotation as a running CA uses it. */
export interface RootRotation {
  state: RootRotationState;
  previousRootDer: Buffer;
  nextRootDer: Buffer;
  crossNextDer: Buffer;
  crossPreviousDer: Buffer;
}

/** What agents may take into ca.pem with each issuance (the Authority's TrustBundle, as DER). */
export interface RotationBundle {
  roots: Buffer[];
  cross: Buffer[];
  retired: string[];
}

function path(dir: string, file: keyof typeof FILES): string {
  return join(dir, ROTATION_DIR, FILES[file]);
}

function readCert(file: string): Buffer {
  const [der] = decodePem(readFileSync(file, 'utf8'), 'CERTIFICATE');
  if (!der) throw new GatehouseError('GH_CONFIG_INVALID', `${file} holds no certificate`);
  return der;
}

/** The rotation recorded in the CA directory, or null. A state whose files do not match it is an error, never ignored. */
export function loadRootRotation(dir: string): RootRotation | null {
  const statePath = path(dir, 'state');
  if (!existsSync(statePath)) return null;
  let state: RootRotationState;
  try {
    state = stateSchema.parse(JSON.parse(readFileSync(statePath, 'utf8')));
  } catch (cause) {
    throw new GatehouseError(
      'GH_CONFIG_INVALID',
      `${statePath} is not a root rotation state Gatehouse wrote: ${(cause as Error).message}`,
      { cause },
    );
  }
  const rotation = {
    state,
    previousRootDer: readCert(path(dir, 'previousRoot')),
    nextRootDer: readCert(path(dir, 'nextRoot')),
    crossNextDer: readCert(path(dir, 'crossNext')),
    crossPreviousDer: readCert(path(dir, 'crossPrevious')),
  };
  if (
    sha256Hex(rotation.previousRootDer) !== state.previousRoot ||
    sha256Hex(rotation.nextRootDer) !== state.nextRoot
  ) {
    throw new GatehouseError(
      'GH_CONFIG_INVALID',
      `the roots in ${join(dir, ROTATION_DIR)} are not the ones ${statePath} names`,
    );
  }
  return rotation;
}

/** Cheap signature of the files a running CA reloads for a root rotation: its state and the root. */
export function rootFilesStamp(dir: string, rootCert: string): string {
  return [fileStamp(path(dir, 'state')), fileStamp(rootCert)].join('|');
}

/**
 * The roots agents should hold now. Rotating: both, the next one vouched for by the previous.
 * Finished: both until bundleUntil (older chains still run to the previous root; machines enrolled
 * since get it vouched for by the next), then the previous one retired. Aborted: the next retired.
 */
export function rotationBundle(rotation: RootRotation, now: Date): RotationBundle {
  const bundle = phaseBundle(rotation, now);
  const retired = [...new Set([...bundle.retired, ...rotation.state.retiredRoots])];
  return { ...bundle, retired };
}

function phaseBundle(rotation: RootRotation, now: Date): RotationBundle {
  const { state } = rotation;
  const inGrace = state.bundleUntil !== null && now < new Date(state.bundleUntil);
  switch (state.phase) {
    case 'rotating':
      return { roots: [rotation.previousRootDer, rotation.nextRootDer], cross: [rotation.crossNextDer], retired: [] };
    case 'finished':
      return inGrace
        ? { roots: [rotation.nextRootDer, rotation.previousRootDer], cross: [rotation.crossPreviousDer], retired: [] }
        : { roots: [rotation.nextRootDer], cross: [], retired: [state.previousRoot] };
    case 'aborted':
      return { roots: [rotation.previousRootDer], cross: [], retired: inGrace ? [state.nextRoot] : [] };
  }
}

export interface StartInput {
  dir: string;
  config: Readonly<CaConfig>;
  rootDer: Buffer;
  rootKey: KeyObject;
  /** Where the next root's key goes: the CA directory (when the root key lives there) or this file, kept offline. */
  nextRootKeyOut: string | null;
  /** An existing root to rotate to (`--import-root`, checked by import-pki.ts): its key is used here once and stays where it is. */
  imported?: { der: Buffer; key: KeyObject; keyPath: string } | null;
  current: { der: Buffer; key: KeyObject; certPath: string; keyPath: string };
  passphrase: string | undefined;
  lastLeafNotAfter: Date;
  now: Date;
}

export interface StartResult {
  state: RootRotationState;
  nextRootDer: Buffer;
  nextRootKeyPath: string;
  issuer: { id: string; notAfter: Date };
  retiredIssuerId: string;
}

/**
 * Starts a rotation: a next root and key, the two cross-certificates, and a new issuing CA with
 * a certificate from each root. The current issuing CA is retired as by `ca rotate intermediate`
 * (its CRL goes on), and the new one, certified by the previous root, signs from now on.
 * Everything is written before root.json, which is what makes it a rotation: a crash before
 * leaves files that the next start replaces.
 */
/** The rotation on record, when a new one may start now; else why not (GH_CA_ROTATION). */
export function assertRotationCanStart(dir: string, now: Date): RootRotation | null {
  const existing = loadRootRotation(dir);
  if (existing?.state.phase === 'rotating')
    throw rotationError(
      `a root rotation is in progress since ${existing.state.startedAt}: see \`gatehouse ca rotate status --dir ${dir}\``,
    );
  // Agents hold the previous root of a finished rotation until bundleUntil; a new rotation now
  // would leave them three roots and no state that ever retires the oldest.
  if (
    existing?.state.phase === 'finished' &&
    existing.state.bundleUntil &&
    now < new Date(existing.state.bundleUntil)
  ) {
    throw rotationError(
      `the root rotation finished at ${existing.state.finishedAt} is still moving agents off its previous root (until ${existing.state.bundleUntil}); start the next one after that`,
    );
  }
  return existing;
}

export async function startRootRotation(input: StartInput): Promise<StartResult> {
  const { dir, config, rootDer, rootKey, now, passphrase } = input;
  const existing = assertRotationCanStart(dir, now);
  // What earlier rotations retired stays retired: an agent that took an aborted next root drops it even after a new start.
  const carriedRetired = existing
    ? [
        ...new Set([
          ...existing.state.retiredRoots,
          existing.state.phase === 'aborted' ? existing.state.nextRoot : existing.state.previousRoot,
        ]),
      ]
    : [];
  const previous = parseCertificate(rootDer);
  const backdated = new Date(now.getTime() - config.limits.backdate);
  const nextKey = input.imported?.key ?? generatePrivateKey(keyTypeOf(rootKey));
  // A distinct name: relying parties hold both roots for a while and match issuers by name first.
  const nextRootDer =
    input.imported?.der ??
    (await buildRootCertificate(nextKey, {
      commonName: `${config.org} Root CA ${keyIdentifier(spkiDer(nextKey)).toString('hex').slice(0, 8)}`,
      organization: config.org,
      notBefore: backdated,
      notAfter: new Date(now.getTime() + 10 * YEAR_MS),
    }));
  const next = parseCertificate(nextRootDer);
  if (next.subjectNameDer.equals(previous.subjectNameDer))
    throw rotationError(
      `the next root has the same name as the current one (${formatDn(next.subject)}): relying parties holding both would match the wrong one; give it another name`,
    );
  if (!input.imported && input.nextRootKeyOut && existsSync(input.nextRootKeyOut))
    throw rotationError(`${input.nextRootKeyOut} already exists; refusing to overwrite a key`);
  const rotationDir = join(dir, ROTATION_DIR);
  if (existing) {
    // A finished or aborted rotation is history once a new one starts: keep it beside, dated.
    renameSync(rotationDir, `${rotationDir}-${existing.state.startedAt.replace(/[:.]/g, '-')}`);
  } else {
    rmSync(rotationDir, { recursive: true, force: true });
  }
  mkdirSync(rotationDir, { recursive: true, mode: 0o700 });

  const crossUntil = new Date(Math.min(previous.notAfter.getTime(), next.notAfter.getTime()));
  const crossNextDer = await buildCrossCertificate(
    nextRootDer,
    { certDer: rootDer, key: rootKey },
    { notBefore: backdated, notAfter: crossUntil },
  );
  const crossPreviousDer = await buildCrossCertificate(
    rootDer,
    { certDer: nextRootDer, key: nextKey },
    { notBefore: backdated, notAfter: crossUntil },
  );

  const nextRootKeyPath = input.imported?.keyPath ?? input.nextRootKeyOut ?? path(dir, 'nextRootKey');
  if (!input.imported) writeNewFile(nextRootKeyPath, privateKeyToPem(nextKey, passphrase), 0o600);
  writeNewFile(path(dir, 'previousRoot'), toPem('CERTIFICATE', rootDer), 0o644);
  writeNewFile(path(dir, 'nextRoot'), toPem('CERTIFICATE', nextRootDer), 0o644);
  writeNewFile(path(dir, 'crossNext'), toPem('CERTIFICATE', crossNextDer), 0o644);
  writeNewFile(path(dir, 'crossPrevious'), toPem('CERTIFICATE', crossPreviousDer), 0o644);

  // The new issuing CA, certified by the previous root (in force now), and by the next one (at the finish).
  const rotated = await rotateIntermediate({
    dir,
    config,
    rootDer,
    rootKey,
    current: input.current,
    passphrase,
    lastLeafNotAfter: input.lastLeafNotAfter,
    now,
  });
  const byPrevious = parseCertificate(rotated.next.der);
  const intermediateNextDer = await buildIntermediateCertificate(
    rotated.next.key,
    { certDer: nextRootDer, key: nextKey },
    {
      commonName: byPrevious.subject.find((a) => a.type === 'CN')!.value,
      organization: config.org,
      notBefore: backdated,
      notAfter: new Date(Math.min(now.getTime() + 5 * YEAR_MS, next.notAfter.getTime())),
    },
  );
  writeNewFile(path(dir, 'intermediateNext'), toPem('CERTIFICATE', intermediateNextDer), 0o644);

  const state: RootRotationState = {
    format: 1,
    phase: 'rotating',
    startedAt: now.toISOString(),
    previousRoot: sha256Hex(rootDer),
    nextRoot: sha256Hex(nextRootDer),
    issuerId: rotated.next.id,
    nextRootKey: input.nextRootKeyOut || input.imported ? 'offline' : 'ca-dir',
    finishedAt: null,
    abortedAt: null,
    bundleUntil: null,
    forced: false,
    retiredRoots: carriedRetired.filter((f) => f !== sha256Hex(rootDer) && f !== sha256Hex(nextRootDer)),
  };
  writeState(dir, state);
  return {
    state,
    nextRootDer,
    nextRootKeyPath,
    issuer: { id: rotated.next.id, notAfter: rotated.next.notAfter },
    retiredIssuerId: rotated.previous.id,
  };
}

export interface FinishInput {
  dir: string;
  config: Readonly<CaConfig>;
  rotation: RootRotation;
  /** The next root's key when it is kept offline (for the first root CRL); read from the CA directory otherwise. */
  nextRootKey: KeyObject | null;
  passphrase: string | undefined;
  /** When the last certificate handed out before now expires: the previous root stays in bundles until then. */
  lastLeafNotAfter: Date;
  forced: boolean;
  now: Date;
}

/**
 * Puts the next root in force: root.pem, its key (when kept here), the issuing CA's certificate
 * from the next root. root.json is written last; a crash before it leaves a state that
 * `ca rotate finish` completes when run again (each step checks what is already done).
 */
export function finishRootRotation(input: FinishInput): { state: RootRotationState; nextRootKey: KeyObject } {
  const { dir, config, rotation, now, passphrase } = input;
  if (rotation.state.phase !== 'rotating')
    throw rotationError(
      `there is no root rotation to finish (the last one was ${rotation.state.phase} at ${rotation.state.finishedAt ?? rotation.state.abortedAt})`,
    );
  const rootPath = join(dir, 'root.pem');
  const keyInDir = config.keys.root !== null;
  const rootKeyPath = keyInDir ? join(dir, config.keys.root!) : null;
  const nextKeyPath = path(dir, 'nextRootKey');
  const nextSpki = parseCertificate(rotation.nextRootDer).spkiDer;
  const previousSpki = parseCertificate(rotation.previousRootDer).spkiDer;
  // Keys are told apart by what they are, never by file names alone: a finish cut short may have
  // moved some of them already, and running it again must complete it without losing one.
  const readKey = (file: string) => {
    assertPrivateFile(file);
    return loadPrivateKey(readFileSync(file, 'utf8'), passphrase, file);
  };
  const keyIn = (file: string | null, spki: Buffer): KeyObject | null => {
    if (!file || !existsSync(file)) return null;
    const key = readKey(file);
    return spkiDer(key).equals(spki) ? key : null;
  };
  const nextRootKey =
    (rotation.state.nextRootKey === 'ca-dir' ? (keyIn(nextKeyPath, nextSpki) ?? keyIn(rootKeyPath, nextSpki)) : null) ??
    input.nextRootKey;
  if (!nextRootKey) {
    throw new GatehouseError(
      'GH_CA_ROOT_KEY_OFFLINE',
      "the next root key is kept offline: pass --next-root-key FILE (the file `ca rotate root` wrote with --next-root-key-out, or read with --import-root-key) to sign the next root's first CRL",
    );
  }
  if (!spkiDer(nextRootKey).equals(nextSpki)) throw rotationError('the key given is not the key of the next root');

  // 1. the issuing CA's certificate from the next root, 2. the root key, 3. the root.
  const intermediatePath = join(dir, 'intermediate.pem');
  const intermediateNextPath = path(dir, 'intermediateNext');
  if (existsSync(intermediateNextPath))
    writeFileAtomic(intermediatePath, readFileSync(intermediateNextPath, 'utf8'), 0o644);
  if (keyInDir && rootKeyPath) {
    // The previous key is kept aside; a next key kept offline (imported, or --next-root-key-out)
    // leaves the root key offline from now on.
    if (keyIn(rootKeyPath, previousSpki)) moveWithoutOverwriting(rootKeyPath, path(dir, 'previousRootKey'));
    if (existsSync(nextKeyPath) && !existsSync(rootKeyPath)) moveWithoutOverwriting(nextKeyPath, rootKeyPath);
  }
  writeFileAtomic(rootPath, toPem('CERTIFICATE', rotation.nextRootDer), 0o644);
  const state: RootRotationState = {
    ...rotation.state,
    phase: 'finished',
    finishedAt: now.toISOString(),
    forced: input.forced,
    // Chains handed out until now run to the previous root: keep it in bundles until they expire.
    bundleUntil: new Date(Math.max(input.lastLeafNotAfter.getTime(), now.getTime()) + 60_000).toISOString(),
  };
  writeState(dir, state);
  return { state, nextRootKey };
}

/**
 * Back to the previous root before the finish: the next root and its key are deleted, and agents
 * are told to drop it. The new issuing CA stays, certified by the previous root (a rotation of
 * the intermediate), so no certificate issued during the rotation stops verifying.
 */
export function abortRootRotation(
  dir: string,
  rotation: RootRotation,
  lastLeafNotAfter: Date,
  now: Date,
): RootRotationState {
  if (rotation.state.phase !== 'rotating')
    throw rotationError(`there is no root rotation to abort (the last one was ${rotation.state.phase})`);
  if (rotation.state.nextRootKey === 'ca-dir') rmSync(path(dir, 'nextRootKey'), { force: true });
  rmSync(path(dir, 'intermediateNext'), { force: true });
  const state: RootRotationState = {
    ...rotation.state,
    phase: 'aborted',
    abortedAt: now.toISOString(),
    bundleUntil: new Date(Math.max(lastLeafNotAfter.getTime(), now.getTime()) + 60_000).toISOString(),
  };
  writeState(dir, state);
  return state;
}

/** rename(2) replaces its target; a key file must never be lost that way. link(2) refuses an existing one. */
function moveWithoutOverwriting(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'EEXIST')
      throw rotationError(
        `${to} already exists; refusing to overwrite a key (move it away, then run the command again)`,
      );
    throw cause;
  }
  unlinkSync(from);
}

function writeState(dir: string, state: RootRotationState): void {
  writeFileAtomic(path(dir, 'state'), `${JSON.stringify(state, null, 2)}\n`, 0o600);
}

function rotationError(message: string): GatehouseError {
  return new GatehouseError('GH_CA_ROTATION', message);
}
