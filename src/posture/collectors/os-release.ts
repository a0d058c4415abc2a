/**
 * The operating system and whether it still gets security updates: /etc/os-release
 * (os-release(5)), with Debian's and Ubuntu's end of security support for the releases we know.
 * An unknown distribution or release is "unknown", never a pass.
 */
import type { Collector } from '../check.js';
import { defineCollector, readUnderRoot } from '../check.js';

/** End of (regular) security support, from the distributions' own release pages. */
const SECURITY_SUPPORT_UNTIL: Record<string, Record<string, string>> = {
  debian: { '9': '2020-07-06', '10': '2022-09-10', '11': '2024-08-14', '12': '2026-06-10', '13': '2028-08-09' },
  ubuntu: { '18.04': '2023-05-31', '20.04': '2025-05-31', '22.04': '2027-06-01', '24.04': '2029-05-31' },
};

/** os-release(5): KEY=value lines, values optionally quoted with shell-like escapes. */
export function parseOsRelease(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let value = m[2]!;
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.endsWith(quote) && value.length >= 2)
      value = value.slice(1, -1).replace(/\\(["'$`\\])/g, '$1');
    fields[m[1]!] = value;
  }
  return fields;
}

export const osReleaseCollector: Collector = defineCollector('os-supported', 20, (ctx) => {
  const text = readUnderRoot(ctx, 'etc/os-release') ?? readUnderRoot(ctx, 'usr/lib/os-release');
  if (text === null) return { verdict: 'unknown', reason: 'no /etc/os-release: the operating system is not known' };
  const os = parseOsRelease(text);
  const id = (os.ID ?? '').toLowerCase();
  const version = os.VERSION_ID ?? '';
  const name = os.PRETTY_NAME ?? (`${os.NAME ?? id} ${version}`.trim() || 'unknown');
  const details = { id, versionId: version, prettyName: name.slice(0, 100) };
  const until = SECURITY_SUPPORT_UNTIL[id]?.[version];
  if (!until)
    return { verdict: 'unknown', reason: `${name}: Gatehouse does not know when its security support ends`, details };
  if (ctx.now > new Date(`${until}T00:00:00Z`))
    return {
      verdict: 'fail',
      reason: `${name} no longer gets security updates (support ended ${until})`,
      details: { ...details, securitySupportUntil: until },
    };
  return {
    verdict: 'pass',
    reason: `${name} gets security updates until ${until}`,
    details: { ...details, securitySupportUntil: until },
  };
});
