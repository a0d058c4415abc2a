/**
 * `gatehouse audit verify`: walks the whole trail from one consistent snapshot, names the first
 * event where it breaks and says what happened there. The chain alone cannot see the newest
 * events being deleted (what remains still links), so the store also records its head on every
 * append, in the same transaction, and the walk must end exactly there.
 */
import { AuditChainWalker, type ChainBreak } from './audit-chain.js';
import type { Store } from './store.js';
import type { AuditHead, AuditRecord } from './store-audit.js';

export type AuditProblem =
  | 'modified'
  | 'deleted'
  | 'reordered'
  | 'inserted'
  | 'truncated'
  | 'head-missing'
  | 'head-mismatch'
  | 'empty'
  | 'anchor-mismatch';

export interface BrokenEvent {
  /** Sequence number of the first broken event; for a truncated trail, the first missing one; null when no event can be named. */
  seq: number | null;
  time: Date | null;
  type: string | null;
  problem: AuditProblem;
  reason: string;
}

export interface TrailReport {
  ok: boolean;
  count: number;
  /** The last event of the trail as read. */
  last: AuditHead | null;
  /** The head the store recorded with its last append. */
  recordedHead: AuditHead | null;
  broken: BrokenEvent | null;
}

const short = (hash: string) => `${hash.slice(0, 16)}…`;

export async function verifyAuditTrail(
  store: Store,
  options: { anchor?: AuditHead | null } = {},
): Promise<TrailReport> {
  const walker = new AuditChainWalker({ anchor: options.anchor ?? null });
  const { head } = await store.readAuditTrail((record) => walker.push(record));
  const last = walker.last ? { seq: walker.last.seq, hash: walker.last.hash } : null;
  const report = (broken: BrokenEvent | null): TrailReport => ({
    ok: broken === null,
    count: walker.count,
    last,
    recordedHead: head,
    broken,
  });
  if (walker.firstBreak) return report(await diagnoseBreak(store, walker.firstBreak));
  return report(await checkEnd(store, walker, head, options.anchor ?? null));
}

const at = (record: AuditRecord, problem: AuditProblem, reason: string): BrokenEvent => ({
  seq: record.seq,
  time: record.time,
  type: record.type,
  problem,
  reason,
});

async function findByHash(store: Store, hash: string): Promise<AuditRecord | null> {
  return (await store.listAudit({ hash, limit: 1 }))[0] ?? null;
}

async function diagnoseBreak(store: Store, broken: ChainBreak): Promise<BrokenEvent> {
  const { record } = broken;
  if (broken.kind === 'content')
    return at(record, 'modified', 'hash mismatch: event content changed (or the event was not written by Gatehouse)');
  if (broken.kind === 'anchor') {
    return at(
      record,
      'anchor-mismatch',
      `hash ${short(record.hash)} differs from the anchor ${short(broken.anchor.hash)}: the trail up to this event was rewritten with recomputed hashes`,
    );
  }
  const { previous } = broken;
  const mismatch = previous
    ? `previous-hash does not match event ${previous.seq}`
    : 'previous-hash is not the start of the chain, yet this is the first event';
  const named = await findByHash(store, record.prevHash);
  if (!named) {
    const gap =
      previous && record.seq !== previous.seq + 1
        ? `; sequence numbers jump from ${previous.seq} to ${record.seq}`
        : '';
    return at(
      record,
      'deleted',
      `${mismatch}: an event before it was deleted, or rewritten with a recomputed hash (its previous-hash names no event in the trail${gap})`,
    );
  }
  if (named.seq > record.seq)
    return at(
      record,
      'reordered',
      `${mismatch}: events were reordered (its previous-hash names event ${named.seq}, which now comes after it)`,
    );
  // The chain forks at `named`: this event was written right after it, so what sits between was not there then.
  const inserted = (await store.listAudit({ afterSeq: named.seq, limit: 1 }))[0] ?? record;
  const span = inserted.seq === record.seq - 1 ? `event ${inserted.seq}` : `events ${inserted.seq}–${record.seq - 1}`;
  return at(
    inserted,
    'inserted',
    `inserted: event ${record.seq}'s previous-hash names event ${named.seq}, so ${span} ${inserted.seq === record.seq - 1 ? 'was' : 'were'} not in the trail when event ${record.seq} was written`,
  );
}

async function checkEnd(
  store: Store,
  walker: AuditChainWalker,
  head: AuditHead | null,
  anchor: AuditHead | null,
): Promise<BrokenEvent | null> {
  const last = walker.last;
  if (!last) {
    if (head)
      return {
        seq: 1,
        time: null,
        type: null,
        problem: 'truncated',
        reason: `missing: the trail is empty, but the store recorded event ${head.seq} (hash ${short(head.hash)}) as its last: every event was deleted`,
      };
    return {
      seq: null,
      time: null,
      type: null,
      problem: 'empty',
      reason:
        'the trail is empty: `gatehouse ca init` always records events, so they were deleted (or this is not a CA database)',
    };
  }
  if (!head)
    return {
      seq: null,
      time: null,
      type: null,
      problem: 'head-missing',
      reason:
        'the store has no record of its last event (meta key audit:head), which every append writes: it was deleted, so deleted newest events would go unnoticed',
    };
  if (head.hash !== last.hash || head.seq !== last.seq) {
    const match = await findByHash(store, head.hash);
    if (match && match.seq < last.seq) {
      const first = (await store.listAudit({ afterSeq: match.seq, limit: 1 }))[0]!;
      const added = first.seq === last.seq ? `event ${first.seq} was` : `events ${first.seq}–${last.seq} were`;
      return at(
        first,
        'inserted',
        `inserted: the store recorded event ${match.seq} as its last, so ${added} added without going through Gatehouse`,
      );
    }
    if (match && match.seq === last.seq) {
      return at(
        match,
        'head-mismatch',
        `the last event's sequence number changed: the store recorded it as event ${head.seq}`,
      );
    }
    if (!match && head.seq > last.seq) {
      const n = head.seq - last.seq;
      return {
        seq: last.seq + 1,
        time: null,
        type: null,
        problem: 'truncated',
        reason: `missing: the store recorded event ${head.seq} (hash ${short(head.hash)}) as its last, but the trail ends at event ${last.seq}: the newest ${n === 1 ? 'event was' : `${n} events were`} deleted`,
      };
    }
    return {
      seq: head.seq,
      time: null,
      type: null,
      problem: 'head-mismatch',
      reason: `the recorded head (event ${head.seq}, hash ${short(head.hash)}) matches no event of the trail: events were rewritten with recomputed hashes, or the head record was edited`,
    };
  }
  if (anchor && !walker.anchorSeen) {
    return {
      seq: anchor.seq,
      time: null,
      type: null,
      problem: 'anchor-mismatch',
      reason: `event ${anchor.seq} from the anchor is not in the trail (it ends at event ${last.seq}): the trail was cut or renumbered`,
    };
  }
  return null;
}
