/**
 * When CRL sources are refreshed: every source on an interval, a source that never loaded
 * sooner (backing off from 1 s to the interval), and file sources as soon as their directory
 * changes. Directories are watched rather than files because CRLs are usually replaced by
 * rename (and Kubernetes swaps a symlink), which a watch on the old file never reports.
 */
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../../log/logger.js';
import type { CrlSource } from './crl-source.js';

const FIRST_RETRY_MS = 1000;
// Writers often truncate then write: wait for the burst of events to settle before reading.
const WATCH_SETTLE_MS = 100;

export class CrlRefreshSchedule {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly watchers: FSWatcher[] = [];
  private readonly retryMs = new Map<CrlSource, number>();
  private closed = false;

  constructor(
    private readonly sources: readonly CrlSource[],
    private readonly options: { intervalMs: number; watchFiles: boolean; logger: Logger },
  ) {}

  start(): void {
    for (const source of this.sources) this.scheduleNext(source);
    if (this.options.watchFiles) this.watchDirectories();
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const watcher of this.watchers) watcher.close();
    this.watchers.length = 0;
  }

  private later(delayMs: number, run: () => void): NodeJS.Timeout | null {
    if (this.closed) return null;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      run();
    }, delayMs);
    timer.unref();
    this.timers.add(timer);
    return timer;
  }

  private cancel(timer: NodeJS.Timeout): void {
    clearTimeout(timer);
    this.timers.delete(timer);
  }

  private scheduleNext(source: CrlSource): void {
    const { intervalMs } = this.options;
    let delayMs = intervalMs;
    if (source.crls.length === 0) {
      delayMs = Math.min(this.retryMs.get(source) ?? FIRST_RETRY_MS, intervalMs);
      this.retryMs.set(source, delayMs * 2);
    }
    this.later(delayMs, () => void source.refresh().finally(() => this.scheduleNext(source)));
  }

  private watchDirectories(): void {
    const byDirectory = new Map<string, CrlSource[]>();
    for (const source of this.sources.filter((s) => s.kind === 'file')) {
      const dir = dirname(source.location);
      byDirectory.set(dir, [...(byDirectory.get(dir) ?? []), source]);
    }
    for (const [dir, sources] of byDirectory) {
      let settle: NodeJS.Timeout | null = null;
      const onChange = () => {
        if (settle) this.cancel(settle);
        settle = this.later(WATCH_SETTLE_MS, () => {
          // Every file source of the directory: an unchanged file costs one read and a compare.
          for (const source of sources) void source.refresh();
        });
      };
      try {
        const watcher = watch(dir, { persistent: false }, onChange);
        watcher.on('error', (err) => {
          this.options.logger.warn('gateway.crl_watch_failed', {
            dir,
            reason: err.message,
            effect: `refreshed every ${this.options.intervalMs} ms only`,
          });
          watcher.close();
        });
        this.watchers.push(watcher);
      } catch (err) {
        this.options.logger.warn('gateway.crl_watch_failed', {
          dir,
          reason: (err as Error).message,
          effect: `refreshed every ${this.options.intervalMs} ms only`,
        });
      }
    }
  }
}
