/**
 * The Gatehouse CA under test, in its own process (forked by gatehouse-target.ts) so its CPU
 * time can be read from /proc and it does not share an event loop with the load generator.
 * It runs what `gatehouse ca serve` runs: loadCaMaterial + openCaStore (the SQLite file, or the
 * PostgreSQL database gatehouse.yaml names: replicas are copies of one CA dir) + startCaServer with
 * the default JSON logger on stderr (the parent points stderr at a file).
 *
 * IPC: -> {type:'ready', pid, url, port, rootPem}; <- {type:'tokens', count} -> {type:'tokens', tokens};
 *      <- {type:'stop'} closes the server and the store and exits (which also writes --cpu-prof).
 */
import { loadCaMaterial } from '../src/ca/ca-dir.js';
import { openCaStore } from '../src/ca/store-open.js';
import { startCaServer } from '../src/ca/server.js';
import { dashboardMount } from '../src/dashboard/router.js';
import { createLogger } from '../src/log/logger.js';
import { Authority } from '../src/ca/authority.js';
import { silentLogger } from '../src/log/logger.js';
import cluster from 'node:cluster';

/**
 * Tokens are made for the bench identity's exact name: every /enroll enrolls the same name,
 * and since GH_NAME_TAKEN an open token may not take over a name an active certificate holds.
 */
export type CaChildRequest = { type: 'tokens'; count: number; role: string; name: string } | { type: 'stop' };
export type CaChildReply =
  | { type: 'ready'; pid: number; url: string; port: number; rootPem: string }
  | { type: 'tokens'; tokens: string[]; ms: number }
  | { type: 'error'; message: string };

function reply(msg: CaChildReply): void {
  process.send?.(msg);
}

/**
 * With BENCH_CA_WORKERS > 1 this process becomes what `ca serve --workers N` runs: a cluster
 * primary whose workers share the port and the store. Tokens are made by the primary through
 * its own Authority on the shared store.
 */
async function primary(caDir: string, workers: number): Promise<void> {
  const material = loadCaMaterial(caDir);
  const store = await openCaStore(material.dir, material.config);
  const authority = new Authority({ ...material, store, logger: silentLogger });
  let port = 0;
  await new Promise<void>((resolve) => {
    let listening = 0;
    for (let i = 0; i < workers; i++) {
      cluster.fork().once('listening', (address) => {
        port = address.port;
        if (++listening === workers) resolve();
      });
    }
  });
  const stop = () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    void store.close().then(() => process.exit(0));
  };
  process.on('disconnect', stop);
  process.on('message', (msg: CaChildRequest) => {
    if (msg.type === 'stop') return stop();
    const started = Date.now();
    (async () => {
      const tokens: string[] = [];
      for (let i = 0; i < msg.count; i++)
        tokens.push(
          (await authority.createToken({ role: msg.role, name: msg.name, uses: 1 }, { actor: 'bench' })).token,
        );
      return tokens;
    })().then(
      (tokens) => reply({ type: 'tokens', tokens, ms: Date.now() - started }),
      (err: Error) => reply({ type: 'error', message: err.message }),
    );
  });
  reply({ type: 'ready', pid: process.pid, url: `https://127.0.0.1:${port}`, port, rootPem: authority.rootPem });
}

async function main(): Promise<void> {
  const caDir = process.argv[2];
  if (!caDir) throw new Error('usage: ca-child.js CA_DIR');
  const workers = Number(process.env.BENCH_CA_WORKERS ?? 1);
  if (workers > 1 && cluster.isPrimary) return primary(caDir, workers);
  const material = loadCaMaterial(caDir);
  const store = await openCaStore(material.dir, material.config);
  // Each bench identity renews its one certificate over and over, which lineage
  // enforcement takes for a copied identity (docs/lineage.md); docs/benchmarks.md says what that leaves out.
  const server = await startCaServer({
    material,
    store,
    logger: createLogger(),
    listen: '127.0.0.1:0',
    unsafeRenewWithoutLineage: true,
    mounts: [dashboardMount],
  });
  if (cluster.isWorker) {
    process.on(
      'SIGTERM',
      () =>
        void server
          .close()
          .then(() => store.close())
          .then(() => process.exit(0)),
    );
    return;
  }
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await server.close();
    await store.close();
    process.exit(0);
  };
  process.on('disconnect', () => void stop());
  process.on('message', (msg: CaChildRequest) => {
    if (msg.type === 'stop') return void stop();
    // Join tokens for /enroll, made through the Authority as an admin would, before timing.
    const started = Date.now();
    const make = async () => {
      const tokens: string[] = [];
      for (let i = 0; i < msg.count; i++)
        tokens.push(
          (await server.authority.createToken({ role: msg.role, name: msg.name, uses: 1 }, { actor: 'bench' })).token,
        );
      return tokens;
    };
    make().then(
      (tokens) => reply({ type: 'tokens', tokens, ms: Date.now() - started }),
      (err: Error) => reply({ type: 'error', message: err.message }),
    );
  });
  reply({ type: 'ready', pid: process.pid, url: server.url, port: server.port, rootPem: server.authority.rootPem });
}

main().catch((err: Error) => {
  reply({ type: 'error', message: err.stack ?? err.message });
  process.exit(1);
});
