/**
 * Calls back when any of a set of files changes. Watches the folders rather than the files:
 * agents replace files by rename, which a watch on the old inode would miss. Events are
 * debounced so that a renewal writing cert.pem, key.pem and ca.pem causes one reload, and a
 * slow stat poll backs up the watch on file systems where events are lost.
 */
import { watch, watchFile, unwatchFile, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

export interface FileWatch {
  close(): void;
}

export function watchFiles(
  paths: readonly string[],
  onChange: () => void,
  options: { debounceMs?: number; pollMs?: number } = {},
): FileWatch {
  const debounceMs = options.debounceMs ?? 250;
  let timer: NodeJS.Timeout | null = null;
  const fire = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      onChange();
    }, debounceMs);
    timer.unref();
  };
  const byDir = new Map<string, Set<string>>();
  for (const path of paths) byDir.set(dirname(path), (byDir.get(dirname(path)) ?? new Set()).add(basename(path)));
  const watchers: FSWatcher[] = [];
  for (const [dir, names] of byDir) {
    try {
      const watcher = watch(dir, { persistent: false }, (_event, name) => {
        if (name === null || names.has(name.toString())) fire();
      });
      watcher.on('error', () => {});
      watchers.push(watcher);
    } catch {
      // The stat poll below still covers this folder.
    }
  }
  const pollMs = options.pollMs ?? 5000;
  const listener = (curr: { mtimeMs: number; ino: number }, prev: { mtimeMs: number; ino: number }) => {
    if (curr.mtimeMs !== prev.mtimeMs || curr.ino !== prev.ino) fire();
  };
  for (const path of paths) watchFile(path, { persistent: false, interval: pollMs }, listener);
  return {
    close() {
      if (timer) clearTimeout(timer);
      for (const w of watchers) w.close();
      for (const path of paths) unwatchFile(path, listener);
    },
  };
}
