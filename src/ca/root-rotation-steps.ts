/**
 * The steps of a root rotation, each a change to the rotation files of the CA directory
 * (root-rotation.ts lists them and says why the chain moves in two steps): start (a next root,
 * the cross-certificates and a new issuing CA), finish (the next root in force) and abort (back
 * to the previous root). Each writes root.json last, so a step cut short is either not done or
 * completed by running it again. root-rotation-ops.ts runs them with the lock and the audit.
 */
import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { GatehouseError } from '../errors/errors.js';
import { writeFileAtomic, writeNewFile } from '../files/atomic-write.js';
import { assertPrivateFile } from '../files/identity-dir.js';
import type { CaConfig } from '../config/ca-config.js';
import { buildCrossCertificate, buildIntermediateCertificate, buildRootCertificate } from '../pki/ca-certificates.js';
import { formatDn, parseCertificate, sha256Hex, type CertificateInfo } from '../pki/certificate.js';
import { generatePrivateKey, loadPrivateKey, privateKeyToPem, spkiDer } from '../pki/keys.js';
import { keyIdentifier } from '../pki/leaf-certificate.js';
import { toPem } from '../pki/pem.js';
import { keyTypeOf, rotateIntermediate } from './issuers.js';
import {
  ROTATION_DIR,
  loadRootRotation,
  rotationError,
  rotationFile,
  writeRotationState,
  type RootRotation,
  type RootRotationState,
} from './root-rotation.js';

const YEAR_MS = 365 * 86_400_000;

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

/**
 * Starts a rotation: a next root and key, the two cross-certificates, and a new issuing CA with
 * a certificate from each root. The current issuing CA is retired as by `ca rotate intermediate`
 * (its CRL goes on), and the new one, certified by the previous root, signs from now on.
 * Everything is written before root.json, which is what makes it a rotation: a crash before
 * leaves files that the next start replaces.
 */
export async function startRootRotation(input: StartInput): Promise<StartResult> {
  const { dir, config, rootDer, rootKey, now, passphrase } = input;
  const existing = assertRotationCanStart(dir, now);
  const carriedRetired = existing ? carriedRetiredRoots(existing) : [];
  const previous = parseCertificate(rootDer);
  const backdated = new Date(now.getTime() - config.limits.backdate);
  const { nextKey, nextRootDer, next } = await makeNextRoot(input, previous, backdated);
  if (!input.imported && input.nextRootKeyOut && existsSync(input.nextRootKeyOut))
    throw rotationError(`${input.nextRootKeyOut} already exists; refusing to overwrite a key`);
  emptyRotationDir(dir, existing);

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

  const nextRootKeyPath = input.imported?.keyPath ?? input.nextRootKeyOut ?? rotationFile(dir, 'nextRootKey');
  if (!input.imported) writeNewFile(nextRootKeyPath, privateKeyToPem(nextKey, passphrase), 0o600);
  writeNewFile(rotationFile(dir, 'previousRoot'), toPem('CERTIFICATE', rootDer), 0o644);
  writeNewFile(rotationFile(dir, 'nextRoot'), toPem('CERTIFICATE', nextRootDer), 0o644);
  writeNewFile(rotationFile(dir, 'crossNext'), toPem('CERTIFICATE', crossNextDer), 0o644);
  writeNewFile(rotationFile(dir, 'crossPrevious'), toPem('CERTIFICATE', crossPreviousDer), 0o644);

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
  writeNewFile(rotationFile(dir, 'intermediateNext'), toPem('CERTIFICATE', intermediateNextDer), 0o644);

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
  writeRotationState(dir, state);
  return {
    state,
    nextRootDer,
    nextRootKeyPath,
    issuer: { id: rotated.next.id, notAfter: rotated.next.notAfter },
    retiredIssuerId: rotated.previous.id,
  };
}

/** What earlier rotations retired stays retired: an agent that took an aborted next root drops it even after a new start. */
function carriedRetiredRoots(existing: RootRotation): string[] {
  return [
    ...new Set([
      ...existing.state.retiredRoots,
      existing.state.phase === 'aborted' ? existing.state.nextRoot : existing.state.previousRoot,
    ]),
  ];
}

/** The root to rotate to, imported or made here, with a name other than the current root's. */
async function makeNextRoot(
  input: StartInput,
  previous: CertificateInfo,
  backdated: Date,
): Promise<{ nextKey: KeyObject; nextRootDer: Buffer; next: CertificateInfo }> {
  const { config, now } = input;
  const nextKey = input.imported?.key ?? generatePrivateKey(keyTypeOf(input.rootKey));
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
  return { nextKey, nextRootDer, next };
}

/** A finished or aborted rotation is history once a new one starts: kept beside, dated. Anything else there is a start cut short. */
function emptyRotationDir(dir: string, existing: RootRotation | null): void {
  const rotationDir = join(dir, ROTATION_DIR);
  if (existing) {
    renameSync(rotationDir, `${rotationDir}-${existing.state.startedAt.replace(/[:.]/g, '-')}`);
  } else {
    rmSync(rotationDir, { recursive: true, force: true });
  }
  mkdirSync(rotationDir, { recursive: true, mode: 0o700 });
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
  const nextKeyPath = rotationFile(dir, 'nextRootKey');
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
  const intermediateNextPath = rotationFile(dir, 'intermediateNext');
  if (existsSync(intermediateNextPath))
    writeFileAtomic(intermediatePath, readFileSync(intermediateNextPath, 'utf8'), 0o644);
  if (keyInDir && rootKeyPath) {
    // The previous key is kept aside; a next key kept offline (imported, or --next-root-key-out)
    // leaves the root key offline from now on.
    if (keyIn(rootKeyPath, previousSpki)) moveWithoutOverwriting(rootKeyPath, rotationFile(dir, 'previousRootKey'));
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
  writeRotationState(dir, state);
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
  if (rotation.state.nextRootKey === 'ca-dir') rmSync(rotationFile(dir, 'nextRootKey'), { force: true });
  rmSync(rotationFile(dir, 'intermediateNext'), { force: true });
  const state: RootRotationState = {
    ...rotation.state,
    phase: 'aborted',
    abortedAt: now.toISOString(),
    bundleUntil: new Date(Math.max(lastLeafNotAfter.getTime(), now.getTime()) + 60_000).toISOString(),
  };
  writeRotationState(dir, state);
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
