/** `--workers N|auto` for the servers that fork workers (`ca serve`, `gateway run`): one parser, one message. */
import { availableParallelism } from 'node:os';
import { GatehouseError } from '../errors/errors.js';

/** A whole number from 1 to `max`, or `auto` (one per core, at most `max`). */
export function parseWorkers(text: string, max: number): number {
  if (text === 'auto') return Math.min(availableParallelism(), max);
  const workers = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(workers) || workers < 1 || workers > max)
    throw new GatehouseError('GH_USAGE', `--workers must be a whole number from 1 to ${max}, or auto`);
  return workers;
}
