/**
 * The HTTP matrix: Gatehouse POST /renew and cfssl POST /api/v1/cfssl/sign at each concurrency,
 * then Gatehouse POST /enroll with a fresh single-use token per request. Runs are interleaved
 * (and the target order alternates) so slow drift of the machine hits both targets alike.
 */
import { join } from 'node:path';
import type { BenchConfig } from './config.js';
import { CFSSL_SIGN_PATH } from './cfssl-target.js';
import { writeBodies } from './fixtures.js';
import type { GatehouseTarget, HttpTarget } from './gatehouse-target.js';
import { runLoad, type FleetIdentity, type LoadResult, type LoadSpec } from './loadgen.js';
import { clkTck } from './procs.js';
import { fmtInt, fmtNum, median } from './stats.js';

export interface HttpRow {
  target: string;
  endpoint: string;
  concurrency: number;
  runs: LoadResult[];
  median: {
    certsPerS: number;
    p50Ms: number;
    p99Ms: number;
    serverCpuUsPerCert: number;
    serverCpuPct: number;
    serverSysShare: number;
    clientCpuPct: number;
    otherCpuPct: number;
    /** Per replica (one entry for a single server), element-wise medians. */
    replicaCpuUsPerCert: number[];
    replicaCpuPct: number[];
    replicaCertsPerS: number[];
    /** The PostgreSQL server's own CPU (postmaster and all backends); NaN for targets without one. */
    dbCpuUsPerCert: number;
    dbCpuPct: number;
  };
  /** How many CA processes served the target. */
  replicas: number;
  certsPerSRange: [number, number];
  errors: number;
  tokensExhausted: boolean;
}

interface Plan {
  target: HttpTarget;
  endpoint: string;
  path: string;
  bodiesFile: string;
  useOnce: boolean;
  concurrency: number;
  identities?: FleetIdentity[];
}

function summarize(plan: Plan, runs: LoadResult[]): HttpRow {
  const m = (f: (r: LoadResult) => number) => median(runs.map(f));
  const rates = runs.map((r) => r.certsPerS);
  const each = (f: (r: LoadResult) => number[]) =>
    (f(runs[0]!) ?? []).map((_, i) => median(runs.map((r) => f(r)[i] ?? NaN)));
  return {
    target: plan.target.name,
    endpoint: plan.endpoint,
    concurrency: plan.concurrency,
    runs,
    median: {
      certsPerS: m((r) => r.certsPerS),
      p50Ms: m((r) => r.p50Ms),
      p99Ms: m((r) => r.p99Ms),
      serverCpuUsPerCert: m((r) => r.serverCpuUsPerCert),
      serverCpuPct: m((r) => r.serverCpuPct),
      serverSysShare: m((r) => r.serverSysShare),
      clientCpuPct: m((r) => r.clientCpuPct),
      otherCpuPct: m((r) => r.otherCpuPct),
      replicaCpuUsPerCert: each((r) => r.replicaCpuUsPerCert),
      replicaCpuPct: each((r) => r.replicaCpuPct),
      replicaCertsPerS: each((r) => r.replicaCertsPerS),
      dbCpuUsPerCert: m((r) => r.dbCpuUsPerCert),
      dbCpuPct: m((r) => r.dbCpuPct),
    },
    replicas: plan.target.replicas?.length ?? 1,
    certsPerSRange: [Math.min(...rates), Math.max(...rates)],
    errors: runs.reduce((n, r) => n + r.errors, 0),
    tokensExhausted: runs.some((r) => r.bodiesExhausted),
  };
}

async function measure(plan: Plan, config: BenchConfig, tag: string): Promise<LoadResult> {
  const spec: LoadSpec = {
    label: `${plan.target.name} ${plan.endpoint} c=${plan.concurrency}`,
    bodiesFile: plan.bodiesFile,
    urls: (plan.target.replicas ?? [plan.target]).map((r) => `${r.baseUrl}${plan.path}`),
    useOnce: plan.useOnce,
    concurrency: plan.concurrency,
    warmupS: config.warmupS,
    durationS: config.durationS,
    tls: plan.target.tls,
    ...(plan.identities ? { identities: plan.identities } : {}),
    serverPids: (plan.target.replicas ?? [plan.target]).map((r) => r.pid),
    clkTck: clkTck(),
    ...(plan.target.dbPid !== undefined ? { dbPid: plan.target.dbPid } : {}),
  };
  const r = await runLoad(spec);
  const problems = [
    r.errors ? `${r.errors} errors ${JSON.stringify(r.errorKinds)} first: ${r.firstError}` : '',
    r.bodiesExhausted ? 'RAN OUT OF TOKENS' : '',
  ]
    .filter(Boolean)
    .join('; ');
  process.stderr.write(
    `  ${tag} ${spec.label.padEnd(34)} ${fmtInt(r.certsPerS).padStart(6)} certs/s  p50 ${fmtNum(r.p50Ms)} ms  p99 ${fmtNum(r.p99Ms)} ms  server ${fmtInt(r.serverCpuUsPerCert)} µs/cert ${fmtInt(r.serverCpuPct)} % (sys ${fmtInt(r.serverSysShare)} %)  client ${fmtInt(r.clientCpuPct)} %${r.replicaCpuPct.length > 1 ? `  replicas ${r.replicaCertsPerS.map((x, i) => `${fmtInt(x)}/s ${fmtInt(r.replicaCpuPct[i]!)} %`).join(' + ')}` : ''}${Number.isFinite(r.dbCpuPct) ? `  postgres ${fmtInt(r.dbCpuUsPerCert)} µs/cert ${fmtInt(r.dbCpuPct)} %` : ''}  other ${fmtInt(r.otherCpuPct)} %${problems ? `  !! ${problems}` : ''}\n`,
  );
  return r;
}

/**
 * `gatehouse` is the SQLite-store CA (null when BENCH_STORES leaves it out), measured at
 * config.concurrencies with /enroll; `pg` are the PostgreSQL-store targets (one and two
 * replicas), measured at config.pgConcurrencies; cfssl at every level either uses.
 */
export async function runHttp(
  config: BenchConfig,
  gatehouse: GatehouseTarget | null,
  cfssl: HttpTarget,
  csrs: string[],
  tmp: string,
  pg: HttpTarget[] = [],
): Promise<HttpRow[]> {
  const renewBodies = writeBodies(
    join(tmp, 'renew-bodies.json'),
    csrs.map((csr) => JSON.stringify({ csr })),
  );
  const signBodies = writeBodies(
    join(tmp, 'cfssl-bodies.json'),
    csrs.map((csr) => JSON.stringify({ certificate_request: csr, profile: 'client' })),
  );
  const plans = new Map<string, Plan>();
  const results = new Map<string, LoadResult[]>();
  const record = (plan: Plan, r: LoadResult) => {
    const key = `${plan.target.name}|${plan.endpoint}|${plan.concurrency}`;
    plans.set(key, plan);
    results.set(key, [...(results.get(key) ?? []), r]);
  };

  const levels = [
    ...new Set([...(gatehouse ? config.concurrencies : []), ...(pg.length ? config.pgConcurrencies : [])]),
  ].sort((a, b) => a - b);
  for (let run = 1; run <= config.httpRuns; run++) {
    const tag = `[run ${run}/${config.httpRuns}]`;
    for (const c of levels) {
      const renew = (target: HttpTarget): Plan => ({
        target,
        endpoint: 'POST /renew',
        path: '/renew',
        bodiesFile: renewBodies,
        useOnce: false,
        concurrency: c,
        ...(target.identities ? { identities: target.identities } : {}),
      });
      const group: Plan[] = [
        ...(gatehouse && config.concurrencies.includes(c) ? [renew(gatehouse)] : []),
        {
          target: cfssl,
          endpoint: `POST ${CFSSL_SIGN_PATH}`,
          path: CFSSL_SIGN_PATH,
          bodiesFile: signBodies,
          useOnce: false,
          concurrency: c,
        },
        ...(config.pgConcurrencies.includes(c) ? pg.map(renew) : []),
      ];
      for (const plan of run % 2 ? group : group.reverse()) record(plan, await measure(plan, config, tag));
    }
  }
  // /enroll last, after every /renew run: each enrollment takes the bench identity's name over
  // (tokens are made for that exact name), after which that identity's /renew is refused with
  // GH_NAME_TAKEN, so an /enroll run between /renew runs turned every later one into 409s.
  for (let run = 1; run <= config.httpRuns && config.enrollConcurrency > 0 && gatehouse; run++) {
    const tag = `[run ${run}/${config.httpRuns}]`;
    // /enroll: single-use tokens for everything the run can consume (warm-up included), made before timing.
    const renewRates = [...results.entries()]
      .filter(([k]) => k.startsWith(`${gatehouse.name}|`))
      .flatMap(([, rs]) => rs.map((r) => r.certsPerS));
    const count = Math.ceil(Math.max(500, ...renewRates) * (config.warmupS + config.durationS) * 1.5) + 200;
    const { tokens, ms } = await gatehouse.createTokens(count);
    process.stderr.write(
      `  ${tag} created ${fmtInt(tokens.length)} join tokens in ${fmtNum(ms / 1000, 1)} s (not timed)\n`,
    );
    const enrollBodies = writeBodies(
      join(tmp, `enroll-bodies-${run}.json`),
      tokens.map((token, i) => JSON.stringify({ token, csr: csrs[i % csrs.length] })),
    );
    const plan: Plan = {
      target: gatehouse,
      endpoint: 'POST /enroll',
      path: '/enroll',
      bodiesFile: enrollBodies,
      useOnce: true,
      concurrency: config.enrollConcurrency,
    };
    record(plan, await measure(plan, config, tag));
  }
  return [...plans.entries()].map(([key, plan]) => summarize(plan, results.get(key)!));
}
