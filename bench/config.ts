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
  /** 0 skips the /enroll runs (e.g. for a renew-only CPU profile). */
  enrollConcurrency: number;
  csrPoolSize: number;
  /** GATEHOUSE_LOG_LEVEL for the CA child (its own default, info, unless overridden). */
  caLogLevel: string;
  /** cfssl -loglevel (its own default, 1 = info, unless overridden). */
  cfsslLogLevel: number;
  /** When set, the CA child runs with --cpu-prof and writes its profile here. */
  cpuProfile: boolean;
}

function num(name: string, fallback: number, allowZero = false): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !allowZero)) throw new Error(`${name}=${raw}: expected a ${allowZero ? 'non-negative' : 'positive'} number`);
  return value;
}

function list(name: string, fallback: number[]): number[] {
  const raw = process.env[name];
  if (!raw) return fallback;
  return raw.split(/[ ,]+/).filter(Boolean).map((v) => {
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
    enrollConcurrency: Math.round(num('BENCH_ENROLL_CONCURRENCY', 16, true)),
    csrPoolSize: Math.round(num('BENCH_CSR_POOL', 200)),
    caLogLevel: process.env.BENCH_CA_LOG_LEVEL ?? 'info',
    cfsslLogLevel: Math.round(num('BENCH_CFSSL_LOGLEVEL', 1, true)),
    cpuProfile: process.env.BENCH_CPU_PROF === '1',
  };
}
