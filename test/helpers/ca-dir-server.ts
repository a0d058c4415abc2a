/**
 * Starts (or restarts) a CA server on an existing CA directory, as `gatehouse ca serve` would:
 * fresh material from disk (so config edits take effect), its own store connection and logger.
 * close() stops the server and closes the store; it never removes the directory.
 */
import { join } from 'node:path';
import { CA_FILES, loadCaMaterial } from '../../src/ca/ca-dir.js';
import { startCaServer, type CaServer } from '../../src/ca/server.js';
import { dashboardMount } from '../../src/dashboard/router.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';
import { createLogger } from '../../src/log/logger.js';

export interface DirServer {
  url: string;
  server: CaServer;
  store: SqliteStore;
  logLines: string[];
  close(): Promise<void>;
}

export async function startCaServerOnDir(
  caDir: string,
  options: { now?: () => Date; crlCheckIntervalMs?: number } = {},
): Promise<DirServer> {
  const logLines: string[] = [];
  const logger = createLogger({ level: 'debug', write: (line) => void logLines.push(line) });
  const material = loadCaMaterial(caDir);
  const store = openSqliteStore(join(caDir, CA_FILES.database));
  let server: CaServer;
  try {
    server = await startCaServer({
      material,
      store,
      logger,
      listen: '127.0.0.1:0',
      mounts: [dashboardMount],
      ...(options.now ? { now: options.now } : {}),
      ...(options.crlCheckIntervalMs ? { crlCheckIntervalMs: options.crlCheckIntervalMs } : {}),
    });
  } catch (err) {
    await store.close();
    throw err;
  }
  let closed = false;
  return {
    url: server.url,
    server,
    store,
    logLines,
    close: async () => {
      if (closed) return;
      closed = true;
      await server.close();
      await store.close();
    },
  };
}
