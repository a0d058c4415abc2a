/** A real CA for tests: `ca init` in a temp dir, then the HTTPS server on 127.0.0.1 port 0. */
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { enroll } from '../../src/agent/enroll.js';
import type { Identity } from '../../src/pki/certificate.js';
import { initCa, type InitOptions } from '../../src/ca/init.js';
import { CA_FILES, loadCaMaterial } from '../../src/ca/ca-dir.js';
import { startCaServer, type CaServer } from '../../src/ca/server.js';
import { dashboardMount } from '../../src/dashboard/router.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';
import { createLogger, type Logger } from '../../src/log/logger.js';
import { makeTempDir } from './tmp.js';

export interface CaFixture {
  root: string;
  caDir: string;
  adminDir: string;
  url: string;
  server: CaServer;
  store: SqliteStore;
  logLines: string[];
  /** Rewrite part of gatehouse.yaml and restart the server on the same directory. */
  close(): Promise<void>;
}

export async function startCaFixture(
  options: Partial<Omit<InitOptions, 'now'>> & {
    configEdit?: (yaml: string) => string;
    now?: () => Date;
    crlCheckIntervalMs?: number;
    metricsListen?: string;
  } = {},
): Promise<CaFixture> {
  const { now, configEdit: _edit, crlCheckIntervalMs: _interval, metricsListen, ...initOptions } = options;
  const tmp = makeTempDir();
  const caDir = join(tmp.dir, 'ca');
  await initCa({ dir: caDir, org: 'Test Org', trustDomain: 'test.internal', ...initOptions });
  if (options.configEdit) {
    const path = join(caDir, CA_FILES.config);
    writeFileSync(path, options.configEdit(readFileSync(path, 'utf8')), { mode: 0o600 });
  }
  const logLines: string[] = [];
  const logger: Logger = createLogger({ level: 'debug', write: (line) => void logLines.push(line) });
  const material = loadCaMaterial(caDir, { passphraseFile: options.passphraseFile });
  const store = openSqliteStore(join(caDir, CA_FILES.database));
  const server = await startCaServer({
    material,
    store,
    logger,
    listen: '127.0.0.1:0',
    mounts: [dashboardMount],
    ...(now ? { now } : {}),
    ...(options.crlCheckIntervalMs ? { crlCheckIntervalMs: options.crlCheckIntervalMs } : {}),
    ...(metricsListen ? { metricsListen } : {}),
  });
  return {
    root: tmp.dir,
    caDir,
    adminDir: join(caDir, CA_FILES.adminDir),
    url: server.url,
    server,
    store,
    logLines,
    close: async () => {
      await server.close();
      await store.close();
      tmp.cleanup();
    },
  };
}

/** Enrolls an identity with the agent's own code (an identity dir in `fixture.root/name`); ca-http's enrollIdentity enrolls over HTTP, in memory. */
export async function enrollAgent(
  fixture: CaFixture,
  role: string,
  name: string,
  extra: { dns?: string[]; ip?: string[] } = {},
): Promise<{ dir: string; identity: Identity }> {
  const { token } = await fixture.server.authority.createToken({ role }, { actor: 'test' });
  const dir = join(fixture.root, name);
  const identity = await enroll({ caUrl: fixture.url, token, dir, name, ...extra });
  return { dir, identity };
}

/** Root plus issuing intermediate: what a gateway needs to verify clients and the CA's CRLs. */
export function writeClientCaBundle(fixture: CaFixture): string {
  const bundle = join(fixture.root, 'client-ca.pem');
  writeFileSync(
    bundle,
    readFileSync(join(fixture.caDir, CA_FILES.rootCert), 'utf8') +
      readFileSync(join(fixture.caDir, CA_FILES.intermediateCert), 'utf8'),
  );
  return bundle;
}
