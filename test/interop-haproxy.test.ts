/**
 * docs/recipes/haproxy.md, run for real: HAProxy (the Debian package) in master-worker mode
 * terminates mutual TLS for a header-echo app, trusting a real Gatehouse CA with both of its
 * CRLs. The configuration is the recipe's (test/helpers/proxy-recipes.ts); a test checks the
 * doc shows it. Refusals happen in the TLS handshake, so curl gets an alert, not an HTTP answer.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startEchoUpstream, type EchoUpstream } from './helpers/echo-upstream.js';
import {
  assertDocMentions,
  assertDocShows,
  clientIdentityHeaders,
  curlProxy,
  describeAnswer,
  echoedBy,
  FORGED_HEADERS,
  handshakeAlert,
  requireTool,
  runHook,
  sClient,
  sClientIdentity,
  setUpGatehouse,
  startProxyOnFreePort,
  TLS_VERSIONS,
  toolVersion,
  writeConfig,
  type ClientCert,
  type CurlAnswer,
  type GatehousePki,
  type Identity,
  type ProxyProcess,
} from './helpers/proxy-peers.js';
import { run } from './helpers/run.js';
import { HAPROXY_DOC, haproxyConfig, haproxyRenewHook, haproxyRuntimeCrlUpdateShell } from './helpers/proxy-recipes.js';

const DOC = 'docs/recipes/haproxy.md';

let haproxyPath: string;
let pki: GatehousePki;
let app: EchoUpstream;
let haproxy: ProxyProcess;
let socketPath: string;
let pemPath: string;
const devices: Record<string, Identity> = {};

/** What `systemctl reload haproxy` does with the Debian unit: SIGUSR2 to the master. */
const reloadCommand = () => `kill -USR2 ${haproxy.child.pid}`;
const loads = () => haproxy.output().match(/Loading success\./g)?.length ?? 0;
const formerExits = () => haproxy.output().match(/Former worker \(\d+\) exited/g)?.length ?? 0;

/**
 * Runs a reload and waits until the new worker is loaded and the old one has exited: until
 * then, a new connection can still land on the old worker and its old CRL.
 */
async function reloaded(reload: () => Promise<void>): Promise<void> {
  const [loaded, exited] = [loads(), formerExits()];
  await reload();
  await haproxy.waitForOutput(/Loading success\./, loaded + 1);
  await haproxy.waitForOutput(/Former worker \(\d+\) exited/, exited + 1);
}

/** curl gets no HTTP answer, and the handshake without a request ends with `alert`. */
async function assertTlsRefused(answer: CurlAnswer, alert: string, what: string, client?: ClientCert): Promise<void> {
  assert.equal(answer.http, null, `${what}: no HTTP answer expected; ${describeAnswer(answer)}`);
  assert.notEqual(answer.exit, 0, what);
  assert.equal(
    await handshakeAlert(haproxy.port, pki.rootPath, client ? sClientIdentity(pki, client) : []),
    alert,
    what,
  );
}

before(async () => {
  haproxyPath = requireTool('haproxy', 'haproxy');
  requireTool('socat', 'socat');
  pki = await setUpGatehouse('haproxy');
  app = await startEchoUpstream({ name: 'app' });
  for (const name of ['laptop-1', 'laptop-2', 'laptop-3']) devices[name] = await pki.enroll('web', name);
  const dir = join(pki.root, 'haproxy');
  mkdirSync(dir);
  socketPath = join(dir, 'admin.sock');
  pemPath = join(dir, 'gatehouse.pem');
  // The crt file is built by the recipe's --on-renew hook, run here once as the agent would.
  await runHook(haproxyRenewHook(pemPath, 'true'), pki.gateway.dir, pki.gateway.serial);
  haproxy = await startProxyOnFreePort((port) => {
    const config = writeConfig(
      join(dir, 'haproxy.cfg'),
      haproxyConfig({
        log: 'stderr format short local0 info',
        socket: socketPath,
        bind: `127.0.0.1:${port}`,
        pem: pemPath,
        bundle: pki.bundlePath,
        crl: pki.crlPath,
        upstream: new URL(app.url).host,
      }),
    );
    return { name: 'haproxy', command: haproxyPath, args: ['-W', '-db', '-f', config], port };
  });
  await haproxy.waitForOutput(/Loading success\./);
  console.log(`# ${await toolVersion(haproxyPath, ['-v'])}`);
});

after(async () => {
  await haproxy?.stop();
  await app?.close();
  await pki?.close();
});

test('haproxy-recipe-doc-shows-the-tested-config-and-hook', () => {
  assertDocShows(DOC, haproxyConfig(HAPROXY_DOC), 'haproxy.cfg');
  assertDocMentions(
    DOC,
    `--on-renew '${haproxyRenewHook(HAPROXY_DOC.pem, 'systemctl reload haproxy')}'`,
    'renewal hook',
  );
  assertDocMentions(DOC, "/etc/gatehouse/trust/crl.pem 'systemctl reload haproxy'", 'CRL refresh command');
  assertDocShows(DOC, haproxyRuntimeCrlUpdateShell(HAPROXY_DOC.crl, HAPROXY_DOC.socket), 'runtime API CRL update');
});

test('haproxy-without-client-certificate-refused-in-the-handshake', async () => {
  const before = app.requestCount();
  await assertTlsRefused(
    await curlProxy(haproxy.port, { cacert: pki.rootPath }),
    'alert certificate required',
    'no certificate',
  );
  assert.equal(app.requestCount(), before, 'the app was not called');
  await haproxy.waitForOutput(/gatehouse_mtls\/1: SSL handshake failure/);
});

test('haproxy-enrolled-device-reaches-app-with-its-subject-and-client-copies-removed', async () => {
  const device = devices['laptop-1']!;
  const answer = await curlProxy(haproxy.port, {
    cacert: pki.rootPath,
    client: device,
    headers: FORGED_HEADERS,
    path: '/hello',
  });
  const echoed = echoedBy(answer);
  assert.equal(echoed.url, '/hello');
  // Every X-Client-* / X_Client_* header the client sent is gone; only HAProxy's two remain.
  assert.deepEqual(clientIdentityHeaders(echoed), [
    ['x-client-subject', device.subject],
    ['x-client-verify', 'SUCCESS'],
  ]);
});

test('haproxy-certificate-from-another-ca-refused-in-the-handshake', async () => {
  const before = app.requestCount();
  await assertTlsRefused(
    await curlProxy(haproxy.port, { cacert: pki.rootPath, client: pki.foreign }),
    'alert unknown ca',
    'another CA',
    pki.foreign,
  );
  assert.equal(app.requestCount(), before, 'the app was not called');
  await haproxy.waitForOutput(/gatehouse_mtls\/1: SSL client certificate not trusted/);
});

test('haproxy-serves-the-renewed-server-certificate-after-the-agent-hook-reloads', async () => {
  const device = devices['laptop-3']!;
  const first = await sClient(haproxy.port, pki.rootPath, sClientIdentity(pki, device));
  assert.equal(first.serverSerial, pki.gateway.serial);
  const renewed = await pki.renew(pki.gateway);
  await reloaded(() => runHook(haproxyRenewHook(pemPath, reloadCommand()), pki.gateway.dir, renewed));
  const served = await sClient(haproxy.port, pki.rootPath, sClientIdentity(pki, device));
  assert.equal(served.serverSerial, renewed, 'HAProxy presents the renewed certificate after the reload');
  assert.equal(served.http?.status, 200);
});

test('haproxy-revoked-device-refused-after-crl-refresh-reload-also-on-resumed-sessions', async () => {
  const device = devices['laptop-1']!;
  for (const [label, version] of TLS_VERSIONS) {
    const saved = await sClient(haproxy.port, pki.rootPath, [
      ...version,
      ...sClientIdentity(pki, device),
      '-sess_out',
      join(pki.root, `reload-${label}.sess`),
    ]);
    assert.equal(saved.http?.status, 200, `${label}: ${saved.raw.stdout.slice(-1500)}`);
  }
  await pki.revoke(device);
  // The refresh script writes the file, sees it changed and runs the reload.
  await reloaded(async () => {
    const refreshed = await pki.refreshCrl(reloadCommand());
    assert.equal(refreshed.status, 0, refreshed.stderr);
  });
  await assertTlsRefused(
    await curlProxy(haproxy.port, { cacert: pki.rootPath, client: device }),
    'alert certificate revoked',
    'revoked',
    device,
  );
  for (const [label, version] of TLS_VERSIONS) {
    const resumed = await sClient(haproxy.port, pki.rootPath, [
      ...version,
      '-sess_in',
      join(pki.root, `reload-${label}.sess`),
    ]);
    assert.equal(resumed.reused, false, `${label}: the reloaded HAProxy has new session keys`);
    assert.notEqual(resumed.http?.status, 200, `${label}: resumed session must not get the revoked device in`);
  }
  const other = await curlProxy(haproxy.port, { cacert: pki.rootPath, client: devices['laptop-3']! });
  assert.deepEqual(clientIdentityHeaders(echoedBy(other)), [
    ['x-client-subject', devices['laptop-3']!.subject],
    ['x-client-verify', 'SUCCESS'],
  ]);
});

test('haproxy-runtime-api-crl-update-refuses-new-handshakes-but-not-resumed-sessions', async () => {
  const device = devices['laptop-2']!;
  for (const [label, version] of TLS_VERSIONS) {
    const saved = await sClient(haproxy.port, pki.rootPath, [
      ...version,
      ...sClientIdentity(pki, device),
      '-sess_out',
      join(pki.root, `api-${label}.sess`),
    ]);
    assert.equal(saved.http?.status, 200, `${label}: ${saved.raw.stdout.slice(-1500)}`);
  }
  await pki.revoke(device);
  const refreshed = await pki.refreshCrl('true');
  assert.equal(refreshed.status, 0, refreshed.stderr);
  const loadsBefore = loads();
  // The recipe's two socat commands, as they are.
  const update = await run('sh', ['-c', haproxyRuntimeCrlUpdateShell(pki.crlPath, socketPath)]);
  assert.equal(update.status, 0, update.stderr);
  assert.match(update.stdout, /transaction (created|updated) for CRL[\s\S]*Committing[\s\S]*Success!/, update.stdout);
  assert.equal(loads(), loadsBefore, 'no reload happened');

  await assertTlsRefused(
    await curlProxy(haproxy.port, { cacert: pki.rootPath, client: device }),
    'alert certificate revoked',
    'new handshake after the runtime update',
    device,
  );
  // The limit the recipe documents: a session resumed from before the update keeps the verdict
  // of its first handshake (OpenSSL does not verify again on resumption), until it expires
  // (tune.ssl.lifetime, 300 s by default) or HAProxy reloads.
  for (const [label, version] of TLS_VERSIONS) {
    const resumed = await sClient(haproxy.port, pki.rootPath, [
      ...version,
      '-sess_in',
      join(pki.root, `api-${label}.sess`),
    ]);
    assert.equal(resumed.reused, true, `${label}: ${resumed.raw.stdout.slice(-1500)}`);
    assert.equal(resumed.http?.status, 200, `${label}: resumed session still forwarded`);
  }
  // A reload closes that gap.
  await reloaded(async () => void (await runHook(reloadCommand(), pki.gateway.dir, pki.gateway.serial)));
  for (const [label, version] of TLS_VERSIONS) {
    const resumed = await sClient(haproxy.port, pki.rootPath, [
      ...version,
      '-sess_in',
      join(pki.root, `api-${label}.sess`),
    ]);
    assert.notEqual(resumed.http?.status, 200, `${label}: after the reload the old session is refused`);
  }
});
