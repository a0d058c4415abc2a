/** The printed report and bench/results/latest.json. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, relative } from 'node:path';
import type { BenchConfig } from './config.js';
import { PROJECT_ROOT, RESULTS_DIR } from './fixtures.js';
import type { HttpRow } from './http-bench.js';
import type { MicroResults } from './micro.js';
import type { OpensslSpeed } from './openssl-speed.js';
import { fmtInt, fmtNum, fmtRatio, table } from './stats.js';

export interface Report {
  startedAt: string;
  machine: {
    cores: number;
    cpuModel: string;
    node: string;
    nodeOpenssl: string;
    openssl: string;
    cfssl: string;
    postgres: string | null;
  };
  config: BenchConfig;
  micro: MicroResults;
  opensslSpeed: OpensslSpeed;
  http: HttpRow[];
}

export function machineInfo(openssl: string, cfssl: string, postgres?: string): Report['machine'] {
  return {
    cores: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    nodeOpenssl: process.versions.openssl,
    openssl,
    cfssl,
    postgres: postgres ?? null,
  };
}

function header(r: Report): string {
  const c = r.config;
  return [
    `Gatehouse certificate issuance benchmark (${r.startedAt})`,
    `Machine: ${r.machine.cores} cores (${r.machine.cpuModel}); Node ${r.machine.node} (OpenSSL ${r.machine.nodeOpenssl}); ${r.machine.openssl}; cfssl ${r.machine.cfssl}${r.machine.postgres ? `; ${r.machine.postgres}` : ''}`,
    `The load generator (a separate Node process), the CA server and the peer all share these ${r.machine.cores} cores: certs/s is`,
    `what the box does with the client on it; "server CPU µs/cert" (from /proc/<pid>/stat) is the implementation's own cost.`,
    `Medians of ${c.httpRuns} HTTP run(s) of ${c.durationS} s (+${c.warmupS} s warm-up) and of ${c.microRuns} micro run(s). All traffic to 127.0.0.1. Differences under ~20 % are noise here.`,
  ].join('\n');
}

function microSection(r: Report): string {
  const cs = r.micro.cases;
  const rows = Object.values(cs).map((c) => [
    c.label,
    fmtInt(c.iterations),
    fmtNum(c.medianUs, 1),
    fmtInt(1e6 / c.medianUs),
  ]);
  const ratio = (a: string, b: string) => (cs[a]?.medianUs ?? NaN) / (cs[b]?.medianUs ?? NaN);
  return [
    `1. Per-certificate cost in-process (µs/op, median of ${r.config.microRuns} runs of N)`,
    table(['case', 'N', 'µs/op', 'ops/s'], rows),
    `   library/fast: build leaf ${fmtRatio(ratio('build.library', 'build.fast'))}, CSR parse+verify ${fmtRatio(ratio('csr.library', 'csr.fast'))}`,
    `   fast path over the crypto floor: build leaf = ${fmtNum(ratio('build.fast', 'floor.sign'), 1)} signatures, CSR parse = ${fmtNum(ratio('csr.fast', 'floor.verify'), 1)} verifications`,
    `   builders compared: ${r.micro.equivalent.ok ? 'equivalent' : 'NOT EQUIVALENT'} (${r.micro.equivalent.detail})`,
  ].join('\n');
}

function ceilingSection(r: Report): string {
  const s = r.opensslSpeed;
  const nodeSign = r.micro.cases['floor.sign']?.medianUs ?? NaN;
  return [
    `2. Peer ceiling: ${s.command} (1 core, same run)`,
    `   ${fmtInt(s.signPerS)} sign/s (${fmtNum(1e6 / s.signPerS, 1)} µs/sign), ${fmtInt(s.verifyPerS)} verify/s;`,
    `   Node crypto.sign P-256 ${fmtInt(1e6 / nodeSign)}/s (${fmtNum(nodeSign, 1)} µs): openssl/Node ${fmtRatio(s.signPerS / (1e6 / nodeSign))}`,
  ].join('\n');
}

function httpSection(r: Report): string {
  const rows = r.http.map((h) => [
    h.target,
    h.endpoint,
    String(h.concurrency),
    fmtInt(h.median.certsPerS),
    `${fmtInt(h.certsPerSRange[0])}–${fmtInt(h.certsPerSRange[1])}`,
    fmtNum(h.median.p50Ms),
    fmtNum(h.median.p99Ms),
    fmtInt(h.median.serverCpuUsPerCert),
    fmtInt(h.median.serverSysShare),
    fmtInt(h.median.serverCpuPct),
    fmtInt(h.median.clientCpuPct),
    fmtInt(h.median.otherCpuPct),
    `${h.errors}${h.tokensExhausted ? ' (tokens ran out!)' : ''}`,
  ]);
  return [
    '3. HTTP issuance over keep-alive mutual TLS (CSR in, certificate out)',
    table(
      [
        'target',
        'endpoint',
        'c',
        'certs/s',
        'range',
        'p50 ms',
        'p99 ms',
        'server µs/cert',
        'of it sys %',
        'server CPU %',
        'client CPU %',
        'other CPU %',
        'errors',
      ],
      rows,
      2,
    ),
    `   gatehouse-pg: the same CA on PostgreSQL (issuances waiting together share a transaction, pool of 10); gatehouse-pg×2: two CA processes (copies of one CA dir) on that database, connections split over both.`,
    `   /renew: connection i renews as bench identity i mod ${r.config.fleetSize} (BENCH_FLEET), each its own certificate, as a fleet renews.`,
    `   gatehouse: ${process.env.BENCH_CA_WORKERS ?? '1'} worker process(es) (BENCH_CA_WORKERS, as \`ca serve --workers\`); answers after the certificate and its audit events are committed to SQLite (WAL, synchronous=FULL, group commit),`,
    `   log level ${r.config.caLogLevel} to a file; /enroll uses a fresh single-use join token per request, made before timing for the bench identity's exact name (an open token may not take over a name an active certificate holds: GH_NAME_TAKEN).`,
    `   cfssl: no -db-config (nothing is recorded), -loglevel ${r.config.cfsslLogLevel} to a file. Errors = non-2xx or 2xx without a certificate.`,
    `   "of it sys %": kernel share of the server's CPU (socket I/O, fsync). CPU %: 100 = one core. "other" = every other process on the machine during the window; well above ~10 % means the run was disturbed.`,
  ].join('\n');
}

function ratioSection(r: Report): string {
  const find = (target: string, c: number) =>
    r.http.find((h) => h.target === target && h.concurrency === c && h.endpoint !== 'POST /enroll');
  const rows = r.config.concurrencies.map((c) => {
    const g = find('gatehouse', c)?.median;
    const p = find('cfssl', c)?.median;
    return [
      String(c),
      fmtRatio((g?.certsPerS ?? NaN) / (p?.certsPerS ?? NaN)),
      fmtRatio((g?.serverCpuUsPerCert ?? NaN) / (p?.serverCpuUsPerCert ?? NaN)),
    ];
  });
  const sign = 1e6 / r.opensslSpeed.signPerS;
  const cpu = (t: string) =>
    fmtNum(
      Math.min(
        ...r.http
          .filter((h) => h.target === t && h.endpoint !== 'POST /enroll')
          .map((h) => h.median.serverCpuUsPerCert),
      ) / sign,
      0,
    );
  return [
    '4. Ratios Gatehouse /renew ÷ cfssl sign (certs/s: >1 is faster; CPU µs/cert: <1 is cheaper)',
    table(['c', 'certs/s', 'server CPU/cert'], rows),
    `   Best server CPU per certificate in openssl signatures (${fmtNum(sign, 1)} µs each): gatehouse ${cpu('gatehouse')}, cfssl ${cpu('cfssl')}.`,
  ].join('\n');
}

const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');

function postgresSection(r: Report): string | null {
  const renew = (target: string, c: number) =>
    r.http.find((h) => h.target === target && h.concurrency === c && h.endpoint === 'POST /renew');
  const sign = (c: number) => r.http.find((h) => h.target === 'cfssl' && h.concurrency === c);
  const pgRows = r.http.filter((h) => h.target.startsWith('gatehouse-pg'));
  if (pgRows.length === 0) return null;
  const levels = r.config.pgConcurrencies;
  const rows = levels.flatMap((c) =>
    ['gatehouse', 'gatehouse-pg', 'gatehouse-pg×2', 'cfssl']
      .map((t) => (t === 'cfssl' ? sign(c) : renew(t, c)))
      .filter((h) => h !== undefined)
      .map((h) => {
        const m = h.median;
        const perReplica =
          h.replicas > 1
            ? m.replicaCpuUsPerCert
                .map((us, i) => `${fmtInt(m.replicaCertsPerS[i]!)}/s ${fmtInt(us)} µs ${fmtInt(m.replicaCpuPct[i]!)} %`)
                .join(' + ')
            : '';
        const db = Number.isFinite(m.dbCpuUsPerCert);
        return [
          h.target,
          String(c),
          fmtInt(m.certsPerS),
          fmtInt(m.serverCpuUsPerCert),
          fmtInt(m.serverCpuPct),
          perReplica,
          db ? fmtInt(m.dbCpuUsPerCert) : '',
          db ? fmtInt(m.dbCpuPct) : '',
          db ? fmtInt(m.serverCpuUsPerCert + m.dbCpuUsPerCert) : '',
          fmtInt(m.clientCpuPct),
          fmtInt(m.otherCpuPct),
          fmtNum(m.p99Ms),
        ];
      }),
  );
  const ratios = levels.map((c) => {
    const two = renew('gatehouse-pg×2', c)?.median,
      one = renew('gatehouse-pg', c)?.median,
      lite = renew('gatehouse', c)?.median,
      cf = sign(c)?.median;
    const speed = (two?.certsPerS ?? NaN) / (cf?.certsPerS ?? NaN);
    const cpu = (one?.serverCpuUsPerCert ?? NaN) / (lite?.serverCpuUsPerCert ?? NaN);
    const cpuWithDb =
      ((one?.serverCpuUsPerCert ?? NaN) + (one?.dbCpuUsPerCert ?? NaN)) / (lite?.serverCpuUsPerCert ?? NaN);
    return [
      String(c),
      `${fmtRatio(speed)} ${Number.isFinite(speed) ? verdict(speed >= 1) : ''}`,
      `${fmtRatio(cpu)} ${Number.isFinite(cpu) ? verdict(cpu <= 1.2) : ''}`,
      fmtRatio(cpuWithDb),
    ];
  });
  return [
    '5. PostgreSQL store and replicas: POST /renew (PostgreSQL at default durability: fsync on, synchronous_commit on)',
    table(
      [
        'target',
        'c',
        'certs/s',
        'CA µs/cert',
        'CA CPU %',
        'per replica: certs/s, µs/cert, CPU %',
        'postgres µs/cert',
        'postgres CPU %',
        'CA+pg µs/cert',
        'client CPU %',
        'other CPU %',
        'p99 ms',
      ],
      rows,
      1,
    ),
    '   CA µs/cert and CPU %: all CA processes together; per replica: its own certs/s, its CPU per certificate it issued, its CPU %. postgres: the postmaster and all its children (backends, WAL writer,',
    '   checkpointer) from /proc, not part of "CA". The load generator, the CA process(es), PostgreSQL and the idle other targets share the cores.',
    table(
      ['c', 'PG×2 certs/s ÷ cfssl (≥ 1.0×)', 'PG×1 CA CPU/cert ÷ SQLite (≤ 1.2×)', 'same, CA + postgres CPU ÷ SQLite'],
      ratios,
    ),
  ].join('\n');
}

export function printReport(r: Report, jsonPath: string): void {
  const pg = postgresSection(r);
  const out = [
    header(r),
    '',
    microSection(r),
    '',
    ceilingSection(r),
    '',
    httpSection(r),
    '',
    ratioSection(r),
    '',
    ...(pg ? [pg, ''] : []),
    `Raw numbers: ${relative(PROJECT_ROOT, jsonPath)} (bench/results/ is for local output and should be gitignored).`,
  ];
  process.stdout.write(out.join('\n') + '\n');
}

export function writeJson(r: Report): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, 'latest.json');
  writeFileSync(path, JSON.stringify(r, null, 2) + '\n');
  return path;
}
