/**
 * ApacheBench as the load generator: the one Debian tool that sends a client certificate
 * (`-E cert+key.pem`) and reaches nginx-class rates. Keep-alive (`-k`: HTTP/1.0 keep-alive,
 * one TLS handshake per connection) or not (one full mutual-TLS handshake per request: ab
 * never resumes sessions). Server CPU is read from /proc around the run.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { INSTALL_HINT } from './nginx-target.js';
import { machineBusyUs, processCpuUs, reapedChildrenCpuUs } from './procs.js';

export function abVersion(): string {
  const out = spawnSync('ab', ['-V'], { encoding: 'utf8' });
  if (out.error || out.status !== 0) {
    throw new Error(
      `ab (ApacheBench, the gateway benchmark's load generator) is not installed. Install it with:\n  ${INSTALL_HINT}`,
    );
  }
  return /Version\s+(\S+)/.exec(out.stdout)?.[1]
    ? `ab ${/Version\s+(\S+)/.exec(out.stdout)![1]}`
    : out.stdout.trim().split('\n')[0]!;
}

export interface AbSpec {
  url: string;
  clientPem: string;
  keepAlive: boolean;
  concurrency: number;
  durationS: number;
  csvFile: string;
  /** Process trees whose CPU is measured: the proxy under test and the shared upstream. */
  serverPid: number;
  upstreamPid: number;
}

export interface AbResult {
  command: string;
  complete: number;
  failed: number;
  failedDetail: string;
  non2xx: number;
  keepAliveRequests: number;
  reqPerS: number;
  /** ab -e: the time (ms) under which p % of requests were served. */
  p50Ms: number;
  p99Ms: number;
  tls: string;
  wallS: number;
  serverCpuUsPerReq: number;
  serverCpuPct: number;
  serverSysShare: number;
  upstreamCpuPct: number;
  /** ab's own CPU (the load generator shares the cores). */
  abCpuPct: number;
  /** Every other process on the machine (busy minus server, upstream and ab): well above ~10 % means the run was disturbed. */
  otherCpuPct: number;
}

function field(text: string, label: string): string | undefined {
  return new RegExp(`^${label}:\\s+(.*)$`, 'm').exec(text)?.[1]?.trim();
}

function percentiles(csvFile: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const line of readFileSync(csvFile, 'utf8').split('\n').slice(1)) {
    const [p, ms] = line.split(',');
    if (p !== undefined && ms !== undefined && p !== '') out.set(Number(p), Number(ms));
  }
  return out;
}

export async function runAb(spec: AbSpec): Promise<AbResult> {
  const args = [
    '-q',
    ...(spec.keepAlive ? ['-k'] : []),
    '-E',
    spec.clientPem,
    '-c',
    String(spec.concurrency),
    '-t',
    String(spec.durationS),
    '-n',
    '100000000',
    '-e',
    spec.csvFile,
    spec.url,
  ];
  rmSync(spec.csvFile, { force: true });
  const server0 = processCpuUs(spec.serverPid);
  const upstream0 = processCpuUs(spec.upstreamPid);
  const busy0 = machineBusyUs();
  const ab0 = reapedChildrenCpuUs();
  const t0 = process.hrtime.bigint();
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
    (resolve, reject) => {
      const child = spawn('ab', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
      });
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        err += d;
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), (spec.durationS + 60) * 1000);
      child.once('error', reject);
      child.once('exit', (c) => {
        clearTimeout(timer);
        resolve({ code: c, stdout: out, stderr: err });
      });
    },
  );
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const server1 = processCpuUs(spec.serverPid);
  const upstream1 = processCpuUs(spec.upstreamPid);
  const busy1 = machineBusyUs();
  const abUs = reapedChildrenCpuUs() - ab0;
  const command = `ab ${args.join(' ')}`;
  if (code !== 0) throw new Error(`${command} exited with ${code}:\n${stderr.slice(-2000)}${stdout.slice(-2000)}`);

  const num = (label: string) => Number(field(stdout, label)?.split(/\s/)[0] ?? NaN);
  const complete = num('Complete requests');
  const failedLine = field(stdout, 'Failed requests') ?? '0';
  const pcts = percentiles(spec.csvFile);
  const serverUs = server1.user + server1.system - server0.user - server0.system;
  const upstreamUs = upstream1.user + upstream1.system - upstream0.user - upstream0.system;
  const pct = (us: number) => (us / 1e6 / wallS) * 100;
  return {
    command,
    complete,
    failed: Number(failedLine.split(/\s/)[0]),
    // ab prints "(Connect: 0, Receive: 0, Length: 5, Exceptions: 0)" on the next line when any failed.
    failedDetail: /Failed requests:.*\n\s*(\(Connect:[^)]*\))/.exec(stdout)?.[1] ?? '',
    non2xx: Number(field(stdout, 'Non-2xx responses') ?? 0),
    keepAliveRequests: Number(field(stdout, 'Keep-Alive requests') ?? 0),
    reqPerS: num('Requests per second'),
    p50Ms: pcts.get(50) ?? NaN,
    p99Ms: pcts.get(99) ?? NaN,
    tls: field(stdout, 'SSL/TLS Protocol') ?? 'unknown',
    wallS,
    serverCpuUsPerReq: complete > 0 ? serverUs / complete : NaN,
    serverCpuPct: pct(serverUs),
    serverSysShare: serverUs > 0 ? ((server1.system - server0.system) / serverUs) * 100 : NaN,
    upstreamCpuPct: pct(upstreamUs),
    abCpuPct: pct(abUs),
    otherCpuPct: pct(busy1 - busy0 - serverUs - upstreamUs - abUs),
  };
}

/** Why this run must not be reported, or null: a benchmark of refusals or of reconnects is meaningless. */
export function problemsOf(r: AbResult, keepAlive: boolean): string | null {
  const problems: string[] = [];
  if (!(r.complete > 0)) problems.push('no request completed');
  if (r.failed > 0) problems.push(`${r.failed} failed requests ${r.failedDetail}`);
  if (r.non2xx > 0) problems.push(`${r.non2xx} non-2xx responses (refused or upstream errors)`);
  // A proxy that closes keep-alive connections would turn the keep-alive run into a handshake run.
  if (keepAlive && r.keepAliveRequests < r.complete * 0.99)
    problems.push(`only ${r.keepAliveRequests} of ${r.complete} requests were on kept-alive connections`);
  return problems.length ? problems.join('; ') : null;
}
