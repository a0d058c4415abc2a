/**
 * CVSS v3.0/v3.1 base scores from their vector strings (FIRST, CVSS v3.1 Specification §7.1 and
 * Appendix A for Roundup), and the qualitative rating of §5. OSV records carry the vector, not
 * the number; the audit needs the rating to tell "critical" from the rest.
 */
export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'none' | 'unknown';

const WEIGHTS = {
  AV: { N: 0.85, A: 0.62, L: 0.55, P: 0.2 },
  AC: { L: 0.77, H: 0.44 },
  UI: { N: 0.85, R: 0.62 },
  CIA: { H: 0.56, L: 0.22, N: 0 },
} as const;

/** Privileges Required weighs more when the scope changes (§7.4). */
const PR = { U: { N: 0.85, L: 0.62, H: 0.27 }, C: { N: 0.85, L: 0.68, H: 0.5 } } as const;

/** Appendix A: the smallest number with one decimal that is ≥ x, free of floating-point drift. */
function roundUp(x: number): number {
  const scaled = Math.round(x * 100_000);
  return scaled % 10_000 === 0 ? scaled / 100_000 : (Math.floor(scaled / 10_000) + 1) / 10;
}

/** The base score of a `CVSS:3.x/AV:…/…` vector, or null when it is not one (or lacks a base metric). */
export function cvss3BaseScore(vector: string): number | null {
  const parts = vector.trim().split('/');
  if (!/^CVSS:3\.[01]$/.test(parts[0] ?? '')) return null;
  const m = new Map<string, string>();
  for (const part of parts.slice(1)) {
    const [key, value, extra] = part.split(':');
    if (!key || !value || extra !== undefined || m.has(key)) return null;
    m.set(key, value);
  }
  const pick = <T extends Record<string, number>>(table: T, key: string): number | null => {
    const v = m.get(key);
    return v !== undefined && Object.hasOwn(table, v) ? table[v as keyof T]! : null;
  };
  const scope = m.get('S');
  if (scope !== 'U' && scope !== 'C') return null;
  const av = pick(WEIGHTS.AV, 'AV'),
    ac = pick(WEIGHTS.AC, 'AC'),
    ui = pick(WEIGHTS.UI, 'UI'),
    pr = pick(PR[scope], 'PR');
  const c = pick(WEIGHTS.CIA, 'C'),
    i = pick(WEIGHTS.CIA, 'I'),
    a = pick(WEIGHTS.CIA, 'A');
  if (av === null || ac === null || ui === null || pr === null || c === null || i === null || a === null) return null;
  const iss = 1 - (1 - c) * (1 - i) * (1 - a);
  const impact = scope === 'U' ? 6.42 * iss : 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15;
  if (impact <= 0) return 0;
  const exploitability = 8.22 * av * ac * pr * ui;
  return roundUp(Math.min(scope === 'U' ? impact + exploitability : 1.08 * (impact + exploitability), 10));
}

/** §5: None 0.0, Low 0.1–3.9, Medium 4.0–6.9, High 7.0–8.9, Critical 9.0–10.0. */
export function ratingOf(score: number): Severity {
  if (score >= 9) return 'critical';
  if (score >= 7) return 'high';
  if (score >= 4) return 'medium';
  if (score > 0) return 'low';
  return 'none';
}

export const SEVERITY_ORDER: readonly Severity[] = ['critical', 'high', 'medium', 'low', 'none', 'unknown'];
