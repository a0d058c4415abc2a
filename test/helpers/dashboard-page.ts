/**
 * Reading dashboard pages in HTTP-level tests: the fleet table's rows, and the proof that text
 * from devices and feeds (attacker-controlled) came out escaped.
 */
import assert from 'node:assert/strict';
import type { HttpResult } from './ca-http.js';

/** A value a hostile device or feed would send: markup, a handler, every quote and `&`. */
export const HOSTILE = `<script>alert(1)</script><img src=x onerror=alert(1)>"'\`&`;

/** Only the dashboard's own script tag, no injected element or handler outside quoted attributes, and no raw HOSTILE. */
export function assertNoInjectedMarkup(res: HttpResult, what: string): void {
  assert.deepEqual(
    res.text.match(/<script\b[^>]*>/gi) ?? [],
    ['<script src="/dashboard/static/dashboard.js" defer>'],
    what,
  );
  assert.doesNotMatch(res.text.replace(/"[^"]*"/g, '""'), /<img\b|<[a-z][^>]*\son[a-z]+\s*=|javascript:/i, what);
  assert.ok(!res.text.includes(HOSTILE), `${what}: raw value absent`);
}

/** The names in the fleet table's rows, sorted. */
export function rowNames(res: HttpResult): string[] {
  return [...res.text.matchAll(/<th scope="row"><a href="\/dashboard\/identity\/[^"]+">([^<]+)<\/a><\/th>/g)]
    .map((m) => m[1]!)
    .sort();
}

/** The fleet table row of one identity. */
export function rowOf(res: HttpResult, name: string): string {
  const row = res.text.split('<tr>').find((r) => r.includes(`>${name}</a></th>`));
  assert.ok(row, `a row for ${name}`);
  return row;
}
