/**
 * A shard as the embedded store holds it: its maps, history as bytes, actors
 * and effects as bytes or, until first read, as the encoders the runtime
 * handed over (`encodesLazily`), the index and sorted-set rules Redis keeps, and the
 * plain-data form `DurableStore` snapshots. `MemoryStore` decides what calls
 * do to it.
 */
import { SeenIds } from "./seen-ids.js";
import { TimerSchedule } from "./timer-schedule.js";
import type {
  ActorKey,
  DeferredSnapshot,
  Encoder,
  InboxEntry,
  IndexEntry,
  IndexOp,
  Lease,
  OutboxEntry,
  StoredActor,
  TimerEntry,
} from "./types.js";

/** An actor as the store holds it: its bytes, or until first read the means to encode them. */
export interface HeldActor {
  version: number;
  snapshot: Buffer | null;
  constants: Buffer | null;
  deferred: DeferredSnapshot | null;
}

/** An effect as the store holds it: its payload, or until first read its encoder. */
export interface HeldEffect {
  seq: number;
  effectId: string;
  payload: Buffer | null;
  encode: Encoder | null;
}

export interface ShardState {
  lease: Lease | null;
  actors: Map<ActorKey, HeldActor>;
  history: Map<ActorKey, Buffer[]>;
  /** Indexed by due time: a wake-up reads the next due timers without scanning them all. */
  timers: TimerSchedule;
  inbox: Map<string, InboxEntry>;
  inboxSeq: number;
  outbox: Map<string, HeldEffect>;
  outboxSeq: number;
  seen: SeenIds;
  counters: Map<string, number>;
  /** Index name -> member -> score. */
  indexes: Map<string, Map<string, number>>;
  indexVersion: number;
}

/** A whole MemoryStore as plain data (what `DurableStore` snapshots): every Map as its entries. */
export interface MemoryStoreState {
  nodes: [string, number][];
  shards: {
    shard: number;
    lease: Lease | null;
    actors: [ActorKey, StoredActor][];
    history: [ActorKey, Buffer[]][];
    timers: TimerEntry[];
    inbox: InboxEntry[];
    inboxSeq: number;
    outbox: OutboxEntry[];
    outboxSeq: number;
    seen: [string, number][];
    counters: [string, number][];
    /** Absent in states saved before indexes existed. */
    indexes?: [string, [string, number][]][];
    indexVersion?: number;
  }[];
}

export function newShardState(): ShardState {
  return {
    lease: null,
    actors: new Map(),
    history: new Map(),
    timers: new TimerSchedule(),
    inbox: new Map(),
    inboxSeq: 0,
    outbox: new Map(),
    outboxSeq: 0,
    seen: new SeenIds(),
    counters: new Map(),
    indexes: new Map(),
    indexVersion: 0,
  };
}

/** One shard of `exportState`: its state by reference, deferred encodings done. */
export function exportShard(shard: number, state: ShardState): MemoryStoreState["shards"][number] {
  return {
    shard,
    lease: state.lease,
    actors: [...state.actors].map(([key, held]): [ActorKey, StoredActor] => [key, encoded(held)]),
    history: [...state.history],
    timers: [...state.timers.values()],
    inbox: [...state.inbox.values()],
    inboxSeq: state.inboxSeq,
    outbox: [...state.outbox.values()].map(effectBytes),
    outboxSeq: state.outboxSeq,
    seen: state.seen.entries(),
    counters: [...state.counters],
    indexes: [...state.indexes].map(([key, members]) => [key, [...members]]),
    indexVersion: state.indexVersion,
  };
}

/** Fills a new shard with what `exportShard` gave; the buffers are taken over, not copied. */
export function restoreShard(state: ShardState, s: MemoryStoreState["shards"][number]): void {
  state.lease = s.lease;
  for (const [key, actor] of s.actors) state.actors.set(key, { ...actor, deferred: null });
  for (const [key, entries] of s.history) state.history.set(key, entries);
  for (const timer of s.timers) state.timers.set(timer);
  for (const entry of [...s.inbox].sort((a, b) => a.seq - b.seq)) state.inbox.set(entry.eventId, entry);
  state.inboxSeq = s.inboxSeq;
  for (const entry of [...s.outbox].sort((a, b) => a.seq - b.seq))
    state.outbox.set(entry.effectId, { ...entry, encode: null });
  state.outboxSeq = s.outboxSeq;
  for (const [id, atMs] of [...s.seen].sort((a, b) => a[1] - b[1])) state.seen.add(id, atMs);
  for (const [name, value] of s.counters) state.counters.set(name, value);
  for (const [key, members] of s.indexes ?? []) state.indexes.set(key, new Map(members));
  state.indexVersion = s.indexVersion ?? 0;
}

/** The actor's bytes, encoding them now if that was deferred. */
export function encoded(held: HeldActor): StoredActor {
  if (held.deferred) {
    const { snapshot, constants } = held.deferred();
    held.snapshot = snapshot;
    held.constants = constants;
    held.deferred = null;
  }
  return { version: held.version, snapshot: held.snapshot!, constants: held.constants };
}

/** An outbox entry with its payload, encoding it now if that was deferred. */
export function effectBytes(held: HeldEffect): OutboxEntry {
  if (held.encode) {
    held.payload = held.encode();
    held.encode = null;
  }
  return { seq: held.seq, effectId: held.effectId, payload: held.payload! };
}

/** Applies index changes in order; an index left empty is dropped. */
export function applyIndexOps(indexes: Map<string, Map<string, number>>, ops: readonly IndexOp[]): void {
  for (const { key, member, score } of ops) {
    let members = indexes.get(key);
    if (score === null) {
      if (!members?.delete(member)) continue;
      if (members.size === 0) indexes.delete(key);
      continue;
    }
    if (!members) {
      members = new Map();
      indexes.set(key, members);
    }
    members.set(member, score);
  }
}

/** By score, then member: the order Redis keeps a sorted set in. */
export function sortedEntries(members: Map<string, number>): IndexEntry[] {
  const entries = [...members].map(([member, score]) => ({ member, score }));
  entries.sort((a, b) => a.score - b.score || (a.member < b.member ? -1 : a.member > b.member ? 1 : 0));
  return entries;
}
