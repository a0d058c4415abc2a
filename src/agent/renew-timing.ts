/**
 * When the agent asks the CA: the point in a certificate's lifetime to renew at, and how long to
 * wait after a failed attempt. Pure arithmetic, kept apart from the loop in renew-scheduler.ts so
 * it is tested without a clock; its retry cap is also the CA client's cap on Retry-After.
 */

/**
 * The longest the agent waits before asking the CA again: the default cap of the renewal retry
 * backoff (RunOptions.retryCapMs), and the longest Retry-After taken from a CA (ca-client.ts). A
 * CA asking for longer (or a garbled header read as a huge number) is waited for this long.
 */
export const DEFAULT_RETRY_CAP_MS = 300_000;

/** Renew between 60 % and 73 % of the lifetime (2/3 ± 1/15). */
export function renewalTime(notBefore: Date, notAfter: Date, random: () => number = Math.random): Date {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  const fraction = 2 / 3 + (random() * 2 - 1) / 15;
  return new Date(notBefore.getTime() + lifetime * fraction);
}

/** Full-jitter exponential backoff (AWS architecture blog), capped. */
export function backoffMs(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.max(baseMs, Math.floor(ceiling * random()));
}

/**
 * How long to wait before renewal attempt `attempt + 1` fails again: full-jitter backoff, but
 * at least the Retry-After the CA sent with its refusal (RFC 9110 §10.2.3: a CA that cannot
 * reach its store says 5 s, a rate limit says when a token is back). Either way never past the
 * cap: retryCapMs, and a quarter of what is left of the certificate, so a CA asking for too
 * long (or a hostile one) cannot park the agent until its certificate expires.
 */
export function retryDelayMs(
  attempt: number,
  options: { baseMs: number; capMs: number; remainingMs: number; retryAfterMs: number | null },
  random: () => number = Math.random,
): number {
  const capMs = Math.min(options.capMs, Math.max(1000, options.remainingMs / 4));
  const backoff = backoffMs(attempt, options.baseMs, capMs, random);
  return Math.max(backoff, Math.min(options.retryAfterMs ?? 0, capMs));
}
