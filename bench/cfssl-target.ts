/**
 * cfssl as the peer target: `cfssl serve` with a P-256 CA made by our own pki module, a
 * "client" signing profile, and keep-alive mutual TLS (-tls-cert/-tls-key/-mutual-tls-ca).
 * No -db-config: cfssl answers without recording the certificate anywhere (Gatehouse does).
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildRootCertificate } from '../src/pki/ca-certificates.js';
import { parseCertificatePem } from '../src/pki/certificate.js';
import { generatePrivateKey, privateKeyToPem, spkiDer } from '../src/pki/keys.js';
import {
  buildLeafCertificate,
  prepareSigningAuthority,
  randomSerial,
  type LeafProfile,
  type SigningAuthority,
} from '../src/pki/leaf-certificate.js';
import { OID } from '../src/pki/oids.js';
import { toPem } from '../src/pki/pem.js';
import type { BenchConfig } from './config.js';
import { IDENTITY_NAME, postJson } from './fixtures.js';
import type { HttpTarget } from './gatehouse-target.js';
import { freePort, waitForPort } from './ports.js';
import { stopChild, track } from './procs.js';

export const CFSSL_SIGN_PATH = '/api/v1/cfssl/sign';

/** Our own signing profile: a 24 h client certificate, as Gatehouse's "web" role issues. */
const CFSSL_CONFIG = {
  signing: {
    default: { expiry: '24h', usages: ['digital signature', 'client auth'] },
    profiles: { client: { expiry: '24h', usages: ['digital signature', 'client auth'] } },
  },
};

export function cfsslVersion(): string {
  const out = spawnSync('cfssl', ['version'], { encoding: 'utf8' });
  if (out.error || out.status !== 0) {
    throw new Error(
      'cfssl is not installed (the peer for this benchmark). Install it with:\n  apt-get update && apt-get install -y --no-install-recommends golang-cfssl',
    );
  }
  return out.stdout.trim().replace(/\s*\n\s*/g, ', ');
}

function leaf(ca: SigningAuthority, name: string, profile: LeafProfile): { keyPem: string; certPem: string } {
  const key = generatePrivateKey('p256');
  const now = Date.now();
  const der = buildLeafCertificate(ca, {
    serial: randomSerial(),
    commonName: name,
    organizationalUnit: 'bench',
    organization: 'cfssl peer',
    spkiDer: spkiDer(key),
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 7 * 86_400_000),
    profile,
    dns: profile === 'server' ? ['localhost'] : [],
    ip: profile === 'server' ? ['127.0.0.1'] : [],
    uri: [],
    email: [],
  });
  return { keyPem: privateKeyToPem(key), certPem: toPem('CERTIFICATE', der) };
}

/** ca.pem/ca-key.pem (signing CA, also the mTLS client CA), server and client credentials. */
async function writePki(dir: string) {
  mkdirSync(dir, { recursive: true });
  const caKey = generatePrivateKey('p256');
  const now = Date.now();
  const caDer = await buildRootCertificate(caKey, {
    commonName: 'cfssl Bench CA',
    organization: 'cfssl peer',
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + 365 * 86_400_000),
  });
  const ca = prepareSigningAuthority(caDer, caKey);
  const server = leaf(ca, 'localhost', 'server');
  const client = leaf(ca, IDENTITY_NAME, 'client');
  const files = {
    ca: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca-key.pem'),
    config: join(dir, 'cfssl-config.json'),
    tlsCert: join(dir, 'server.pem'),
    tlsKey: join(dir, 'server-key.pem'),
  };
  writeFileSync(files.ca, toPem('CERTIFICATE', caDer));
  writeFileSync(files.caKey, privateKeyToPem(caKey), { mode: 0o600 });
  writeFileSync(files.tlsCert, server.certPem);
  writeFileSync(files.tlsKey, server.keyPem, { mode: 0o600 });
  writeFileSync(files.config, JSON.stringify(CFSSL_CONFIG, null, 2));
  return { files, caPem: toPem('CERTIFICATE', caDer), client };
}

/** One real sign request: success, a certificate from our CA with clientAuth and our CN. */
async function checkSigns(baseUrl: string, tls: HttpTarget['tls'], csrPem: string, caPem: string): Promise<void> {
  const answer = await postJson(
    `${baseUrl}${CFSSL_SIGN_PATH}`,
    { certificate_request: csrPem, profile: 'client' },
    tls,
  );
  const body =
    answer.status === 200 ? (JSON.parse(answer.text) as { success: boolean; result?: { certificate?: string } }) : null;
  const cert = body?.success && body.result?.certificate ? parseCertificatePem(body.result.certificate)[0] : undefined;
  const ca = parseCertificatePem(caPem)[0]!;
  const ok =
    cert &&
    cert.subjectNameDer.length > 0 &&
    cert.issuer.map((a) => a.value).join() === ca.subject.map((a) => a.value).join() &&
    cert.extKeyUsage.includes(OID.clientAuth) &&
    cert.subject.some((a) => a.type === 'CN' && a.value === IDENTITY_NAME);
  if (!ok) throw new Error(`cfssl functional check failed: HTTP ${answer.status}: ${answer.text.slice(0, 400)}`);
}

export async function startCfssl(
  tmp: string,
  config: BenchConfig,
  sampleCsr: string,
): Promise<HttpTarget & { version: string }> {
  const version = cfsslVersion();
  const { files, caPem, client } = await writePki(join(tmp, 'cfssl'));
  const port = await freePort();
  const logFile = join(tmp, 'cfssl.log');
  const fd = openSync(logFile, 'a');
  const child = track(
    spawn(
      'cfssl',
      [
        'serve',
        '-address',
        '127.0.0.1',
        '-port',
        String(port),
        '-ca',
        files.ca,
        '-ca-key',
        files.caKey,
        '-config',
        files.config,
        '-tls-cert',
        files.tlsCert,
        '-tls-key',
        files.tlsKey,
        '-mutual-tls-ca',
        files.ca,
        '-loglevel',
        String(config.cfsslLogLevel),
      ],
      { stdio: ['ignore', fd, fd] },
    ),
  );
  closeSync(fd);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  try {
    await waitForPort(port, 15_000, () => exited, 'cfssl serve');
  } catch (err) {
    throw new Error(`${(err as Error).message}; log:\n${readFileSync(logFile, 'utf8').slice(-2000)}`, { cause: err });
  }
  const baseUrl = `https://127.0.0.1:${port}`;
  const tls = { keyPem: client.keyPem, certPem: client.certPem, caPem };
  await checkSigns(baseUrl, tls, sampleCsr, caPem);
  return {
    name: 'cfssl',
    version,
    pid: child.pid!,
    baseUrl,
    tls,
    logFile,
    stop: () => stopChild(child, { signal: 'SIGTERM' }, 5000),
  };
}
