/** Bench settings from the environment, with the defaults the brief asks for. */

export interface BenchConfig {
  /** Measured seconds per HTTP run. */
  durationS: number;
  /** Unmeasured seconds before each HTTP run (TLS handshakes, JIT warm-up). */
  warmupS: number;
  httpRuns: number;
  microRuns: number;
  /** Target wall time of one micro run; the iteration count is calibrated to it. */
  microRunS: number;
  concurrencies: number[];
  /** Which Gatehouse stores /renew is measured on: sqlite (the CA dir's file), postgres (one replica), postgres2 (two replicas on one database). */
  stores: BenchStore[];
  /** Concurrency levels of the PostgreSQL variants (cfssl is measured at these too). */
  pgConcurrencies: number[];
  /** 0 skips the /enroll runs (e.g. for a renew-only CPU profile). */
  enrollConcurrency: number;
  csrPoolSize: number;
  /** Gatehouse /renew: client identities the load's connections spread over (connection i renews as identity i mod n), as a fleet renews. */
  fleetSize: number;
  /** GATEHOUSE_LOG_LEVEL for the CA child (its own default, info, unless overridden). */
  caLogLevel: string;
  /** cfssl -loglevel (its own default, 1 = info, unless overridden). */
  cfsslLogLevel: number;
  /** When set, the CA child runs with --cpu-prof and writes its profile here. */
  cpuProfile: boolean;
}

export const BENCH_STORES = ['sqlite', 'postgres', 'postgres2'] as const;
export type BenchStore = (typeof BENCH_STORES)[number];

function stores(raw: string | undefined): BenchStore[] {
  if (!raw) return [...BENCH_STORES];
  const names = raw.split(/[ ,]+/).filter(Boolean);
  for (const n of names)
    if (!(BENCH_STORES as readonly string[]).includes(n))
      throw new Error(`BENCH_STORES: "${n}" is not one of ${BENCH_STORES.join(', ')}`);
  return BENCH_STORES.filter((s) => names.includes(s));
}

function num(name: string, fallback: number, allowZero = false): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !allowZero))
    throw new Error(`${name}=${raw}: expected a ${allowZero ? 'non-negative' : 'positive'} number`);
  return value;
}

function list(name: string, fallback: number[]): number[] {
  const raw = process.env[name];
  if (!raw) return fallback;
  return raw
    .split(/[ ,]+/)
    .filter(Boolean)
    .map((v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: "${v}" is not a positive integer`);
      return n;
    });
}

export function loadConfig(): BenchConfig {
  const runs = process.env.BENCH_RUNS ? Math.round(num('BENCH_RUNS', 3)) : undefined;
  return {
    durationS: num('BENCH_DURATION_S', 8),
    warmupS: num('BENCH_WARMUP_S', 1, true),
    httpRuns: runs ?? 3,
    microRuns: runs ?? 5,
    microRunS: num('BENCH_MICRO_RUN_S', 0.5),
    concurrencies: list('BENCH_CONCURRENCY', [1, 16, 50]),
    stores: stores(process.env.BENCH_STORES),
    pgConcurrencies: list('BENCH_PG_CONCURRENCY', [16, 50]),
    enrollConcurrency: Math.round(num('BENCH_ENROLL_CONCURRENCY', 16, true)),
    csrPoolSize: Math.round(num('BENCH_CSR_POOL', 200)),
    fleetSize: Math.round(num('BENCH_FLEET', 64)),
    caLogLevel: process.env.BENCH_CA_LOG_LEVEL ?? 'info',
    cfsslLogLevel: Math.round(num('BENCH_CFSSL_LOGLEVEL', 1, true)),
    cpuProfile: process.env.BENCH_CPU_PROF === '1',
  };
}
