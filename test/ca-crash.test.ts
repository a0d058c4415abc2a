/**
 * 'ca-sigkill-during-enrollment-burst-loses-no-issued-certificate': every certificate a client
 * received must be in the store after the CA is killed mid-burst, and the store must open cleanly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Agent, request } from 'node:https';
import { appendFileSync, readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { gatehouse } from './helpers/cli.js';
import { startCaProcess } from './helpers/ca-process.js';
import { makeTempDir } from './helpers/tmp.js';
import { buildCsrPem, generatePrivateKey } from '../src/pki/index.js';
import { openSqliteStore } from '../src/store/sqlite.js';

function post(url: string, body: string, agent: Agent): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('ca-sigkill-during-enrollment-burst-loses-no-issued-certificate', async () => {
  const tmp = makeTempDir();
  const caDir = join(tmp.dir, 'ca');
  let ca;
  try {
    assert.equal((await gatehouse(['ca', 'init', '--dir', caDir])).status, 0);
    // The burst is one source and one token: the rate limits would turn most of it into 429s.
    appendFileSync(join(caDir, 'gatehouse.yaml'), 'limits:\n  enroll: { perSource: null, perToken: null }\n');
    const token = (
      await gatehouse(['token', 'create', '--dir', caDir, '--role', 'web', '--uses', '10000', '--names', 'burst-*'])
    ).stdout.trim();
    // CSRs without a CN: each enrollment names itself through nameHint, so every name is new.
    const csrs = await Promise.all(Array.from({ length: 40 }, () => buildCsrPem(generatePrivateKey('p256'), {})));
    let sequence = 0;
    ca = await startCaProcess(caDir);
    const agent = new Agent({ ca: readFileSync(join(caDir, 'root.pem'), 'utf8'), keepAlive: true, maxSockets: 16 });
    const received: string[] = [];
    let killed = false;
    let attempts = 0;
    const worker = async (w: number) => {
      for (let i = 0; !killed; i++) {
        attempts++;
        try {
          const r = await post(
            `${ca!.url}/enroll`,
            JSON.stringify({ token, csr: csrs[(w + i * 16) % csrs.length], nameHint: `burst-${sequence++}` }),
            agent,
          );
          if (r.status === 201) received.push((JSON.parse(r.text) as { serial: string }).serial);
        } catch {
          return; // connection reset by the kill
        }
        if (received.length >= 60 && !killed) {
          killed = true;
          ca!.child.kill('SIGKILL');
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, (_, w) => worker(w)));
    await ca.stop();
    agent.destroy();
    assert.ok(received.length >= 60, `received ${received.length} certificates in ${attempts} attempts`);

    const db = new Database(join(caDir, 'gatehouse.db'));
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    db.close();
    const store = openSqliteStore(join(caDir, 'gatehouse.db'));
    const missing: string[] = [];
    for (const serial of received) if (!(await store.getCert(serial))) missing.push(serial);
    await store.close();
    assert.deepEqual(missing, [], 'every certificate a client received is in the store');
  } finally {
    await ca?.stop('SIGKILL');
    tmp.cleanup();
  }
});
