/**
 * The embedded store: the same semantics as `RedisStore` in one process, for
 * `panda up`, simulations and fast tests. Every method mutates synchronously
 * inside one microtask, which is what makes each call atomic here.
 * Buffers handed to `commit` are kept as they are (a commit hands them
 * over: the runtime encodes them for the commit and never touches them
 * again; copying each cost a simulation a tenth of its time in allocation
 * and GC); everything read is a copy, so readers cannot alter stored state.
 */
import { FencedError, StoreError } from "./errors.js";
import {
  applyIndexOps,
  effectBytes,
  encoded,
  exportShard,
  type MemoryStoreState,
  newShardState,
  restoreShard,
  type ShardState,
  sortedEntries,
} from "./memory-shard.js";
import type {
  ActorKey,
  CommitBatch,
  CommitBatchResult,
  CommitOptions,
  CommitOutcome,
  CommitRecord,
  Fence,
  InboxEntry,
  IndexEntry,
  IndexRebuild,
  Lease,
  OutboxEntry,
  Store,
  StoredActor,
  TimerEntry,
} from "./types.js";

export type { MemoryStoreState } from "./memory-shard.js";

export class MemoryStore implements Store {
  readonly name = "memory";
  /** Snapshots are encoded when read, not at every commit: most never are (`CommitRecord.deferred`). */
  readonly encodesLazily = true;
  private readonly shards = new Map<number, ShardState>();
  private readonly nodes = new Map<string, number>();
  private readonly inboxListeners = new Set<(shard: number) => void>();
  private closed = false;

  private shard(shard: number): ShardState {
    if (this.closed) throw new StoreError("UNAVAILABLE", "store is closed");
    if (!Number.isInteger(shard) || shard < 0) throw new StoreError("BAD_ARGUMENT", `bad shard ${shard}`);
    let state = this.shards.get(shard);
    if (!state) {
      state = newShardState();
      this.shards.set(shard, state);
    }
    return state;
  }

  private checkFence(shard: number, state: ShardState, fence: Fence): void {
    const lease = state.lease;
    if (!lease || lease.owner !== fence.owner || lease.epoch !== fence.epoch) {
      throw new FencedError(shard, fence.owner, fence.epoch);
    }
  }

  async acquireLease(shard: number, owner: string, ttlMs: number, nowMs: number): Promise<Lease | null> {
    const state = this.shard(shard);
    const current = state.lease;
    if (current && current.owner !== owner && current.expiresAtMs > nowMs) return null;
    const epoch =
      current && current.owner === owner && current.expiresAtMs > nowMs
        ? current.epoch
        : (current?.epoch ?? 0) + 1;
    state.lease = { shard, owner, epoch, expiresAtMs: nowMs + ttlMs };
    return { ...state.lease };
  }

  async renewLease(shard: number, fence: Fence, ttlMs: number, nowMs: number): Promise<Lease | null> {
    const state = this.shard(shard);
    const lease = state.lease;
    if (!lease || lease.owner !== fence.owner || lease.epoch !== fence.epoch) return null;
    lease.expiresAtMs = nowMs + ttlMs;
    return { ...lease };
  }

  async releaseLease(shard: number, fence: Fence): Promise<void> {
    const state = this.shard(shard);
    const lease = state.lease;
    // Expire rather than delete, so the next owner's epoch still increases.
    if (lease && lease.owner === fence.owner && lease.epoch === fence.epoch) lease.expiresAtMs = 0;
  }

  async readLease(shard: number): Promise<Lease | null> {
    const lease = this.shard(shard).lease;
    return lease ? { ...lease } : null;
  }

  async heartbeatNode(nodeId: string, ttlMs: number, nowMs: number): Promise<string[]> {
    this.nodes.set(nodeId, nowMs + ttlMs);
    for (const [node, expiresAtMs] of this.nodes) if (expiresAtMs <= nowMs) this.nodes.delete(node);
    return [...this.nodes.keys()].sort();
  }

  async removeNode(nodeId: string): Promise<void> {
    this.nodes.delete(nodeId);
  }

  async commit(
    shard: number,
    fence: Fence,
    records: CommitRecord[],
    options: CommitOptions,
  ): Promise<CommitOutcome[]> {
    return this.commitBatch({ shard, fence, records, options });
  }

  async commitMany(batches: CommitBatch[]): Promise<CommitBatchResult[]> {
    return batches.map((batch) => {
      try {
        return this.commitBatch(batch);
      } catch (err) {
        if (err instanceof FencedError) return err;
        throw err;
      }
    });
  }

  private commitBatch({ shard, fence, records, options }: CommitBatch): CommitOutcome[] {
    const state = this.shard(shard);
    this.checkFence(shard, state, fence);
    if (options.trimSeen !== false) state.seen.trim(options.nowMs - options.dedupeWindowMs);
    return records.map((record) => this.applyRecord(state, record, options.nowMs));
  }

  private applyRecord(state: ShardState, record: CommitRecord, nowMs: number): CommitOutcome {
    const current = state.actors.get(record.actor);
    if ((current?.version ?? 0) !== record.expectedVersion) return "conflict";
    // A record of several events is all or nothing: the runtime commits them one by one instead.
    const entries = record.history;
    const multi = entries.length > 1;
    if (hasStaleAck(state, record)) return multi ? "split" : "stale";
    const duplicate = hasDuplicateId(state, record.dedupeIds);
    if (duplicate && multi) return "split";
    // A duplicate still consumes its delivery, so it is not redelivered forever.
    for (const ack of record.acks) {
      if (ack.kind === "timer") state.timers.delete(ack.timerKey);
      else state.inbox.delete(ack.eventId);
    }
    if (duplicate) return "duplicate";
    for (const id of record.dedupeIds) state.seen.add(id, nowMs);
    if (record.deferred) {
      state.actors.set(record.actor, {
        version: record.expectedVersion + record.versionStep,
        snapshot: null,
        constants: null,
        deferred: record.deferred,
      });
    } else if (record.snapshot) {
      state.actors.set(record.actor, {
        version: record.expectedVersion + record.versionStep,
        snapshot: record.snapshot,
        constants: record.constants ?? (current ? encoded(current).constants : null),
        deferred: null,
      });
    }
    this.keepHistory(state, record);
    for (const timerKey of record.timerCancels) state.timers.delete(timerKey);
    for (const timer of record.timerAdds) state.timers.set({ ...timer });
    for (const { name, delta } of record.counters) {
      const value = (state.counters.get(name) ?? 0) + delta;
      if (value === 0) state.counters.delete(name);
      else state.counters.set(name, value);
    }
    applyIndexOps(state.indexes, record.index);
    for (const effect of record.outbox) {
      if (state.outbox.has(effect.effectId)) continue;
      state.outbox.set(effect.effectId, {
        seq: ++state.outboxSeq,
        effectId: effect.effectId,
        payload: effect.payload,
        encode: null,
      });
    }
    for (const effect of record.deferredOutbox ?? []) {
      if (state.outbox.has(effect.effectId)) continue;
      state.outbox.set(effect.effectId, {
        seq: ++state.outboxSeq,
        effectId: effect.effectId,
        payload: null,
        encode: effect.encode,
      });
    }
    return "ok";
  }

  private keepHistory(state: ShardState, { actor, history: entries, historyCap }: CommitRecord): void {
    if (historyCap <= 0) {
      state.history.delete(actor);
      return;
    }
    let history = state.history.get(actor);
    if (!history) {
      history = [];
      state.history.set(actor, history);
    }
    history.push(...entries);
    if (history.length > historyCap) history.splice(0, history.length - historyCap);
  }

  async loadActors(shard: number, actors: ActorKey[]): Promise<(StoredActor | null)[]> {
    const state = this.shard(shard);
    return actors.map((key) => {
      const held = state.actors.get(key);
      if (!held) return null;
      const stored = encoded(held);
      const constants = stored.constants ? Buffer.from(stored.constants) : null;
      return { version: stored.version, snapshot: Buffer.from(stored.snapshot), constants };
    });
  }

  /**
   * Drops actors with their history: a simulation's once nothing will
   * address them again, so the store's memory follows what is live. Not
   * part of `Store`; the caller makes sure no commit for them is in flight.
   */
  forget(shard: number, actors: readonly ActorKey[]): void {
    const state = this.shard(shard);
    for (const actor of actors) {
      state.actors.delete(actor);
      state.history.delete(actor);
    }
  }

  async readHistory(shard: number, actor: ActorKey, limit: number): Promise<Buffer[]> {
    const history = this.shard(shard).history.get(actor) ?? [];
    const start = Math.max(0, history.length - limit);
    return history.slice(start).map((entry) => Buffer.from(entry));
  }

  async scanActors(
    shard: number,
    cursor: string,
    limit: number,
  ): Promise<{ cursor: string; actors: ActorKey[] }> {
    const keys = [...this.shard(shard).actors.keys()].sort();
    const start = cursor === "0" ? 0 : Number(cursor);
    const actors = keys.slice(start, start + limit);
    const next = start + limit >= keys.length ? "0" : String(start + limit);
    return { cursor: next, actors };
  }

  async importActor(
    shard: number,
    fence: Fence,
    actor: ActorKey,
    version: number,
    snapshot: Buffer,
  ): Promise<void> {
    const state = this.shard(shard);
    this.checkFence(shard, state, fence);
    state.actors.set(actor, { version, snapshot: Buffer.from(snapshot), constants: null, deferred: null });
  }

  async appendInbox(shard: number, entries: { eventId: string; payload: Buffer }[]): Promise<number> {
    const state = this.shard(shard);
    let added = 0;
    for (const entry of entries) {
      if (state.inbox.has(entry.eventId)) continue;
      state.inbox.set(entry.eventId, {
        seq: ++state.inboxSeq,
        eventId: entry.eventId,
        payload: Buffer.from(entry.payload),
      });
      added++;
    }
    if (added > 0) {
      // Listeners run after the caller's await, as a pub/sub message would.
      queueMicrotask(() => {
        for (const listener of this.inboxListeners) listener(shard);
      });
    }
    return added;
  }

  async readInbox(shard: number, afterSeq: number, limit: number): Promise<InboxEntry[]> {
    const entries = [...this.shard(shard).inbox.values()].filter((e) => e.seq > afterSeq);
    entries.sort((a, b) => a.seq - b.seq);
    return entries.slice(0, limit).map((e) => ({ ...e, payload: Buffer.from(e.payload) }));
  }

  async subscribeInbox(listener: (shard: number) => void): Promise<() => Promise<void>> {
    this.inboxListeners.add(listener);
    return async () => {
      this.inboxListeners.delete(listener);
    };
  }

  async dueTimers(shard: number, nowMs: number, limit: number): Promise<TimerEntry[]> {
    return this.shard(shard)
      .timers.due(nowMs, limit)
      .map((t) => ({ ...t, payload: Buffer.from(t.payload) }));
  }

  async nextTimerDueMs(shard: number): Promise<number | null> {
    return this.shard(shard).timers.nextDueMs();
  }

  async readCounters(shard: number): Promise<Map<string, number>> {
    return new Map(this.shard(shard).counters);
  }

  async readIndex(shard: number, key: string, offset: number, limit: number): Promise<IndexEntry[]> {
    const members = this.shard(shard).indexes.get(key);
    if (!members) return [];
    return sortedEntries(members).slice(offset, offset + limit);
  }

  async readIndexes(shard: number): Promise<Map<string, IndexEntry[]>> {
    const all = new Map<string, IndexEntry[]>();
    for (const [key, members] of this.shard(shard).indexes) all.set(key, sortedEntries(members));
    return all;
  }

  async rebuildIndexes(shard: number, fence: Fence, rebuild: IndexRebuild): Promise<void> {
    const state = this.shard(shard);
    this.checkFence(shard, state, fence);
    state.indexes.clear();
    for (const [key, entries] of rebuild.indexes) {
      if (entries.length === 0) continue;
      state.indexes.set(key, new Map(entries.map((e) => [e.member, e.score])));
    }
    for (const name of [...state.counters.keys()]) {
      if (rebuild.counterPrefixes.some((prefix) => name.startsWith(prefix))) state.counters.delete(name);
    }
    for (const [name, value] of rebuild.counters) {
      if (value === 0) state.counters.delete(name);
      else state.counters.set(name, value);
    }
    state.indexVersion = rebuild.version;
  }

  async readIndexVersion(shard: number): Promise<number> {
    return this.shard(shard).indexVersion;
  }

  async readOutbox(shard: number, limit: number): Promise<OutboxEntry[]> {
    const entries = [...this.shard(shard).outbox.values()].sort((a, b) => a.seq - b.seq);
    return entries.slice(0, limit).map((e) => {
      const { seq, effectId, payload } = effectBytes(e);
      return { seq, effectId, payload: Buffer.from(payload) };
    });
  }

  async ackOutbox(effectIdsByShard: ReadonlyMap<number, readonly string[]>): Promise<void> {
    for (const [shard, effectIds] of effectIdsByShard) {
      const state = this.shard(shard);
      for (const id of effectIds) state.outbox.delete(id);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.inboxListeners.clear();
  }

  /**
   * Everything the store holds, by reference (a snapshot must be encoded
   * before the next call changes it). Listeners are not state.
   */
  exportState(): MemoryStoreState {
    return {
      nodes: [...this.nodes],
      shards: [...this.shards].map(([shard, state]) => exportShard(shard, state)),
    };
  }

  /** A store holding what `exportState` gave; the buffers are taken over, not copied. */
  static fromState(saved: MemoryStoreState): MemoryStore {
    const store = new MemoryStore();
    for (const [node, expiresAtMs] of saved.nodes) store.nodes.set(node, expiresAtMs);
    for (const s of saved.shards) {
      restoreShard(store.shard(s.shard), s);
    }
    return store;
  }
}

/** An acknowledged delivery the shard no longer holds: a timer fired or rearmed since, an inbox entry taken. */
function hasStaleAck(state: ShardState, record: CommitRecord): boolean {
  for (const ack of record.acks) {
    if (ack.kind === "timer") {
      if (state.timers.get(ack.timerKey)?.fireId !== ack.fireId) return true;
    } else if (!state.inbox.has(ack.eventId)) return true;
  }
  return false;
}

/**
 * A dedupe id seen before, or twice in the record. A record of a few ids is
 * checked pairwise, not with a Set: a simulation commits millions of them.
 */
function hasDuplicateId(state: ShardState, ids: readonly string[]): boolean {
  for (const id of ids) if (state.seen.has(id)) return true;
  if (ids.length > PAIRWISE_MAX_IDS) return new Set(ids).size !== ids.length;
  for (let i = 1; i < ids.length; i++) for (let j = 0; j < i; j++) if (ids[j] === ids[i]) return true;
  return false;
}

/** Up to this many ids, comparing every pair costs less than building a Set. */
const PAIRWISE_MAX_IDS = 8;
