/**
 * `npm run bench`: certificate issuance, Gatehouse against peers measured in the same run on
 * the same machine. 1) in-process micro costs (fast paths vs @peculiar/x509, crypto floor),
 * 2) `openssl speed` as the signing ceiling, 3) HTTP issuance over keep-alive mutual TLS:
 * Gatehouse /renew and /enroll vs `cfssl serve`, with a separate load-generator process.
 *
 * Env: BENCH_DURATION_S (8), BENCH_WARMUP_S (1), BENCH_RUNS (3 HTTP / 5 micro),
 * BENCH_CONCURRENCY ("1,16,50"), BENCH_ENROLL_CONCURRENCY (16; 0 skips /enroll),
 * BENCH_STORES ("sqlite,postgres,postgres2": the CA on its SQLite file, on PostgreSQL with one
 * replica, and two replicas on one database), BENCH_PG_CONCURRENCY ("16,50"),
 * BENCH_CSR_POOL (200), BENCH_MICRO_RUN_S (0.5), BENCH_CA_LOG_LEVEL (info),
 * BENCH_CFSSL_LOGLEVEL (1), BENCH_CPU_PROF=1 (profile the CA child into
 * bench/results/profiles/; summarize with `node dist/bench/profile-summary.js FILE`).
 */
import { loadConfig } from './config.js';
import { csrPool, makeTempRoot } from './fixtures.js';
import { cfsslVersion, startCfssl } from './cfssl-target.js';
import { startGatehouse, type HttpTarget } from './gatehouse-target.js';
import { postgresPreflight, startBenchPostgres, type BenchPostgres } from './postgres-target.js';
import { runHttp } from './http-bench.js';
import { runMicro } from './micro.js';
import { runOpensslSpeed } from './openssl-speed.js';
import { isEntryPoint, runAsScript } from './entry.js';
import { machineInfo, printReport, writeJson, type Report } from './report.js';

const progress = (line: string) => process.stderr.write(`${line}\n`);

/** Fails before anything is measured if a peer this bench needs is missing. */
export function issuancePreflight(): string {
  const config = loadConfig();
  if (config.stores.some((s) => s !== 'sqlite')) postgresPreflight();
  return cfsslVersion();
}

export async function runIssuanceBench(): Promise<void> {
  const config = loadConfig();
  const startedAt = new Date().toISOString();
  const cfssl = issuancePreflight(); // fail before spending minutes if the peer is missing

  progress(`micro: ${config.microRuns} run(s) per case, ~${config.microRunS} s each`);
  const micro = await runMicro(config.microRuns, config.microRunS);
  progress('ceiling: openssl speed -seconds 3 ecdsap256 (~6 s)');
  const opensslSpeed = runOpensslSpeed(3);

  const tmp = makeTempRoot();
  progress(`http: generating ${config.csrPoolSize} CSRs (P-256, one key each), starting Gatehouse and cfssl`);
  const csrs = await csrPool(config.csrPoolSize);
  const stopping: (() => Promise<void>)[] = [];
  let http;
  let postgres: BenchPostgres | null = null;
  try {
    const gatehouse = config.stores.includes('sqlite') ? await startGatehouse(tmp, config) : null;
    if (gatehouse) stopping.push(gatehouse.stop);
    const pg: HttpTarget[] = [];
    const pgStores = config.stores.filter((s) => s !== 'sqlite');
    if (pgStores.length) {
      progress(
        `postgres: initdb and start (default durability: fsync, synchronous_commit on); CA on it: ${pgStores.join(', ')}`,
      );
      postgres = await startBenchPostgres(tmp, 200);
      stopping.push(postgres.stop);
      // One database for both variants: "postgres" is replica 1 alone, "postgres2" replicas 1 and 2.
      const both = await startGatehouse(tmp, config, {
        name: 'gatehouse-pg',
        storeUrl: postgres.url,
        replicas: pgStores.includes('postgres2') ? 2 : 1,
        dbPid: postgres.pid,
      });
      stopping.unshift(both.stop);
      if (pgStores.includes('postgres')) {
        const { replicas: _both, ...alone } = both;
        pg.push({ ...alone, name: 'gatehouse-pg' });
      }
      if (pgStores.includes('postgres2')) pg.push({ ...both, name: 'gatehouse-pg×2' });
    }
    const peer = await startCfssl(tmp, config, csrs[0]!);
    stopping.push(peer.stop);
    http = await runHttp(config, gatehouse, peer, csrs, tmp, pg);
  } finally {
    for (const stop of stopping) await stop();
  }

  const report: Report = {
    startedAt,
    machine: machineInfo(opensslSpeed.version, cfssl, postgres?.version),
    config,
    micro,
    opensslSpeed,
    http,
  };
  printReport(report, writeJson(report));
}

if (isEntryPoint(import.meta.url)) runAsScript('issuance', runIssuanceBench);
