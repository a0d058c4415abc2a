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
 * This module owns those files and what a running CA makes of them (loadRootRotation, the
 * bundle agents get); the steps that change them, start, finish and abort, are
 * root-rotation-steps.ts.
 *
 * Why the chain moves in two steps: Gatehouse roots say pathLen 1, so a cross-certified root
 * cannot sit between a root and an issuing CA (openssl, Go and GnuTLS refuse the path), and
 * openssl and GnuTLS do not backtrack between two certificates of one issuing CA. So the new
 * issuing CA gets two certificates: until the finish it is handed out certified by the previous
 * root, which every peer trusts; from the finish on, certified by the next root, which every
 * moved machine received in its trust bundle. The previous root stays in the bundles agents get
 * until the last certificate issued before the finish has expired (bundleUntil), then is retired.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { GatehouseError } from '../errors/errors.js';
import { writeFileAtomic } from '../files/atomic-write.js';
import { sha256Hex } from '../pki/certificate.js';
import { decodePem } from '../pki/pem.js';
import { fileStamp } from './issuers.js';

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

/** A file of the rotation folder (FILES names them). */
export function rotationFile(dir: string, file: keyof typeof FILES): string {
  return join(dir, ROTATION_DIR, FILES[file]);
}

function readCert(file: string): Buffer {
  const [der] = decodePem(readFileSync(file, 'utf8'), 'CERTIFICATE');
  if (!der) throw new GatehouseError('GH_CONFIG_INVALID', `${file} holds no certificate`);
  return der;
}

/** The rotation recorded in the CA directory, or null. A state whose files do not match it is an error, never ignored. */
export function loadRootRotation(dir: string): RootRotation | null {
  const statePath = rotationFile(dir, 'state');
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
    previousRootDer: readCert(rotationFile(dir, 'previousRoot')),
    nextRootDer: readCert(rotationFile(dir, 'nextRoot')),
    crossNextDer: readCert(rotationFile(dir, 'crossNext')),
    crossPreviousDer: readCert(rotationFile(dir, 'crossPrevious')),
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
  return [fileStamp(rotationFile(dir, 'state')), fileStamp(rootCert)].join('|');
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

/** root.json: written last by every step, it is what makes the step done. */
export function writeRotationState(dir: string, state: RootRotationState): void {
  writeFileAtomic(rotationFile(dir, 'state'), `${JSON.stringify(state, null, 2)}\n`, 0o600);
}

export function rotationError(message: string): GatehouseError {
  return new GatehouseError('GH_CA_ROTATION', message);
}
