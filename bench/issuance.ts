/**
 * `npm run bench`: certificate issuance, Gatehouse against peers measured in the same run on
 * the same machine. 1) in-process micro costs (fast paths vs @peculiar/x509, crypto floor),
 * 2) `openssl speed` as the signing ceiling, 3) HTTP issuance over keep-alive mutual TLS:
 * Gatehouse /renew and /enroll vs `cfssl serve`, with a separate load-generator process.
 *
 * Env: BENCH_DURATION_S (8), BENCH_WARMUP_S (1), BENCH_RUNS (3 HTTP / 5 micro),
 * BENCH_CONCURRENCY ("1,16,50"), BENCH_ENROLL_CONCURRENCY (16; 0 skips /enroll),
 * BENCH_CSR_POOL (200), BENCH_MICRO_RUN_S (0.5), BENCH_CA_LOG_LEVEL (info),
 * BENCH_CFSSL_LOGLEVEL (1), BENCH_CPU_PROF=1 (profile the CA child into
 * bench/results/profiles/; summarize with `node dist/bench/profile-summary.js FILE`).
 */
import { loadConfig } from './config.js';
import { csrPool, makeTempRoot } from './fixtures.js';
import { cfsslVersion, startCfssl } from './cfssl-target.js';
import { startGatehouse } from './gatehouse-target.js';
import { runHttp } from './http-bench.js';
import { runMicro } from './micro.js';
import { runOpensslSpeed } from './openssl-speed.js';
import { isEntryPoint, runAsScript } from './entry.js';
import { machineInfo, printReport, writeJson, type Report } from './report.js';

const progress = (line: string) => process.stderr.write(`${line}\n`);

/** Fails before anything is measured if a peer this bench needs is missing. */
export function issuancePreflight(): string {
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
  const gatehouse = await startGatehouse(tmp, config);
  const peer = await startCfssl(tmp, config, csrs[0]!);
  let http;
  try {
    http = await runHttp(config, gatehouse, peer, csrs, tmp);
  } finally {
    await gatehouse.stop();
    await peer.stop();
  }

  const report: Report = { startedAt, machine: machineInfo(opensslSpeed.version, cfssl), config, micro, opensslSpeed, http };
  printReport(report, writeJson(report));
}

if (isEntryPoint(import.meta.url)) runAsScript('issuance', runIssuanceBench);
