/**
 * Upstreams are loopback by default: an app reachable directly from the network can be sent
 * forged identity headers, bypassing the gateway. Anything else is an explicit, logged opt-in.
 */
import { isLoopbackHost } from '../../config/listen.js';
import { GatehouseError } from '../../errors/errors.js';
import type { Logger } from '../../log/logger.js';

export function assertLocalUpstream(upstream: URL, unsafeAllowed: boolean, logger: Logger): void {
  if (isLoopbackHost(upstream.hostname)) return;
  if (!unsafeAllowed) {
    throw new GatehouseError(
      'GH_CONFIG_INVALID',
      `upstream ${upstream.origin} is not on loopback; an app reachable from the network can be sent forged identity headers. If it only accepts connections from this gateway, pass --unsafe-allow-non-local-upstream`,
    );
  }
  logger.warn('gateway.unsafe_non_local_upstream', {
    upstream: upstream.origin,
    why: 'the app must refuse connections that do not come from this gateway',
  });
}
