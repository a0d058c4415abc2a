/**
 * Issue 12: an address that cannot be bound fails with GH_LISTEN_FAILED (exit 71), naming the
 * address and the reason, before anything is issued, written or audited: the CA's certificates,
 * audit trail and CRL numbers are the same after a failed start as before it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ERRORS } from '../src/errors/errors.js';
import { listenFailed } from '../src/errors/listen.js';
import { gatehouse } from './helpers/cli.js';
import { makeTempDir } from './helpers/tmp.js';
import { allProcs, occupyPort } from './helpers/procs.js';
import { enrollAgent, startCaFixture, writeClientCaBundle, type CaFixture } from './helpers/ca-fixture.js';

const EXIT = ERRORS.GH_LISTEN_FAILED.exit;
let scratch: { dir: string; cleanup: () => void };
let caDir = '';
let taken: Awaited<ReturnType<typeof occupyPort>>;
let fixture: CaFixture;
let gw = '';
let bundle = '';

before(async () => {
  scratch = makeTempDir('gh-listen-failed-');
  caDir = join(scratch.dir, 'ca');
  const init = await gatehouse(['ca', 'init', '--dir', caDir]);
  assert.equal(init.status, 0, init.stderr);
  taken = await occupyPort();
  fixture = await startCaFixture();
  gw = (await enrollAgent(fixture, 'gateway', 'gw-listen', { dns: ['localhost'] })).dir;
  bundle = writeClientCaBundle(fixture);
});

after(async () => {
  await taken?.close();
  await fixture?.close();
  scratch?.cleanup();
});

/** What a start could record: certificates, audit events, CRL numbers and published CRLs. */
function recorded(dir: string): Record<string, unknown> {
  const db = new Database(join(dir, 'gatehouse.db'), { readonly: true });
  try {
    return {
      certificates: db.prepare('SELECT count(*) AS n FROM certificates').get(),
      auditEvents: db.prepare('SELECT count(*) AS n FROM audit_events').get(),
      crlNumbers: db.prepare('SELECT scope, value FROM crl_numbers ORDER BY scope').all(),
      meta: db.prepare('SELECT key, value FROM meta ORDER BY key').all(),
    };
  } finally {
    db.close();
  }
}

function assertListenFailed(
  r: { status: number | null; stderr: string },
  address: string,
  what: string,
  reason: RegExp,
): void {
  assert.equal(r.status, EXIT, r.stderr);
  const line = `error: cannot listen on ${address} (${what}): `;
  assert.ok(r.stderr.includes(line), `the message names the address and the listener:\n${r.stderr}`);
  assert.match(r.stderr.slice(r.stderr.indexOf(line) + line.length).split('\n')[0]!, reason);
  assert.match(r.stderr, /\[GH_LISTEN_FAILED\]\nhint: Stop the process holding the address or choose another one/);
  assert.equal(r.stderr.split('cannot listen on').length - 1, 1, `reported once:\n${r.stderr}`);
}

const IN_USE = /^the address is in use by another process \(EADDRINUSE\)/;
const busy = () => `127.0.0.1:${taken.port}`;
/** No process of a finished command runs on (workers included): their command lines hold `marker`. */
const leftovers = (marker: string) =>
  allProcs()
    .filter((p) => p.cmdline.includes(marker) && p.state !== 'Z')
    .map((p) => `${p.pid} ${p.cmdline}`);

test('ca-serve-on-a-port-in-use-fails-before-issuing-anything', async () => {
  const before = recorded(caDir);
  const r = await gatehouse(['ca', 'serve', '--dir', caDir, '--listen', busy()]);
  assertListenFailed(r, busy(), "the CA's HTTPS API", IN_USE);
  assert.deepEqual(recorded(caDir), before, 'no certificate, audit event or CRL was recorded');
});

test('ca-serve-with-its-metrics-listener-on-a-port-in-use-fails-before-issuing-anything', async () => {
  const before = recorded(caDir);
  const r = await gatehouse(['ca', 'serve', '--dir', caDir, '--listen', '127.0.0.1:0', '--metrics-listen', busy()]);
  assertListenFailed(r, busy(), "the CA's /metrics and /healthz listener", IN_USE);
  assert.deepEqual(recorded(caDir), before);
});

test('ca-serve-with-workers-on-a-port-in-use-fails-once-with-no-worker-left', async () => {
  const before = recorded(caDir);
  const r = await gatehouse(['ca', 'serve', '--dir', caDir, '--listen', busy(), '--workers', '3']);
  assertListenFailed(r, busy(), "the CA's HTTPS API", IN_USE);
  assert.doesNotMatch(r.stderr, /worker_exited/, 'a bind failure is not a crash to restart');
  assert.deepEqual(recorded(caDir), before);
  assert.deepEqual(leftovers(caDir), [], 'no orphan worker');

  const metrics = await gatehouse([
    'ca',
    'serve',
    '--dir',
    caDir,
    '--listen',
    '127.0.0.1:0',
    '--workers',
    '2',
    '--metrics-listen',
    busy(),
  ]);
  assertListenFailed(metrics, busy(), "the CA's /metrics and /healthz listener", IN_USE);
  assert.deepEqual(recorded(caDir), before);
  assert.deepEqual(leftovers(caDir), []);
});

test('ca-serve-on-an-address-not-on-this-machine-says-so', async () => {
  const before = recorded(caDir);
  const r = await gatehouse(['ca', 'serve', '--dir', caDir, '--listen', '192.0.2.1:0']);
  assertListenFailed(r, '192.0.2.1:0', "the CA's HTTPS API", /^no such address on this machine \(EADDRNOTAVAIL\)/);
  assert.deepEqual(recorded(caDir), before);
});

const gatewayArgs = (listen: string, extra: string[] = []) => [
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
  'http://127.0.0.1:9',
  ...extra,
];

test('gateway-on-a-port-in-use-fails-for-each-of-its-listeners', async () => {
  const main = await gatehouse(gatewayArgs(busy(), ['--workers', '1']));
  assertListenFailed(main, busy(), 'the gateway', IN_USE);
  const admin = await gatehouse(gatewayArgs('127.0.0.1:0', ['--workers', '1', '--admin-listen', busy()]));
  assertListenFailed(admin, busy(), "the gateway's /metrics and /healthz listener", IN_USE);
  const workers = await gatehouse(gatewayArgs(busy(), ['--workers', '2']));
  assertListenFailed(workers, busy(), 'the gateway', IN_USE);
  assert.doesNotMatch(workers.stderr, /worker_exited/);
  assert.deepEqual(leftovers(join(gw, 'cert.pem')), [], 'no orphan worker');
  // The admin listener: the gateway's own would first be refused for a certificate that does not name 192.0.2.1.
  const nowhere = await gatehouse(gatewayArgs('127.0.0.1:0', ['--workers', '1', '--admin-listen', '192.0.2.1:0']));
  assertListenFailed(
    nowhere,
    '192.0.2.1:0',
    "the gateway's /metrics and /healthz listener",
    /^no such address on this machine \(EADDRNOTAVAIL\)/,
  );
});

test('demo-on-a-port-in-use-fails-before-touching-the-state-folder', async () => {
  // The state folder of a demo still running: a second demo must not wipe it on its way to failing.
  const state = join(scratch.dir, 'running-demo');
  mkdirSync(state);
  writeFileSync(join(state, 'still-here'), 'the running demo keeps its keys');
  for (const flag of ['--ca-listen', '--gateway-listen', '--admin-listen']) {
    const ports = {
      '--ca-listen': '127.0.0.1:0',
      '--gateway-listen': '127.0.0.1:0',
      '--admin-listen': '127.0.0.1:0',
      [flag]: busy(),
    };
    const r = await gatehouse(['demo', '--state-dir', state, ...Object.entries(ports).flat()]);
    assert.equal(r.status, EXIT, `${flag}: ${r.stderr}`);
    assert.match(
      r.stderr,
      new RegExp(
        `cannot listen on ${busy().replace(/\./g, '\\.')} \\([^)]+\\): the address is in use by another process`,
      ),
    );
    assert.ok(existsSync(join(state, 'still-here')), `${flag}: the state folder is left alone`);
    assert.equal(readFileSync(join(state, 'still-here'), 'utf8'), 'the running demo keeps its keys');
  }
});

test('listen-failed-reasons-and-registry-entry', () => {
  assert.deepEqual(
    { http: ERRORS.GH_LISTEN_FAILED.http, exit: ERRORS.GH_LISTEN_FAILED.exit, expose: ERRORS.GH_LISTEN_FAILED.expose },
    { http: 500, exit: 71, expose: false },
  );
  assert.equal(Object.values(ERRORS).filter((spec) => spec.exit === 71).length, 1, 'exit 71 means only this');
  const err = (code: string) => Object.assign(new Error(`listen ${code}`), { code });
  const eacces = listenFailed('0.0.0.0:443', 'the gateway', err('EACCES'));
  assert.equal(eacces.code, 'GH_LISTEN_FAILED');
  assert.match(
    eacces.message,
    /^cannot listen on 0\.0\.0\.0:443 \(the gateway\): listening there needs privileges \(EACCES\): ports below 1024 need root or CAP_NET_BIND_SERVICE/,
  );
  assert.match(listenFailed('a:1', 'x', err('EADDRINUSE')).message, /in use by another process/);
  assert.match(listenFailed('a:1', 'x', err('EADDRNOTAVAIL')).message, /no such address on this machine/);
  assert.match(listenFailed('a:1', 'x', err('EMFILE')).message, /^cannot listen on a:1 \(x\): EMFILE: listen EMFILE$/);
});
