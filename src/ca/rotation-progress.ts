/**
 * How far a root rotation has come: of the active identities (each role/name's newest active
 * certificate; the CA's own server certificate left out, it moves by itself), how many hold a
 * certificate from the new issuing CA. Their trust bundle came in the same answer and was written
 * with the certificate (src/agent/trust-bundle.ts), so the two counts move together.
 */
import { parseCertificate } from '../pki/certificate.js';
import { decodePem } from '../pki/pem.js';
import type { Store } from '../store/store.js';
import { activeIdentities } from './active-identities.js';

export interface PendingIdentity {
  spiffeId: string;
  serial: string;
  notAfter: Date;
}

export interface RotationProgress {
  total: number;
  moved: number;
  /** Not moved yet, soonest-expiring first. */
  pending: PendingIdentity[];
}

export async function rotationProgress(store: Store, issuerId: string, now: Date): Promise<RotationProgress> {
  const identities = await activeIdentities(store, now);
  const pending: PendingIdentity[] = [];
  for (const cert of identities) {
    const info = parseCertificate(decodePem(cert.certPem, 'CERTIFICATE')[0]!);
    if (info.authorityKeyId?.toString('hex').slice(0, 16) !== issuerId)
      pending.push({ spiffeId: cert.spiffeId, serial: cert.serial, notAfter: cert.notAfter });
  }
  pending.sort((a, b) => a.notAfter.getTime() - b.notAfter.getTime());
  return { total: identities.length, moved: identities.length - pending.length, pending };
}
