import { relative, resolve } from 'node:path';
import { GatehouseError } from '../../errors/errors.js';
import { createLogger } from '../../log/logger.js';
import { serverLogger, logLevelOption } from '../server-log.js';
import { flag, str, type CommandSpec } from '../command.js';
import { closeWithin, untilStopped } from '../stop.js';
import type { DemoWorld } from '../../demo/demo.js';

/** The demo's servers stop within this: agents at once, the gateway's drain 3 s, the CA's 5 s. */
const STOP_DEADLINE_MS = 15_000;

export const demo: CommandSpec = {
  path: ['demo'],
  summary:
    'What `npm start` runs: a CA, a header-echo app, the gateway and two devices, with copy-paste curl lines for the whole story.',
  options: {
    'state-dir': {
      type: 'string',
      value: 'DIR',
      description:
        "Where the demo lives: its CA (keys included), the devices' identities, the policy. Emptied at start, removed at exit unless --keep (default ./.gatehouse-demo, in the folder `npm start` runs in)",
    },
    'ca-listen': {
      type: 'string',
      value: 'HOST:PORT',
      description: 'CA address (default 127.0.0.1:8443; 127.0.0.1:0 with --check)',
    },
    'gateway-listen': {
      type: 'string',
      value: 'HOST:PORT',
      description: 'Gateway address (default 127.0.0.1:9443; 127.0.0.1:0 with --check)',
    },
    'admin-listen': {
      type: 'string',
      value: 'HOST:PORT',
      description: 'Gateway metrics address (default 127.0.0.1:9090; 127.0.0.1:0 with --check)',
    },
    lifetime: {
      type: 'string',
      value: 'DURATION',
      description: 'Certificate lifetime, so renewals happen while you watch (default 2m)',
    },
    check: {
      type: 'boolean',
      description:
        'Run the story unattended with curl, rotate the gateway certificate once, exit 1 if any outcome differs',
    },
    keep: { type: 'boolean', description: 'Keep the state folder at exit' },
    'log-level': logLevelOption(),
  },
  notes: [
    'Runs until Ctrl-C or SIGTERM (also when started by `npm start`, or by a process manager signalling npm), then stops everything within 15 s, frees its ports and removes the state folder (unless --keep); a second signal while it stops is ignored. `npm start` again right after works.',
    "Its addresses are checked before the state folder is touched: with one already in use (another demo still running) it exits with GH_LISTEN_FAILED (exit 71) and leaves that demo's folder alone.",
    'Logs (JSON lines on stderr) show each request, every renewal (agent.cert_renewed) and the gateway reloading its certificate (gateway.reloaded).',
    'Exit codes: 0 ok (also when stopped by a signal); 1 --check found an outcome that differs (or could not run curl); 71 an address could not be bound.',
  ],
  async run(ctx) {
    const check = flag(ctx, 'check');
    const keep = flag(ctx, 'keep');
    const stateDir = resolve(str(ctx, 'state-dir') ?? '.gatehouse-demo');
    const rel = (p: string) => relative(process.cwd(), p) || '.';
    const { checkDemoAddresses, startDemo } = await import('../../demo/demo.js');
    const { demoCommands } = await import('../../demo/demo-commands.js');
    const { checkDemo, formatOutcomes } = await import('../../demo/demo-check.js');
    const { rmSync } = await import('node:fs');
    const logger = serverLogger(ctx, { fallback: check ? 'warn' : 'info' });
    const addresses = {
      caListen: str(ctx, 'ca-listen') ?? (check ? '127.0.0.1:0' : '127.0.0.1:8443'),
      gatewayListen: str(ctx, 'gateway-listen') ?? (check ? '127.0.0.1:0' : '127.0.0.1:9443'),
      adminListen: str(ctx, 'admin-listen') ?? (check ? '127.0.0.1:0' : '127.0.0.1:9090'),
    };
    // Outside the try below: when this fails the state folder may be another demo's, and stays.
    await checkDemoAddresses(addresses);
    let world: DemoWorld | null = null;
    try {
      world = await startDemo({
        stateDir,
        logger,
        caLogger: createLogger({ level: 'warn', base: { component: 'ca' } }),
        rel,
        out: ctx.out,
        signal: ctx.signal,
        ...addresses,
        lifetime: str(ctx, 'lifetime') ?? '2m',
      });
      if (check) {
        const outcomes = await checkDemo(world);
        ctx.out(`${formatOutcomes(outcomes)}\n`);
        const failed = outcomes.filter((o) => !o.ok).length;
        if (failed)
          throw new GatehouseError(
            'GH_DEMO_CHECK_FAILED',
            `${failed} of ${outcomes.length} demo outcomes differ from what the demo promises`,
          );
        ctx.out(`All ${outcomes.length} outcomes as promised.\n`);
        return;
      }
      if (!ctx.signal.aborted) {
        ctx.out(
          `\nGatehouse demo is running (pid ${process.pid}; state in ${rel(stateDir)}${keep ? ', kept at exit' : ', removed at exit'}). From another terminal in this folder:\n\n${demoCommands(world, rel, 'node dist/src/cli/main.js')}\n\nCtrl-C stops it.\n`,
        );
      }
      await untilStopped(ctx.signal);
      logger.info('demo.stopping', { state: rel(stateDir), keep });
    } finally {
      const running = world;
      if (running) await closeWithin(() => running.close(), STOP_DEADLINE_MS, logger, 'demo.stop_timeout');
      if (!keep) rmSync(stateDir, { recursive: true, force: true });
      if (running && !check) ctx.out(`Gatehouse demo stopped${keep ? `; its state stays in ${rel(stateDir)}` : ''}.\n`);
    }
  },
};
