/**
 * The agent's CA client reads a bounded answer: a pinned CA that sends without end (broken, or
 * its key stolen) gets a clear error, not an agent that buffers until it runs out of memory.
 * A real TLS server with an openssl-made certificate stands in for the CA.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { CaClient, MAX_RESPONSE_BYTES } from '../src/agent/ca-client.js';
import { isGatehouseError } from '../src/errors/errors.js';
import { makeCa, makeLeaf } from './helpers/openssl-pki.js';
import { makeTempDir } from './helpers/tmp.js';

test('ca-client-refuses-an-answer-larger-than-its-bound-and-reads-one-within-it', async () => {
  const tmp = makeTempDir('gh-ca-client-');
  const ca = await makeCa(tmp.dir, 'Stand-in CA');
  const leaf = await makeLeaf(ca, { cn: 'localhost', san: 'DNS:localhost,IP:127.0.0.1', eku: 'serverAuth' });
  let sent = 0;
  const server = createServer({ key: readFileSync(leaf.keyPath), cert: leaf.pem }, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'gatehouse-secret-version': '1' });
    if (req.url === '/v1/secrets/small') return void res.end(Buffer.alloc(1024, 7));
    // Endless: 64 KiB at a time for as long as the client reads.
    const chunk = Buffer.alloc(64 * 1024, 1);
    const pump = () => {
      while (!res.destroyed && res.write(chunk)) sent += chunk.length;
      if (!res.destroyed) res.once('drain', pump);
    };
    res.on('close', () => undefined);
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = new CaClient({
    baseUrl: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    rootPem: ca.pem,
    timeoutMs: 30_000,
  });
  try {
    const small = await client.getBytesWithHeaders('v1/secrets/small', 'application/octet-stream');
    assert.equal(small.body.length, 1024);
    assert.equal(small.version, '1');
    // A deadline of its own: without the bound the client would read until memory runs out.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('no refusal within 20 s: the client kept reading')), 20_000);
    });
    await assert.rejects(
      Promise.race([client.getBytesWithHeaders('v1/secrets/endless', 'application/octet-stream'), deadline]).finally(
        () => clearTimeout(timer),
      ),
      (err: unknown) => {
        assert.ok(isGatehouseError(err, 'GH_CA_UNREACHABLE'), String(err));
        assert.match(
          (err as Error).message,
          new RegExp(`answered /v1/secrets/endless with more than ${MAX_RESPONSE_BYTES} bytes`),
        );
        return true;
      },
    );
    assert.ok(sent < MAX_RESPONSE_BYTES * 4, `the client stopped reading soon after the bound (${sent} bytes sent)`);
  } finally {
    client.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    tmp.cleanup();
  }
});
