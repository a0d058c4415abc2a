import { relative, resolve } from 'node:path';
import { GatehouseError } from '../../errors/errors.js';
import { createLogger } from '../../log/logger.js';
import { flag, str, type CommandSpec } from '../command.js';

export const demo: CommandSpec = {
  path: ['demo'],
  summary: 'What `npm start` runs: a CA, a header-echo app, the gateway and two devices, with copy-paste curl lines for the whole story.',
  options: {
    'state-dir': { type: 'string', value: 'DIR', description: 'Where the demo lives; emptied at start, removed at exit (default ./.gatehouse-demo)' },
    'ca-listen': { type: 'string', value: 'HOST:PORT', description: 'CA address (default 127.0.0.1:8443; 127.0.0.1:0 with --check)' },
    'gateway-listen': { type: 'string', value: 'HOST:PORT', description: 'Gateway address (default 127.0.0.1:9443; 127.0.0.1:0 with --check)' },
    'admin-listen': { type: 'string', value: 'HOST:PORT', description: 'Gateway metrics address (default 127.0.0.1:9090; 127.0.0.1:0 with --check)' },
    lifetime: { type: 'string', value: 'DURATION', description: 'Certificate lifetime, so renewals happen while you watch (default 2m)' },
    check: { type: 'boolean', description: 'Run the story unattended with curl, rotate the gateway certificate once, exit 1 if any outcome differs' },
    keep: { type: 'boolean', description: 'Keep the state folder at exit' },
  },
  notes: [
    'Runs until Ctrl-C, then stops everything and removes the state folder (unless --keep).',
    'Logs (JSON lines on stderr) show each request, every renewal (agent.cert_renewed) and the gateway reloading its certificate (gateway.reloaded).',
    'Exit codes: 0 ok; 1 --check found an outcome that differs (or could not run curl).',
  ],
  async run(ctx) {
    const check = flag(ctx, 'check');
    const stateDir = resolve(str(ctx, 'state-dir') ?? '.gatehouse-demo');
    const rel = (p: string) => relative(process.cwd(), p) || '.';
    const { startDemo, demoCommands, checkDemo, formatOutcomes } = await import('../../demo/demo.js');
    const { rmSync } = await import('node:fs');
    const logger = createLogger({ level: check ? 'warn' : ((ctx.env.GATEHOUSE_LOG_LEVEL as 'info' | undefined) ?? 'info') });
    const world = await startDemo({
      stateDir, logger, caLogger: createLogger({ level: 'warn', base: { component: 'ca' } }), rel, out: ctx.out, signal: ctx.signal,
      caListen: str(ctx, 'ca-listen') ?? (check ? '127.0.0.1:0' : '127.0.0.1:8443'),
      gatewayListen: str(ctx, 'gateway-listen') ?? (check ? '127.0.0.1:0' : '127.0.0.1:9443'),
      adminListen: str(ctx, 'admin-listen') ?? (check ? '127.0.0.1:0' : '127.0.0.1:9090'),
      lifetime: str(ctx, 'lifetime') ?? '2m',
    });
    try {
      if (check) {
        const outcomes = await checkDemo(world);
        ctx.out(`${formatOutcomes(outcomes)}\n`);
        const failed = outcomes.filter((o) => !o.ok).length;
        if (failed) throw new GatehouseError('GH_DEMO_CHECK_FAILED', `${failed} of ${outcomes.length} demo outcomes differ from what the demo promises`);
        ctx.out(`All ${outcomes.length} outcomes as promised.\n`);
        return;
      }
      ctx.out(`\nGatehouse demo is running. From another terminal in this folder:\n\n${demoCommands(world, rel, 'node dist/src/cli/main.js')}\n\nCtrl-C stops it.\n`);
      await new Promise<void>((done) => ctx.signal.addEventListener('abort', () => done(), { once: true }));
    } finally {
      await world.close();
      if (!flag(ctx, 'keep')) rmSync(stateDir, { recursive: true, force: true });
    }
  },
};
