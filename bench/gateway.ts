/**
 * Gateway benchmark: the Gatehouse gateway against nginx as the mutual-TLS reverse proxy peer,
 * same machine, same run, same upstream, same certificates, same load generator.
 *
 *   upstream app: nginx, 1 worker, plain HTTP on 127.0.0.1, `return 200 "ok"` (shared)
 *   peer:         nginx, BENCH_GW_WORKERS workers, ssl_verify_client on, role check, identity headers, keep-alive upstream
 *   under test:   `node dist/src/cli/main.js gateway … --policy` (talk-format allow for role web)
 *   load:         ab -E client.pem, keep-alive (-k) and one full handshake per request (no -k)
 *
 * Runs alternate the target order; medians over BENCH_RUNS. Any failed or non-2xx request
 * fails the bench. Env: BENCH_DURATION_S (8), BENCH_WARMUP_S (1), BENCH_RUNS (3),
 * BENCH_GW_CONCURRENCY (50, keep-alive), BENCH_GW_HANDSHAKE_CONCURRENCY (16),
 * BENCH_GW_MODES (keepalive,handshake), BENCH_GW_WORKERS (1), BENCH_GW_ACCESS_LOG (1: both
 * proxies log every request to a file; 0: neither), BENCH_CPU_PROF=1 (profile the gateway).
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
import { summarize, type CpuProfile } from './profile-summary.js';
import { fmtInt, fmtNum, fmtRatio, median } from './stats.js';

/** From the issue: the gateway's targets relative to nginx measured in the same run. */
export const TARGETS = { keepAliveThroughput: 0.5, handshakesPerS: 0.9 } as const;

/** Median CPU of processes other than ab, the proxy and the upstream above which a mode's req/s ratio is called unreliable (100 = one core). */
const DISTURBED_OTHER_PCT = 15;

/** A target's verdict. `cpuImplied` is nginx CPU/req ÷ gatehouse CPU/req: the req/s ratio if both were CPU-bound on equal cores. */
export interface TargetVerdict { want: number; got: number; met: boolean; cpuImplied: number; disturbed: boolean; otherCpuPct: number }

type TargetName = 'nginx' | 'gatehouse';

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
  median: { reqPerS: number; p50Ms: number; p99Ms: number; serverCpuUsPerReq: number; serverCpuPct: number; serverSysShare: number; upstreamCpuPct: number; abCpuPct: number; otherCpuPct: number };
  reqPerSRange: [number, number];
}

export interface GatewayReport {
  startedAt: string;
  machine: { cores: number; cpuModel: string; node: string; nodeOpenssl: string; nginx: string; ab: string };
  config: GatewayBenchConfig;
  setup: { gatewayCommand: string; gatewayWorkersFlag: boolean; nginxConfig: string; upstreamConfig: string; policy: unknown; tls: string[] };
  rows: GatewayRow[];
  ratios: { keepAliveReqPerS: number; keepAliveCpuPerReq: number; handshakesPerS: number; cpuPerHandshake: number };
  targets: { keepAliveThroughput: TargetVerdict; handshakesPerS: TargetVerdict };
  gatewayLog: { file: string; bytes: number; warnings: number; errors: number };
  profile?: { file: string; summary: string };
}

const progress = (line: string) => process.stderr.write(`${line}\n`);

/** Fails before anything is measured if a tool this bench needs is missing. */
export function gatewayPreflight(): { nginx: string; ab: string } {
  return { nginx: nginxVersion(), ab: abVersion() };
}

/** One GET or POST on its own connection, with or without the client certificate. */
function once(port: number, pki: GatewayPki, withCert: boolean, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, path: '/', method, agent: false, timeout: 15_000, servername: 'localhost', headers: { host: `localhost:${port}` }, ca: pki.client.caPem,
      ...(withCert ? { key: pki.client.keyPem, cert: pki.client.certPem } : {}),
    }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from 127.0.0.1:${port} within 15 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** Both proxies must forward an allowed GET and refuse what the policy or mTLS refuses, before anything is timed. */
async function functionalCheck(target: Target, pki: GatewayPki): Promise<void> {
  const ok = await once(target.port, pki, true);
  if (ok.status !== 200 || ok.body !== 'ok') throw new Error(`${target.name}: GET / with the client certificate answered ${ok.status} ${JSON.stringify(ok.body.slice(0, 300))}, expected 200 "ok" from the upstream`);
  const noCert = await once(target.port, pki, false).catch((err: Error) => ({ status: -1, body: err.message }));
  if (noCert.status === 200) throw new Error(`${target.name}: GET / without a client certificate answered 200: mutual TLS is not enforced`);
  const post = await once(target.port, pki, true, 'POST');
  if (post.status !== 403) throw new Error(`${target.name}: POST / answered ${post.status}, expected 403 (the policy allows only GET)`);
}

function summarizeRow(target: TargetName, mode: GatewayMode, concurrency: number, runs: AbResult[]): GatewayRow {
  const m = (f: (r: AbResult) => number) => median(runs.map(f));
  const rates = runs.map((r) => r.reqPerS);
  return {
    target, mode, concurrency, runs,
    median: {
      reqPerS: m((r) => r.reqPerS), p50Ms: m((r) => r.p50Ms), p99Ms: m((r) => r.p99Ms), serverCpuUsPerReq: m((r) => r.serverCpuUsPerReq),
      serverCpuPct: m((r) => r.serverCpuPct), serverSysShare: m((r) => r.serverSysShare), upstreamCpuPct: m((r) => r.upstreamCpuPct), abCpuPct: m((r) => r.abCpuPct), otherCpuPct: m((r) => r.otherCpuPct),
    },
    reqPerSRange: [Math.min(...rates), Math.max(...rates)],
  };
}

async function measure(target: Target, mode: GatewayMode, config: GatewayBenchConfig, pki: GatewayPki, upstreamPid: number, tmp: string, tag: string): Promise<AbResult> {
  const keepAlive = mode === 'keepalive';
  const concurrency = keepAlive ? config.keepAliveConcurrency : config.handshakeConcurrency;
  const spec = { url: `https://127.0.0.1:${target.port}/`, clientPem: pki.clientPem, keepAlive, concurrency, csvFile: join(tmp, 'ab.csv'), serverPid: target.pid, upstreamPid };
  if (config.warmupS > 0) {
    const warm = await runAb({ ...spec, durationS: config.warmupS });
    const bad = problemsOf(warm, keepAlive);
    if (bad) throw new Error(`${target.name} ${mode} warm-up: ${bad}\n  ${warm.command}`);
  }
  const r = await runAb({ ...spec, durationS: config.durationS });
  const bad = problemsOf(r, keepAlive);
  const label = `${target.name} ${mode === 'keepalive' ? 'keep-alive' : 'handshake'} c=${concurrency}`;
  progress(`  ${tag} ${label.padEnd(28)} ${fmtInt(r.reqPerS).padStart(6)} req/s  p50 ${fmtNum(r.p50Ms)} ms  p99 ${fmtNum(r.p99Ms)} ms  server ${fmtNum(r.serverCpuUsPerReq, 0)} µs/req ${fmtInt(r.serverCpuPct)} % (sys ${fmtInt(r.serverSysShare)} %)  upstream ${fmtInt(r.upstreamCpuPct)} %  ab ${fmtInt(r.abCpuPct)} %  other ${fmtInt(r.otherCpuPct)} %${bad ? `  !! ${bad}` : ''}`);
  if (bad) throw new Error(`${label}: ${bad}. A benchmark of refused or failed requests is meaningless; see the logs in the temp dir.\n  ${r.command}`);
  return r;
}

function countLevels(file: string): { bytes: number; warnings: number; errors: number } {
  if (!existsSync(file)) return { bytes: 0, warnings: 0, errors: 0 };
  const text = readFileSync(file, 'utf8');
  return { bytes: Buffer.byteLength(text), warnings: (text.match(/"level":"warn"/g) ?? []).length, errors: (text.match(/"level":"error"/g) ?? []).length };
}

function newestProfile(dir: string, since: number): string | null {
  if (!existsSync(dir)) return null;
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f)).filter((f) => statSync(f).mtimeMs >= since);
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

  progress(`gateway: Gatehouse CA certificates, upstream nginx, nginx mTLS proxy (${config.workers} worker(s)), Gatehouse gateway; access logs ${config.accessLog ? 'on (both, to files)' : 'off (both)'}`);
  const pki = await makeGatewayPki(join(tmp, 'pki'));
  const upstream = await startUpstream(tmp);
  const stops: Array<() => Promise<void>> = [upstream.stop];
  let nginx: NginxProcess | undefined;
  let gateway: GatewayProcess | undefined;
  const results = new Map<string, AbResult[]>();
  try {
    nginx = await startNginxProxy(tmp, upstream.port, config.workers, pki, config.accessLog);
    stops.unshift(nginx.stop);
    gateway = await startGatewayProcess(tmp, { upstreamPort: upstream.port, pki, workers: config.workers, accessLog: config.accessLog, profileDir });
    stops.unshift(gateway.stop);
    const targets: Target[] = [{ name: 'nginx', pid: nginx.pid, port: nginx.port }, { name: 'gatehouse', pid: gateway.pid, port: gateway.port }];
    for (const t of targets) await functionalCheck(t, pki);
    progress(`gateway: both proxies answer 200 "ok" to an allowed GET, refuse a request without a client certificate and answer 403 to POST; ${config.runs} run(s) of ${config.durationS} s (+${config.warmupS} s warm-up) per target and mode`);

    for (let run = 1; run <= config.runs; run++) {
      const order = run % 2 ? targets : [...targets].reverse();
      for (const mode of config.modes) {
        for (const target of order) {
          const r = await measure(target, mode, config, pki, upstream.pid, tmp, `[run ${run}/${config.runs}]`);
          const key = `${target.name}|${mode}`;
          results.set(key, [...(results.get(key) ?? []), r]);
        }
      }
    }
  } finally {
    for (const stop of stops) await stop();
  }

  const rows: GatewayRow[] = [];
  for (const mode of config.modes) {
    for (const name of ['nginx', 'gatehouse'] as const) {
      rows.push(summarizeRow(name, mode, mode === 'keepalive' ? config.keepAliveConcurrency : config.handshakeConcurrency, results.get(`${name}|${mode}`)!));
    }
  }
  const med = (t: TargetName, m: GatewayMode) => rows.find((r) => r.target === t && r.mode === m)?.median;
  const ratio = (m: GatewayMode, f: (x: GatewayRow['median']) => number) => {
    const g = med('gatehouse', m);
    const n = med('nginx', m);
    return g && n ? f(g) / f(n) : NaN;
  };
  const ratios = {
    keepAliveReqPerS: ratio('keepalive', (x) => x.reqPerS), keepAliveCpuPerReq: ratio('keepalive', (x) => x.serverCpuUsPerReq),
    handshakesPerS: ratio('handshake', (x) => x.reqPerS), cpuPerHandshake: ratio('handshake', (x) => x.serverCpuUsPerReq),
  };
  const report: GatewayReport = {
    startedAt,
    machine: { cores: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version, nodeOpenssl: process.versions.openssl, ...tools },
    config,
    setup: {
      gatewayCommand: gateway!.command, gatewayWorkersFlag: gateway!.workersFlag,
      nginxConfig: readFileSync(nginx!.configFile, 'utf8').replaceAll(tmp, '$TMP'), upstreamConfig: readFileSync(upstream.configFile, 'utf8').replaceAll(tmp, '$TMP'),
      policy: BENCH_POLICY, tls: [...new Set(rows.flatMap((r) => r.runs.map((x) => `${r.target}: ${x.tls}`)))],
    },
    rows,
    ratios,
    targets: {
      keepAliveThroughput: verdictOf(TARGETS.keepAliveThroughput, ratios.keepAliveReqPerS, ratios.keepAliveCpuPerReq, rows, 'keepalive'),
      handshakesPerS: verdictOf(TARGETS.handshakesPerS, ratios.handshakesPerS, ratios.cpuPerHandshake, rows, 'handshake'),
    },
    gatewayLog: { file: 'gateway stderr (temp dir)', ...countLevels(gateway!.logFile) },
  };
  if (profileDir) {
    const file = newestProfile(profileDir, profileSince);
    report.profile = file
      ? { file: relative(PROJECT_ROOT, file), summary: summarize(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, 25) }
      : { file: '(none written)', summary: 'the gateway wrote no CPU profile' };
  }
  printGatewayReport(report, writeGatewayJson(report));
}

function verdictOf(want: number, got: number, cpuRatio: number, rows: GatewayRow[], mode: GatewayMode): TargetVerdict {
  const otherCpuPct = Math.max(...rows.filter((r) => r.mode === mode).map((r) => r.median.otherCpuPct));
  return { want, got, met: got >= want, cpuImplied: 1 / cpuRatio, disturbed: otherCpuPct > DISTURBED_OTHER_PCT, otherCpuPct };
}

/** A Markdown table (pastes into docs/benchmarks.md): the first `leftColumns` columns text, the rest numbers. */
function markdown(header: string[], rows: string[][], leftColumns = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [line(header), `|${widths.map((w, i) => `${'-'.repeat(w + 1)}${i < leftColumns ? '-' : ':'}`).join('|')}|`, ...rows.map(line)].join('\n');
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
    return [fmtInt(k?.reqPerS ?? NaN), fmtNum(k?.serverCpuUsPerReq ?? NaN, 0), fmtNum(k?.p50Ms ?? NaN), fmtNum(k?.p99Ms ?? NaN), fmtInt(h?.reqPerS ?? NaN), fmtInt(h?.serverCpuUsPerReq ?? NaN)];
  };
  const rk = (f: (x: GatewayRow['median']) => number, m: GatewayMode) => {
    const g = get('gatehouse', m);
    const n = get('nginx', m);
    return fmtRatio(g && n ? f(g) / f(n) : NaN);
  };
  const summary = markdown(
    ['', `keep-alive req/s (c=${c.keepAliveConcurrency})`, 'CPU µs/req', 'p50 ms', 'p99 ms', `handshakes/s (c=${c.handshakeConcurrency})`, 'CPU µs/handshake'],
    [['nginx', ...cells('nginx')], ['gatehouse', ...cells('gatehouse')],
      ['ratio gatehouse/nginx', rk((x) => x.reqPerS, 'keepalive'), rk((x) => x.serverCpuUsPerReq, 'keepalive'), rk((x) => x.p50Ms, 'keepalive'), rk((x) => x.p99Ms, 'keepalive'), rk((x) => x.reqPerS, 'handshake'), rk((x) => x.serverCpuUsPerReq, 'handshake')]],
  );
  const detail = markdown(
    ['target', 'mode', 'c', 'req/s median', 'range', 'p50 ms', 'p99 ms', 'server µs/req', 'of it sys %', 'server CPU %', 'upstream CPU %', 'ab CPU %', 'other CPU %'],
    r.rows.map((x) => [x.target, x.mode, String(x.concurrency), fmtInt(x.median.reqPerS), `${fmtInt(x.reqPerSRange[0])}–${fmtInt(x.reqPerSRange[1])}`, fmtNum(x.median.p50Ms), fmtNum(x.median.p99Ms),
      fmtNum(x.median.serverCpuUsPerReq, 0), fmtInt(x.median.serverSysShare), fmtInt(x.median.serverCpuPct), fmtInt(x.median.upstreamCpuPct), fmtInt(x.median.abCpuPct), fmtInt(x.median.otherCpuPct)]),
    2,
  );
  const verdict = (name: string, t: TargetVerdict) => {
    if (!Number.isFinite(t.got)) return `   ${name} ≥ ${t.want}× nginx: not measured (BENCH_GW_MODES)`;
    const cpu = `CPU per request implies ${fmtRatio(t.cpuImplied)}, ${t.cpuImplied >= t.want ? 'which meets it' : 'which does not'}`;
    return `   ${name} ≥ ${t.want}× nginx: ${t.met ? 'MET' : 'NOT MET'} (${fmtRatio(t.got)}); ${cpu}` +
      (t.disturbed ? `\n     !! disturbed: other processes used up to ${fmtInt(t.otherCpuPct)} % of a core (median per target) during these runs: the req/s ratio is unreliable, the CPU ratio less so` : '');
  };
  const out = [
    `Gatehouse gateway vs nginx, mutual-TLS reverse proxy (${r.startedAt})`,
    `Machine: ${r.machine.cores} cores (${r.machine.cpuModel}); Node ${r.machine.node} (OpenSSL ${r.machine.nodeOpenssl}); ${r.machine.nginx}; ${r.machine.ab}`,
    `ab, the proxy under test, the shared upstream nginx (1 worker) and the idle other proxy all share these ${r.machine.cores} cores: req/s is what the box`,
    `does with the client on it; "CPU µs/req" is the proxy's own CPU (its process tree, /proc/<pid>/stat) per request, independent of who else shares the cores.`,
    `Medians of ${c.runs} run(s) of ${c.durationS} s (+${c.warmupS} s warm-up), target order alternating per run. Workers: ${c.workers} (nginx worker_processes; gateway ${r.setup.gatewayWorkersFlag ? '--workers' : 'has no --workers: 1 process'}).`,
    `Access logs: ${c.accessLog ? 'both proxies write one line per request to a file (gateway JSON at info, nginx access_log)' : 'off for both (GATEHOUSE_LOG_LEVEL=warn, access_log off)'}. TLS: ${r.setup.tls.join('; ')}.`,
    '',
    summary,
    '',
    'Targets (from the issue):',
    verdict('keep-alive throughput', r.targets.keepAliveThroughput),
    verdict('full handshakes/s', r.targets.handshakesPerS),
    '',
    'Per target and mode (handshake mode: every request is a new connection with a full mutual-TLS handshake; its µs include proxying that request):',
    detail,
    `   CPU %: 100 = one core. "other" = every other process on the machine during the window; well above ~10 % means the run was disturbed.\n   No failed, non-2xx or non-kept-alive requests in any run (checked; any would have failed the bench).`,
    `   Gateway log: ${fmtInt(r.gatewayLog.bytes / 1024)} KiB, ${r.gatewayLog.warnings} warning(s), ${r.gatewayLog.errors} error(s).`,
    ...(r.profile ? ['', `Gateway CPU profile: ${r.profile.file} (main thread, whole run: "(idle)" includes the time nginx was measured and`,
      'the native TLS handshake work that V8 does not attribute; BENCH_GW_MODES=keepalive or =handshake profiles one mode)', r.profile.summary] : []),
    '',
    `Raw numbers, commands and both nginx configs: ${relative(PROJECT_ROOT, jsonPath)}`,
  ];
  process.stdout.write(out.join('\n') + '\n');
}

if (isEntryPoint(import.meta.url)) runAsScript('gateway', runGatewayBench);
