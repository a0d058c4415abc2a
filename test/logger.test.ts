/**
 * The log stream as a shipper sees it: one JSON object per line with level, time, msg, pid and
 * hostname (pino's shape), keys a field cannot overwrite, secrets redacted at any depth, nothing
 * lost at exit, and --log-level on the server commands. Python's json module is the independent
 * parser: it is told to refuse a line with a duplicated key, which JSON.parse would quietly accept.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { createLogger } from '../src/log/logger.js';
import { logLevelOf } from '../src/cli/server-log.js';
import type { CommandContext } from '../src/cli/command.js';
import { GatehouseError } from '../src/errors/errors.js';
import { CLI_PATH, gatehouse } from './helpers/cli.js';
import { makeTempDir } from './helpers/tmp.js';
import { parseLogLines } from './helpers/log-lines.js';
import { waitFor } from './helpers/procs.js';

const scratch = makeTempDir('gatehouse-logger-');
after(() => scratch.cleanup());

const PLANTED = 'pl4nted-s3cret-v4lue';

function capture(level: 'debug' | 'info' | 'warn' | 'error' = 'debug') {
  const lines: string[] = [];
  return { lines, logger: createLogger({ level, write: (l) => void lines.push(l) }) };
}

/** Each line parsed by Python with duplicate keys refused; returns the objects. */
function pythonParse(lines: string[]): Array<Record<string, unknown>> {
  const program = [
    'import json, sys',
    'def strict(pairs):',
    '    keys = [k for k, _ in pairs]',
    '    dup = sorted({k for k in keys if keys.count(k) > 1})',
    '    if dup: raise ValueError("duplicate keys: %s" % dup)',
    '    return dict(pairs)',
    'out = []',
    'for line in sys.stdin.read().split("\\n"):',
    '    if line: out.append(json.loads(line, object_pairs_hook=strict))',
    'print(json.dumps(out))',
  ].join('\n');
  const r = spawnSync('python3', ['-c', program], { input: lines.join(''), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Array<Record<string, unknown>>;
}

test('logger-writes-one-json-object-per-line-in-pino-shape', () => {
  const { lines, logger } = capture();
  logger.info('ca.cert_issued', { serial: '01ab', role: 'web' });
  logger.warn('gateway.no_policy', {});
  logger.error('x.failed');
  assert.equal(lines.length, 3);
  assert.ok(
    lines.every((l) => l.endsWith('\n') && l.indexOf('\n') === l.length - 1),
    'one line each',
  );
  const [issued, warned, failed] = pythonParse(lines);
  assert.equal(issued!.msg, 'ca.cert_issued');
  assert.equal(issued!.level, 'info');
  assert.equal(issued!.serial, '01ab');
  assert.equal(issued!.pid, process.pid);
  assert.equal(issued!.hostname, hostname());
  assert.match(String(issued!.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.ok(Math.abs(Date.parse(String(issued!.time)) - Date.now()) < 60_000);
  assert.deepEqual([warned!.level, failed!.level], ['warn', 'error']);
  assert.equal(failed!.msg, 'x.failed');
});

test('logger-fields-cannot-overwrite-time-level-msg-pid-or-hostname', () => {
  const { lines, logger } = capture();
  logger.info('real.event', { time: 'forged', level: 'error', msg: 'forged', pid: 1, hostname: 'elsewhere' });
  logger.child({ msg: 'child-forged', level: 'fatal' }).info('child.event', {});
  const [record, child] = pythonParse(lines);
  assert.equal(record!.msg, 'real.event');
  assert.equal(record!.level, 'info');
  assert.equal(record!.pid, process.pid);
  assert.equal(record!.hostname, hostname());
  assert.notEqual(record!.time, 'forged');
  assert.deepEqual(
    [
      record!['field.time'],
      record!['field.level'],
      record!['field.msg'],
      record!['field.pid'],
      record!['field.hostname'],
    ],
    ['forged', 'error', 'forged', 1, 'elsewhere'],
  );
  assert.equal(child!.msg, 'child.event');
  assert.equal(child!.level, 'info');
  assert.equal(child!['field.msg'], 'child-forged');
});

test('logger-redacts-secret-looking-keys-at-any-depth-and-in-bindings', () => {
  const { lines, logger } = capture();
  const withBase = createLogger({ level: 'debug', write: (l) => void lines.push(l), base: { joinToken: PLANTED } });
  logger.info('nested', {
    request: { headers: { authorization: `Bearer ${PLANTED}`, cookie: PLANTED, accept: '*/*' } },
    items: [{ name: 'a', secret: PLANTED }, [{ private_key: PLANTED }]],
    passphrase: PLANTED,
    config: { db: { password: PLANTED, host: 'db.internal' } },
  });
  logger.child({ api_token: PLANTED }).info('bound', {});
  withBase.info('based', { csr: PLANTED });
  const text = lines.join('');
  assert.ok(!text.includes(PLANTED), `a planted secret reached the log:\n${text}`);
  const [nested] = pythonParse(lines);
  const request = nested!.request as { headers: Record<string, unknown> };
  assert.equal(request.headers.authorization, '[redacted]');
  assert.equal(request.headers.accept, '*/*', 'other keys stay');
  assert.equal((nested!.config as { db: { host: string } }).db.host, 'db.internal');
  assert.equal((nested!.items as Array<Record<string, unknown>>)[0]!.secret, '[redacted]');
});

test('logger-reduces-errors-and-binary-and-bounds-cycles', () => {
  const { lines, logger } = capture();
  const cyclic: Record<string, unknown> = { name: 'loop' };
  cyclic.self = cyclic;
  const err = Object.assign(new Error('upstream refused', { cause: new Error('ECONNREFUSED') }), {
    code: 'ECONNREFUSED',
  });
  logger.error('with.error', { err, error: err, body: Buffer.from('raw bytes'), big: 2n ** 70n, cyclic });
  const [record] = pythonParse(lines);
  assert.deepEqual(record!.err, {
    name: 'Error',
    code: 'ECONNREFUSED',
    message: 'upstream refused',
    cause: 'ECONNREFUSED',
  });
  assert.deepEqual(record!.error, record!.err, 'any key, not only err');
  assert.ok(!lines[0]!.includes('at '), 'no stack trace in a log line');
  assert.equal(record!.body, '[9 bytes]');
  assert.equal(record!.big, (2n ** 70n).toString());
  assert.match(lines[0]!, /\[too deep\]/);
});

test('logger-level-filters-and-enabled-agrees', () => {
  const { lines, logger } = capture('warn');
  logger.debug('d', {});
  logger.info('i', {});
  logger.warn('w', {});
  logger.error('e', {});
  assert.deepEqual(
    pythonParse(lines).map((r) => r.msg),
    ['w', 'e'],
  );
  assert.deepEqual(
    (['debug', 'info', 'warn', 'error'] as const).map((l) => logger.enabled(l)),
    [false, false, true, true],
  );
});

test('logger-batched-lines-are-all-written-when-the-process-exits-at-once', async () => {
  const program = `import('${join(process.cwd(), 'dist/src/log/logger.js')}').then(({ createLogger }) => {
    const log = createLogger({ batch: true, level: 'info' });
    for (let i = 0; i < 5000; i++) log.info('burst', { i, pad: 'x'.repeat(100) });
    process.exit(0);
  });`;
  const r = spawnSync(process.execPath, ['-e', program], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, r.stderr.slice(-2000));
  const records = parseLogLines(r.stderr);
  assert.equal(records.length, 5000, 'no line lost at exit');
  assert.deepEqual(
    records.map((x) => x.i),
    Array.from({ length: 5000 }, (_, i) => i),
    'in order',
  );
});

function ctxWith(values: Record<string, string>, env: NodeJS.ProcessEnv): CommandContext {
  return {
    values,
    positionals: [],
    out: () => undefined,
    err: () => undefined,
    env,
    signal: new AbortController().signal,
  };
}

test('log-level-flag-wins-over-the-environment-and-a-bad-value-is-a-usage-error', () => {
  assert.equal(logLevelOf(ctxWith({}, {})), 'info');
  assert.equal(logLevelOf(ctxWith({}, {}), 'warn'), 'warn', "the command's own default");
  assert.equal(logLevelOf(ctxWith({}, { GATEHOUSE_LOG_LEVEL: 'error' })), 'error');
  assert.equal(logLevelOf(ctxWith({ 'log-level': 'debug' }, { GATEHOUSE_LOG_LEVEL: 'error' })), 'debug');
  assert.throws(
    () => logLevelOf(ctxWith({ 'log-level': 'loud' }, {})),
    (e: unknown) =>
      e instanceof GatehouseError &&
      e.code === 'GH_USAGE' &&
      /--log-level is "loud"; use one of debug, info, warn, error/.test(e.message),
  );
  assert.throws(() => logLevelOf(ctxWith({}, { GATEHOUSE_LOG_LEVEL: 'verbose' })), /GATEHOUSE_LOG_LEVEL is "verbose"/);
});

test('every-server-command-takes-log-level', async () => {
  for (const path of [['ca', 'serve'], ['gateway'], ['agent', 'run'], ['demo'], ['quickstart']]) {
    const help = await gatehouse([...path, '--help']);
    assert.match(help.stdout, /--log-level LEVEL/, `gatehouse ${path.join(' ')} --help`);
    const bad = await gatehouse([...path, '--log-level', 'loud']);
    assert.equal(bad.status, 64, `${path.join(' ')}: ${bad.stderr}`);
    assert.match(bad.stderr, /--log-level is "loud"/);
  }
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function accepts(port: number): Promise<boolean> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

test('ca-serve-logs-listening-as-json-and-a-sentence-only-on-a-terminal', async () => {
  const dir = join(scratch.dir, 'ca');
  const init = await gatehouse(['ca', 'init', '--dir', dir, '--name', 'Log Test', '--trust-domain', 'log.test']);
  assert.equal(init.status, 0, init.stderr);

  // Not a terminal: stderr is only JSON lines, the banner among them.
  const piped = spawn(process.execPath, [CLI_PATH, 'ca', 'serve', '--dir', dir, '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, GATEHOUSE_LOG_LEVEL: '' },
  });
  let stderr = '';
  piped.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const pipedExit = new Promise((resolve) => piped.once('exit', resolve));
  try {
    await waitFor(() => parseLogLines(stderr).some((r) => r.msg === 'ca.listening'), 30_000, 'ca.listening');
  } finally {
    piped.kill('SIGTERM');
    await pipedExit;
  }
  const nonEmpty = stderr.split('\n').filter(Boolean);
  assert.ok(
    nonEmpty.length > 1 && nonEmpty.every((l) => l.startsWith('{') && l.endsWith('}')),
    `every stderr line is JSON:\n${stderr}`,
  );
  pythonParse(nonEmpty.map((l) => `${l}\n`));
  const listening = parseLogLines(stderr).find((r) => r.msg === 'ca.listening')!;
  assert.match(String(listening.url), /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.match(String(listening.root), /^[0-9a-f]{64}$/);

  // --log-level warn: the info lines (the banner too) are gone.
  const port = await freePort();
  const quiet = spawn(
    process.execPath,
    [CLI_PATH, 'ca', 'serve', '--dir', dir, '--listen', `127.0.0.1:${port}`, '--log-level', 'warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let quietErr = '';
  quiet.stderr!.on('data', (d: Buffer) => {
    quietErr += d.toString();
  });
  const quietExit = new Promise((resolve) => quiet.once('exit', resolve));
  try {
    await waitFor(() => accepts(port), 30_000, 'the quiet CA to accept connections');
  } finally {
    quiet.kill('SIGTERM');
    await quietExit;
  }
  assert.ok(
    !parseLogLines(quietErr).some((r) => r.level === 'info' || r.level === 'debug'),
    `no info line at --log-level warn:\n${quietErr}`,
  );

  // A terminal (util-linux `script` gives the child a pty): the sentence for a person is there too.
  const ttyPort = await freePort();
  const shell = `exec ${process.execPath} ${CLI_PATH} ca serve --dir ${dir} --listen 127.0.0.1:${ttyPort}`;
  const tty = spawn('script', ['-qefc', shell, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let ttyOut = '';
  tty.stdout!.on('data', (d: Buffer) => {
    ttyOut += d.toString();
  });
  const ttyExit = new Promise((resolve) => tty.once('exit', resolve));
  try {
    await waitFor(
      () => /Gatehouse CA listening on https:\/\/127\.0\.0\.1:\d+ \(root [0-9a-f]{64}\)/.test(ttyOut),
      30_000,
      'the sentence on a terminal',
    );
  } finally {
    // The CA under the pty, by its command line (a pattern must not start with "-": pkill would take it as an option).
    spawnSync('pkill', ['-TERM', '-f', `ca serve --dir ${dir} --listen 127.0.0.1:${ttyPort}`]);
    const timer = setTimeout(() => tty.kill('SIGKILL'), 20_000);
    await ttyExit;
    clearTimeout(timer);
  }
  assert.ok(
    parseLogLines(ttyOut.replace(/\r/g, '')).some((r) => r.msg === 'ca.listening'),
    'the JSON line too',
  );
});
