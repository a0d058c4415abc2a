/**
 * Runs the shell blocks of a markdown file the way a reader pasting them in order would: all the
 * blocks of one document in ONE bash session (variables, `cd` and background jobs carry over), each
 * block stopped at its first failing command, as `set -e` would, but without ending the session.
 *
 * Shell blocks are ```sh, ```bash and ```shell. A ```console block (a transcript of prompts and
 * output) cannot be run as written: it is refused unless skipped; write commands as ```sh and their
 * output as ```text. Unlabelled blocks are output, not run.
 *
 * Annotations, an HTML comment on the line just before a block (GitHub does not show them):
 *   <!-- doc-test: background port=8443,9443 -->  the block starts servers with `&`: after it, wait
 *                                                 (with a deadline) until each 127.0.0.1:PORT accepts TCP
 *   <!-- doc-test: skip REASON -->                not runnable here; the reason is required
 *   <!-- doc-test: expect-exit N -->              the block's last command exits N (the ones before succeed)
 *   <!-- doc-test: file PATH -->                  any block: the reader saves it as PATH (relative to the
 *                                                 session's current folder) when they reach it
 * and one on a line of its own, anywhere in the document:
 *   <!-- doc-test: after ../README.md -->         run that document's blocks first, in the same session
 *
 * Every block has a deadline, so a command that never returns (a daemon without `&`) fails with the
 * block's file:line; a background job that exits non-zero fails too. Whatever happens, the session's
 * process group (bash and every background job) is killed and waited for at the end.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';

const SHELL_LANGS = new Set(['sh', 'bash', 'shell']);

export type Annotation =
  | { kind: 'background'; ports: number[] }
  | { kind: 'skip'; reason: string }
  | { kind: 'expect-exit'; code: number }
  | { kind: 'file'; path: string };

export interface Block {
  /** The document, as given (repository-relative for real files). */
  file: string;
  /** 1-based line of the opening fence; the code's first line is line + 1. */
  line: number;
  lang: string;
  code: string;
  shell: boolean;
  annotation: Annotation | null;
}

export interface Doc {
  file: string;
  /** Documents whose blocks run first, in the same session (resolved against this one's folder). */
  after: string[];
  blocks: Block[];
}

const ANNOTATION = /^\s*<!--\s*doc-test:\s*(.*?)\s*-->\s*$/;

function parseAnnotation(body: string, where: string): Annotation | { kind: 'after'; path: string } {
  const [word = '', ...rest] = body.split(/\s+/);
  const arg = rest.join(' ').trim();
  switch (word) {
    case 'background': {
      const m = /^port=(\d+(?:,\d+)*)$/.exec(arg);
      if (!m) throw new Error(`${where}: "background" needs port=PORT[,PORT…], got "${arg}"`);
      return { kind: 'background', ports: m[1]!.split(',').map(Number) };
    }
    case 'skip':
      if (!arg) throw new Error(`${where}: "skip" needs a reason`);
      return { kind: 'skip', reason: arg };
    case 'expect-exit':
      if (!/^\d+$/.test(arg) || Number(arg) === 0)
        throw new Error(`${where}: "expect-exit" needs a non-zero exit code, got "${arg}"`);
      return { kind: 'expect-exit', code: Number(arg) };
    case 'file':
      if (!arg || /\s/.test(arg)) throw new Error(`${where}: "file" needs one relative PATH, got "${arg}"`);
      return { kind: 'file', path: arg };
    case 'after':
      if (!arg) throw new Error(`${where}: "after" needs a document path`);
      return { kind: 'after', path: arg };
    default:
      throw new Error(`${where}: unknown doc-test annotation "${body}" (background, skip, expect-exit, file, after)`);
  }
}

/** The fenced blocks of a markdown text, in order, with their annotations. Throws on a malformed annotation. */
export function parseMarkdown(text: string, file: string): Doc {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  const after: string[] = [];
  let pending: { annotation: Annotation; line: number } | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const where = `${file}:${i + 1}`;
    const a = ANNOTATION.exec(line);
    if (a) {
      const parsed = parseAnnotation(a[1]!, where);
      if (parsed.kind === 'after') after.push(parsed.path);
      else {
        if (pending) throw new Error(`${file}:${pending.line}: annotation not followed by a code block`);
        pending = { annotation: parsed, line: i + 1 };
      }
      continue;
    }
    const fence = /^( {0,3})(`{3,}|~{3,})\s*([^\s`]*)/.exec(line);
    if (!fence) {
      if (pending && line.trim() !== '')
        throw new Error(`${file}:${pending.line}: annotation not on the line just before a code block`);
      continue;
    }
    if (pending && pending.line !== i)
      throw new Error(`${file}:${pending.line}: annotation not on the line just before a code block`);
    const [, indent, marker] = fence;
    const lang = fence[3]!.toLowerCase();
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const close = new RegExp(`^ {0,3}${marker![0] === '`' ? '`' : '~'}{${marker!.length},}\\s*$`);
      if (close.test(lines[j]!)) break;
      body.push(lines[j]!.startsWith(indent!) ? lines[j]!.slice(indent!.length) : lines[j]!);
    }
    if (j >= lines.length) throw new Error(`${where}: code block never closed`);
    const annotation = pending?.annotation ?? null;
    pending = null;
    const shell = SHELL_LANGS.has(lang);
    if (annotation && !shell && annotation.kind !== 'file' && annotation.kind !== 'skip') {
      throw new Error(
        `${where}: "${annotation.kind}" applies to shell blocks, this one is \`${lang || 'unlabelled'}\``,
      );
    }
    if (lang === 'console' && annotation?.kind !== 'skip') {
      throw new Error(
        `${where}: a \`console\` block cannot run as written: write the commands as \`sh\` and their output as \`text\` (or skip it with a reason)`,
      );
    }
    blocks.push({
      file,
      line: i + 1,
      lang,
      code: `${body.join('\n')}\n`,
      shell: shell || lang === 'console',
      annotation,
    });
    i = j;
  }
  if (pending) throw new Error(`${file}:${pending.line}: annotation not followed by a code block`);
  return { file, after, blocks };
}

export function loadDoc(file: string): Doc {
  return parseMarkdown(readFileSync(file, 'utf8'), file);
}

export interface BlockOutcome {
  block: Block;
  /** Why it was not run, for skipped blocks. */
  skipped: string | null;
  exit: number | null;
  ms: number;
  output: string;
}

export interface SessionOptions {
  /** Where bash starts: the checkout's root, where a reader stands after `npm ci && npm run build`. */
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Deadline of one block (default 60 s). */
  blockTimeoutMs?: number;
  /** Deadline for each port of a background block (default 30 s). */
  portTimeoutMs?: number;
}

export interface SessionResult {
  outcomes: BlockOutcome[];
  /** The session's current folder after the last block. */
  finalCwd: string;
}

/** The documents to run for `doc`: its `after` chain first (each once), then itself. */
export function withPrerequisites(doc: Doc, seen = new Set<string>()): Doc[] {
  if (seen.has(resolve(doc.file))) throw new Error(`${doc.file}: "after" chain loops back to it`);
  seen.add(resolve(doc.file));
  const before = doc.after.flatMap((p) =>
    withPrerequisites(loadDoc(relative(process.cwd(), resolve(dirname(doc.file), p))), seen),
  );
  return [...before, doc];
}

const single = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** Start line of the block's last command: the last code line, walked back over `\` continuations. */
function lastCommandLine(code: string): number {
  const lines = code.split('\n');
  let i = lines.length - 1;
  while (i >= 0 && (lines[i]!.trim() === '' || lines[i]!.trim().startsWith('#'))) i--;
  while (i > 0 && lines[i - 1]!.trimEnd().endsWith('\\')) i--;
  return i + 1;
}

function tail(text: string, max = 6000): string {
  return text.length > max ? `…${text.slice(-max)}` : text;
}

/** Non-zombie processes of process group `pgid`, from /proc. */
function groupMembers(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z' && Number(fields[2]) === pgid) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs the shell blocks of `docs` in order in one bash session. Resolves with every block's outcome;
 * rejects with a message naming FILE:LINE, the command and its output at the first failure. The
 * session's processes are gone when it settles, either way.
 */
export async function runSession(docs: Doc[], options: SessionOptions): Promise<SessionResult> {
  const blockTimeoutMs = options.blockTimeoutMs ?? 60_000;
  const portTimeoutMs = options.portTimeoutMs ?? 30_000;
  const scratch = mkdtempSync(join(tmpdir(), 'doc-blocks-'));
  // bash reads the driver's lines from stdin one at a time, as they are written; fd 3 carries the
  // driver's replies (DONE, FAIL, jobs), so the blocks' own output never has to be parsed.
  const bash = spawn('bash', ['--noprofile', '--norc'], {
    cwd: options.cwd,
    env: options.env,
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
  });
  const pgid = bash.pid!;
  let output = '';
  bash.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  bash.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  let replies = '';
  let wake: (() => void) | null = null;
  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  (bash.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => {
    replies += d.toString();
    notify();
  });
  let exited: number | null = null;
  bash.on('exit', (code, signal) => {
    exited = code ?? (signal ? 128 : 1);
    notify();
  });
  bash.stdin!.on('error', () => {
    /* bash gone: reported by the exit */
  });

  /** Waits until a reply line starting with `prefix` arrives, bash exits or the deadline passes. */
  const reply = async (prefix: string, deadline: number): Promise<string[] | 'exited' | 'timeout'> => {
    for (;;) {
      const at = replies.split('\n').findIndex((l) => l.startsWith(prefix));
      if (at >= 0) {
        const lines = replies.split('\n');
        const got = lines.slice(0, at + 1);
        replies = lines.slice(at + 1).join('\n');
        return got;
      }
      if (exited !== null) return 'exited';
      const left = deadline - Date.now();
      if (left <= 0) return 'timeout';
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((r) => {
        wake = r;
        timer = setTimeout(r, left);
      });
      clearTimeout(timer);
    }
  };
  const send = (line: string) => bash.stdin!.write(`${line}\n`);
  // Background jobs that ended with a non-zero status since the last look ("Exit 71  gatehouse ca serve …").
  const failedJobs = async (): Promise<string[]> => {
    send(`jobs -l >&3; printf 'JOBS-END\\n' >&3`);
    const r = await reply('JOBS-END', Date.now() + 10_000);
    if (!Array.isArray(r)) return [];
    return r.filter((l) => /^\[\d+\][+-]?\s+\d+\s+Exit \d+/.test(l)).map((l) => l.replace(/\s+/g, ' ').trim());
  };

  const outcomes: BlockOutcome[] = [];
  let cwd = options.cwd;
  try {
    send('set -uo pipefail');
    // The ERR trap fires where `set -e` would stop; `return` leaves the sourced block, not the session.
    send(`__gh_nl=$'\\n'`);
    send(
      `trap '__gh_rc=$?; if [ -n "\${__gh_in:-}" ]; then __gh_in=; printf "FAIL %s %s %s\\n" "$__gh_rc" "$LINENO" "\${BASH_COMMAND//$__gh_nl/ }" >&3; return $__gh_rc; fi' ERR`,
    );
    let n = 0;
    for (const doc of docs) {
      for (const block of doc.blocks) {
        const where = `${block.file}:${block.line}`;
        const start = output.length;
        const began = Date.now();
        const failure = (why: string) =>
          new Error(
            `${why}\n--- the block (${where}) ---\n${block.code}--- its output ---\n${tail(output.slice(start)) || '(none)'}`,
          );
        if (block.annotation?.kind === 'file') {
          send(`printf 'PWD %s\\n' "$PWD" >&3`);
          const r = await reply('PWD ', Date.now() + 10_000);
          if (!Array.isArray(r)) throw failure(`${where}: the session ended before this block`);
          const target = resolve(r.at(-1)!.slice(4), block.annotation.path);
          mkdirSync(dirname(target), { recursive: true });
          writeFileSync(target, block.code);
          outcomes.push({ block, skipped: null, exit: 0, ms: 0, output: '' });
          continue;
        }
        if (!block.shell) continue;
        if (block.annotation?.kind === 'skip') {
          outcomes.push({ block, skipped: block.annotation.reason, exit: null, ms: 0, output: '' });
          continue;
        }
        n++;
        const script = join(scratch, `block-${n}.sh`);
        writeFileSync(script, block.code);
        send(
          `__gh_in=1; source ${single(script)} </dev/null; __gh_st=$?; __gh_in=; printf 'DONE ${n} %s\\n' "$__gh_st" >&3`,
        );
        const r = await reply(`DONE ${n} `, began + blockTimeoutMs);
        if (r === 'timeout') {
          throw failure(
            `${where}: the block did not finish within ${blockTimeoutMs / 1000} s: a command that keeps running (a server, a daemon) needs \`&\`, and \`<!-- doc-test: background port=PORT -->\` when it listens`,
          );
        }
        if (r === 'exited')
          throw failure(
            `${where}: the shell exited (status ${exited}) during the block (\`exit\`, or \`set -u\`: a variable that is not set)`,
          );
        const status = Number(r.at(-1)!.split(' ')[2]);
        const failed = r.map((l) => /^FAIL (\d+) (\d+) (.*)$/.exec(l)).find(Boolean);
        const expected = block.annotation?.kind === 'expect-exit' ? block.annotation.code : 0;
        if (failed) {
          const [, code, lineno, command] = failed;
          const at = `${block.file}:${block.line + Number(lineno)}`;
          // The line as the document shows it (BASH_COMMAND is only the pipeline's last command).
          const shown = block.code.split('\n')[Number(lineno) - 1]?.trim() || command;
          if (Number(code) !== expected || Number(lineno) < lastCommandLine(block.code)) {
            throw failure(
              `${at}: exit ${code}${expected ? ` (the block expects its last command to exit ${expected})` : ''} from: ${shown}`,
            );
          }
        } else if (status !== expected) {
          throw failure(
            expected
              ? `${where}: the block exited ${status}, but its annotation expects ${expected}`
              : `${where}: the block ended with status ${status}`,
          );
        }
        if (block.annotation?.kind === 'background') {
          for (const port of block.annotation.ports) {
            const deadline = Date.now() + portTimeoutMs;
            while (!(await canConnect(port))) {
              const dead = await failedJobs();
              if (dead.length)
                throw failure(
                  `${where}: a background job ended before 127.0.0.1:${port} accepted connections: ${dead.join('; ')}`,
                );
              if (Date.now() > deadline)
                throw failure(
                  `${where}: nothing accepted connections on 127.0.0.1:${port} within ${portTimeoutMs / 1000} s`,
                );
              await pause(100);
            }
          }
        }
        const dead = await failedJobs();
        if (dead.length) throw failure(`${where}: a background job exited with an error: ${dead.join('; ')}`);
        outcomes.push({ block, skipped: null, exit: status, ms: Date.now() - began, output: output.slice(start) });
      }
    }
    send(`printf 'PWD %s\\n' "$PWD" >&3`);
    const r = await reply('PWD ', Date.now() + 10_000);
    if (Array.isArray(r)) cwd = r.at(-1)!.slice(4);
    return { outcomes, finalCwd: cwd };
  } finally {
    await stopGroup(pgid);
    bash.stdin!.destroy();
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** SIGTERM to the whole group, then SIGKILL after 20 s; resolves once no member is left. */
async function stopGroup(pgid: number): Promise<void> {
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(-pgid, s);
    } catch {
      /* none left */
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + 20_000;
  while (groupMembers(pgid).length) {
    if (Date.now() > deadline) {
      signal('SIGKILL');
      if (Date.now() > deadline + 5_000)
        throw new Error(`processes of the doc session survived SIGKILL: ${groupMembers(pgid).join(' ')}`);
    }
    await pause(50);
  }
}

/** Runs `file` (after its prerequisites) in a session; see runSession. */
export async function runDocument(file: string, options: SessionOptions): Promise<SessionResult & { docs: Doc[] }> {
  const docs = withPrerequisites(loadDoc(file));
  return { ...(await runSession(docs, options)), docs };
}
