/**
 * Shared pieces of the interop tests that put a real nginx, HAProxy or Caddy in front of an app,
 * with a real Gatehouse CA behind them: `gatehouse ca init/serve`, identities enrolled by
 * `gatehouse agent enroll`, revocation by `gatehouse cert revoke`, CRLs refreshed by
 * docs/deploy/gatehouse-crl-refresh.sh. Every peer is a child process started with argument
 * arrays, on 127.0.0.1, and stopped by the test that started it.
 *
 * A missing proxy is a failure that names the apt-get command, never a skipped test.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { delimiter, join, resolve } from 'node:path';
import { CLI_PATH, gatehouse } from './cli.js';
import { startCaProcess, type CaProcess } from './ca-process.js';
import { makeCa, makeLeaf, opensslSubjectRfc2253, type OpensslLeaf } from './openssl-pki.js';
import type { ClientCert } from './proxy-clients.js';
import { pollUntil } from './poll.js';
import { run, type RunResult } from './run.js';
import { makeTempDir } from './tmp.js';

export * from './proxy-clients.js';

export const CRL_REFRESH_SCRIPT = resolve('docs/deploy/gatehouse-crl-refresh.sh');

// ---------------------------------------------------------------- tools

/** Debian puts nginx and haproxy in /usr/sbin, which is not on a normal user's PATH. */
export function findTool(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'].filter(Boolean);
  for (const dir of dirs) {
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return null;
}

/** The tool's path, or an error that says how to install it: these tests never skip. */
export function requireTool(name: string, aptPackage: string): string {
  const path = findTool(name);
  if (!path)
    throw new Error(
      `'${name}' is not installed; the interop tests need the real program: apt-get install -y ${aptPackage}`,
    );
  return path;
}

/** `nginx -v` and `haproxy -v` print their version; the first line is enough for a log. */
export async function toolVersion(path: string, args: string[]): Promise<string> {
  const r = await run(path, args);
  return (
    `${r.stdout}${r.stderr}`
      .split('\n')
      .find((l) => l.trim())
      ?.trim() ?? '(no version output)'
  );
}

/**
 * A port that was free a moment ago. The proxies need a number in their config (none of them
 * reports the port it got for 0), so the caller retries with a new one if the bind fails.
 */
export function pickFreePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolvePort(port));
    });
  });
}

// ---------------------------------------------------------------- proxy processes

export interface ProxyProcess {
  name: string;
  port: number;
  child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** Polls output() until `pattern` has matched `count` times. */
  waitForOutput(pattern: RegExp, count?: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface ProxyStart {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  port: number;
  /** Extra text for failure messages, e.g. an error log file the proxy writes. */
  log?: () => string;
  readyTimeoutMs?: number;
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

/** Starts the proxy in the foreground and resolves once its port accepts connections. */
export async function startProxy(start: ProxyStart): Promise<ProxyProcess> {
  const child = spawn(start.command, start.args, {
    env: { ...process.env, ...start.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => void (output += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => void (output += d.toString('utf8')));
  let spawnError: Error | null = null;
  child.once('error', (err) => void (spawnError = err));
  const exited = new Promise<void>((done) => child.once('close', () => done()));
  const alive = () => child.exitCode === null && child.signalCode === null && spawnError === null;
  const describe = () =>
    `${start.name} (${start.command} ${start.args.join(' ')}):\n${output.slice(-6000)}${start.log ? `\n${start.log().slice(-6000)}` : ''}`;

  const deadline = Date.now() + (start.readyTimeoutMs ?? 20_000);
  for (;;) {
    if (!alive())
      throw new Error(
        `${start.name} exited before listening on 127.0.0.1:${start.port}${spawnError ? ` (${(spawnError as Error).message})` : ''}; ${describe()}`,
      );
    if (await tcpOpen(start.port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(
        `${start.name} did not listen on 127.0.0.1:${start.port} within ${start.readyTimeoutMs ?? 20_000} ms; ${describe()}`,
      );
    }
    await sleep(50);
  }
  return {
    name: start.name,
    port: start.port,
    child,
    output: () => output,
    waitForOutput: async (pattern, count = 1, timeoutMs = 15_000) => {
      const global = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`);
      const until = Date.now() + timeoutMs;
      while ((output.match(global)?.length ?? 0) < count) {
        if (Date.now() > until)
          throw new Error(`${start.name}: ${pattern} not seen ${count} time(s) within ${timeoutMs} ms; ${describe()}`);
        if (!alive()) throw new Error(`${start.name} exited while waiting for ${pattern}; ${describe()}`);
        await sleep(50);
      }
    },
    stop: async () => {
      if (alive()) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(killer);
      }
    },
  };
}

/** Picks a port and starts; on a lost race for the port (another process took it), tries another. */
export async function startProxyOnFreePort(
  make: (port: number) => ProxyStart | Promise<ProxyStart>,
): Promise<ProxyProcess> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await pickFreePort();
    try {
      return await startProxy(await make(port));
    } catch (err) {
      lastError = err;
      if (!/address already in use|EADDRINUSE|bind\(\).*failed|cannot bind/i.test((err as Error).message)) throw err;
    }
  }
  throw lastError;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------- a Gatehouse CA and its identities

export interface Identity {
  dir: string;
  name: string;
  serial: string;
  certPath: string;
  keyPath: string;
  /** RFC 2253 subject as OpenSSL prints it: what nginx puts in $ssl_client_s_dn. */
  subject: string;
}

export interface GatehousePki {
  root: string;
  caDir: string;
  ca: CaProcess;
  /** The proxy's identity (role gateway, DNS localhost, IP 127.0.0.1). */
  gateway: Identity;
  /** The root the agent pinned and wrote: `gateway.dir/ca.pem`. */
  rootPath: string;
  /** Root then issuing intermediate, from the CA directory. */
  bundlePath: string;
  /** The issuing intermediate alone (CA_DIR/intermediate.pem), for `openssl s_client -cert_chain`. */
  intermediatePath: string;
  /** Both CRLs as PEM, written by gatehouse-crl-refresh.sh. */
  crlPath: string;
  /** A client certificate from an openssl-made CA that has nothing to do with Gatehouse. */
  foreign: OpensslLeaf & { subject: string };
  /** The openssl-made CA that signed `foreign`. */
  foreignCaPath: string;
  enroll(role: string, name: string, extra?: string[]): Promise<Identity>;
  /** `gatehouse agent renew` (what `agent run` does at ~2/3 of the lifetime); returns the new serial. */
  renew(identity: Identity): Promise<string>;
  /** `gatehouse cert revoke --dir`, then waits until the running CA's /crl lists the serial. */
  revoke(identity: Identity): Promise<void>;
  /** Runs docs/deploy/gatehouse-crl-refresh.sh with this reload command. */
  refreshCrl(reloadCommand: string): Promise<RunResult>;
  close(): Promise<void>;
}

async function cli(args: string[]): Promise<RunResult> {
  const r = await gatehouse(args, { timeoutMs: 60_000 });
  assert.equal(r.status, 0, `gatehouse ${args.join(' ')}: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** `ca init`, `ca serve` on port 0, the proxy's identity, the trust bundle and the first CRL file. */
export async function setUpGatehouse(label: string): Promise<GatehousePki> {
  const tmp = makeTempDir(`gatehouse-${label}-`);
  const caDir = join(tmp.dir, 'ca');
  let ca: CaProcess | undefined;
  try {
    await cli(['ca', 'init', '--dir', caDir, '--name', 'Acme Interop', '--trust-domain', 'acme.internal']);
    ca = await startCaProcess(caDir);
    const caUrl = ca.url;

    const enroll = async (role: string, name: string, extra: string[] = []): Promise<Identity> => {
      const token = (
        await cli(['token', 'create', '--dir', caDir, '--role', role, '--name', name, '--ttl', '10m'])
      ).stdout.trim();
      const tokenFile = join(tmp.dir, `${name}.token`);
      writeFileSync(tokenFile, token, { mode: 0o600 });
      const dir = join(tmp.dir, name);
      const enrolled = JSON.parse(
        (await cli(['agent', 'enroll', '--ca', caUrl, '--token-file', tokenFile, '--dir', dir, '--json', ...extra]))
          .stdout,
      ) as { serial: string };
      const certPath = join(dir, 'cert.pem');
      return {
        dir,
        name,
        serial: enrolled.serial,
        certPath,
        keyPath: join(dir, 'key.pem'),
        subject: await opensslSubjectRfc2253(certPath),
      };
    };

    const gateway = await enroll('gateway', 'edge-1', ['--dns', 'localhost', '--ip', '127.0.0.1']);
    const bundlePath = join(tmp.dir, 'ca-bundle.pem');
    writeFileSync(
      bundlePath,
      readFileSync(join(caDir, 'root.pem'), 'utf8') + readFileSync(join(caDir, 'intermediate.pem'), 'utf8'),
    );
    const crlPath = join(tmp.dir, 'crl.pem');

    const intruderCa = await makeCa(tmp.dir, 'Intruder CA');
    const leaf = await makeLeaf(intruderCa, { subject: '/CN=laptop-1/OU=web/O=Acme Interop', file: 'intruder' });
    const foreign = { ...leaf, subject: await opensslSubjectRfc2253(leaf.certPath) };

    const refreshCrl = (reloadCommand: string) =>
      run('sh', [CRL_REFRESH_SCRIPT, caUrl, bundlePath, crlPath, reloadCommand], { timeoutMs: 60_000 });
    const first = await refreshCrl('true');
    assert.equal(first.status, 0, `gatehouse-crl-refresh.sh: ${first.stdout}${first.stderr}`);

    const revoke = async (identity: Identity) => {
      await cli(['cert', 'revoke', identity.serial, '--dir', caDir, '--reason', 'keyCompromise']);
      // The running CA notices a revocation made on its directory within seconds.
      const der = join(tmp.dir, 'poll-crl.der');
      await pollUntil(
        `the CA's /crl lists ${identity.serial}`,
        async () => {
          const got = await run('curl', [
            '-sS',
            '--fail',
            '--max-time',
            '10',
            '--cacert',
            bundlePath,
            '-o',
            der,
            `${caUrl}/crl`,
          ]);
          if (got.status !== 0) return undefined;
          const text = await run('openssl', ['crl', '-inform', 'DER', '-in', der, '-noout', '-text']);
          return text.stdout.toUpperCase().includes(identity.serial.toUpperCase()) ? true : undefined;
        },
        20_000,
        200,
      );
    };

    const renew = async (identity: Identity) => {
      const { current } = JSON.parse((await cli(['agent', 'renew', '--dir', identity.dir, '--json'])).stdout) as {
        current: { serial: string };
      };
      identity.serial = current.serial;
      return current.serial;
    };

    const started = ca;
    return {
      root: tmp.dir,
      caDir,
      ca: started,
      gateway,
      rootPath: join(gateway.dir, 'ca.pem'),
      bundlePath,
      intermediatePath: join(caDir, 'intermediate.pem'),
      crlPath,
      foreign,
      foreignCaPath: intruderCa.certPath,
      enroll,
      renew,
      revoke,
      refreshCrl,
      close: async () => {
        await started.stop();
        tmp.cleanup();
      },
    };
  } catch (err) {
    await ca?.stop();
    tmp.cleanup();
    throw err;
  }
}

/** Writes a file the proxy reads (config), world-readable so a worker that dropped root can too. */
export function writeConfig(path: string, text: string): string {
  writeFileSync(path, text);
  chmodSync(path, 0o644);
  return path;
}

// ---------------------------------------------------------------- docs

/** Every fenced code block of a Markdown file: its language tag and its text without the fences. */
export function fencedBlocks(markdownPath: string): Array<{ lang: string; code: string }> {
  const text = readFileSync(markdownPath, 'utf8');
  return [...text.matchAll(/^```([^\n]*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1]!.trim(), code: m[2]! }));
}

export function codeBlocks(markdownPath: string): string[] {
  return fencedBlocks(markdownPath).map((b) => b.code);
}

/** `openssl s_client` arguments presenting this identity with its intermediate (-cert reads only the leaf). */
export function sClientIdentity(pki: GatehousePki, identity: ClientCert): string[] {
  return ['-cert', identity.certPath, '-key', identity.keyPath, '-cert_chain', pki.intermediatePath];
}

/** An environment whose PATH has a `gatehouse` command (the built CLI), for documented shell lines. */
export function envWithGatehouse(binDir: string): NodeJS.ProcessEnv {
  mkdirSync(binDir, { recursive: true });
  writeFileSync(join(binDir, 'gatehouse'), `#!/bin/sh\nexec '${process.execPath}' '${CLI_PATH}' "$@"\n`, {
    mode: 0o755,
  });
  return { ...process.env, PATH: `${binDir}${delimiter}${process.env.PATH ?? ''}` };
}

/** Runs an --on-renew hook as `gatehouse agent run` does: through the shell, with GATEHOUSE_DIR and GATEHOUSE_SERIAL. */
export async function runHook(command: string, identityDir: string, serial: string): Promise<void> {
  const r = await run('sh', ['-c', command], {
    env: { ...process.env, GATEHOUSE_DIR: identityDir, GATEHOUSE_SERIAL: serial },
    timeoutMs: 30_000,
  });
  assert.equal(r.status, 0, `hook ${command}: exit ${r.status}\n${r.stdout}${r.stderr}`);
}

/** The recipe mentions `text` verbatim (a command line inside a longer block). */
export function assertDocMentions(markdownPath: string, text: string, what: string): void {
  assert.ok(
    readFileSync(markdownPath, 'utf8').includes(text),
    `${markdownPath} must show the tested ${what} verbatim:\n${text}`,
  );
}

/** The recipe shows exactly `expected` as one of its code blocks. */
export function assertDocShows(markdownPath: string, expected: string, what: string): void {
  const blocks = codeBlocks(markdownPath);
  assert.ok(
    blocks.includes(expected),
    `${markdownPath} must show the tested ${what} as a code block, exactly:\n${expected}\n(found ${blocks.length} blocks)`,
  );
}
