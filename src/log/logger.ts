/**
 * JSON-lines logger. One object per line on stderr (stdout stays for command output).
 * Fields whose names suggest secret material are replaced before writing: keys and tokens
 * must never reach a log, and this is the last line of defence, not the first.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_FIELD = /(^|_|-)(token|secret|password|passphrase|privatekey|private_key|key_pem|csr)$/i;

export interface Logger {
  debug(event: string, fields?: Record<string, unknown>): void;
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  write?: (line: string) => void;
  base?: Record<string, unknown>;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const minRank = LEVEL_RANK[options.level ?? parseLevel(process.env.GATEHOUSE_LOG_LEVEL)];
  const write = options.write ?? ((line: string) => process.stderr.write(line));
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
    child: (fields) => createLogger({ ...options, base: { ...base, ...fields } }),
  };
}

export const silentLogger: Logger = {
  debug() {}, info() {}, warn() {}, error() {},
  child() { return silentLogger; },
};

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
