/**
 * Issuance on the SQLite store, committed in groups: issuances arriving in the same event-loop
 * turn share one transaction (group commit), so one fsync serves them all. Each item's checks
 * (its name, the renewed certificate, the token's uses) read before it writes, so a refusal in a
 * group records nothing, as if it had its own transaction.
 */
import type { Row } from './rows.js';
import type { SqliteDb } from './sqlite-db.js';
import type { CertRecord, IssuanceCommit, IssuanceOutcome, NameClaim } from './store-certificates.js';

interface PendingIssuance {
  commit: IssuanceCommit;
  resolve: (outcome: IssuanceOutcome) => void;
  reject: (err: unknown) => void;
}

export class SqliteIssuanceQueue {
  private pending: PendingIssuance[] = [];
  private flushScheduled = false;
  private readonly stmt;

  constructor(private readonly sqlite: SqliteDb) {
    const db = sqlite.db;
    this.stmt = {
      insertCert:
        db.prepare(`INSERT INTO certificates (serial, fingerprint, name, role, spiffe_id, not_before, not_after, issued_at, cert_pem, token_id, renewed_from, lineage)
        VALUES (@serial, @fingerprint, @name, @role, @spiffeId, @notBefore, @notAfter, @issuedAt, @certPem, @tokenId, @renewedFrom, @lineage)`),
      consumeToken: db.prepare(
        'UPDATE tokens SET uses = uses + 1 WHERE id = ? AND uses < max_uses AND revoked_at IS NULL AND expires_at > ?',
      ),
      getToken: db.prepare('SELECT * FROM tokens WHERE id = ?'),
      // The same rows as listCerts({ name, role, state: 'active', now, limit: 1 }) (the certificates_name index).
      activeHolder: db.prepare(
        'SELECT serial, lineage FROM certificates WHERE name = ? AND role = ? AND revoked_at IS NULL AND not_after > ? ORDER BY issued_at DESC, serial LIMIT 1',
      ),
      lineageHead: db.prepare(
        'SELECT serial, revoked_at, not_after FROM certificates WHERE lineage = ? ORDER BY issued_at DESC, rowid DESC LIMIT 1',
      ),
      renewalTarget: db.prepare('SELECT superseded_by, revoked_at FROM certificates WHERE serial = ?'),
      supersede: db.prepare('UPDATE certificates SET superseded_by = ?, superseded_at = ? WHERE serial = ?'),
      getName: db.prepare('SELECT * FROM names WHERE role = ? AND name = ?'),
      // A reservation keeps its date while its lineage holds it; a replacement starts a new one.
      claimName: db.prepare(`INSERT INTO names (role, name, spiffe_id, lineage, reserved_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT(role, name) DO UPDATE SET spiffe_id = excluded.spiffe_id, lineage = excluded.lineage,
          reserved_at = CASE WHEN names.lineage = excluded.lineage THEN names.reserved_at ELSE excluded.reserved_at END`),
    };
  }

  submit(commit: IssuanceCommit): Promise<IssuanceOutcome> {
    return new Promise((resolve, reject) => {
      this.pending.push({ commit, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commits what waits now, before the store is read whole or closed. */
  flushPending(): void {
    if (this.pending.length) this.flush();
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    this.flushScheduled = false;
    let outcomes: IssuanceOutcome[];
    try {
      outcomes = this.sqlite.write(() => batch.map(({ commit }) => this.commitOneInTx(commit)));
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => p.resolve(outcomes[i]!));
  }

  private commitOneInTx({
    cert,
    consumeTokenId,
    now,
    audit,
    nameClaim = 'replace',
    renews,
  }: IssuanceCommit): IssuanceOutcome {
    // Every check reads before anything is written, so a refusal leaves this item's (and the
    // batch's) state untouched; the transaction holds SQLite's write lock, so nothing changes
    // between a check and the writes. Items earlier in the batch were written on this
    // connection in this transaction, so two issuances in one batch see each other here.
    const nameRefusal = this.nameClaimRefusal(cert, nameClaim, now);
    if (nameRefusal) return nameRefusal;
    if (renews !== undefined) {
      const target = this.stmt.renewalTarget.get(renews) as
        { superseded_by: string | null; revoked_at: number | null } | undefined;
      if (!target || target.superseded_by !== null || target.revoked_at !== null) {
        return { ok: false, reason: 'NOT_LINEAGE_HEAD', supersededBy: target?.superseded_by ?? null };
      }
    }
    if (consumeTokenId !== undefined) {
      // The conditional UPDATE is the race arbiter: of N concurrent enrollments on a
      // single-use token, exactly one sees a changed row.
      if (this.stmt.consumeToken.run(consumeTokenId, now.getTime()).changes !== 1) {
        const row = this.stmt.getToken.get(consumeTokenId) as Row | undefined;
        if (!row) return { ok: false, reason: 'TOKEN_UNKNOWN' };
        if (row.revoked_at !== null) return { ok: false, reason: 'TOKEN_REVOKED' };
        if (Number(row.expires_at) <= now.getTime()) return { ok: false, reason: 'TOKEN_EXPIRED' };
        return { ok: false, reason: 'TOKEN_USED' };
      }
    }
    this.stmt.insertCert.run({
      serial: cert.serial,
      fingerprint: cert.fingerprint,
      name: cert.name,
      role: cert.role,
      spiffeId: cert.spiffeId,
      notBefore: cert.notBefore.getTime(),
      notAfter: cert.notAfter.getTime(),
      issuedAt: cert.issuedAt.getTime(),
      certPem: cert.certPem,
      tokenId: cert.tokenId,
      renewedFrom: cert.renewedFrom,
      lineage: cert.lineage,
    });
    if (renews !== undefined) this.stmt.supersede.run(cert.serial, cert.issuedAt.getTime(), renews);
    this.stmt.claimName.run(cert.role, cert.name, cert.spiffeId, cert.lineage, now.getTime());
    this.sqlite.appendAuditInTx(audit);
    return { ok: true };
  }

  /** Why `cert` may not take its name under `claim`, or null (store-certificates.ts NameClaim). */
  private nameClaimRefusal(cert: CertRecord, claim: NameClaim, now: Date): IssuanceOutcome | null {
    if (claim === 'replace') return null;
    const reserved = this.stmt.getName.get(cert.role, cert.name) as Row | undefined;
    if (reserved && reserved.lineage !== cert.lineage) {
      const head = this.stmt.lineageHead.get(reserved.lineage) as
        { serial: string; revoked_at: number | null; not_after: number } | undefined;
      const active = head !== undefined && head.revoked_at === null && head.not_after > now.getTime();
      return { ok: false, reason: 'NAME_TAKEN', heldBy: head?.serial ?? (reserved.lineage as string), active };
    }
    if (claim === 'first') {
      // An active holder without a reservation (a store upgraded mid-flight): still not taken over.
      const holder = this.stmt.activeHolder.get(cert.name, cert.role, now.getTime()) as
        { serial: string; lineage: string | null } | undefined;
      if (holder && (holder.lineage ?? holder.serial) !== cert.lineage)
        return { ok: false, reason: 'NAME_TAKEN', heldBy: holder.serial, active: true };
    }
    return null;
  }
}
