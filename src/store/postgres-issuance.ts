/**
 * Issuance on the PostgreSQL store, committed in groups. Every issuance ends by appending to the
 * audit chain, and the chain's head row is one lock that every replica takes: with one
 * transaction per certificate, each holds that lock through its own commit's WAL flush, so
 * commits can never share a flush and the whole CA issues one certificate per fsync. Issuances
 * that wait together in this process share one transaction instead (as the SQLite store's do),
 * so one flush and one turn on the head row serve the group.
 *
 * A refusal in a group must record nothing, as if it had its own transaction: each write a
 * check makes before it can still refuse (the name's first reservation, the renewed
 * certificate's supersededBy) is undone by the item itself on its still-locked rows.
 */
import { GatehouseError } from '../errors/errors.js';
import type { PgDb, Row, Tx } from './postgres-db.js';
import type { AuditInput } from './store-audit.js';
import type { CertRecord, IssuanceCommit, IssuanceOutcome, NameClaim } from './store-certificates.js';

/** At most this many issuances per transaction, and this many transactions at once per process. */
const MAX_GROUP = 64;
const MAX_IN_FLIGHT = 2;

interface Pending {
  commit: IssuanceCommit;
  resolve(outcome: IssuanceOutcome): void;
  reject(err: unknown): void;
}

type Undo = [sql: string, params: unknown[]];

// Named statements are parsed once per pooled connection, not once per issuance.
const SQL = {
  lockName: { name: 'gh_lock_name', text: 'SELECT * FROM names WHERE role = $1 AND name = $2 FOR UPDATE' },
  insertName: {
    name: 'gh_insert_name',
    text: 'INSERT INTO names (role, name, spiffe_id, lineage, reserved_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (role, name) DO NOTHING',
  },
  moveName: {
    name: 'gh_move_name',
    // A reservation keeps its date while its lineage holds it; a replacement starts a new one.
    text: 'UPDATE names SET spiffe_id = $3, lineage = $4, reserved_at = CASE WHEN lineage = $4 THEN reserved_at ELSE $5 END WHERE role = $1 AND name = $2',
  },
  supersede: {
    name: 'gh_supersede',
    text: 'UPDATE certificates SET superseded_by = $2, superseded_at = $3 WHERE serial = $1 AND superseded_by IS NULL AND revoked_at IS NULL',
  },
  consumeToken: {
    name: 'gh_consume_token',
    text: 'UPDATE tokens SET uses = uses + 1 WHERE id = $1 AND uses < max_uses AND revoked_at IS NULL AND expires_at > $2',
  },
  insertCert: {
    name: 'gh_insert_cert',
    text: `INSERT INTO certificates (serial, fingerprint, name, role, spiffe_id, not_before, not_after, issued_at, cert_pem, token_id, renewed_from, lineage)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
  },
};

/** Orders a group by name: replicas' groups then lock the names they share in the same order, the usual cure for deadlocks. */
function byName(a: Pending, b: Pending): number {
  const x = a.commit.cert,
    y = b.commit.cert;
  return x.role < y.role ? -1 : x.role > y.role ? 1 : x.name < y.name ? -1 : x.name > y.name ? 1 : 0;
}

export class PgIssuanceQueue {
  private pending: Pending[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(private readonly db: PgDb) {}

  submit(commit: IssuanceCommit): Promise<IssuanceOutcome> {
    return new Promise((resolve, reject) => {
      this.pending.push({ commit, resolve, reject });
      this.schedule();
    });
  }

  /** Starts a group on the next turn of the event loop, so that issuances arriving in this one join it. */
  private schedule(): void {
    if (this.scheduled || this.inFlight >= MAX_IN_FLIGHT || this.pending.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.inFlight >= MAX_IN_FLIGHT || this.pending.length === 0) return;
      const group = this.pending.splice(0, MAX_GROUP);
      this.inFlight++;
      void this.commitGroup(group).finally(() => {
        this.inFlight--;
        this.schedule();
      });
      this.schedule();
    });
  }

  private async commitGroup(group: Pending[]): Promise<void> {
    let outcomes: Map<Pending, IssuanceOutcome>;
    try {
      outcomes = await this.db.transaction(
        async (tx) => {
          const decided = new Map<Pending, IssuanceOutcome>();
          const events: AuditInput[] = [];
          for (const item of [...group].sort(byName)) {
            const outcome = await commitOne(tx, item.commit);
            decided.set(item, outcome);
            if (outcome.ok) events.push(...item.commit.audit);
          }
          // The head row is the last lock taken, so no transaction waits for it while holding one this group wants.
          await this.db.appendAudit(tx, events);
          return decided;
        },
        { doing: 'issuance' },
      );
    } catch (err) {
      const unavailable = err instanceof GatehouseError && err.code === 'GH_STORE_UNAVAILABLE';
      if (group.length > 1 && !unavailable) {
        // One issuance's failure (a duplicate serial, say) must not fail the others: each alone.
        for (const item of group) await this.commitGroup([item]);
        return;
      }
      for (const item of group) item.reject(err);
      return;
    }
    for (const item of group) item.resolve(outcomes.get(item)!);
  }
}

/** Checks and records one issuance inside the group's transaction; a refusal first undoes what this item wrote. */
async function commitOne(
  tx: Tx,
  { cert, consumeTokenId, now, nameClaim = 'replace', renews }: IssuanceCommit,
): Promise<IssuanceOutcome> {
  const undo: Undo[] = [];
  const refuse = async (outcome: IssuanceOutcome): Promise<IssuanceOutcome> => {
    for (const [sql, params] of undo.reverse()) await tx.query(sql, params);
    return outcome;
  };
  const reserved = await lockName(tx, cert, now);
  if (!reserved) undo.push(['DELETE FROM names WHERE role = $1 AND name = $2', [cert.role, cert.name]]);
  const nameRefusal = await nameClaimRefusal(tx, cert, nameClaim, reserved, now);
  if (nameRefusal) return refuse(nameRefusal);
  if (renews !== undefined) {
    // The conditional UPDATE locks the renewed row: of two renewals of one certificate, the
    // second waits, re-reads it and finds the first's supersededBy.
    const marked = await tx.query({ ...SQL.supersede, values: [renews, cert.serial, cert.issuedAt.getTime()] });
    if (marked.rowCount !== 1) {
      const target = (await tx.query('SELECT superseded_by FROM certificates WHERE serial = $1', [renews])).rows[0] as
        Row | undefined;
      return refuse({
        ok: false,
        reason: 'NOT_LINEAGE_HEAD',
        supersededBy: (target?.superseded_by as string | null | undefined) ?? null,
      });
    }
    undo.push(['UPDATE certificates SET superseded_by = NULL, superseded_at = NULL WHERE serial = $1', [renews]]);
  }
  if (consumeTokenId !== undefined) {
    // The conditional UPDATE is the race arbiter: a concurrent one waits for the row and
    // re-checks its condition on the committed uses, so of N enrollments exactly one wins.
    const consumed = await tx.query({ ...SQL.consumeToken, values: [consumeTokenId, now.getTime()] });
    if (consumed.rowCount !== 1) return refuse(await tokenRefusal(tx, consumeTokenId, now));
  }
  await tx.query({
    ...SQL.insertCert,
    values: [
      cert.serial,
      cert.fingerprint,
      cert.name,
      cert.role,
      cert.spiffeId,
      cert.notBefore.getTime(),
      cert.notAfter.getTime(),
      cert.issuedAt.getTime(),
      cert.certPem,
      cert.tokenId,
      cert.renewedFrom,
      cert.lineage,
    ],
  });
  if (reserved && (reserved.lineage !== cert.lineage || reserved.spiffe_id !== cert.spiffeId)) {
    await tx.query({ ...SQL.moveName, values: [cert.role, cert.name, cert.spiffeId, cert.lineage, now.getTime()] });
  }
  return { ok: true };
}

/**
 * Locks the name's reservation row until commit, so every issuance of one name, on every
 * replica, takes turns from here on. Returns the reservation held before, or null when there
 * was none and this issuance inserted it.
 */
async function lockName(tx: Tx, cert: CertRecord, now: Date): Promise<Row | null> {
  for (;;) {
    // A renewal's name is reserved already: one statement. A new name: a second one inserts it.
    const held = (await tx.query({ ...SQL.lockName, values: [cert.role, cert.name] })).rows[0] as Row | undefined;
    if (held) return held;
    const inserted = await tx.query({
      ...SQL.insertName,
      values: [cert.role, cert.name, cert.spiffeId, cert.lineage, now.getTime()],
    });
    if (inserted.rowCount === 1) return null;
    // Another transaction inserted it between the two statements and has committed: lock that one.
  }
}

/** Why `cert` may not take its name under `claim`, or null (store-certificates.ts NameClaim). */
async function nameClaimRefusal(
  tx: Tx,
  cert: CertRecord,
  claim: NameClaim,
  reserved: Row | null,
  now: Date,
): Promise<IssuanceOutcome | null> {
  if (claim === 'replace') return null;
  if (reserved && reserved.lineage !== cert.lineage) {
    const head = (
      await tx.query(
        'SELECT serial, revoked_at, not_after FROM certificates WHERE lineage = $1 ORDER BY issued_at DESC, seq DESC LIMIT 1',
        [reserved.lineage],
      )
    ).rows[0] as Row | undefined;
    const active = head !== undefined && head.revoked_at === null && Number(head.not_after) > now.getTime();
    return {
      ok: false,
      reason: 'NAME_TAKEN',
      heldBy: (head?.serial as string | undefined) ?? (reserved.lineage as string),
      active,
    };
  }
  if (claim === 'first') {
    // An active holder without a reservation (one released while its certificate lives): still not taken over.
    const holder = (
      await tx.query(
        'SELECT serial, lineage FROM certificates WHERE name = $1 AND role = $2 AND revoked_at IS NULL AND not_after > $3 ORDER BY issued_at DESC, serial LIMIT 1',
        [cert.name, cert.role, now.getTime()],
      )
    ).rows[0] as Row | undefined;
    if (holder && holder.lineage !== cert.lineage)
      return { ok: false, reason: 'NAME_TAKEN', heldBy: holder.serial as string, active: true };
  }
  return null;
}

async function tokenRefusal(tx: Tx, tokenId: string, now: Date): Promise<IssuanceOutcome> {
  const row = (await tx.query('SELECT revoked_at, expires_at FROM tokens WHERE id = $1', [tokenId])).rows[0] as
    Row | undefined;
  if (!row) return { ok: false, reason: 'TOKEN_UNKNOWN' };
  if (row.revoked_at !== null) return { ok: false, reason: 'TOKEN_REVOKED' };
  if (Number(row.expires_at) <= now.getTime()) return { ok: false, reason: 'TOKEN_EXPIRED' };
  return { ok: false, reason: 'TOKEN_USED' };
}
