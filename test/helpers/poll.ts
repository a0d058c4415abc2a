/**
 * The one way tests wait for something: poll until it happens, and fail at the deadline naming
 * what was awaited. Never a fixed sleep, never a wait that silently gives up.
 */
import assert from 'node:assert/strict';

/** What was awaited; a function is called only on failure (to add a log tail, say). */
export type Awaited = string | (() => string);

/** Polls `check` until it returns a value other than undefined (returned), or fails after `timeoutMs`. */
export async function pollUntil<T>(
  what: Awaited,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      assert.fail(`${typeof what === 'function' ? what() : what}: not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Polls `condition` until it is true, or fails after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: Awaited,
  intervalMs = 50,
): Promise<void> {
  await pollUntil(what, async () => ((await condition()) ? true : undefined), timeoutMs, intervalMs);
}
