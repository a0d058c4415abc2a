/**
 * The logger of a long-running command (`ca serve`, `gateway`, `agent run`, `demo`, `quickstart`):
 * its level from --log-level, else GATEHOUSE_LOG_LEVEL, else the command's default; and the
 * "listening" announcement, which is a log line like any other (stderr stays one JSON stream)
 * with a sentence for a person beside it only when stderr is a terminal.
 */
import { GatehouseError } from '../errors/errors.js';
import {
  createLogger,
  InvalidLogLevel,
  LOG_LEVELS,
  parseLogLevel,
  type Logger,
  type LoggerOptions,
  type LogLevel,
} from '../log/logger.js';
import { str, type CommandContext, type OptionSpec } from './command.js';

export function logLevelOption(defaultLevel: LogLevel = 'info'): OptionSpec {
  return {
    type: 'string',
    value: 'LEVEL',
    description: `Log level: ${LOG_LEVELS.join(', ')} (or GATEHOUSE_LOG_LEVEL; default ${defaultLevel})`,
  };
}

/** The level a command logs at; a value that is not a level is a usage error naming where it came from. */
export function logLevelOf(ctx: CommandContext, fallback: LogLevel = 'info'): LogLevel {
  try {
    const fromFlag = str(ctx, 'log-level');
    if (fromFlag !== undefined) return parseLogLevel(fromFlag, '--log-level', fallback);
    return parseLogLevel(ctx.env.GATEHOUSE_LOG_LEVEL, 'GATEHOUSE_LOG_LEVEL', fallback);
  } catch (cause) {
    if (cause instanceof InvalidLogLevel) throw new GatehouseError('GH_USAGE', cause.message, { cause });
    throw cause;
  }
}

export function serverLogger(
  ctx: CommandContext,
  options: Omit<LoggerOptions, 'level'> & { fallback?: LogLevel } = {},
): Logger {
  const { fallback, ...rest } = options;
  return createLogger({ ...rest, level: logLevelOf(ctx, fallback) });
}

/** Logs `event` with its fields; on a terminal also prints `sentence`, which says the same for a person. */
export function announce(
  ctx: CommandContext,
  logger: Logger,
  event: string,
  fields: Record<string, unknown>,
  sentence: string,
): void {
  logger.info(event, fields);
  if (process.stderr.isTTY) ctx.err(`${sentence}\n`);
}
