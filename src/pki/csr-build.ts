/** CSR creation for the agent and tests, through @peculiar/x509. */
import type { KeyObject } from 'node:crypto';
import { x509, toCryptoKeys, webAlgorithmFor } from './x509-library.js';
import { toPem } from './pem.js';

export interface CsrRequest {
  /** Omitted: an empty subject, and the CA decides the name (from the token). */
  commonName?: string;
  dns?: string[];
  ip?: string[];
}

export async function buildCsrPem(key: KeyObject, request: CsrRequest): Promise<string> {
  const keys = await toCryptoKeys(key);
  const names: x509.JsonGeneralName[] = [
    ...(request.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(request.ip ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: request.commonName ? [{ '2.5.4.3': [request.commonName] }] : [],
    keys,
    signingAlgorithm: webAlgorithmFor(key).signing,
    extensions: names.length ? [new x509.SubjectAlternativeNameExtension(names)] : [],
  });
  return toPem('CERTIFICATE REQUEST', Buffer.from(csr.rawData));
}
