/**
 * What every operation of the secret service shares: its dependencies (a SecretContext, made
 * once by SecretService in service.ts), who is asking (an operator or an identity), and the
 * answer for a name that does not exist. The operations live one group per module beside it.
 */
import { GatehouseError } from '../errors/errors.js';
import type { CaConfig } from '../config/ca-config.js';
import type { Logger } from '../log/logger.js';
import type { Store } from '../store/store.js';
import type { AuditInput } from '../store/store-audit.js';
import type { MasterKeyRing } from './master-key.js';
import type { SecretObserver } from './read-results.js';

export type SecretConfig = Readonly<Pick<CaConfig, 'trustDomain' | 'roles' | 'secrets'>>;

export type RefusalAuditWriter = (
  source: string,
  event: Omit<AuditInput, 'time' | 'details'> & { details: Record<string, string | number | boolean | null> },
) => Promise<void>;

/** SecretServiceDeps with its defaults filled in. */
export interface SecretContext {
  readonly store: Store;
  readonly config: SecretConfig;
  readonly keys: MasterKeyRing;
  readonly logger: Logger;
  readonly now: () => Date;
  readonly observer: SecretObserver | null;
  /** Null: refusals are written unlimited (local use). */
  readonly auditRefusal: RefusalAuditWriter | null;
}

export interface ActorContext {
  actor: string;
  requestId?: string | null;
}

export interface ReaderContext {
  requestId?: string | null;
  /** The peer address: the key of the refusal-audit rate limit. */
  source: string;
}

export function notFound(name: string): GatehouseError {
  return new GatehouseError('GH_SECRET_NOT_FOUND', `no secret named ${name} (see \`gatehouse secret list\`)`);
}
