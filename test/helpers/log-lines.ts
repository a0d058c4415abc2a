/**
 * Reading what a Gatehouse process logged: JSON lines (pino's shape: level, time, msg, fields)
 * mixed with anything else a child wrote to the same stream. Tests match on parsed fields, not
 * on the text, so the order of keys in a line never matters.
 */
export type LogRecord = Record<string, unknown>;

export function parseLogLines(text: string | string[]): LogRecord[] {
  const lines = Array.isArray(text) ? text.flatMap((t) => t.split('\n')) : text.split('\n');
  const records: LogRecord[] = [];
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    try {
      records.push(JSON.parse(line) as LogRecord);
    } catch {
      // a line still being written, or not a log line
    }
  }
  return records;
}

/** The first record with this msg whose fields include `fields` (compared with ===). */
export function findLog(text: string | string[], msg: string, fields: LogRecord = {}): LogRecord | undefined {
  return parseLogLines(text).find((r) => r.msg === msg && Object.entries(fields).every(([k, v]) => r[k] === v));
}

/**
 * The lines of a file that another process appends to, each ended by its newline: a line being
 * written (a shell's `echo >> file` opens the file before it writes) is not yet one of them.
 */
export function completeLines(text: string): string[] {
  const lines = text.split('\n');
  lines.pop();
  return lines;
}
