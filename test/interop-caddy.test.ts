/**
 * docs/recipes/caddy.md, run for real: Caddy (the Debian package) terminates mutual TLS for a
 * header-echo app, trusting a real Gatehouse CA. Caddy has no CRL or OCSP check for client
 * certificates (caddyserver/caddy#2341), so this recipe is tested for acceptance and refusal by
 * CA only, and one test pins the limit the recipe states: a revoked device still gets in.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
  pickFreePort,
  requireTool,
  runHook,
  sClient,
  sClientIdentity,
  setUpGatehouse,
  startProxyOnFreePort,
  writeConfig,
  type ClientCert,
  type CurlAnswer,
  type GatehousePki,
  type Identity,
  type ProxyProcess,
} from './helpers/proxy-peers.js';
import { CADDY_DOC, caddyfile, caddyReloadCommand, type CaddyRecipe } from './helpers/proxy-recipes.js';
import { run } from './helpers/run.js';

const DOC = 'docs/recipes/caddy.md';

let caddyPath: string;
let pki: GatehousePki;
let app: EchoUpstream;
let caddy: ProxyProcess;
let device: Identity;
let recipe: CaddyRecipe;
let caddyfilePath: string;
let caddyEnv: NodeJS.ProcessEnv;

/** Caddy keeps its state under $HOME / XDG dirs: a temp dir, not the machine's. */
async function caddyCli(args: string[]) {
  const r = await run(caddyPath, args, { env: { ...process.env, ...caddyEnv }, timeoutMs: 30_000 });
  assert.equal(r.status, 0, `caddy ${args.join(' ')}: exit ${r.status}\n${r.stdout}${r.stderr}`);
  return r;
}

/** The recipe's --on-renew hook, pointed at this test's Caddyfile and admin address. */
const reloadCommand = () => caddyReloadCommand(caddyfilePath, recipe.admin);

/** curl gets no HTTP answer, and the handshake without a request ends with `alert`. */
async function assertTlsRefused(answer: CurlAnswer, alert: string, what: string, client?: ClientCert): Promise<void> {
  assert.equal(answer.http, null, `${what}: no HTTP answer expected; ${describeAnswer(answer)}`);
  assert.notEqual(answer.exit, 0, what);
  assert.equal(await handshakeAlert(caddy.port, pki.rootPath, client ? sClientIdentity(pki, client) : []), alert, what);
}

before(async () => {
  caddyPath = requireTool('caddy', 'caddy');
  pki = await setUpGatehouse('caddy');
  app = await startEchoUpstream({ name: 'app' });
  device = await pki.enroll('web', 'laptop-1');
  const home = join(pki.root, 'caddy-home');
  mkdirSync(home);
  caddyEnv = { HOME: home, XDG_DATA_HOME: join(home, 'data'), XDG_CONFIG_HOME: join(home, 'config') };
  caddyfilePath = join(pki.root, 'Caddyfile');
  caddy = await startProxyOnFreePort(async (port) => {
    recipe = {
      admin: `127.0.0.1:${await pickFreePort()}`,
      site: `https://localhost:${port}`,
      bind: '127.0.0.1',
      cert: pki.gateway.certPath,
      key: pki.gateway.keyPath,
      root: pki.rootPath,
      upstream: new URL(app.url).host,
    };
    writeConfig(caddyfilePath, caddyfile(recipe));
    return {
      name: 'caddy',
      command: caddyPath,
      args: ['run', '--config', caddyfilePath, '--adapter', 'caddyfile'],
      env: caddyEnv,
      port,
    };
  });
  console.log(`# caddy ${(await caddyCli(['version'])).stdout.trim()}`);
});

after(async () => {
  await caddy?.stop();
  await app?.close();
  await pki?.close();
});

test('caddy-recipe-doc-shows-the-tested-caddyfile-and-hook', () => {
  assertDocShows(DOC, caddyfile(CADDY_DOC), 'Caddyfile');
  assertDocMentions(DOC, `--on-renew '${caddyReloadCommand('/etc/caddy/Caddyfile', CADDY_DOC.admin)}'`, 'renewal hook');
});

test('caddy-without-client-certificate-refused-in-the-handshake', async () => {
  const before = app.requestCount();
  await assertTlsRefused(
    await curlProxy(caddy.port, { cacert: pki.rootPath }),
    'alert bad certificate',
    'no certificate',
  );
  assert.equal(app.requestCount(), before, 'the app was not called');
});

test('caddy-enrolled-device-reaches-app-with-its-subject-and-client-copies-removed', async () => {
  const answer = await curlProxy(caddy.port, {
    cacert: pki.rootPath,
    client: device,
    headers: FORGED_HEADERS,
    path: '/hello',
  });
  const echoed = echoedBy(answer);
  assert.equal(echoed.url, '/hello');
  // Go prints the subject as RFC 2253 too; for Gatehouse's names it is the same text as nginx's.
  assert.deepEqual(clientIdentityHeaders(echoed), [
    ['x-client-subject', device.subject],
    ['x-client-verify', 'SUCCESS'],
  ]);
});

test('caddy-certificate-from-another-ca-refused-in-the-handshake', async () => {
  const before = app.requestCount();
  await assertTlsRefused(
    await curlProxy(caddy.port, { cacert: pki.rootPath, client: pki.foreign }),
    'alert bad certificate',
    'another CA',
    pki.foreign,
  );
  assert.equal(app.requestCount(), before, 'the app was not called');
});

test('caddy-serves-the-renewed-certificate-only-after-a-forced-reload', async () => {
  const first = await sClient(caddy.port, pki.rootPath, sClientIdentity(pki, device));
  assert.equal(first.serverSerial, pki.gateway.serial);
  const renewed = await pki.renew(pki.gateway);
  // The Caddyfile did not change, so a plain reload is a no-op that keeps the old certificate:
  // the hook needs --force (Debian's caddy.service reload has it too).
  await caddyCli(['reload', '--config', caddyfilePath, '--adapter', 'caddyfile', '--address', recipe.admin]);
  assert.equal(
    (await sClient(caddy.port, pki.rootPath, sClientIdentity(pki, device))).serverSerial,
    first.serverSerial,
    'plain reload: old certificate',
  );
  await runHook(reloadCommand(), pki.gateway.dir, renewed);
  const served = await sClient(caddy.port, pki.rootPath, sClientIdentity(pki, device));
  assert.equal(served.serverSerial, renewed, 'forced reload: the renewed certificate');
  assert.equal(served.http?.status, 200);
});

test('caddy-trusted-ca-cert-file-reads-only-its-first-certificate', async () => {
  // Why the recipe gives Caddy the root alone: with another certificate first in the file,
  // Caddy 2.6 trusts only that one and refuses Gatehouse devices.
  const mixed = join(pki.root, 'foreign-then-root.pem');
  writeFileSync(mixed, readFileSync(pki.foreignCaPath, 'utf8') + readFileSync(pki.rootPath, 'utf8'));
  writeConfig(caddyfilePath, caddyfile({ ...recipe, root: mixed }));
  try {
    await runHook(reloadCommand(), pki.gateway.dir, pki.gateway.serial);
    await assertTlsRefused(
      await curlProxy(caddy.port, { cacert: pki.rootPath, client: device }),
      'alert bad certificate',
      'root second in trusted_ca_cert_file',
      device,
    );
  } finally {
    writeConfig(caddyfilePath, caddyfile(recipe));
    await runHook(reloadCommand(), pki.gateway.dir, pki.gateway.serial);
  }
  assert.equal(
    (await curlProxy(caddy.port, { cacert: pki.rootPath, client: device })).http?.status,
    200,
    'root alone: accepted again',
  );
});

test('caddy-has-no-crl-check-revoked-device-still-accepted-after-reload', async () => {
  await pki.revoke(device);
  await runHook(reloadCommand(), pki.gateway.dir, pki.gateway.serial);
  // The limit caddy.md states: revocation reaches Caddy only when the certificate expires.
  const answer = await curlProxy(caddy.port, { cacert: pki.rootPath, client: device });
  assert.deepEqual(clientIdentityHeaders(echoedBy(answer)), [
    ['x-client-subject', device.subject],
    ['x-client-verify', 'SUCCESS'],
  ]);
});
