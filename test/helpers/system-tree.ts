/** Fixture file system trees for the posture collectors: files written below a root, which is returned. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export function writeTree(root: string, files: Record<string, string>): string {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

/** A dpkg database (/var/lib/dpkg/status) with these packages installed: [name, version, source?]. */
export function dpkgStatus(packages: ReadonlyArray<readonly [string, string, string?]>): string {
  return packages
    .map(
      ([name, version, source]) =>
        `Package: ${name}\n${source ? `Source: ${source}\n` : ''}Status: install ok installed\nVersion: ${version}\nArchitecture: amd64\n`,
    )
    .join('\n');
}
