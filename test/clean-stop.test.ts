/**
 * Issue 12: every server stops cleanly on SIGINT and SIGTERM, `npm start` included: no process
 * left behind, its ports free, the demo's state folder gone, and a start right after works.
 *
 * `npm start` runs for real, through npm and its `sh -c`, in a scratch package whose "start"
 * script is the repository's own and whose "build" is a no-op (the repository's `tsc` would
 * rewrite dist/ under the tests running beside this one).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CLI_PATH, gatehouse } from './helpers/cli.js';
import { makeTempDir } from './helpers/tmp.js';
import { portIsFree, processesIn, processTree, stillRunning, waitFor, type Proc } from './helpers/procs.js';
import { enrollAgent, startCaFixture, writeClientCaBundle, type CaFixture } from './helpers/ca-fixture.js';
import { startEchoUpstream, type EchoUpstream } from './helpers/echo-upstream.js';
import { run } from './helpers/run.js';
import { createServer as createHttpServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { findLog } from './helpers/log-lines.js';

/** Every process a test started: one left running by a failed test would keep this file from ending. */
const spawned: ChildProcess[] = [];

interface Running {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The process and all below it, as they were once ready. */
  tree: Proc[];
}

/** Spawns `cmd` and resolves once stdout or stderr matches `ready`, within `timeoutMs`. */
async function startUntil(
  cmd: string,
  args: string[],
  ready: RegExp,
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Running & { match: RegExpExecArray }> {
  const child = spawn(cmd, args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  spawned.push(child);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once('exit', (code, signal) => done({ code, signal })),
  );
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  try {
    await waitFor(
      () => gone || ready.test(output),
      options.timeoutMs ?? 60_000,
      `${cmd} ${args.join(' ')} to match ${ready}`,
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}; output so far:\n${output.slice(-4000)}`, { cause: err });
  }
  if (gone) throw new Error(`${cmd} ${args.join(' ')} exited before it was ready:\n${output.slice(-4000)}`);
  return { child, output: () => output, exited, tree: processTree(child.pid!), match: ready.exec(output)! };
}

/** Signals `running`, waits (bounded) for it to exit, and returns how it exited. */
async function stopWith(
  running: Running,
  signal: NodeJS.Signals,
  timeoutMs = 30_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  running.child.kill(signal);
  const timer = setTimeout(() => {
    for (const p of stillRunning(running.tree)) process.kill(p.pid, 'SIGKILL');
  }, timeoutMs);
  try {
    return await running.exited;
  } finally {
    clearTimeout(timer);
  }
}

async function assertAllGone(running: Running, ports: number[], what: string): Promise<void> {
  // The exit of the top process does not wait for its children: give them the stop's own deadline.
  await waitFor(() => stillRunning(running.tree).length === 0, 20_000, `every process of ${what} to exit`).catch(
    () => undefined,
  );
  assert.deepEqual(
    stillRunning(running.tree).map((p) => `${p.pid} ${p.cmdline}`),
    [],
    `no process of ${what} survives`,
  );
  for (const port of ports) assert.ok(await portIsFree(port), `${what}: port ${port} is free again`);
}

// --- npm start ------------------------------------------------------------------------------

const READY =
  /Gatehouse demo is running \(pid (\d+);[\s\S]*?Gateway: https:\/\/localhost:(\d+) +\(CA: https:\/\/127\.0\.0\.1:(\d+), metrics: http:\/\/127\.0\.0\.1:(\d+)\/metrics\)/;
const NPM_ENV = {
  npm_config_update_notifier: 'false',
  npm_config_fund: 'false',
  npm_config_audit: 'false',
  GATEHOUSE_LOG_LEVEL: 'info',
};

/** A package whose "start" is the repository's, its "build" `buildScript`, and dist/, scripts/, node_modules/ the repository's. */
function scratchPackage(buildScript: string): { dir: string; cleanup: () => void } {
  const tmp = makeTempDir('gh-npm-start-');
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };
  pkg.scripts = { start: pkg.scripts.start!, build: buildScript };
  writeFileSync(join(tmp.dir, 'package.json'), JSON.stringify(pkg, null, 2));
  for (const entry of ['dist', 'scripts', 'node_modules']) symlinkSync(resolve(entry), join(tmp.dir, entry));
  return tmp;
}

function npmStart(dir: string, ports: [number, number, number]): Promise<Running & { match: RegExpExecArray }> {
  const [ca, gateway, admin] = ports;
  return startUntil(
    'npm',
    [
      'start',
      '--',
      '--ca-listen',
      `127.0.0.1:${ca}`,
      '--gateway-listen',
      `127.0.0.1:${gateway}`,
      '--admin-listen',
      `127.0.0.1:${admin}`,
    ],
    READY,
    { cwd: dir, env: NPM_ENV },
  );
}

/** After a failure: nothing the test started may outlive it (an orphan holding its pipes would hold the test file too). */
function killLeftovers(dir: string): void {
  for (const p of processesIn(dir)) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function assertDemoGone(demo: Running, dir: string, ports: number[], what: string): Promise<void> {
  await assertAllGone(demo, ports, what);
  assert.deepEqual(
    processesIn(dir).map((p) => `${p.pid} ${p.cmdline}`),
    [],
    `${what}: no process runs in the package folder`,
  );
  assert.ok(!existsSync(join(dir, '.gatehouse-demo')), `${what}: the state folder is removed`);
}

test('npm-start-stops-on-sigterm-and-sigint-frees-everything-and-starts-again', async () => {
  const pkg = scratchPackage('true');
  try {
    // 1. SIGTERM to npm, as a process manager or CI sends it.
    const first = await npmStart(pkg.dir, [0, 0, 0]);
    const ports = [Number(first.match[3]), Number(first.match[2]), Number(first.match[4])] as [number, number, number];
    assert.ok(
      first.tree.some((p) => p.pid === Number(first.match[1])),
      'the demo runs below npm',
    );
    assert.ok(
      existsSync(join(pkg.dir, '.gatehouse-demo', 'ca')),
      'the state folder lives in the folder npm start runs in',
    );
    const byTerm = await stopWith(first, 'SIGTERM');
    assert.deepEqual(byTerm, { code: 0, signal: null }, first.output().slice(-3000));
    assert.match(first.output(), /Gatehouse demo stopped\./);
    await assertDemoGone(first, pkg.dir, ports, 'npm start stopped by SIGTERM');

    // 2. Right after, on the very same ports; then Ctrl-C as a terminal delivers it: to npm (which
    // forwards it) and to the demo (one process group). Two SIGINTs at once may merge into one in
    // the kernel, so the second is sent once the demo is stopping, which a connection left
    // half-open to its CA keeps going until the CA's drain deadline.
    const second = await npmStart(pkg.dir, ports);
    const hold = connect(ports[0], '127.0.0.1');
    await new Promise<void>((done, fail) => hold.once('connect', () => done()).once('error', fail));
    hold.on('error', () => undefined);
    const stopping = Date.now();
    second.child.kill('SIGINT');
    await waitFor(() => !!findLog(second.output(), 'demo.stopping'), 10_000, 'the demo to start stopping');
    process.kill(Number(second.match[1]), 'SIGINT');
    const byInt = await second.exited;
    hold.destroy();
    assert.deepEqual(byInt, { code: 0, signal: null }, second.output().slice(-3000));
    assert.ok(
      findLog(second.output(), 'cli.signal_ignored', { signal: 'SIGINT' }),
      'the extra SIGINT is ignored, not fatal',
    );
    assert.ok(findLog(second.output(), 'ca.drain_timeout'), 'the connection still open was cut at the deadline');
    assert.match(second.output(), /Gatehouse demo stopped\./, 'the stop ran to its end');
    assert.ok(Date.now() - stopping < 15_000, `stopped within the demo's deadline (${Date.now() - stopping} ms)`);
    await assertDemoGone(second, pkg.dir, ports, 'npm start stopped by SIGINT');

    // 3. And it comes up once more.
    const third = await npmStart(pkg.dir, ports);
    assert.deepEqual(await stopWith(third, 'SIGTERM'), { code: 0, signal: null });
    await assertDemoGone(third, pkg.dir, ports, 'the third npm start');
  } finally {
    killLeftovers(pkg.dir);
    pkg.cleanup();
  }
});

test('npm-start-stopped-while-building-leaves-no-build-behind', async () => {
  const pkg = scratchPackage('sleep 300');
  try {
    const npm = spawn('npm', ['start'], {
      cwd: pkg.dir,
      env: { ...process.env, ...NPM_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((done) => npm.once('exit', (code) => done(code)));
    let tree: Proc[] = [];
    await waitFor(
      () => (tree = processTree(npm.pid!)).some((p) => /^sleep 300/.test(p.cmdline)),
      30_000,
      'the build to run',
    );
    npm.kill('SIGTERM');
    await exited;
    await waitFor(() => stillRunning(tree).length === 0, 10_000, 'the build to stop').catch(() => undefined);
    assert.deepEqual(
      stillRunning(tree).map((p) => `${p.pid} ${p.cmdline}`),
      [],
      'npm, its shell and the build are all gone',
    );
    assert.deepEqual(
      processesIn(pkg.dir).map((p) => p.cmdline),
      [],
    );
  } finally {
    killLeftovers(pkg.dir);
    pkg.cleanup();
  }
});

// --- the servers, run directly ----------------------------------------------------------------

let fixture: CaFixture;
let app: EchoUpstream;
let slowApp: EchoUpstream;
/** An app that never answers, without a timer of its own that would hold the test process. */
let stuckApp: { url: string; requests: number; close(): Promise<void> };
let caDir = '';
let gw = '';
let device = '';
let bundle = '';
let scratch: { dir: string; cleanup: () => void };

before(async () => {
  scratch = makeTempDir('gh-clean-stop-');
  caDir = join(scratch.dir, 'ca');
  const init = await gatehouse(['ca', 'init', '--dir', caDir]);
  assert.equal(init.status, 0, init.stderr);
  fixture = await startCaFixture();
  gw = (await enrollAgent(fixture, 'gateway', 'gw-1', { dns: ['localhost'] })).dir;
  device = (await enrollAgent(fixture, 'web', 'device-1')).dir;
  bundle = writeClientCaBundle(fixture);
  app = await startEchoUpstream();
  slowApp = await startEchoUpstream({ delayMs: 1500 });
  const stuck = createHttpServer(() => {
    stuckApp.requests++;
  });
  await new Promise<void>((done) => stuck.listen(0, '127.0.0.1', () => done()));
  stuckApp = {
    url: `http://127.0.0.1:${(stuck.address() as AddressInfo).port}`,
    requests: 0,
    close: () =>
      new Promise<void>((done) => {
        stuck.closeAllConnections();
        stuck.close(() => done());
      }),
  };
});

after(async () => {
  for (const child of spawned) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all([app?.close(), slowApp?.close(), stuckApp?.close()]);
  await fixture?.close();
  scratch?.cleanup();
});

// A log line with this msg, and the port from its url field (in whichever order pino wrote the keys).
const listeningOn = (msg: string) =>
  new RegExp(`^(?=.*"msg":"${msg.replace('.', '\\.')}").*"url":"https://127\\.0\\.0\\.1:(\\d+)"`, 'm');
const CA_READY = listeningOn('ca.listening');
const GATEWAY_READY = listeningOn('gateway.listening');
const cli = (args: string[], ready: RegExp) =>
  startUntil(process.execPath, [CLI_PATH, ...args], ready, { timeoutMs: 30_000 });
const gatewayArgs = (listen: string, upstream: string, extra: string[] = []) => [
  'gateway',
  '--listen',
  listen,
  '--cert',
  join(gw, 'cert.pem'),
  '--key',
  join(gw, 'key.pem'),
  '--client-ca',
  bundle,
  '--upstream',
  upstream,
  ...extra,
];

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`ca-serve-stops-on-${signal.toLowerCase()}-and-starts-again-on-the-same-port`, async () => {
    const first = await cli(['ca', 'serve', '--dir', caDir, '--listen', '127.0.0.1:0'], CA_READY);
    const port = Number(first.match[1]);
    assert.deepEqual(await stopWith(first, signal), { code: 0, signal: null }, first.output());
    await assertAllGone(first, [port], 'ca serve');
    const again = await cli(['ca', 'serve', '--dir', caDir, '--listen', `127.0.0.1:${port}`], CA_READY);
    assert.deepEqual(await stopWith(again, signal), { code: 0, signal: null }, again.output());
    await assertAllGone(again, [port], 'ca serve, started again');
  });

  test(`gateway-stops-on-${signal.toLowerCase()}-with-workers-and-without`, async () => {
    for (const workers of ['1', '2']) {
      const gateway = await cli(
        gatewayArgs('127.0.0.1:0', app.url, ['--workers', workers, '--admin-listen', '127.0.0.1:0']),
        GATEWAY_READY,
      );
      const port = Number(gateway.match[1]);
      // The ready line and the admin listener's log line are written separately: wait for both.
      const adminLine = /^(?=.*"msg":"gateway\.admin_started").*"listen":"127\.0\.0\.1:(\d+)"/m;
      await waitFor(() => adminLine.test(gateway.output()), 10_000, 'the admin listener to be logged').catch(
        (err: unknown) => {
          gateway.child.kill('SIGKILL');
          throw err;
        },
      );
      const admin = Number(adminLine.exec(gateway.output())?.[1]);
      assert.ok(admin > 0, gateway.output());
      if (workers === '2')
        assert.equal(gateway.tree.filter((p) => p.cmdline.includes('gateway')).length, 3, 'a primary and two workers');
      assert.deepEqual(await stopWith(gateway, signal), { code: 0, signal: null }, gateway.output());
      await assertAllGone(gateway, [port, admin], `gateway --workers ${workers}`);
    }
  });
}

test('ca-serve-with-workers-stops-on-sigterm-with-no-worker-left', async () => {
  const ca = await cli(
    ['ca', 'serve', '--dir', caDir, '--listen', '127.0.0.1:0', '--workers', '2', '--metrics-listen', '127.0.0.1:0'],
    CA_READY,
  );
  const port = Number(ca.match[1]);
  const metrics = Number(
    /^(?=.*"msg":"ca\.listening").*"metrics":"http:\/\/127\.0\.0\.1:(\d+)/m.exec(ca.output())?.[1],
  );
  assert.equal(ca.tree.length, 3, 'a primary and two workers');
  assert.deepEqual(await stopWith(ca, 'SIGTERM'), { code: 0, signal: null }, ca.output());
  await assertAllGone(ca, [port, metrics], 'ca serve --workers 2');
});

test('agent-run-stops-on-sigint-and-sigterm', async () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const agent = await cli(['agent', 'run', '--dir', device], /"msg":"agent\.started"/);
    assert.deepEqual(await stopWith(agent, signal, 10_000), { code: 0, signal: null }, agent.output());
    await assertAllGone(agent, [], 'agent run');
  }
});

function curl(port: number, path: string) {
  return run('curl', [
    '-sS',
    '--max-time',
    '20',
    '--cacert',
    join(gw, 'ca.pem'),
    '--cert',
    join(device, 'cert.pem'),
    '--key',
    join(device, 'key.pem'),
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    `https://localhost:${port}${path}`,
  ]);
}

test('gateway-second-sigterm-while-draining-does-not-cut-the-stop-short', async () => {
  const gateway = await cli(gatewayArgs('127.0.0.1:0', slowApp.url, ['--workers', '1']), GATEWAY_READY);
  const port = Number(gateway.match[1]);
  const inFlight = curl(port, '/slow');
  await waitFor(() => slowApp.requestCount() > 0, 10_000, 'the request to reach the app');
  gateway.child.kill('SIGTERM');
  await waitFor(() => !!findLog(gateway.output(), 'gateway.stopping'), 10_000, 'the gateway to start stopping');
  const result = await stopWith(gateway, 'SIGTERM');
  assert.equal((await inFlight).stdout, '200', 'the request in flight still finished');
  assert.deepEqual(result, { code: 0, signal: null }, gateway.output());
  assert.ok(findLog(gateway.output(), 'cli.signal_ignored', { signal: 'SIGTERM' }), gateway.output());
  await assertAllGone(gateway, [port], 'the gateway');
});

test('gateway-stop-has-a-deadline-and-logs-what-it-cut', async () => {
  const config = join(scratch.dir, 'gateway-deadline.yaml');
  writeFileSync(
    config,
    [
      'listen: 127.0.0.1:0',
      `tls: { cert: ${JSON.stringify(join(gw, 'cert.pem'))}, key: ${JSON.stringify(join(gw, 'key.pem'))}, clientCa: ${JSON.stringify(bundle)} }`,
      `routes: [{ upstreams: [${JSON.stringify(stuckApp.url)}] }]`,
      'limits: { drainTimeout: 1s }',
      'workers: 1',
      '',
    ].join('\n'),
  );
  const gateway = await cli(['gateway', '--config', config], GATEWAY_READY);
  const port = Number(gateway.match[1]);
  const stuck = curl(port, '/never-answered');
  await waitFor(() => stuckApp.requests > 0, 10_000, 'the request to reach the app');
  const started = Date.now();
  const result = await stopWith(gateway, 'SIGTERM');
  assert.deepEqual(result, { code: 0, signal: null }, gateway.output());
  assert.ok(
    Date.now() - started < 8000,
    `stopped within the 1 s drain timeout plus margin (${Date.now() - started} ms)`,
  );
  assert.ok(findLog(gateway.output(), 'gateway.drain_timeout', { afterMs: 1000 }), gateway.output());
  await stuck;
  await assertAllGone(gateway, [port], 'the gateway');
});

test('demo-help-says-where-its-state-lives-and-how-it-stops', async () => {
  const r = await gatehouse(['demo', '--help']);
  assert.equal(r.status, 0);
  assert.match(
    r.stdout,
    /--state-dir DIR +Where the demo lives: its CA \(keys included\)[^\n]*default \.\/\.gatehouse-demo/,
  );
  assert.match(r.stdout, /--keep +Keep the state folder at exit/);
  assert.match(r.stdout, /Ctrl-C or SIGTERM \(also when started by `npm start`/);
});
