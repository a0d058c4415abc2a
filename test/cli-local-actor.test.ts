/**
 * CLI use on the CA directory from a uid with no passwd entry (a container run with
 * `--user N`): os.userInfo() throws there, and `cert sign` once crashed on it. Needs root, to
 * take such a uid; the suite runs as root in CI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gatehouse, CLI_PATH } from './helpers/cli.js';
import { makeTempDir } from './helpers/tmp.js';
import { run, runSync } from './helpers/run.js';
import * as pki from '../src/pki/index.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import { CA_FILES } from '../src/ca/ca-dir.js';

const UID = 54321;

function chownTree(path: string): void {
  chownSync(path, UID, UID);
  if (statSync(path).isDirectory()) for (const entry of readdirSync(path)) chownTree(join(path, entry));
}

test('cert sign as a uid without a passwd entry signs and audits the uid as the actor', async () => {
  assert.equal(
    process.getuid?.(),
    0,
    'this test takes a uid with no passwd entry, which needs root (CI runs the suite as root)',
  );
  assert.notEqual(
    runSync('getent', ['passwd', String(UID)]).status,
    0,
    `uid ${UID} must have no passwd entry on this machine`,
  );
  const tmp = makeTempDir();
  try {
    const caDir = join(tmp.dir, 'ca');
    const init = await gatehouse(['ca', 'init', '--dir', caDir, '--json']);
    assert.equal(init.status, 0, init.stderr);
    const csr = join(tmp.dir, 'csr.pem');
    writeFileSync(csr, await pki.buildCsrPem(pki.generatePrivateKey('p256'), { commonName: 'printer-9' }));
    chownTree(tmp.dir);
    chmodSync(tmp.dir, 0o700);
    const signed = await run(
      'setpriv',
      [
        `--reuid=${UID}`,
        `--regid=${UID}`,
        '--clear-groups',
        process.execPath,
        CLI_PATH,
        'cert',
        'sign',
        '--dir',
        caDir,
        '--csr',
        csr,
        '--role',
        'web',
        '--json',
      ],
      { env: { ...process.env, HOME: tmp.dir } },
    );
    assert.equal(signed.status, 0, signed.stderr);
    assert.equal((JSON.parse(signed.stdout) as { name: string }).name, 'printer-9');
    const store = openSqliteStore(join(caDir, CA_FILES.database));
    try {
      const issued = (await store.listAudit({ type: 'ca.cert_issued' })).filter((e) => e.details.name === 'printer-9');
      assert.deepEqual(
        issued.map((e) => e.actor),
        [`local:${UID}`],
      );
    } finally {
      await store.close();
    }
  } finally {
    tmp.cleanup();
  }
});
