/**
 * Responses are framed for the client by the gateway, whatever the app writes: an app that
 * sends a body after a HEAD, 204 or 304 answer (a response a naive proxy would relay as the
 * next client's answer), a close-delimited body, or a head with both Content-Length and
 * Transfer-Encoding. The app here is raw TCP, so it can write what no HTTP library would.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { makeTempDir } from './helpers/tmp.js';
import { makePki, type Pki } from './helpers/desync-harness.js';
import { rawExchange, finalResponses, header, type RawExchange } from './helpers/raw-http-client.js';
import { startGatewayProcess, type GatewayProcess } from './helpers/gateway-process.js';

const tmp = makeTempDir('gatehouse-respframe-');
let pki: Pki;
let app: Server;
let gateway: GatewayProcess;

/** Looks like a whole response: relayed as bytes, it would answer the next request on the connection. */
const SMUGGLED_RESPONSE = 'HTTP/1.1 200 OK\r\nX-Smuggled: 1\r\nContent-Length: 8\r\n\r\nsmuggled';

const ANSWERS: Record<string, string> = {
  '/head-body': `HTTP/1.1 200 OK\r\nContent-Length: ${SMUGGLED_RESPONSE.length}\r\n\r\n${SMUGGLED_RESPONSE}`,
  '/no-content': `HTTP/1.1 204 No Content\r\nContent-Length: ${SMUGGLED_RESPONSE.length}\r\n\r\n${SMUGGLED_RESPONSE}`,
  '/not-modified': `HTTP/1.1 304 Not Modified\r\n\r\n${SMUGGLED_RESPONSE}`,
  '/cl-and-te': `HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n${SMUGGLED_RESPONSE.length.toString(16)}\r\n${SMUGGLED_RESPONSE}\r\n0\r\n\r\n`,
  '/early-hints':
    'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhints',
  '/ok': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
};

/** One request head at a time; `/close-delimited` answers with a body ended by closing. */
function serveRaw(socket: Socket): void {
  let buffered = '';
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('latin1');
    let end: number;
    while ((end = buffered.indexOf('\r\n\r\n')) >= 0) {
      const head = buffered.slice(0, end);
      buffered = buffered.slice(end + 4);
      const path = head.split(' ')[1] ?? '/';
      if (path === '/slow-upgrade') {
        // Answers the upgrade late, after the client has gone.
        setTimeout(() => {
          if (!socket.destroyed)
            socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
        }, 300);
        return;
      }
      if (path === '/stream') {
        socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
        const timer = setInterval(() => (socket.destroyed ? clearInterval(timer) : socket.write('5\r\nchunk\r\n')), 20);
        return;
      }
      if (path === '/close-delimited') {
        socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end');
        return;
      }
      socket.write(ANSWERS[path] ?? ANSWERS['/ok']!);
    }
  });
}

before(async () => {
  pki = await makePki(tmp.dir);
  app = createServer(serveRaw);
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', () => resolve()));
  // No policy: any verified client may make any request (what this file tests is the framing).
  gateway = await startGatewayProcess({
    cert: pki.server.certPath,
    key: pki.server.keyPath,
    clientCa: pki.ca.certPath,
    upstream: `http://127.0.0.1:${(app.address() as AddressInfo).port}`,
  });
});

after(async () => {
  await gateway?.stop();
  await new Promise<void>((resolve) => app?.close(() => resolve()));
  tmp.cleanup();
});

function send(request: string, options: { bodiless?: boolean } = {}): Promise<RawExchange> {
  const alice = pki.clients.alice;
  return rawExchange({
    port: gateway.port,
    ca: pki.caPem,
    cert: alice.cert,
    key: alice.key,
    steps: [request],
    minResponses: 1,
    ...(options.bodiless ? { bodiless: true } : {}),
  });
}

const get = (path: string, method = 'GET') => `${method} ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`;

function assertNothingSmuggled(x: RawExchange, what: string): void {
  assert.ok(
    !finalResponses(x).some((r) => header(r, 'x-smuggled') !== undefined),
    `${what}: a response the app wrote as a body reached the client as a response`,
  );
  assert.ok(!x.raw.toString('latin1').includes('X-Smuggled'), `${what}: the app's extra bytes reached the client`);
}

/** The next request, on a new client connection, may reuse the gateway's upstream connection. */
async function assertNextRequestClean(what: string): Promise<void> {
  const next = await send(get('/ok'));
  assertNothingSmuggled(next, `${what}, next request`);
  const [r] = finalResponses(next);
  assert.ok(r, `${what}: no answer to the next request`);
  assert.ok(r.status === 200 || r.status === 502, `${what}: next request got ${r.status}`);
  if (r.status === 200) assert.equal(r.body.toString(), 'ok');
}

// A 204 must not carry Content-Length (RFC 9110 §8.6): undici refuses it, and the client gets a 502.
for (const [path, method, status] of [
  ['/head-body', 'HEAD', 200],
  ['/no-content', 'GET', 502],
  ['/not-modified', 'GET', 304],
] as const) {
  test(`gateway-response-${path.slice(1)}-to-${method.toLowerCase()}-carries-no-body-whatever-the-app-writes`, async () => {
    const x = await send(get(path, method), { bodiless: method === 'HEAD' || status !== 502 });
    const responses = finalResponses(x);
    assert.equal(responses.length, 1, `${JSON.stringify(x.raw.toString('latin1'))} ended by ${x.endedBy} ${x.error}`);
    assert.equal(responses[0]!.status, status);
    if (status === 502)
      assert.match(responses[0]!.body.toString(), /502 Bad Gateway: the upstream of routes\[0\] is unavailable/);
    if (status !== 502) assert.equal(responses[0]!.body.length, 0);
    assert.equal(x.rest.length, 0, `nothing after the head: ${JSON.stringify(x.rest.toString('latin1'))}`);
    assertNothingSmuggled(x, path);
    await assertNextRequestClean(path);
  });
}

test('gateway-response-close-delimited-body-is-framed-for-the-client-and-the-connection-kept', async () => {
  const alice = pki.clients.alice;
  const x = await rawExchange({
    port: gateway.port,
    ca: pki.caPem,
    cert: alice.cert,
    key: alice.key,
    minResponses: 2,
    steps: [get('/close-delimited'), { responses: 1 }, get('/ok')],
  });
  const [first, second] = finalResponses(x);
  assert.equal(first?.status, 200);
  assert.equal(first!.body.toString(), 'until the end');
  assert.ok(
    header(first!, 'content-length') !== undefined || /chunked/i.test(header(first!, 'transfer-encoding') ?? ''),
    'the gateway framed the body itself',
  );
  assert.equal(second?.status, 200, 'the client connection outlived the close-delimited upstream one');
  assert.equal(second!.body.toString(), 'ok');
});

test('gateway-response-with-content-length-and-transfer-encoding-is-a-502', async () => {
  const x = await send(get('/cl-and-te'));
  const [r] = finalResponses(x);
  assert.equal(r?.status, 502, x.raw.toString('latin1'));
  assertNothingSmuggled(x, '/cl-and-te');
  await assertNextRequestClean('/cl-and-te');
});

test('gateway-response-1xx-from-the-app-not-relayed-final-answer-is', async () => {
  const x = await send(get('/early-hints'));
  const responses = finalResponses(x);
  assert.equal(responses.length, 1);
  assert.equal(responses[0]!.status, 200);
  assert.equal(responses[0]!.body.toString(), 'hints');
});

/**
 * Connects with alice's certificate, writes `bytes`, and once `when` holds resets the TCP
 * connection (RST, not FIN), so the gateway's socket errors (ECONNRESET) at whatever it was doing.
 */
async function vanish(bytes: string, when: (received: string) => boolean): Promise<void> {
  const alice = pki.clients.alice;
  await new Promise<void>((resolve) => {
    let received = '';
    const tcp = netConnect({ host: '127.0.0.1', port: gateway.port });
    const kill = () => tcp.resetAndDestroy();
    const socket = tlsConnect(
      { socket: tcp, servername: 'localhost', ca: pki.caPem, cert: alice.cert, key: alice.key },
      () => {
        // Reset only once the bytes are handed to the kernel: a reset drops pending writes.
        socket.write(bytes, () => {
          if (when('')) kill();
        });
      },
    );
    socket.on('data', (d: Buffer) => {
      received += d.toString('latin1');
      if (when(received)) kill();
    });
    socket.on('error', () => undefined);
    tcp.on('error', () => undefined);
    tcp.on('close', () => resolve());
  });
}

test('gateway-survives-clients-that-vanish-mid-upgrade-mid-body-and-mid-response', async () => {
  const upgrade =
    'GET /slow-upgrade HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
  await vanish(upgrade, () => true);
  await vanish('POST /ok HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\nonly a little', () => true);
  await vanish('GET /stream HTTP/1.1\r\nHost: localhost\r\n\r\n', (received) => received.includes('chunk'));
  // The late 101 arrives after its client left; then the next clients are served as usual.
  await gateway.waitForLog((l) => l.upgrade === 'websocket', 5000);
  assert.equal(gateway.child.exitCode, null, `the gateway exited:\n${gateway.stderr().slice(-2000)}`);
  await assertNextRequestClean('after vanishing clients');
  assert.ok(!gateway.logs().some((l) => l.msg === 'gateway.internal_error'), 'no request hit the last-resort guard');
});
