/**
 * Gateway benchmark: the Gatehouse gateway against nginx as the mutual-TLS reverse proxy peer,
 * and against a bare Node https server as the ceiling of any Node gateway: same machine, same
 * run, same certificates, same load generator.
 *
 *   upstream app: nginx, 1 worker, plain HTTP on 127.0.0.1, `return 200 "ok"` (shared by the proxies)
 *   peer:         nginx, BENCH_GW_WORKERS workers, ssl_verify_client on, role check, identity headers, keep-alive upstream
 *   ceiling:      node-bare: `https.createServer` with the gateway's TLS settings, checks socket.authorized,
 *                 answers `200 ok` itself, no upstream (bench/node-bare-server.ts)
 *   under test:   `node dist/src/cli/main.js gateway … --policy` (talk-format allow for role web)
 *   load:         ab -E client.pem, keep-alive (-k) and one full handshake per request (no -k)
 *
 * Runs alternate the target order; medians over BENCH_RUNS. Any failed or non-2xx request
 * fails the bench. Env: BENCH_DURATION_S (8), BENCH_WARMUP_S (1), BENCH_RUNS (3),
 * BENCH_GW_CONCURRENCY (50, keep-alive), BENCH_GW_HANDSHAKE_CONCURRENCY (16),
 * BENCH_GW_MODES (keepalive,handshake), BENCH_GW_WORKERS (1), BENCH_GW_ACCESS_LOG (1: all three
 * targets log every request to a file; 0: none), BENCH_CPU_PROF=1 (profile the gateway and node-bare).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { cpus } from 'node:os';
import { join, relative } from 'node:path';
import { abVersion, problemsOf, runAb, type AbResult } from './ab.js';
import { isEntryPoint, runAsScript } from './entry.js';
import { PROJECT_ROOT, RESULTS_DIR, makeTempRoot } from './fixtures.js';
import { loadGatewayConfig, type GatewayBenchConfig, type GatewayMode } from './gateway-config.js';
import { makeGatewayPki, type GatewayPki } from './gateway-pki.js';
import { BENCH_POLICY, startGatewayProcess, type GatewayProcess } from './gateway-target.js';
import { nginxVersion, startNginxProxy, startUpstream, type NginxProcess } from './nginx-target.js';
import { startNodeBare, type NodeBareProcess } from './node-bare-target.js';
import { selfTimeByFunction, selfTimeByPlace, summarize, type CpuProfile, type TimeWindow } from './profile-summary.js';
import { fmtInt, fmtNum, fmtRatio, median } from './stats.js';

/**
 * From the issue: the gateway's targets relative to nginx measured in the same run (at least
 * these ratios of its req/s), and its CPU per full handshake relative to the bare Node server's
 * (at most this ratio).
 */
export const TARGETS = { keepAliveThroughput: 0.5, handshakesPerS: 0.9, cpuPerHandshakeVsBare: 1.15 } as const;

/** Median CPU of processes other than ab, the proxy and the upstream above which a mode's req/s ratio is called unreliable (100 = one core). */
const DISTURBED_OTHER_PCT = 15;

/** A target's verdict. `cpuImplied` is nginx CPU/req ÷ gatehouse CPU/req: the req/s ratio if both were CPU-bound on equal cores. */
export interface TargetVerdict {
  want: number;
  got: number;
  met: boolean;
  cpuImplied: number;
  disturbed: boolean;
  otherCpuPct: number;
}

/** The ceiling target: gateway CPU µs per full handshake ÷ node-bare's, at most `want`. */
export interface CeilingVerdict {
  want: number;
  got: number;
  met: boolean;
  gatehouseUs: number;
  nodeBareUs: number;
  disturbed: boolean;
  otherCpuPct: number;
}

type TargetName = 'nginx' | 'gatehouse' | 'node-bare';
const TARGET_NAMES: readonly TargetName[] = ['nginx', 'gatehouse', 'node-bare'];

/** What each target's access log must hold per request when BENCH_GW_ACCESS_LOG=1, and where it is. */
interface AccessLogCheck {
  file: string;
  needle: string;
}

/** Lines each target logged against the requests ab completed on it (warm-ups and functional checks included). */
export interface AccessLogCount {
  on: boolean;
  lines: number;
  requests: number;
  ok: boolean;
}

interface Target {
  name: TargetName;
  pid: number;
  port: number;
}

export interface GatewayRow {
  target: TargetName;
  mode: GatewayMode;
  concurrency: number;
  runs: AbResult[];
  median: {
    reqPerS: number;
    p50Ms: number;
    p99Ms: number;
    serverCpuUsPerReq: number;
    serverCpuPct: number;
    serverSysShare: number;
    upstreamCpuPct: number;
    abCpuPct: number;
    otherCpuPct: number;
  };
  reqPerSRange: [number, number];
}

export interface GatewayReport {
  startedAt: string;
  machine: { cores: number; cpuModel: string; node: string; nodeOpenssl: string; nginx: string; ab: string };
  config: GatewayBenchConfig;
  setup: {
    gatewayCommand: string;
    gatewayWorkersFlag: boolean;
    nodeBareCommand: string;
    nginxConfig: string;
    upstreamConfig: string;
    policy: unknown;
    tls: string[];
  };
  rows: GatewayRow[];
  /** gatehouse ÷ nginx (the first four, as before), gatehouse ÷ node-bare and node-bare ÷ nginx. */
  ratios: {
    keepAliveReqPerS: number;
    keepAliveCpuPerReq: number;
    handshakesPerS: number;
    cpuPerHandshake: number;
    gatehouseVsBare: {
      keepAliveReqPerS: number;
      keepAliveCpuPerReq: number;
      handshakesPerS: number;
      cpuPerHandshake: number;
    };
    bareVsNginx: {
      keepAliveReqPerS: number;
      keepAliveCpuPerReq: number;
      handshakesPerS: number;
      cpuPerHandshake: number;
    };
  };
  targets: { keepAliveThroughput: TargetVerdict; handshakesPerS: TargetVerdict; cpuPerHandshakeVsBare: CeilingVerdict };
  gatewayLog: { file: string; bytes: number; warnings: number; errors: number; events: string[] };
  accessLogs: Record<TargetName, AccessLogCount>;
  profile?: { file: string; summary: string };
  /** With BENCH_CPU_PROF=1: node-bare's profile, and main-thread self time per request by place, gateway against node-bare. */
  nodeBareProfile?: { file: string; summary: string };
  profileComparison?: {
    requests: Record<'gatehouse' | 'node-bare', number>;
    modes: GatewayMode[];
    /** Whole-process CPU (/proc) per request over the same measured runs, for scale: the profile sees the main thread's JavaScript only. */
    procCpuUsPerReq: Record<'gatehouse' | 'node-bare', number>;
    rows: Array<{ place: string; gatehouseUsPerReq: number; nodeBareUsPerReq: number }>;
    /** The functions with the largest excess of gateway over node-bare self time per request. */
    functions: Array<{ place: string; gatehouseUsPerReq: number; nodeBareUsPerReq: number }>;
  };
}

const progress = (line: string) => process.stderr.write(`${line}\n`);

/** Fails before anything is measured if a tool this bench needs is missing. */
export function gatewayPreflight(): { nginx: string; ab: string } {
  return { nginx: nginxVersion(), ab: abVersion() };
}

/** One GET or POST on its own connection, with or without the client certificate. */
function once(
  port: number,
  pki: GatewayPki,
  withCert: boolean,
  method = 'GET',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        method,
        agent: false,
        timeout: 15_000,
        servername: 'localhost',
        headers: { host: `localhost:${port}` },
        ca: pki.client.caPem,
        ...(withCert ? { key: pki.client.keyPem, cert: pki.client.certPem } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from 127.0.0.1:${port} within 15 s`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Every target must answer an allowed GET with 200 "ok" and refuse what the policy or mTLS
 * refuses, before anything is timed (the proxies forward to the upstream; node-bare answers itself).
 */
async function functionalCheck(target: Target, pki: GatewayPki): Promise<void> {
  const ok = await once(target.port, pki, true);
  if (ok.status !== 200 || ok.body !== 'ok')
    throw new Error(
      `${target.name}: GET / with the client certificate answered ${ok.status} ${JSON.stringify(ok.body.slice(0, 300))}, expected 200 "ok"`,
    );
  const noCert = await once(target.port, pki, false).catch((err: Error) => ({ status: -1, body: err.message }));
  if (noCert.status === 200)
    throw new Error(`${target.name}: GET / without a client certificate answered 200: mutual TLS is not enforced`);
  const post = await once(target.port, pki, true, 'POST');
  if (post.status !== 403)
    throw new Error(`${target.name}: POST / answered ${post.status}, expected 403 (the policy allows only GET)`);
}

function summarizeRow(target: TargetName, mode: GatewayMode, concurrency: number, runs: AbResult[]): GatewayRow {
  const m = (f: (r: AbResult) => number) => median(runs.map(f));
  const rates = runs.map((r) => r.reqPerS);
  return {
    target,
    mode,
    concurrency,
    runs,
    median: {
      reqPerS: m((r) => r.reqPerS),
      p50Ms: m((r) => r.p50Ms),
      p99Ms: m((r) => r.p99Ms),
      serverCpuUsPerReq: m((r) => r.serverCpuUsPerReq),
      serverCpuPct: m((r) => r.serverCpuPct),
      serverSysShare: m((r) => r.serverSysShare),
      upstreamCpuPct: m((r) => r.upstreamCpuPct),
      abCpuPct: m((r) => r.abCpuPct),
      otherCpuPct: m((r) => r.otherCpuPct),
    },
    reqPerSRange: [Math.min(...rates), Math.max(...rates)],
  };
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

/**
 * One measured ab run (after its warm-up); `served` counts the warm-up's requests too, and
 * `window` is the measured run's span on the monotonic clock, which V8 stamps profile samples with.
 */
async function measure(
  target: Target,
  mode: GatewayMode,
  config: GatewayBenchConfig,
  pki: GatewayPki,
  upstreamPid: number,
  tmp: string,
  tag: string,
): Promise<{ result: AbResult; served: number; window: TimeWindow }> {
  const keepAlive = mode === 'keepalive';
  const concurrency = keepAlive ? config.keepAliveConcurrency : config.handshakeConcurrency;
  const spec = {
    url: `https://127.0.0.1:${target.port}/`,
    clientPem: pki.clientPem,
    keepAlive,
    concurrency,
    csvFile: join(tmp, 'ab.csv'),
    serverPid: target.pid,
    upstreamPid,
  };
  let served = 0;
  if (config.warmupS > 0) {
    const warm = await runAb({ ...spec, durationS: config.warmupS });
    const bad = problemsOf(warm, keepAlive);
    if (bad) throw new Error(`${target.name} ${mode} warm-up: ${bad}\n  ${warm.command}`);
    served += warm.complete;
  }
  const start = nowUs();
  const r = await runAb({ ...spec, durationS: config.durationS });
  const window: TimeWindow = [start, nowUs()];
  const bad = problemsOf(r, keepAlive);
  const label = `${target.name} ${keepAlive ? 'keep-alive' : 'handshake'} c=${concurrency}`;
  progress(
    `  ${tag} ${label.padEnd(28)} ${fmtInt(r.reqPerS).padStart(6)} req/s  p50 ${fmtNum(r.p50Ms)} ms  p99 ${fmtNum(r.p99Ms)} ms  server ${fmtNum(r.serverCpuUsPerReq, 0)} µs/req ${fmtInt(r.serverCpuPct)} % (sys ${fmtInt(r.serverSysShare)} %)  upstream ${fmtInt(r.upstreamCpuPct)} %  ab ${fmtInt(r.abCpuPct)} %  other ${fmtInt(r.otherCpuPct)} %${bad ? `  !! ${bad}` : ''}`,
  );
  if (bad)
    throw new Error(
      `${label}: ${bad}. A benchmark of refused or failed requests is meaningless; see the logs in the temp dir.\n  ${r.command}`,
    );
  return { result: r, served: served + r.complete, window };
}

/** How often `needle` occurs in a file (read as bytes: an access log can be tens of MB). */
function occurrences(file: string, needle: string): number {
  if (!existsSync(file)) return 0;
  const data = readFileSync(file);
  const n = Buffer.from(needle);
  let count = 0;
  for (let at = data.indexOf(n); at >= 0; at = data.indexOf(n, at + n.length)) count++;
  return count;
}

/**
 * With BENCH_GW_ACCESS_LOG=1, each target must have logged the functional check's requests
 * before anything is timed: a target that does not log would be measured in a cheaper setting
 * than production. The gateway and node-bare write batched, after the event-loop turn: wait for the lines.
 */
async function checkAccessLogs(logs: Record<TargetName, AccessLogCheck>, on: boolean): Promise<void> {
  for (const name of TARGET_NAMES) {
    // Logged lines appear within an event-loop turn or two; wait for them, up to 5 s.
    const deadline = Date.now() + 5000;
    let lines = occurrences(logs[name].file, logs[name].needle);
    while (on && lines < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      lines = occurrences(logs[name].file, logs[name].needle);
    }
    if (on && lines < 2)
      throw new Error(
        `${name}: BENCH_GW_ACCESS_LOG=1, but ${logs[name].file} holds ${lines} access-log line(s) (${JSON.stringify(logs[name].needle)}) after the functional check's 3 requests: access logging is not on`,
      );
    if (!on && lines > 0)
      throw new Error(`${name}: BENCH_GW_ACCESS_LOG=0, but ${logs[name].file} holds ${lines} access-log line(s)`);
  }
}

function countLevels(file: string): { bytes: number; warnings: number; errors: number; events: string[] } {
  if (!existsSync(file)) return { bytes: 0, warnings: 0, errors: 0, events: [] };
  const text = readFileSync(file, 'utf8');
  // Which warnings and errors, once each: a count alone does not say whether they matter.
  const events = [
    ...new Set([...text.matchAll(/^\{"level":"(?:warn|error)".*"msg":"([^"]+)"\}$/gm)].map((m) => m[1]!)),
  ];
  return {
    bytes: Buffer.byteLength(text),
    warnings: (text.match(/"level":"warn"/g) ?? []).length,
    errors: (text.match(/"level":"error"/g) ?? []).length,
    events,
  };
}

function newestProfile(dir: string, since: number): string | null {
  if (!existsSync(dir)) return null;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).mtimeMs >= since);
  files.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return files[0] ?? null;
}

export async function runGatewayBench(): Promise<void> {
  const config = loadGatewayConfig();
  const tools = gatewayPreflight();
  const startedAt = new Date().toISOString();
  const tmp = makeTempRoot();
  const profileDir = config.cpuProfile ? join(RESULTS_DIR, 'profiles') : null;
  const profileSince = Date.now();

  progress(
    `gateway: Gatehouse CA certificates, upstream nginx, nginx mTLS proxy (${config.workers} worker(s)), Gatehouse gateway, bare Node https server; access logs ${config.accessLog ? 'on (all three, to files)' : 'off (all three)'}`,
  );
  const pki = await makeGatewayPki(join(tmp, 'pki'));
  const upstream = await startUpstream(tmp);
  const stops: Array<() => Promise<void>> = [upstream.stop];
  let nginx: NginxProcess | undefined;
  let gateway: GatewayProcess | undefined;
  let bare: NodeBareProcess | undefined;
  const results = new Map<string, AbResult[]>();
  // The functional check's 3 requests per target, then every ab request (warm-ups included).
  const served: Record<TargetName, number> = { nginx: 3, gatehouse: 3, 'node-bare': 3 };
  // The measured ab runs' time spans and requests, per target: what the profile comparison counts.
  const windows: Record<TargetName, TimeWindow[]> = { nginx: [], gatehouse: [], 'node-bare': [] };
  let logs: Record<TargetName, AccessLogCheck> | undefined;
  try {
    nginx = await startNginxProxy(tmp, upstream.port, config.workers, pki, config.accessLog);
    stops.unshift(nginx.stop);
    gateway = await startGatewayProcess(tmp, {
      upstreamPort: upstream.port,
      pki,
      workers: config.workers,
      accessLog: config.accessLog,
      profileDir,
    });
    stops.unshift(gateway.stop);
    bare = await startNodeBare(tmp, {
      pki,
      workers: config.workers,
      accessLog: config.accessLog,
      profileDir: profileDir && join(profileDir, 'node-bare'),
    });
    stops.unshift(bare.stop);
    const targets: Target[] = [
      { name: 'nginx', pid: nginx.pid, port: nginx.port },
      { name: 'gatehouse', pid: gateway.pid, port: gateway.port },
      { name: 'node-bare', pid: bare.pid, port: bare.port },
    ];
    for (const t of targets) await functionalCheck(t, pki);
    logs = {
      nginx: { file: nginx.accessLog ?? join(tmp, 'nginx-proxy-access.log'), needle: '\n' },
      gatehouse: { file: gateway.logFile, needle: '"msg":"gateway.request"' },
      'node-bare': { file: bare.logFile, needle: '"msg":"bare.request"' },
    };
    await checkAccessLogs(logs, config.accessLog);
    progress(
      `gateway: all three answer 200 "ok" to an allowed GET, refuse a request without a client certificate and answer 403 to POST${config.accessLog ? ', and logged those requests' : ''}; ${config.runs} run(s) of ${config.durationS} s (+${config.warmupS} s warm-up) per target and mode`,
    );

    for (let run = 1; run <= config.runs; run++) {
      const order = run % 2 ? targets : [...targets].reverse();
      for (const mode of config.modes) {
        for (const target of order) {
          const {
            result,
            served: n,
            window,
          } = await measure(target, mode, config, pki, upstream.pid, tmp, `[run ${run}/${config.runs}]`);
          windows[target.name].push(window);
          const key = `${target.name}|${mode}`;
          results.set(key, [...(results.get(key) ?? []), result]);
          served[target.name] += n;
        }
      }
    }
  } finally {
    for (const stop of stops) await stop();
  }

  const rows: GatewayRow[] = [];
  for (const mode of config.modes) {
    for (const name of TARGET_NAMES) {
      rows.push(
        summarizeRow(
          name,
          mode,
          mode === 'keepalive' ? config.keepAliveConcurrency : config.handshakeConcurrency,
          results.get(`${name}|${mode}`)!,
        ),
      );
    }
  }
  const med = (t: TargetName, m: GatewayMode) => rows.find((r) => r.target === t && r.mode === m)?.median;
  const ratioOf = (a: TargetName, b: TargetName) => (m: GatewayMode, f: (x: GatewayRow['median']) => number) => {
    const x = med(a, m);
    const y = med(b, m);
    return x && y ? f(x) / f(y) : NaN;
  };
  const fourRatios = (ratio: ReturnType<typeof ratioOf>) => ({
    keepAliveReqPerS: ratio('keepalive', (x) => x.reqPerS),
    keepAliveCpuPerReq: ratio('keepalive', (x) => x.serverCpuUsPerReq),
    handshakesPerS: ratio('handshake', (x) => x.reqPerS),
    cpuPerHandshake: ratio('handshake', (x) => x.serverCpuUsPerReq),
  });
  const ratios = {
    ...fourRatios(ratioOf('gatehouse', 'nginx')),
    gatehouseVsBare: fourRatios(ratioOf('gatehouse', 'node-bare')),
    bareVsNginx: fourRatios(ratioOf('node-bare', 'nginx')),
  };
  const accessLogs = {} as Record<TargetName, AccessLogCount>;
  for (const name of TARGET_NAMES) {
    const lines = occurrences(logs![name].file, logs![name].needle);
    // ab stops counting at -t while the server may still answer requests in flight: at least as many lines as counted requests.
    accessLogs[name] = {
      on: config.accessLog,
      lines,
      requests: served[name],
      ok: config.accessLog ? lines >= served[name] : lines === 0,
    };
  }
  const report: GatewayReport = {
    startedAt,
    machine: {
      cores: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      nodeOpenssl: process.versions.openssl,
      ...tools,
    },
    config,
    setup: {
      gatewayCommand: gateway!.command,
      gatewayWorkersFlag: gateway!.workersFlag,
      nodeBareCommand: bare!.command,
      nginxConfig: readFileSync(nginx!.configFile, 'utf8').replaceAll(tmp, '$TMP'),
      upstreamConfig: readFileSync(upstream.configFile, 'utf8').replaceAll(tmp, '$TMP'),
      policy: BENCH_POLICY,
      tls: [...new Set(rows.flatMap((r) => r.runs.map((x) => `${r.target}: ${x.tls}`)))],
    },
    rows,
    ratios,
    targets: {
      keepAliveThroughput: verdictOf(
        TARGETS.keepAliveThroughput,
        ratios.keepAliveReqPerS,
        ratios.keepAliveCpuPerReq,
        rows,
        'keepalive',
      ),
      handshakesPerS: verdictOf(
        TARGETS.handshakesPerS,
        ratios.handshakesPerS,
        ratios.cpuPerHandshake,
        rows,
        'handshake',
      ),
      cpuPerHandshakeVsBare: ceilingVerdictOf(TARGETS.cpuPerHandshakeVsBare, rows),
    },
    gatewayLog: { file: 'gateway stderr (temp dir)', ...countLevels(gateway!.logFile) },
    accessLogs,
  };
  if (profileDir) {
    const file = newestProfile(profileDir, profileSince);
    const gwProfile = file ? (JSON.parse(readFileSync(file, 'utf8')) as CpuProfile) : null;
    report.profile =
      file && gwProfile
        ? { file: relative(PROJECT_ROOT, file), summary: summarize(gwProfile, 25) }
        : { file: '(none written)', summary: 'the gateway wrote no CPU profile' };
    const bareFile = newestProfile(join(profileDir, 'node-bare'), profileSince);
    const bareProfile = bareFile ? (JSON.parse(readFileSync(bareFile, 'utf8')) as CpuProfile) : null;
    report.nodeBareProfile =
      bareFile && bareProfile
        ? { file: relative(PROJECT_ROOT, bareFile), summary: summarize(bareProfile, 10) }
        : { file: '(none written)', summary: 'node-bare wrote no CPU profile' };
    // Only comparable per request when each profile is the one process that served all of its requests.
    if (gwProfile && bareProfile && config.workers === 1)
      report.profileComparison = compareProfiles(gwProfile, bareProfile, windows, rows, config.modes);
  }
  printGatewayReport(report, writeGatewayJson(report));
}

function verdictOf(want: number, got: number, cpuRatio: number, rows: GatewayRow[], mode: GatewayMode): TargetVerdict {
  const otherCpuPct = Math.max(
    ...rows.filter((r) => r.mode === mode && r.target !== 'node-bare').map((r) => r.median.otherCpuPct),
  );
  return {
    want,
    got,
    met: got >= want,
    cpuImplied: 1 / cpuRatio,
    disturbed: otherCpuPct > DISTURBED_OTHER_PCT,
    otherCpuPct,
  };
}

function ceilingVerdictOf(want: number, rows: GatewayRow[]): CeilingVerdict {
  const of = (t: TargetName) => rows.find((r) => r.target === t && r.mode === 'handshake');
  const g = of('gatehouse');
  const b = of('node-bare');
  const gatehouseUs = g?.median.serverCpuUsPerReq ?? NaN;
  const nodeBareUs = b?.median.serverCpuUsPerReq ?? NaN;
  const got = gatehouseUs / nodeBareUs;
  const otherCpuPct = Math.max(g?.median.otherCpuPct ?? NaN, b?.median.otherCpuPct ?? NaN);
  return {
    want,
    got,
    met: got <= want,
    gatehouseUs,
    nodeBareUs,
    disturbed: otherCpuPct > DISTURBED_OTHER_PCT,
    otherCpuPct,
  };
}

/**
 * Main-thread self time per request, by place, for the gateway and node-bare, counting only the
 * samples inside each one's own measured ab runs (not start-up, warm-ups or the other targets'
 * turns): where the gateway's extra CPU goes, as far as V8 sees it. Native work with no
 * JavaScript on the stack (most of the TLS handshake) is sampled as "(idle)" and left out.
 */
function compareProfiles(
  gw: CpuProfile,
  bare: CpuProfile,
  windows: Record<TargetName, TimeWindow[]>,
  rows: GatewayRow[],
  modes: GatewayMode[],
): NonNullable<GatewayReport['profileComparison']> {
  const requests = (t: TargetName) =>
    rows.filter((r) => r.target === t).reduce((a, r) => a + r.runs.reduce((b, x) => b + x.complete, 0), 0);
  const procUs = (t: TargetName) =>
    rows
      .filter((r) => r.target === t)
      .reduce((a, r) => a + r.runs.reduce((b, x) => b + x.serverCpuUsPerReq * x.complete, 0), 0) / requests(t);
  const n = { gatehouse: requests('gatehouse'), 'node-bare': requests('node-bare') };
  const perReq = (g: Map<string, number>, b: Map<string, number>) => {
    const keys = [...new Set([...g.keys(), ...b.keys()])].filter((k) => k !== '(idle)' && !k.startsWith('(idle) '));
    const list = keys.map((place) => ({
      place,
      gatehouseUsPerReq: (g.get(place) ?? 0) / n.gatehouse,
      nodeBareUsPerReq: (b.get(place) ?? 0) / n['node-bare'],
    }));
    return list.sort((x, y) => y.gatehouseUsPerReq - y.nodeBareUsPerReq - (x.gatehouseUsPerReq - x.nodeBareUsPerReq));
  };
  const g = selfTimeByPlace(gw, windows.gatehouse);
  const b = selfTimeByPlace(bare, windows['node-bare']);
  const out = perReq(g, b);
  const functions = perReq(
    selfTimeByFunction(gw, windows.gatehouse),
    selfTimeByFunction(bare, windows['node-bare']),
  ).slice(0, 20);
  const total = (k: 'gatehouseUsPerReq' | 'nodeBareUsPerReq') => out.reduce((a, r) => a + r[k], 0);
  out.push({
    place: 'total without (idle)',
    gatehouseUsPerReq: total('gatehouseUsPerReq'),
    nodeBareUsPerReq: total('nodeBareUsPerReq'),
  });
  out.push({
    place: '(idle): waiting, and native work',
    gatehouseUsPerReq: (g.get('(idle)') ?? 0) / n.gatehouse,
    nodeBareUsPerReq: (b.get('(idle)') ?? 0) / n['node-bare'],
  });
  return {
    requests: n,
    modes,
    procCpuUsPerReq: { gatehouse: procUs('gatehouse'), 'node-bare': procUs('node-bare') },
    rows: out,
    functions,
  };
}

/** A Markdown table (pastes into docs/benchmarks.md): the first `leftColumns` columns text, the rest numbers. */
function markdown(header: string[], rows: string[][], leftColumns = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [
    line(header),
    `|${widths.map((w, i) => `${'-'.repeat(w + 1)}${i < leftColumns ? '-' : ':'}`).join('|')}|`,
    ...rows.map(line),
  ].join('\n');
}

function writeGatewayJson(r: GatewayReport): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, 'gateway-latest.json');
  writeFileSync(path, JSON.stringify(r, null, 2) + '\n');
  return path;
}

export function printGatewayReport(r: GatewayReport, jsonPath: string): void {
  const c = r.config;
  const get = (t: TargetName, m: GatewayMode) => r.rows.find((x) => x.target === t && x.mode === m)?.median;
  const cells = (t: TargetName) => {
    const k = get(t, 'keepalive');
    const h = get(t, 'handshake');
    return [
      fmtInt(k?.reqPerS ?? NaN),
      fmtNum(k?.serverCpuUsPerReq ?? NaN, 0),
      fmtNum(k?.p50Ms ?? NaN),
      fmtNum(k?.p99Ms ?? NaN),
      fmtInt(h?.reqPerS ?? NaN),
      fmtInt(h?.serverCpuUsPerReq ?? NaN),
      fmtNum(h?.p50Ms ?? NaN),
      fmtNum(h?.p99Ms ?? NaN),
    ];
  };
  const ratioRow = (a: TargetName, b: TargetName): string[] => {
    const rk = (f: (x: GatewayRow['median']) => number, m: GatewayMode) => {
      const x = get(a, m);
      const y = get(b, m);
      return fmtRatio(x && y ? f(x) / f(y) : NaN);
    };
    return [
      `ratio ${a}/${b}`,
      ...(['keepalive', 'handshake'] as const).flatMap((m) => [
        rk((x) => x.reqPerS, m),
        rk((x) => x.serverCpuUsPerReq, m),
        rk((x) => x.p50Ms, m),
        rk((x) => x.p99Ms, m),
      ]),
    ];
  };
  const summary = markdown(
    [
      '',
      `keep-alive req/s (c=${c.keepAliveConcurrency})`,
      'CPU µs/req',
      'p50 ms',
      'p99 ms',
      `handshakes/s (c=${c.handshakeConcurrency})`,
      'CPU µs/handshake',
      'p50 ms',
      'p99 ms',
    ],
    [
      ...TARGET_NAMES.map((t) => [t, ...cells(t)]),
      ratioRow('gatehouse', 'nginx'),
      ratioRow('gatehouse', 'node-bare'),
      ratioRow('node-bare', 'nginx'),
    ],
  );
  const detail = markdown(
    [
      'target',
      'mode',
      'c',
      'req/s median',
      'range',
      'p50 ms',
      'p99 ms',
      'server µs/req',
      'of it sys %',
      'server CPU %',
      'upstream CPU %',
      'ab CPU %',
      'other CPU %',
    ],
    r.rows.map((x) => [
      x.target,
      x.mode,
      String(x.concurrency),
      fmtInt(x.median.reqPerS),
      `${fmtInt(x.reqPerSRange[0])}–${fmtInt(x.reqPerSRange[1])}`,
      fmtNum(x.median.p50Ms),
      fmtNum(x.median.p99Ms),
      fmtNum(x.median.serverCpuUsPerReq, 0),
      fmtInt(x.median.serverSysShare),
      fmtInt(x.median.serverCpuPct),
      fmtInt(x.median.upstreamCpuPct),
      fmtInt(x.median.abCpuPct),
      fmtInt(x.median.otherCpuPct),
    ]),
    2,
  );
  const disturbedNote = (t: { disturbed: boolean; otherCpuPct: number }, what: string) =>
    t.disturbed
      ? `\n     !! disturbed: other processes used up to ${fmtInt(t.otherCpuPct)} % of a core (median per target) during these runs: ${what}`
      : '';
  const verdict = (name: string, t: TargetVerdict) => {
    if (!Number.isFinite(t.got)) return `   ${name} ≥ ${t.want}× nginx: not measured (BENCH_GW_MODES)`;
    const cpu = `CPU per request implies ${fmtRatio(t.cpuImplied)}, ${t.cpuImplied >= t.want ? 'which meets it' : 'which does not'}`;
    return (
      `   ${name} ≥ ${t.want}× nginx: ${t.met ? 'MET' : 'NOT MET'} (${fmtRatio(t.got)}); ${cpu}` +
      disturbedNote(t, 'the req/s ratio is unreliable, the CPU ratio less so')
    );
  };
  const ceiling = (t: CeilingVerdict) => {
    const name = 'gateway CPU per full handshake';
    if (!Number.isFinite(t.got)) return `   ${name} ≤ ${t.want}× bare Node: not measured (BENCH_GW_MODES)`;
    return (
      `   ${name} ≤ ${t.want}× bare Node: ${t.met ? 'MET' : 'NOT MET'} (${fmtRatio(t.got)}: gatehouse ${fmtInt(t.gatehouseUs)} µs, node-bare ${fmtInt(t.nodeBareUs)} µs per handshake)` +
      disturbedNote(
        t,
        'CPU per handshake moves less than req/s, but shared caches and the sandbox still make it noisier',
      )
    );
  };
  const missed = [r.targets.keepAliveThroughput, r.targets.handshakesPerS, r.targets.cpuPerHandshakeVsBare].some(
    (t) => Number.isFinite(t.got) && !t.met,
  );
  const accessLines = TARGET_NAMES.map((t) => {
    const a = r.accessLogs[t];
    return a.on
      ? `${t} ${fmtInt(a.lines)} line(s) for ${fmtInt(a.requests)} requests${a.ok ? '' : ' !! FEWER LINES THAN REQUESTS'}`
      : `${t} ${a.ok ? 'none' : `${fmtInt(a.lines)} line(s) !! logged anyway`}`;
  }).join(', ');
  const comparison = r.profileComparison
    ? [
        '',
        `Where the gateway's extra time goes: main-thread self time per request (µs) inside each one's measured runs (gatehouse ${fmtInt(r.profileComparison.requests.gatehouse)},`,
        `node-bare ${fmtInt(r.profileComparison.requests['node-bare'])} requests; ${r.profileComparison.modes.length > 1 ? 'keep-alive and handshake requests mixed: BENCH_GW_MODES=handshake gives µs per handshake' : `${r.profileComparison.modes[0]} mode`}), by place, largest gateway excess first.`,
        `For scale, whole-process CPU from /proc over the same runs: gatehouse ${fmtInt(r.profileComparison.procCpuUsPerReq.gatehouse)}, node-bare ${fmtInt(r.profileComparison.procCpuUsPerReq['node-bare'])} µs/req; the rest of it is`,
        'native work V8 samples as "(idle)" (most of the TLS handshake), other threads and the kernel:',
        markdown(
          ['place', 'gatehouse µs/req', 'node-bare µs/req', 'difference'],
          r.profileComparison.rows
            .filter((x) => x.gatehouseUsPerReq + x.nodeBareUsPerReq >= 0.05)
            .map((x) => [
              x.place,
              fmtNum(x.gatehouseUsPerReq, 1),
              fmtNum(x.nodeBareUsPerReq, 1),
              fmtNum(x.gatehouseUsPerReq - x.nodeBareUsPerReq, 1),
            ]),
        ),
        'The 20 functions with the largest gateway excess (µs per request, same samples):',
        markdown(
          ['function', 'gatehouse µs/req', 'node-bare µs/req', 'difference'],
          r.profileComparison.functions.map((x) => [
            x.place,
            fmtNum(x.gatehouseUsPerReq, 1),
            fmtNum(x.nodeBareUsPerReq, 1),
            fmtNum(x.gatehouseUsPerReq - x.nodeBareUsPerReq, 1),
          ]),
        ),
      ]
    : [];
  const out = [
    `Gatehouse gateway vs nginx, mutual-TLS reverse proxy, with a bare Node https server as the ceiling (${r.startedAt})`,
    `Machine: ${r.machine.cores} cores (${r.machine.cpuModel}); Node ${r.machine.node} (OpenSSL ${r.machine.nodeOpenssl}); ${r.machine.nginx}; ${r.machine.ab}`,
    `ab, the target under test, the shared upstream nginx (1 worker; idle while node-bare is measured) and the two idle other targets all share these ${r.machine.cores} cores: req/s`,
    `is what the box does with the client on it; "CPU µs/req" is the target's own CPU (its process tree, /proc/<pid>/stat) per request, independent of who else shares the cores.`,
    `node-bare: Node https.createServer with the gateway's TLS context (requestCert, rejectUnauthorized false, socket.authorized checked per request), answering 200 "ok" itself: no upstream, no policy.`,
    `Medians of ${c.runs} run(s) of ${c.durationS} s (+${c.warmupS} s warm-up), target order alternating per run. Workers: ${c.workers} (nginx worker_processes; gateway ${r.setup.gatewayWorkersFlag ? '--workers' : 'has no --workers: 1 process'}; node-bare ${c.workers > 1 ? 'node:cluster' : '1 process'}).`,
    `Access logs: ${c.accessLog ? 'all three write one line per request to a file (gateway JSON at info, node-bare JSON through the same batched logger, nginx access_log)' : 'off for all three (GATEHOUSE_LOG_LEVEL=warn, access_log off)'}; ${accessLines}. TLS: ${r.setup.tls.join('; ')}.`,
    '',
    summary,
    '',
    'Targets (from the issue):',
    verdict('keep-alive throughput', r.targets.keepAliveThroughput),
    verdict('full handshakes/s', r.targets.handshakesPerS),
    ceiling(r.targets.cpuPerHandshakeVsBare),
    ...(missed && !r.profile
      ? [
          '   A target is missed: BENCH_CPU_PROF=1 (with BENCH_GW_MODES=handshake or =keepalive) profiles the gateway and node-bare and shows where the extra time goes.',
        ]
      : []),
    '',
    'Per target and mode (handshake mode: every request is a new connection with a full mutual-TLS handshake; its µs include serving that request):',
    detail,
    `   CPU %: 100 = one core. "other" = every other process on the machine during the window (the two idle targets included); well above ~10 % means the run was disturbed.\n   No failed, non-2xx or non-kept-alive requests in any run (checked; any would have failed the bench).`,
    `   Gateway log: ${fmtInt(r.gatewayLog.bytes / 1024)} KiB, ${r.gatewayLog.warnings} warning(s), ${r.gatewayLog.errors} error(s)${r.gatewayLog.events.length ? ` (${r.gatewayLog.events.join(', ')})` : ''}.`,
    ...(r.profile
      ? [
          '',
          `Gateway CPU profile: ${r.profile.file} (main thread, whole run: "(idle)" includes the time the other targets were measured and`,
          'the native TLS handshake work that V8 does not attribute; BENCH_GW_MODES=keepalive or =handshake profiles one mode)',
          r.profile.summary,
        ]
      : []),
    ...(r.nodeBareProfile ? ['', `node-bare CPU profile: ${r.nodeBareProfile.file}`, r.nodeBareProfile.summary] : []),
    ...comparison,
    '',
    `Raw numbers, commands and both nginx configs: ${relative(PROJECT_ROOT, jsonPath)}`,
  ];
  process.stdout.write(out.join('\n') + '\n');
}

if (isEntryPoint(import.meta.url)) runAsScript('gateway', runGatewayBench);
