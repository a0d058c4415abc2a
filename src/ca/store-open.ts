/**
 * Opening the CA's store where its config says it lives (`store:` in gatehouse.yaml, or
 * GATEHOUSE_STORE_URL): the SQLite file in the CA directory, or a PostgreSQL database that
 * several `ca serve` replicas share. Every command that takes --dir opens it through here.
 */
import { join } from 'node:path';
import type { CaConfig } from '../config/ca-config.js';
import type { Store } from '../store/store.js';
import { openSqliteStore } from '../store/sqlite.js';
import { CA_FILES } from './ca-dir.js';

export interface StoreOpenOptions {
  readonly?: boolean;
  /** PostgreSQL: apply missing migrations first (`ca init`, `ca migrate`); otherwise an older schema is refused. */
  migrate?: boolean;
}

export async function openCaStore(
  dir: string,
  config: Pick<CaConfig, 'store'>,
  options: StoreOpenOptions = {},
): Promise<Store> {
  if (config.store.kind === 'sqlite')
    return openSqliteStore(join(dir, CA_FILES.database), options.readonly ? { readonly: true } : {});
  const { openPostgresStore } = await import('../store/postgres.js');
  return openPostgresStore({
    ...(config.store.url !== null ? { url: config.store.url } : {}),
    poolMax: config.store.poolMax,
    migrate: options.migrate ?? false,
  });
}

/** Where the store is, for logs and messages: never a password. */
export function describeStore(
  dir: string,
  config: Pick<CaConfig, 'store'>,
  env: NodeJS.ProcessEnv = process.env,
): string {
  if (config.store.kind === 'sqlite') return `sqlite ${join(dir, CA_FILES.database)}`;
  return `postgres ${redactedStoreUrl(config.store.url ?? '', env)}`;
}

/** host:port/database of a postgres:// URL (the PG* variables filling what it leaves out), without user info. */
export function redactedStoreUrl(url: string, env: NodeJS.ProcessEnv = process.env): string {
  let parsed: URL | null;
  try {
    parsed = url ? new URL(url) : null;
  } catch {
    return '(an unparsable URL)';
  }
  const host = parsed?.hostname || env.PGHOST || 'localhost';
  const port = parsed?.port || env.PGPORT || '5432';
  const database = parsed?.pathname.replace(/^\//, '') || env.PGDATABASE || env.PGUSER || '(default)';
  return `${host}:${port}/${decodeURIComponent(database)}`;
}

/** The URL as gatehouse.yaml may hold it: the password removed (it belongs in PGPASSWORD or ~/.pgpass). */
export function urlWithoutPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.password) return url;
    parsed.password = '';
    return parsed.toString();
  } catch {
    return url;
  }
}
