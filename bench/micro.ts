/**
 * In-process per-certificate costs: the hand-written DER fast paths against the same work
 * through @peculiar/x509, with one Node P-256 signature (and verification) as the floor.
 * Each case is calibrated to about BENCH_MICRO_RUN_S per run; the median of the runs is kept.
 */
import { sign, verify, createPublicKey } from 'node:crypto';
import { generatePrivateKey, spkiDer } from '../src/pki/keys.js';
import { buildCsrPem } from '../src/pki/csr-build.js';
import { parseCsr } from '../src/pki/csr.js';
import { decodePem } from '../src/pki/pem.js';
import { parseCertificate } from '../src/pki/certificate.js';
import { buildRootCertificate } from '../src/pki/ca-certificates.js';
import {
  buildLeafCertificate,
  prepareSigningAuthority,
  randomSerial,
  type LeafSpec,
  type SigningAuthority,
} from '../src/pki/leaf-certificate.js';
import { buildLeafWithLibrary, parseCsrWithLibrary, prepareLibraryIssuer } from './x509-reference.js';
import { median } from './stats.js';

export interface MicroCase {
  id: string;
  label: string;
  iterations: number;
  usPerOp: number[];
  medianUs: number;
}

export interface MicroResults {
  cases: Record<string, MicroCase>;
  /** Both builders produce the same fields and a valid signature. */
  equivalent: { ok: boolean; detail: string };
}

type Op = () => unknown;
type AsyncOp = () => Promise<unknown>;

async function timeOps(fn: Op | AsyncOp, isAsync: boolean, n: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  if (isAsync) for (let i = 0; i < n; i++) await fn();
  else for (let i = 0; i < n; i++) fn();
  return Number(process.hrtime.bigint() - t0) / 1e3 / n;
}

/** Warm up (JIT, lazy init), pick N so a run takes ~targetS, then time `runs` runs. */
async function measure(
  id: string,
  label: string,
  fn: Op | AsyncOp,
  isAsync: boolean,
  runs: number,
  targetS: number,
): Promise<MicroCase> {
  let warmOps = 10;
  let usPerOp = await timeOps(fn, isAsync, warmOps);
  while (warmOps * usPerOp < 200_000 && warmOps < 5000) {
    warmOps *= 2;
    usPerOp = await timeOps(fn, isAsync, warmOps);
  }
  const iterations = Math.max(20, Math.min(200_000, Math.round((targetS * 1e6) / usPerOp)));
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) samples.push(await timeOps(fn, isAsync, iterations));
  return { id, label, iterations, usPerOp: samples, medianUs: median(samples) };
}

function leafSpec(spki: Buffer): LeafSpec {
  const now = Date.now();
  return {
    serial: randomSerial(),
    commonName: 'bench-client',
    organizationalUnit: 'web',
    organization: 'Bench Org',
    spkiDer: spki,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 86_400_000),
    profile: 'client',
    dns: [],
    ip: [],
    uri: ['spiffe://bench.internal/web/bench-client'],
    email: [],
    crlUrl: 'https://127.0.0.1:8443/crl',
  };
}

/** Same subject, SANs, EKU, key ids, CRL URL and a signature that verifies: a like-for-like comparison. */
function compareBuilders(ca: SigningAuthority, fast: Buffer, library: Buffer): { ok: boolean; detail: string } {
  const a = parseCertificate(fast);
  const b = parseCertificate(library);
  const issuerKey = createPublicKey(ca.privateKey);
  const view = (c: typeof a) =>
    JSON.stringify({
      subject: c.subject.map((x) => [x.type, x.value]),
      issuer: c.issuer.map((x) => [x.type, x.value]),
      sans: c.sans,
      isCa: c.isCa,
      eku: c.extKeyUsage,
      ski: c.subjectKeyId?.toString('hex'),
      aki: c.authorityKeyId?.toString('hex'),
      crl: c.crlUrls,
      spki: c.spkiDer.toString('hex'),
    });
  const sigOk = (c: typeof a) => verify('sha256', c.tbsDer, issuerKey, c.signature);
  if (!sigOk(a) || !sigOk(b)) return { ok: false, detail: 'a signature does not verify' };
  if (view(a) !== view(b)) return { ok: false, detail: `fields differ:\n  fast    ${view(a)}\n  library ${view(b)}` };
  return { ok: true, detail: `same fields, both verify (DER ${fast.length} vs ${library.length} bytes)` };
}

export async function runMicro(runs: number, targetS: number): Promise<MicroResults> {
  const caKey = generatePrivateKey('p256');
  const now = Date.now();
  const caDer = await buildRootCertificate(caKey, {
    commonName: 'Bench Issuing CA',
    organization: 'Bench Org',
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + 365 * 86_400_000),
  });
  const ca = prepareSigningAuthority(caDer, caKey);
  const library = await prepareLibraryIssuer(ca);
  const leafKey = generatePrivateKey('p256');
  const leafSpki = spkiDer(leafKey);
  const csrDer = decodePem(await buildCsrPem(leafKey, { commonName: 'bench-client' }), 'CERTIFICATE REQUEST')[0]!;
  const tbs = parseCertificate(buildLeafCertificate(ca, leafSpec(leafSpki))).tbsDer;
  const tbsSignature = sign('sha256', tbs, caKey);
  const caPublic = createPublicKey(caKey);

  const equivalent = compareBuilders(
    ca,
    buildLeafCertificate(ca, leafSpec(leafSpki)),
    await buildLeafWithLibrary(library, leafSpec(leafSpki)),
  );
  const cases = [
    await measure(
      'build.fast',
      'build leaf: buildLeafCertificate (hand-written DER)',
      () => buildLeafCertificate(ca, leafSpec(leafSpki)),
      false,
      runs,
      targetS,
    ),
    await measure(
      'build.library',
      'build leaf: @peculiar/x509 X509CertificateGenerator.create',
      () => buildLeafWithLibrary(library, leafSpec(leafSpki)),
      true,
      runs,
      targetS,
    ),
    await measure(
      'csr.fast',
      'CSR parse+verify: parseCsr (hand-written DER)',
      () => parseCsr(csrDer),
      false,
      runs,
      targetS,
    ),
    await measure(
      'csr.library',
      'CSR parse+verify: new Pkcs10CertificateRequest().verify()',
      () => parseCsrWithLibrary(csrDer),
      true,
      runs,
      targetS,
    ),
    await measure(
      'floor.sign',
      'floor: crypto.sign(sha256, tbs, P-256)',
      () => sign('sha256', tbs, caKey),
      false,
      runs,
      targetS,
    ),
    await measure(
      'floor.verify',
      'floor: crypto.verify(sha256, tbs, P-256)',
      () => verify('sha256', tbs, caPublic, tbsSignature),
      false,
      runs,
      targetS,
    ),
  ];
  return { cases: Object.fromEntries(cases.map((c) => [c.id, c])), equivalent };
}
