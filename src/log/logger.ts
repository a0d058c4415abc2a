/**
 * JSON-lines logger on pino. One object per line on stderr (stdout stays for command output), in
 * the shape log shippers take as it is: `level` (a name), `time` (ISO 8601 UTC), `pid`,
 * `hostname`, `msg` (the event name, such as `ca.cert_issued`) and the event's fields.
 *
 * Two guards run on every record, because a field comes from code that does not know the rules:
 * - a field may not overwrite a key the format owns (`time`, `level`, `msg`, `pid`, `hostname`):
 *   it is written as `field.time` and so on instead;
 * - fields whose names suggest secret material are replaced at any depth: keys and tokens must
 *   never reach a log, and this is the last line of defence, not the first.
 */
import { pino, stdTimeFunctions, destination, type DestinationStream, type Logger as PinoLogger } from 'pino';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
// snake_case, kebab-case or a whole key (any case), and camelCase (joinToken, clientSecret).
const SECRET_FIELD =
  /(^|_|-)(token|secret|password|passphrase|privatekey|private_key|key_pem|csr|authorization|cookie)$|[a-z0-9](Token|Secret|Password|Passphrase|PrivateKey|KeyPem|Csr|Authorization|Cookie)$/;
const isSecretField = (key: string) => SECRET_FIELD.test(key) || SECRET_FIELD.test(key.toLowerCase());
const RESERVED = new Set(['time', 'level', 'msg', 'pid', 'hostname']);
/** Deeper than any record Gatehouse logs; a bound, so a cyclic or huge object cannot stall a line. */
const MAX_DEPTH = 8;

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
   * Buffer lines and write them asynchronously: a busy proxy logs a line per request, and a
   * system call per line is a large share of its time. Pending lines are written synchronously
   * when the process exits.
   */
  batch?: boolean;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const stream: DestinationStream = options.write
    ? { write: options.write }
    : destination({ dest: 2, sync: !options.batch });
  const root = pino(
    {
      level: options.level ?? parseLogLevel(process.env.GATEHOUSE_LOG_LEVEL, 'GATEHOUSE_LOG_LEVEL', 'info'),
      messageKey: 'msg',
      timestamp: stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        log: (record) => guard(record),
      },
      // Errors are reduced by guard() (name, code, message, cause: no stack in a log line).
      serializers: { err: (value: unknown) => value },
    },
    stream,
  );
  return wrap(options.base && Object.keys(options.base).length ? root.child(guard(options.base)) : root);
}

function wrap(p: PinoLogger): Logger {
  return {
    debug: (event, fields) => p.debug(fields ?? {}, event),
    info: (event, fields) => p.info(fields ?? {}, event),
    warn: (event, fields) => p.warn(fields ?? {}, event),
    error: (event, fields) => p.error(fields ?? {}, event),
    enabled: (level) => p.isLevelEnabled(level),
    child: (fields) => wrap(p.child(guard(fields))),
  };
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  enabled: () => false,
  child() {
    return silentLogger;
  },
};

/** A level from a flag or the environment; anything else is refused rather than guessed. */
export function parseLogLevel(value: string | undefined, source: string, fallback: LogLevel): LogLevel {
  if (value === undefined || value === '') return fallback;
  if ((LOG_LEVELS as readonly string[]).includes(value)) return value as LogLevel;
  throw new InvalidLogLevel(`${source} is "${value}"; use one of ${LOG_LEVELS.join(', ')}`);
}

export class InvalidLogLevel extends Error {}

/** Moves reserved keys aside and redacts secret-looking ones, at every depth. */
function guard(record: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record))
    out[RESERVED.has(k) ? `field.${k}` : k] = isSecretField(k) ? '[redacted]' : clean(v, 1);
  return out;
}

function clean(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== 'object') return typeof value === 'bigint' ? value.toString() : value;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `[${value.length} bytes]`;
  if (value instanceof Date) return value;
  if (value instanceof Error) {
    const e = value as Error & { code?: string };
    return {
      name: e.name,
      code: e.code,
      message: e.message,
      cause: e.cause instanceof Error ? e.cause.message : undefined,
    };
  }
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (Array.isArray(value)) return value.map((v) => clean(v, depth + 1));
  if (value instanceof Map || value instanceof Set) return `[${value.constructor.name} of ${value.size}]`;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = isSecretField(k) ? '[redacted]' : clean(v, depth + 1);
  return out;
}
