/**
 * Certificates for the gateway benchmark, from Gatehouse's own CA (`ca init` in the temp dir,
 * then the Authority's issueInternal, as for the CA's own certificates): a server certificate for
 * 127.0.0.1/localhost (role gateway) and a client certificate of role web. nginx and the
 * gateway present the same server chain and trust the same client CA bundle.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Authority } from '../src/ca/authority.js';
import { CA_FILES, loadCaMaterial } from '../src/ca/ca-dir.js';
import { initCa } from '../src/ca/init.js';
import { silentLogger } from '../src/log/logger.js';
import { generatePrivateKey, privateKeyToPem } from '../src/pki/keys.js';
import { openSqliteStore } from '../src/store/sqlite.js';

export const CLIENT_ROLE = 'web';
export const CLIENT_NAME = 'bench-client';

export interface GatewayPki {
  /** Server chain, leaf then intermediate. */
  serverCert: string;
  serverKey: string;
  /** Root then intermediate: what client certificates must chain to. */
  clientCaBundle: string;
  /** Client leaf, intermediate and key in one PEM, for `ab -E`. */
  clientPem: string;
  /** For Node clients (functional checks). */
  client: { keyPem: string; certPem: string; caPem: string };
}

export async function makeGatewayPki(dir: string): Promise<GatewayPki> {
  const caDir = join(dir, 'ca');
  await initCa({ dir: caDir, org: 'Bench Org', trustDomain: 'bench.internal' });
  const store = openSqliteStore(join(caDir, CA_FILES.database));
  try {
    const authority = new Authority({ ...loadCaMaterial(caDir), store, logger: silentLogger });
    const ctx = { actor: 'bench' };
    const day = 86_400_000;
    const serverKey = generatePrivateKey('p256');
    const server = await authority.issueInternal(
      { role: 'gateway', name: 'localhost', profile: 'server', lifetimeMs: day, dns: ['localhost'], ip: ['127.0.0.1'] },
      serverKey,
      ctx,
    );
    const clientKey = generatePrivateKey('p256');
    const client = await authority.issueInternal(
      { role: CLIENT_ROLE, name: CLIENT_NAME, profile: 'client', lifetimeMs: day },
      clientKey,
      ctx,
    );
    const files: GatewayPki = {
      serverCert: join(dir, 'server-chain.pem'),
      serverKey: join(dir, 'server-key.pem'),
      clientCaBundle: join(dir, 'client-ca.pem'),
      clientPem: join(dir, 'client.pem'),
      client: { keyPem: privateKeyToPem(clientKey), certPem: client.chainPem, caPem: server.rootPem },
    };
    writeFileSync(files.serverCert, server.chainPem);
    writeFileSync(files.serverKey, privateKeyToPem(serverKey), { mode: 0o600 });
    writeFileSync(files.clientCaBundle, server.rootPem + authority.intermediatePem);
    writeFileSync(files.clientPem, client.chainPem + files.client.keyPem, { mode: 0o600 });
    return files;
  } finally {
    await store.close();
  }
}
