/**
 * Join tokens in the store (store.ts): a token is stored hashed and consumed one use per
 * enrollment, in the issuance that uses it (store-certificates.ts IssuanceCommit).
 */
import type { AuditInput } from './store-audit.js';

export interface TokenRecord {
  id: string;
  /** Lowercase hex SHA-256 of the secret part. The secret itself is never stored. */
  secretHash: string;
  role: string;
  /** Exact name the token enrolls, or null. */
  name: string | null;
  /** Glob (`*` only) the enrolled name must match, or null. */
  namePattern: string | null;
  maxUses: number;
  uses: number;
  expiresAt: Date;
  createdAt: Date;
  createdBy: string;
  revokedAt: Date | null;
}

export interface TokenStore {
  insertToken(token: TokenRecord, audit: AuditInput): Promise<void>;
  getToken(id: string): Promise<TokenRecord | null>;
  listTokens(): Promise<TokenRecord[]>;
  /** Marks the token revoked. Returns null when no token has this ID. */
  revokeToken(id: string, at: Date, audit: AuditInput): Promise<TokenRecord | null>;
}
