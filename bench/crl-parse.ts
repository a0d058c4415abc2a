/**
 * Parse time of a large CRL: the hand reader (src/pki/crl-parse.ts) against @peculiar/x509's
 * X509Crl, on one CRL built by src/pki/crl.ts. Also the cost of one revocation lookup.
 *
 *   npm run build --silent && node --expose-gc dist/bench/crl-parse.js [ENTRIES=100000] [--library]
 *
 * --library also times X509Crl (about 14 s at 100 000 entries on the development machine).
 * `openssl crl -noout` on the same file is timed as a peer (process start included).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as pki from '../src/pki/index.js';
import { x509 } from '../src/pki/x509-library.js';

const entriesArg = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 100_000);
const withLibrary = process.argv.includes('--library');

const key = pki.generatePrivateKey('p256');
const validity = { notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2060-01-01T00:00:00Z') };
const caDer = await pki.buildRootCertificate(key, {
  commonName: 'Bench CA',
  organization: 'Gatehouse Bench',
  ...validity,
});
const authority = pki.prepareSigningAuthority(caDer, key);
const reasons: pki.CrlReason[] = ['unspecified', 'keyCompromise', 'superseded', 'cessationOfOperation'];
const entries = Array.from({ length: entriesArg }, (_, i) => ({
  serial: pki.randomSerial().toString('hex'),
  revokedAt: new Date(Date.UTC(2024, 0, 1) + i * 1000),
  reason: reasons[i % reasons.length]!,
}));
let t = performance.now();
const der = pki.buildCrl(authority, {
  crlNumber: 1n,
  thisUpdate: new Date(),
  nextUpdate: new Date(Date.now() + 86_400_000),
  entries,
});
const pem = pki.toPem('X509 CRL', der);
console.log(
  `built ${entriesArg} entries: ${(der.length / 1e6).toFixed(1)} MB DER in ${(performance.now() - t).toFixed(0)} ms`,
);

const runs: number[] = [];
let crl: pki.ParsedCrl | undefined;
for (let i = 0; i < 5; i++) {
  t = performance.now();
  crl = pki.parseCrl(der);
  runs.push(performance.now() - t);
}
const sorted = [...runs].sort((a, b) => a - b);
console.log(
  `parseCrl DER: median ${sorted[2]!.toFixed(0)} ms, min ${sorted[0]!.toFixed(0)} ms, max ${sorted[4]!.toFixed(0)} ms (5 runs; first ${runs[0]!.toFixed(0)} ms)`,
);
t = performance.now();
pki.parseCrl(pem);
console.log(`parseCrl PEM: ${(performance.now() - t).toFixed(0)} ms`);
t = performance.now();
pki.verifyCrlSignature(crl!, caDer);
console.log(`verifyCrlSignature: ${(performance.now() - t).toFixed(1)} ms`);
if (crl!.revoked.size !== entriesArg) throw new Error(`expected ${entriesArg} entries, read ${crl!.revoked.size}`);

const probes = entries.map((e) => e.serial.replace(/^(00)+(?=.)/, ''));
t = performance.now();
let hits = 0;
for (let round = 0; round < 10; round++) for (const serial of probes) if (crl!.revoked.has(serial)) hits++;
console.log(
  `lookup: ${(((performance.now() - t) * 1e6) / (probes.length * 10)).toFixed(0)} ns per serial (${hits} hits)`,
);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc) {
  crl = undefined; // eslint-disable-line no-useless-assignment -- drops the reference so gc() frees it
  gc();
  const before = process.memoryUsage().heapUsed;
  crl = pki.parseCrl(der);
  gc();
  console.log(
    `heap held by one parsed CRL: ${((process.memoryUsage().heapUsed - before) / 1e6).toFixed(1)} MB (${crl.revoked.size} entries)`,
  );
}

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-crl-'));
try {
  const file = join(dir, 'big.crl');
  writeFileSync(file, der);
  t = performance.now();
  const r = spawnSync('openssl', ['crl', '-inform', 'DER', '-in', file, '-noout']);
  console.log(
    `openssl crl -noout (peer, process included): ${(performance.now() - t).toFixed(0)} ms, exit ${r.status}`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}

if (withLibrary) {
  t = performance.now();
  const libraryCrl = new x509.X509Crl(new Uint8Array(der), { berOptions: { maxNodes: 10_000_000 } });
  const count = libraryCrl.entries.length;
  console.log(`@peculiar/x509 X509Crl: ${count} entries in ${(performance.now() - t).toFixed(0)} ms`);
}
