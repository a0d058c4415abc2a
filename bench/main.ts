/**
 * `npm run bench` = `node dist/bench/main.js [issuance|gateway|peer-cert]...`: runs the named benches
 * (default: all) one after the other. Every bench's tools are checked first, so a missing
 * peer fails the run before minutes are spent measuring. `node dist/bench/issuance.js` and
 * `node dist/bench/gateway.js` still run one bench each.
 */
import { gatewayPreflight, runGatewayBench } from './gateway.js';
import { issuancePreflight, runIssuanceBench } from './issuance.js';
import { runPeerCertBench } from './peer-cert.js';
import { cleanupAll, installCleanupHandlers } from './procs.js';

const BENCHES = {
  issuance: { preflight: issuancePreflight, run: runIssuanceBench },
  gateway: { preflight: gatewayPreflight, run: runGatewayBench },
  'peer-cert': { preflight: () => undefined, run: runPeerCertBench },
} as const;
type BenchName = keyof typeof BENCHES;

async function main(): Promise<void> {
  installCleanupHandlers();
  const args = process.argv.slice(2);
  for (const a of args) {
    if (!Object.hasOwn(BENCHES, a))
      throw new Error(`unknown bench "${a}"; usage: node dist/bench/main.js [${Object.keys(BENCHES).join('|')}]...`);
  }
  const names = (args.length ? [...new Set(args)] : Object.keys(BENCHES)) as BenchName[];
  for (const name of names) BENCHES[name].preflight();
  for (const [i, name] of names.entries()) {
    if (i > 0) process.stdout.write('\n');
    process.stderr.write(`== bench ${name}\n`);
    await BENCHES[name].run();
    cleanupAll(); // the next bench starts with no child processes of this one
  }
}

main().then(
  () => cleanupAll(),
  (err: Error) => {
    process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
    cleanupAll();
    process.exitCode = 1;
  },
);
