/**
 * Who acts when the CLI works on the CA directory itself, for the audit trail: `local:<user>`.
 * A process may run as a uid with no passwd entry (a container started with `--user 1234`),
 * where os.userInfo() throws: the uid then names the actor.
 */
import { userInfo } from 'node:os';

export function localActor(): string {
  try {
    return `local:${userInfo().username}`;
  } catch {
    return `local:${process.getuid?.() ?? 'unknown'}`;
  }
}
