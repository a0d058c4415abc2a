/**
 * JSON-lines logger. One object per line on stderr (stdout stays for command output).
 * Fields whose names suggest secret material are replaced before writing: keys and tokens
 * must never reach a log, and this is the last line of defence, not the first.
 */
import { writeSync } from 'node:fs';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_FIELD = /(^|_|-)(token|secret|password|passphrase|privatekey|private_key|key_pem|csr)$/i;

export interface Logger {
  debug(event: string, fields?: Record<string, unknown>): void;
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
  /** Whether a line at this level would be written: skip building costly fields when not. */
  enabled(level: LogLevel): boolean;
  child(fields: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  write?: (line: string) => void;
  base?: Record<string, unknown>;
  /**
   * Gather the lines of one event-loop turn into one write: a busy proxy logs a line per
   * request, and a system call per line is a large share of its time. Lines still pending at
   * exit are written synchronously.
   */
  batch?: boolean;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const minRank = LEVEL_RANK[options.level ?? parseLevel(process.env.GATEHOUSE_LOG_LEVEL)];
  const write = options.write ?? (options.batch ? batchedStderr() : (line: string) => process.stderr.write(line));
  const base = options.base ?? {};

  const emit = (level: LogLevel, event: string, fields: Record<string, unknown> = {}) => {
    if (LEVEL_RANK[level] < minRank) return;
    const record = { time: new Date().toISOString(), level, event, ...base, ...redact(fields) };
    write(JSON.stringify(record, jsonReplacer) + '\n');
  };
  return {
    debug: (e, f) => emit('debug', e, f),
    info: (e, f) => emit('info', e, f),
    warn: (e, f) => emit('warn', e, f),
    error: (e, f) => emit('error', e, f),
    enabled: (level) => LEVEL_RANK[level] >= minRank,
    child: (fields) => createLogger({ ...options, write, base: { ...base, ...fields } }),
  };
}

export const silentLogger: Logger = {
  debug() {}, info() {}, warn() {}, error() {}, enabled: () => false,
  child() { return silentLogger; },
};

function batchedStderr(): (line: string) => void {
  let pending: string[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    process.stderr.write(text);
  };
  process.once('exit', () => {
    if (pending.length) writeSync(2, pending.join(''));
    pending = [];
  });
  return (line) => {
    if (pending.push(line) === 1) setImmediate(flush);
  };
}

function parseLevel(value: string | undefined): LogLevel {
  return value === 'debug' || value === 'warn' || value === 'error' ? value : 'info';
}

function redact(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = SECRET_FIELD.test(k) ? '[redacted]' : v;
  return out;
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const e = value as Error & { code?: string };
    return { name: e.name, code: e.code, message: e.message, cause: e.cause instanceof Error ? e.cause.message : undefined };
  }
  if (typeof value === 'bigint') return value.toString();
  if (Buffer.isBuffer(value)) return `[${value.length} bytes]`;
  return value;
}
