/**
 * What `ca serve`'s /healthz answers (metrics/admin-server.ts serves it): unhealthy when a CRL
 * is past its nextUpdate, since relying parties then refuse every certificate, or when the
 * store does not answer; the details say which.
 */
import type { Health } from '../metrics/admin-server.js';
import type { Store } from '../store/store.js';
import type { CrlPublisher } from './crl-publisher.js';

/** Unhealthy too when the store does not answer within 2 s (PostgreSQL down or unreachable): say why. */
export async function withStoreHealth(store: Store, health: Health): Promise<Health> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('no answer within 2 s')), 2000);
  });
  try {
    await Promise.race([store.getMeta('audit:head'), deadline]);
    return { ...health, details: { ...health.details, store: { kind: store.kind, reachable: true } } };
  } catch (err) {
    const problem = [health.details.problem, `the ${store.kind} store does not answer: ${(err as Error).message}`]
      .filter(Boolean)
      .join('; ');
    return { healthy: false, details: { ...health.details, problem, store: { kind: store.kind, reachable: false } } };
  } finally {
    clearTimeout(timer);
  }
}

/** Healthy while both CRLs are before their nextUpdate: past it, relying parties refuse every certificate. */
export function caHealth(crls: CrlPublisher, serverNotAfter: Date, now: Date): Health {
  const current = Object.fromEntries(crls.scopes().map((scope) => [scope, crls.current(scope)]));
  const stale = Object.entries(current)
    .filter(([, crl]) => crl.nextUpdate <= now)
    .map(([scope]) => scope);
  return {
    healthy: stale.length === 0,
    details: {
      ...(stale.length ? { problem: `CRL past its nextUpdate: ${stale.join(', ')}` } : {}),
      crls: Object.fromEntries(
        Object.entries(current).map(([scope, crl]) => [
          scope,
          { number: crl.number.toString(), nextUpdate: crl.nextUpdate.toISOString() },
        ]),
      ),
      serverCertificateNotAfter: serverNotAfter.toISOString(),
    },
  };
}
