/**
 * Binding a listening socket, and the one error it fails with: GH_LISTEN_FAILED, naming the
 * address, what listens there, why the kernel refused it in words, and what to do. The CA, its
 * metrics listener, the gateway, its admin listener and the demo all bind through here, and do
 * so before anything is issued, written or audited, so a failed start leaves no trace.
 */
import type { Server } from 'node:net';
import { GatehouseError } from './errors.js';

const REASONS: Record<string, string> = {
  EADDRINUSE:
    'the address is in use by another process (EADDRINUSE): stop that process (`ss -ltnp` names it) or choose another port',
  EACCES:
    'listening there needs privileges (EACCES): ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port from 1024 up, or grant the capability (AmbientCapabilities=CAP_NET_BIND_SERVICE in a systemd unit)',
  EADDRNOTAVAIL:
    'no such address on this machine (EADDRNOTAVAIL): listen on one of its addresses (`ip -brief address`), 127.0.0.1, or 0.0.0.0 for all',
  ENOTFOUND: 'the host name does not resolve (ENOTFOUND): use an IP address of this machine',
  EAI_AGAIN: 'the host name could not be resolved now (EAI_AGAIN): use an IP address of this machine',
};

/** The GH_LISTEN_FAILED error for `err`, a failed listen on `listen` (HOST:PORT as configured) by `what` ("the CA's HTTPS API"). */
export function listenFailed(listen: string, what: string, err: NodeJS.ErrnoException): GatehouseError {
  const reason = REASONS[err.code ?? ''] ?? `${err.code ?? 'error'}: ${err.message}`;
  return new GatehouseError('GH_LISTEN_FAILED', `cannot listen on ${listen} (${what}): ${reason}`, {
    cause: err,
    details: { listen, what, errno: err.code },
  });
}

/** `server.listen(port, host)`, resolved once bound, rejected with GH_LISTEN_FAILED. */
export function listenOn(
  server: Server,
  where: { listen: string; host: string; port: number; what: string },
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    // Left in place once bound, as before: a later error (EMFILE on accept) must not crash the process.
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenFailed(where.listen, where.what, err)));
    server.listen(where.port, where.host, () => resolve());
  });
}
