/** Settings of the gateway benchmark (bench/gateway.ts), from the environment. */

export type GatewayMode = 'keepalive' | 'handshake';

export interface GatewayBenchConfig {
  /** Measured seconds per ab run (ab -t). */
  durationS: number;
  /** Unmeasured ab run before each measured one (JIT, upstream pool, nginx worker caches). */
  warmupS: number;
  runs: number;
  /** ab -c with -k: persistent connections, one TLS handshake each. */
  keepAliveConcurrency: number;
  /** ab -c without -k: one full mutual-TLS handshake per request. */
  handshakeConcurrency: number;
  modes: GatewayMode[];
  /** Gateway processes (`--workers N` when the gateway has it) and nginx `worker_processes`. */
  workers: number;
  /**
   * true: both proxies write one access-log line per request to a file (the gateway's JSON
   * line at GATEHOUSE_LOG_LEVEL=info, nginx `access_log` in its default format); false: neither
   * (GATEHOUSE_LOG_LEVEL=warn, `access_log off`).
   */
  accessLog: boolean;
  /** When set, the gateway runs with --cpu-prof; the profile is summarized after the runs. */
  cpuProfile: boolean;
}

function positive(name: string, fallback: number, allowZero = false): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !allowZero))
    throw new Error(`${name}=${raw}: expected a ${allowZero ? 'non-negative' : 'positive'} number`);
  return value;
}

function integer(name: string, fallback: number): number {
  const value = positive(name, fallback);
  if (!Number.isInteger(value)) throw new Error(`${name}=${process.env[name]}: expected a whole number`);
  return value;
}

function modes(): GatewayMode[] {
  const raw = process.env.BENCH_GW_MODES;
  if (!raw) return ['keepalive', 'handshake'];
  const list = raw.split(/[ ,]+/).filter(Boolean);
  for (const m of list)
    if (m !== 'keepalive' && m !== 'handshake') throw new Error(`BENCH_GW_MODES: "${m}" is not keepalive or handshake`);
  return [...new Set(list)] as GatewayMode[];
}

function bool(name: string, fallback: boolean): boolean {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw === '1' || raw === 'true') return true;
  if (raw === '0' || raw === 'false') return false;
  throw new Error(`${name}=${raw}: expected 1 or 0`);
}

export function loadGatewayConfig(): GatewayBenchConfig {
  return {
    durationS: positive('BENCH_DURATION_S', 8),
    warmupS: positive('BENCH_WARMUP_S', 1, true),
    runs: integer('BENCH_RUNS', 3),
    keepAliveConcurrency: integer('BENCH_GW_CONCURRENCY', 50),
    handshakeConcurrency: integer('BENCH_GW_HANDSHAKE_CONCURRENCY', 16),
    modes: modes(),
    workers: integer('BENCH_GW_WORKERS', 1),
    accessLog: bool('BENCH_GW_ACCESS_LOG', true),
    cpuProfile: process.env.BENCH_CPU_PROF === '1',
  };
}
