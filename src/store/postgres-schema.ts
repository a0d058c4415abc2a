/**
 * Schema migrations for the PostgreSQL store, applied in order (version = index + 1), each in
 * its own transaction, and recorded in schema_migrations (src/store/postgres.ts migratePostgres).
 *
 * The first holds the whole schema of SQLite's six migrations (src/store/sqlite-schema.ts), so
 * both stores agree on every column: times are BIGINT milliseconds since the epoch, not
 * timestamptz. Text compares and sorts byte by byte (COLLATE "C"), as in SQLite, so listings come
 * in the same order whatever the database's locale, and lower() folds ASCII only, as SQLite's does.
 * certificates.seq stands for SQLite's rowid: the order in which certificates were recorded.
 */
const TEXT = 'TEXT COLLATE "C"';

export const POSTGRES_MIGRATIONS: string[] = [
  `CREATE TABLE certificates (
     serial ${TEXT} PRIMARY KEY,
     seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
     fingerprint ${TEXT} NOT NULL UNIQUE,
     name ${TEXT} NOT NULL,
     role ${TEXT} NOT NULL,
     spiffe_id ${TEXT} NOT NULL,
     not_before BIGINT NOT NULL,
     not_after BIGINT NOT NULL,
     issued_at BIGINT NOT NULL,
     cert_pem TEXT NOT NULL,
     token_id ${TEXT},
     renewed_from ${TEXT},
     revoked_at BIGINT,
     revocation_reason ${TEXT},
     lineage ${TEXT} NOT NULL,
     superseded_by ${TEXT},
     superseded_at BIGINT
   );
   CREATE INDEX certificates_not_after ON certificates(not_after);
   CREATE INDEX certificates_name ON certificates(name, role);
   CREATE INDEX certificates_revoked ON certificates(revoked_at) WHERE revoked_at IS NOT NULL;
   CREATE INDEX certificates_lineage ON certificates(lineage);
   CREATE TABLE tokens (
     id ${TEXT} PRIMARY KEY,
     secret_hash ${TEXT} NOT NULL,
     role ${TEXT} NOT NULL,
     name ${TEXT},
     name_pattern ${TEXT},
     max_uses INTEGER NOT NULL,
     uses INTEGER NOT NULL DEFAULT 0,
     expires_at BIGINT NOT NULL,
     created_at BIGINT NOT NULL,
     created_by ${TEXT} NOT NULL,
     revoked_at BIGINT
   );
   CREATE TABLE audit_events (
     seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     time BIGINT NOT NULL,
     type ${TEXT} NOT NULL,
     actor ${TEXT} NOT NULL,
     serial ${TEXT},
     fingerprint ${TEXT},
     token_id ${TEXT},
     request_id ${TEXT},
     details TEXT NOT NULL,
     prev_hash ${TEXT} NOT NULL,
     hash ${TEXT} NOT NULL
   );
   CREATE INDEX audit_events_type ON audit_events(type, time);
   CREATE TABLE meta (key ${TEXT} PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE crl_numbers (scope ${TEXT} PRIMARY KEY, value BIGINT NOT NULL);
   CREATE TABLE names (
     role ${TEXT} NOT NULL,
     name ${TEXT} NOT NULL,
     spiffe_id ${TEXT} NOT NULL,
     lineage ${TEXT} NOT NULL,
     reserved_at BIGINT NOT NULL,
     PRIMARY KEY (role, name)
   );
   CREATE TABLE secrets (
     name ${TEXT} PRIMARY KEY,
     created_at BIGINT NOT NULL,
     updated_at BIGINT NOT NULL,
     current_version INTEGER NOT NULL
   );
   CREATE UNIQUE INDEX secrets_name_nocase ON secrets(lower(name));
   CREATE TABLE secret_versions (
     name ${TEXT} NOT NULL REFERENCES secrets(name) ON DELETE CASCADE,
     version INTEGER NOT NULL,
     created_at BIGINT NOT NULL,
     expires_at BIGINT,
     key_id ${TEXT} NOT NULL,
     sealed_key BYTEA NOT NULL,
     iv BYTEA NOT NULL,
     ciphertext BYTEA NOT NULL,
     tag BYTEA NOT NULL,
     checksum ${TEXT} NOT NULL,
     size INTEGER NOT NULL,
     last_read_at BIGINT,
     last_read_by ${TEXT},
     PRIMARY KEY (name, version)
   );
   CREATE INDEX secret_versions_expires ON secret_versions(expires_at) WHERE expires_at IS NOT NULL;
   CREATE TABLE secret_grants (
     name ${TEXT} NOT NULL REFERENCES secrets(name) ON DELETE CASCADE,
     subject ${TEXT} NOT NULL,
     granted_at BIGINT NOT NULL,
     PRIMARY KEY (name, subject)
   );
   CREATE INDEX secret_grants_subject ON secret_grants(subject);
   CREATE TABLE posture_reports (
     id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     spiffe_id ${TEXT} NOT NULL,
     serial ${TEXT} NOT NULL,
     received_at BIGINT NOT NULL,
     score INTEGER,
     report TEXT NOT NULL
   );
   CREATE INDEX posture_reports_identity ON posture_reports(spiffe_id, id);
   CREATE TABLE advisories (
     id ${TEXT} PRIMARY KEY,
     modified ${TEXT} NOT NULL,
     severity ${TEXT} NOT NULL,
     record TEXT NOT NULL,
     imported_at BIGINT NOT NULL
   );`,
];
