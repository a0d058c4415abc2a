import { existsSync, rmSync } from 'node:fs';
import { join, resolve, relative } from 'node:path';
import { serverLogger, logLevelOption } from '../server-log.js';
import { str, type CommandSpec } from '../command.js';
import { untilStopped } from '../stop.js';

export const quickstart: CommandSpec = {
  path: ['quickstart'],
  summary:
    'What `npm start` runs: create a CA in ./.gatehouse (once), serve it, enroll a first machine and print copy-paste commands.',
  options: {
    'state-dir': {
      type: 'string',
      value: 'DIR',
      description: 'Where the CA and demo identities live (default ./.gatehouse)',
    },
    listen: {
      type: 'string',
      value: 'HOST:PORT',
      description: 'CA listen address (default 127.0.0.1:8443, or GATEHOUSE_LISTEN)',
    },
    'log-level': logLevelOption('warn'),
  },
  notes: ['Runs until Ctrl-C. Delete the state directory to start from scratch.'],
  async run(ctx) {
    const logger = serverLogger(ctx, { fallback: 'warn' });
    const { initCa } = await import('../../ca/init.js');
    const { CA_FILES, loadCaMaterial } = await import('../../ca/ca-dir.js');
    const { startCaServer } = await import('../../ca/server.js');
    const { enroll } = await import('../../agent/enroll.js');
    const { openCaStore } = await import('../../ca/store-open.js');
    const { dashboardMount } = await import('../../dashboard/router.js');
    const state = resolve(str(ctx, 'state-dir') ?? '.gatehouse');
    const caDir = join(state, 'ca');
    const listen = str(ctx, 'listen') ?? ctx.env.GATEHOUSE_LISTEN ?? '127.0.0.1:8443';
    const rel = (p: string) => relative(process.cwd(), p) || '.';
    if (!existsSync(join(caDir, CA_FILES.config))) {
      const created = await initCa({
        dir: caDir,
        org: 'Gatehouse Demo',
        trustDomain: 'demo.gatehouse.internal',
        listen,
      });
      ctx.out(`Created a CA in ${rel(caDir)} (root fingerprint ${created.rootFingerprint})\n`);
    }
    const material = loadCaMaterial(caDir);
    const store = await openCaStore(caDir, material.config);
    const server = await startCaServer({ material, store, logger, listen, mounts: [dashboardMount] });
    const ca = server.url;
    try {
      const device = join(state, 'device-1');
      rmSync(device, { recursive: true, force: true });
      const { token } = await server.authority.createToken(
        { role: 'web', name: 'device-1', ttlMs: 600_000 },
        { actor: 'local:quickstart' },
      );
      const identity = await enroll({ caUrl: ca, token, dir: device });
      const next = await server.authority.createToken({ role: 'web', ttlMs: 3_600_000 }, { actor: 'local:quickstart' });
      const g = 'node dist/src/cli/main.js';
      ctx.out(
        [
          '',
          `Gatehouse CA running at ${ca}`,
          `  root fingerprint: ${server.authority.rootFingerprint}`,
          `  enrolled ${identity.spiffeId} into ${rel(device)} (expires ${identity.notAfter.toISOString()})`,
          '',
          'Try it from another terminal in this folder:',
          '',
          `  ${g} agent whoami --dir ${rel(device)}`,
          `  ${g} agent enroll --ca ${ca} --name laptop-1 --dir ${rel(join(state, 'laptop-1'))} --token ${next.token}`,
          `  ${g} agent renew --dir ${rel(device)}`,
          `  ${g} cert list --dir ${rel(caDir)}`,
          `  ${g} token create --dir ${rel(caDir)} --role web --ttl 15m`,
          `  curl --cacert ${rel(join(caDir, 'root.pem'))} '${ca}/crl?format=pem'`,
          `  curl --cacert ${rel(join(caDir, 'root.pem'))} --cert ${rel(join(device, 'cert.pem'))} --key ${rel(join(device, 'key.pem'))} ${ca}/admin/certs   # refused: role web is not admin`,
          `  curl --cacert ${rel(join(caDir, 'root.pem'))} --cert ${rel(join(caDir, 'admin', 'cert.pem'))} --key ${rel(join(caDir, 'admin', 'key.pem'))} ${ca}/admin/certs`,
          '',
          'Ctrl-C stops the CA. State stays in ' + rel(state) + '.',
          '',
        ].join('\n'),
      );
      await untilStopped(ctx.signal);
    } finally {
      await server.close();
      await store.close();
    }
  },
};
