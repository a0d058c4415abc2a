/**
 * goverify: a certificate verifier built from Go's standard library only (test/goverify),
 * used as an oracle independent of OpenSSL, GnuTLS and Node. Built once per test process.
 * A missing `go` toolchain fails the test loudly; it is never a reason to skip.
 */
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, runSync, type RunResult } from './run.js';

/** The directory holding package.json and test/goverify: cwd when the runner runs, else found from this file. */
function repoRoot(): string {
  const isRoot = (dir: string) =>
    existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'test', 'goverify', 'go.mod'));
  if (isRoot(process.cwd())) return process.cwd();
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (isRoot(dir)) return dir;
    if (dirname(dir) === dir) break;
  }
  throw new Error('goverify: cannot find the repository root (package.json next to test/goverify/go.mod)');
}

function writable(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Environment for `go build`: module mode, no network, no cgo, a writable build cache. */
export function goEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    GOFLAGS: '-mod=mod',
    GOPROXY: 'off',
    GOWORK: 'off',
    CGO_ENABLED: '0',
  };
  let cache = '';
  try {
    const r = runSync('go', ['env', 'GOCACHE'], { env });
    if (r.status === 0) cache = r.stdout.trim();
  } catch {
    // `go` itself missing: reported by the build below.
  }
  if (!cache || cache === 'off' || !writable(cache)) {
    // Shared between test processes so the standard library is compiled once per machine.
    env.GOCACHE = join(tmpdir(), `gatehouse-gocache-${process.getuid?.() ?? 'user'}`);
    mkdirSync(env.GOCACHE, { recursive: true });
  }
  if (!env.GOPATH && !env.HOME) env.GOPATH = join(tmpdir(), `gatehouse-gopath-${process.getuid?.() ?? 'user'}`);
  return env;
}

let built: Promise<string> | undefined;

async function build(): Promise<string> {
  const source = join(repoRoot(), 'test', 'goverify');
  const outDir = mkdtempSync(join(tmpdir(), 'gatehouse-goverify-'));
  process.once('exit', () => rmSync(outDir, { recursive: true, force: true }));
  const binary = join(outDir, 'goverify');
  let result: RunResult;
  try {
    result = await run('go', ['build', '-o', binary, '.'], { cwd: source, env: goEnv(), timeoutMs: 300_000 });
  } catch (cause) {
    throw new Error(
      `goverify: cannot run 'go' (install it: apt-get install -y golang-go): ${(cause as Error).message}`,
      { cause },
    );
  }
  if (result.status !== 0) {
    throw new Error(`goverify: 'go build' failed with status ${result.status}:\n${result.stdout}${result.stderr}`);
  }
  return binary;
}

/** The path of the built goverify binary. */
export function goVerifyBinary(): Promise<string> {
  built ??= build();
  return built;
}

/** Runs goverify with `args`: status 0 and "OK" when the chain verifies, 1 and Go's error when not, 2 for a usage error. */
export async function goVerify(args: string[]): Promise<RunResult> {
  return run(await goVerifyBinary(), args);
}
