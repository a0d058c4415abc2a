/**
 * Load generator process (forked by loadgen.ts). C closed loops POST as fast as answers come
 * back over one keep-alive mutual-TLS https.Agent with maxSockets C. A request counts when it
 * completes inside the measured window; only 2xx answers carrying a certificate are successes.
 * The server's CPU time is read from /proc at the window's two edges.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import type { LoadResult, LoadSpec } from './loadgen.js';
import { machineBusyUs, processCpuUs } from './procs.js';
import { percentile } from './stats.js';

interface Answer {
  status: number;
  text: string;
}

function post(agent: Agent, url: URL, body: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        timeout: 30_000,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const bodies = JSON.parse(readFileSync(spec.bodiesFile, 'utf8')) as string[];
  const urls = spec.urls.map((u) => new URL(u));
  const identities = spec.identities?.length ? spec.identities : [{ ...spec.tls, bodies: [] }];
  const perAgent = Math.ceil(spec.concurrency / identities.length);
  const agents = identities.map(
    (id) =>
      new Agent({
        keepAlive: true,
        maxSockets: perAgent,
        maxFreeSockets: perAgent,
        key: id.keyPem,
        cert: id.certPem,
        ca: spec.tls.caPem,
      }),
  );
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const errorKinds: Record<string, number> = {};
  let ok = 0,
    errors = 0,
    cursor = 0,
    exhausted = false;
  const okPer = urls.map(() => 0);
  let firstError: string | null = null;
  let phase: 'warmup' | 'measure' | 'done' = 'warmup';

  const nextBody = (): string | null => {
    if (!spec.useOnce) return bodies[cursor++ % bodies.length]!;
    if (cursor < bodies.length) return bodies[cursor++]!;
    exhausted = true;
    return null;
  };
  const countError = (kind: string, detail: string) => {
    errors++;
    errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
    firstError ??= detail;
  };
  const record = (t0: number, answer: Answer, server: number) => {
    if (phase !== 'measure') return;
    statuses[answer.status] = (statuses[answer.status] ?? 0) + 1;
    if (answer.status < 200 || answer.status > 299)
      return countError(`HTTP ${answer.status}`, `HTTP ${answer.status}: ${answer.text.slice(0, 300)}`);
    if (!answer.text.includes('BEGIN CERTIFICATE'))
      return countError('2xx without a certificate', answer.text.slice(0, 300));
    ok++;
    okPer[server]!++;
    latencies.push(performance.now() - t0);
  };
  const loop = async (_: unknown, i: number) => {
    const server = i % urls.length;
    const url = urls[server]!;
    const agent = agents[i % agents.length]!;
    const own = identities[i % identities.length]!.bodies;
    let ownCursor = 0;
    while (phase !== 'done') {
      const body = own.length ? own[ownCursor++ % own.length]! : nextBody();
      if (body === null) return;
      const t0 = performance.now();
      try {
        record(t0, await post(agent, url, body), server);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (phase === 'measure') countError(e.code ?? e.message, `${e.code ?? ''} ${e.message}`);
        await sleep(10); // a refused or reset connection must not turn into a busy loop
      }
    }
  };

  // The window's edges: CPU of the server (from /proc) and of this client, with the actual times.
  let t0 = 0,
    t1 = 0,
    machine0 = 0,
    machine1 = 0;
  const cpuOf = (pid: number | undefined) =>
    pid === undefined ? { user: NaN, system: NaN } : processCpuUs(pid, spec.clkTck);
  let server0 = spec.serverPids.map(() => ({ user: 0, system: 0 })),
    server1 = server0;
  let db0 = { user: 0, system: 0 },
    db1 = db0;
  let client0 = process.cpuUsage(),
    client: NodeJS.CpuUsage = { user: 0, system: 0 };
  const windowDone = new Promise<void>((resolve) => {
    setTimeout(() => {
      phase = 'measure';
      t0 = performance.now();
      server0 = spec.serverPids.map((p) => cpuOf(p));
      db0 = cpuOf(spec.dbPid);
      machine0 = machineBusyUs(spec.clkTck);
      client0 = process.cpuUsage();
      setTimeout(() => {
        phase = 'done';
        t1 = performance.now();
        server1 = spec.serverPids.map((p) => cpuOf(p));
        db1 = cpuOf(spec.dbPid);
        machine1 = machineBusyUs(spec.clkTck);
        client = process.cpuUsage(client0);
        resolve();
      }, spec.durationS * 1000);
    }, spec.warmupS * 1000);
  });
  const loops = Array.from({ length: spec.concurrency }, loop);
  await windowDone;
  await Promise.all(loops); // drain in-flight requests (not counted) before closing
  for (const agent of agents) agent.destroy();

  const windowS = (t1 - t0) / 1000;
  const replicaUs = server1.map((s1, i) => s1.user - server0[i]!.user + s1.system - server0[i]!.system);
  const serverSysUs = server1.reduce((n, s1, i) => n + s1.system - server0[i]!.system, 0);
  const serverCpuUs = replicaUs.reduce((n, us) => n + us, 0);
  const dbCpuUs = db1.user - db0.user + db1.system - db0.system;
  const clientCpuUs = client.user + client.system;
  latencies.sort((a, b) => a - b);
  return {
    ok,
    errors,
    statuses,
    errorKinds,
    firstError,
    windowS,
    certsPerS: ok / windowS,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies[latencies.length - 1] ?? NaN,
    serverCpuUsPerCert: ok ? serverCpuUs / ok : NaN,
    serverCpuPct: (serverCpuUs / 1e6 / windowS) * 100,
    replicaCpuUsPerCert: replicaUs.map((us, i) => (okPer[i] ? us / okPer[i]! : NaN)),
    replicaCpuPct: replicaUs.map((us) => (us / 1e6 / windowS) * 100),
    replicaCertsPerS: okPer.map((n) => n / windowS),
    dbCpuUsPerCert: ok ? dbCpuUs / ok : NaN,
    dbCpuPct: (dbCpuUs / 1e6 / windowS) * 100,
    serverSysShare: serverCpuUs ? (serverSysUs / serverCpuUs) * 100 : NaN,
    clientCpuPct: (clientCpuUs / 1e6 / windowS) * 100,
    // Everything else that ran on the machine meanwhile: a noise flag (other jobs on the box).
    otherCpuPct: Math.max(
      0,
      ((machine1 - machine0 - serverCpuUs - (Number.isFinite(dbCpuUs) ? dbCpuUs : 0) - clientCpuUs) / 1e6 / windowS) *
        100,
    ),
    bodiesExhausted: exhausted,
  };
}

process.once('message', (spec: LoadSpec) => {
  setTimeout(() => process.exit(3), (spec.warmupS + spec.durationS + 45) * 1000).unref();
  runLoad(spec).then(
    (result) => process.send!({ result }, () => process.exit(0)),
    (err: Error) => process.send!({ error: err.stack ?? String(err) }, () => process.exit(1)),
  );
});
process.on('disconnect', () => process.exit(1));
