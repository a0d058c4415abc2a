/** Schema migrations for the SQLite store, applied in order and recorded in schema_migrations. */
export const SQLITE_MIGRATIONS: string[] = [
  `CREATE TABLE certificates (
     serial TEXT PRIMARY KEY,
     fingerprint TEXT NOT NULL UNIQUE,
     name TEXT NOT NULL,
     role TEXT NOT NULL,
     spiffe_id TEXT NOT NULL,
     not_before INTEGER NOT NULL,
     not_after INTEGER NOT NULL,
     issued_at INTEGER NOT NULL,
     cert_pem TEXT NOT NULL,
     token_id TEXT,
     renewed_from TEXT,
     revoked_at INTEGER,
     revocation_reason TEXT
   );
   CREATE INDEX certificates_not_after ON certificates(not_after);
   CREATE INDEX certificates_name ON certificates(name, role);
   CREATE INDEX certificates_revoked ON certificates(revoked_at) WHERE revoked_at IS NOT NULL;
   CREATE TABLE tokens (
     id TEXT PRIMARY KEY,
     secret_hash TEXT NOT NULL,
     role TEXT NOT NULL,
     name TEXT,
     name_pattern TEXT,
     max_uses INTEGER NOT NULL,
     uses INTEGER NOT NULL DEFAULT 0,
     expires_at INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     created_by TEXT NOT NULL,
     revoked_at INTEGER
   );
   CREATE TABLE audit_events (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     time INTEGER NOT NULL,
     type TEXT NOT NULL,
     actor TEXT NOT NULL,
     serial TEXT,
     fingerprint TEXT,
     token_id TEXT,
     request_id TEXT,
     details TEXT NOT NULL,
     prev_hash TEXT NOT NULL,
     hash TEXT NOT NULL
   );
   CREATE INDEX audit_events_type ON audit_events(type, time);
   CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE crl_numbers (scope TEXT PRIMARY KEY, value INTEGER NOT NULL);`,
  // The audit head (sqlite-db.ts SqliteDb.appendAuditInTx), taken from the last event on disk at upgrade.
  `INSERT OR IGNORE INTO meta (key, value)
     SELECT 'audit:head', json_object('seq', seq, 'hash', hash) FROM audit_events WHERE seq = (SELECT MAX(seq) FROM audit_events);`,
  // Renewal lineage and name reservations (issue 11). A lineage is named by the serial of the
  // certificate that started it (an enrollment); renewals inherit it. Existing certificates are
  // walked along renewed_from; each renewed certificate is marked superseded by its newest renewal.
  `ALTER TABLE certificates ADD COLUMN lineage TEXT;
   ALTER TABLE certificates ADD COLUMN superseded_by TEXT;
   ALTER TABLE certificates ADD COLUMN superseded_at INTEGER;
   WITH RECURSIVE chain(serial, lineage) AS (
     SELECT serial, serial FROM certificates
       WHERE renewed_from IS NULL OR renewed_from NOT IN (SELECT serial FROM certificates)
     UNION
     SELECT c.serial, chain.lineage FROM certificates c JOIN chain ON c.renewed_from = chain.serial
   )
   UPDATE certificates SET lineage = (SELECT lineage FROM chain WHERE chain.serial = certificates.serial);
   UPDATE certificates SET lineage = serial WHERE lineage IS NULL;
   UPDATE certificates SET
     superseded_by = (SELECT s.serial FROM certificates s WHERE s.renewed_from = certificates.serial ORDER BY s.issued_at DESC, s.rowid DESC LIMIT 1),
     superseded_at = (SELECT s.issued_at FROM certificates s WHERE s.renewed_from = certificates.serial ORDER BY s.issued_at DESC, s.rowid DESC LIMIT 1)
     WHERE EXISTS (SELECT 1 FROM certificates s WHERE s.renewed_from = certificates.serial);
   CREATE INDEX certificates_lineage ON certificates(lineage);
   CREATE TABLE names (
     role TEXT NOT NULL,
     name TEXT NOT NULL,
     spiffe_id TEXT NOT NULL,
     lineage TEXT NOT NULL,
     reserved_at INTEGER NOT NULL,
     PRIMARY KEY (role, name)
   );
   INSERT OR IGNORE INTO names (role, name, spiffe_id, lineage, reserved_at)
     SELECT role, name, spiffe_id, lineage, issued_at FROM certificates ORDER BY issued_at DESC, rowid DESC;`,
  // Secrets (issue 13): values only sealed (src/secrets/seal.ts), one row per version, grants by
  // subject. A name is unique regardless of letter case, since it becomes a file name on agents.
  `CREATE TABLE secrets (
     name TEXT PRIMARY KEY,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     current_version INTEGER NOT NULL
   );
   CREATE UNIQUE INDEX secrets_name_nocase ON secrets(lower(name));
   CREATE TABLE secret_versions (
     name TEXT NOT NULL REFERENCES secrets(name) ON DELETE CASCADE,
     version INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER,
     key_id TEXT NOT NULL,
     sealed_key BLOB NOT NULL,
     iv BLOB NOT NULL,
     ciphertext BLOB NOT NULL,
     tag BLOB NOT NULL,
     checksum TEXT NOT NULL,
     size INTEGER NOT NULL,
     last_read_at INTEGER,
     last_read_by TEXT,
     PRIMARY KEY (name, version)
   );
   CREATE INDEX secret_versions_expires ON secret_versions(expires_at) WHERE expires_at IS NOT NULL;
   CREATE TABLE secret_grants (
     name TEXT NOT NULL REFERENCES secrets(name) ON DELETE CASCADE,
     subject TEXT NOT NULL,
     granted_at INTEGER NOT NULL,
     PRIMARY KEY (name, subject)
   );
   CREATE INDEX secret_grants_subject ON secret_grants(subject);`,
  // Device posture reports (issue 15): a bounded history per identity, the report as JSON.
  `CREATE TABLE posture_reports (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     spiffe_id TEXT NOT NULL,
     serial TEXT NOT NULL,
     received_at INTEGER NOT NULL,
     score INTEGER,
     report TEXT NOT NULL
   );
   CREATE INDEX posture_reports_identity ON posture_reports(spiffe_id, id);`,
  // Security advisories for the CVE audit (issue 15), normalized from OSV; one row per ID.
  `CREATE TABLE advisories (
     id TEXT PRIMARY KEY,
     modified TEXT NOT NULL,
     severity TEXT NOT NULL,
     record TEXT NOT NULL,
     imported_at INTEGER NOT NULL
   );`,
];
