/** Shared fixtures: paths, the temp dir, the pre-generated CSR pool and a one-shot HTTPS POST. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCsrPem } from '../src/pki/csr-build.js';
import { generatePrivateKey } from '../src/pki/keys.js';
import { removeOnExit } from './procs.js';

/** dist/bench/*.js -> the project root, so results land in bench/results/ of the source tree. */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const RESULTS_DIR = join(PROJECT_ROOT, 'bench', 'results');

/** The client identity's name: renewal CSRs must carry it as CN (or no CN). */
export const IDENTITY_NAME = 'bench-client';

export function makeTempRoot(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
  removeOnExit(dir);
  return dir;
}

/** N CSRs, each with its own P-256 key, made before timing so CSR generation is not measured. */
export async function csrPool(n: number, commonName = IDENTITY_NAME): Promise<string[]> {
  const pool: string[] = [];
  for (let i = 0; i < n; i++) pool.push(await buildCsrPem(generatePrivateKey('p256'), { commonName }));
  return pool;
}

export function writeBodies(path: string, bodies: string[]): string {
  writeFileSync(path, JSON.stringify(bodies));
  return path;
}

export interface TlsClient {
  keyPem?: string;
  certPem?: string;
  caPem: string;
}

/** One POST on its own connection: functional checks before timing, not load. */
export function postJson(url: string, body: unknown, tls: TlsClient): Promise<{ status: number; text: string }> {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent: false,
        timeout: 15_000,
        ca: tls.caPem,
        key: tls.keyPem,
        cert: tls.certPem,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within 15 s`)));
    req.on('error', reject);
    req.end(text);
  });
}
