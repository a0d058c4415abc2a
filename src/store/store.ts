/**
 * The CA's persistent state behind one interface, assembled from one interface per area
 * (store-*.ts): join tokens (hashed), certificates with their names and revocations, the audit
 * trail, secrets and device posture. SQLite (sqlite.ts) and PostgreSQL (postgres.ts) implement
 * it and pass the same contract tests (test/store-contract.ts).
 */
import type { AuditStore } from './store-audit.js';
import type { CertificateStore } from './store-certificates.js';
import type { PostureStore } from './store-posture.js';
import type { SecretStore } from './store-secrets.js';
import type { TokenStore } from './store-tokens.js';

/** Every area of the store: each store-*.ts file holds one, with the records it reads and writes. */
export interface Store extends TokenStore, CertificateStore, AuditStore, SecretStore, PostureStore {
  readonly kind: string;

  /** Small named values (the audit head, counters, the secrets' master key ID) beside the tables. */
  getMeta(key: string): Promise<string | null>;
  setMeta(key: string, value: string): Promise<void>;

  close(): Promise<void>;
}
