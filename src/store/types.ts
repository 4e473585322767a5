/**
 * The durable store behind the actor runtime. Everything is scoped to a shard:
 * every key one call touches carries that shard's hash tag, so each call is one
 * atomic step on Redis, on Redis Cluster, and in `MemoryStore`.
 *
 * The store is deliberately ignorant of xstate: snapshots, history entries,
 * timer events, inbox events and outbox effects are opaque bytes that the
 * runtime encodes. What the store owns is ordering, versions, fencing and
 * acknowledgement: the parts that must be atomic.
 */
import type { FencedError } from "./errors.js";

/** `kind/id`, e.g. `job/1234`. Built and parsed by `src/runtime/actor-ref.ts`. */
export type ActorKey = string;

/** The proof of shard ownership that every commit presents. */
export interface Fence {
  owner: string;
  epoch: number;
}

export interface Lease {
  shard: number;
  owner: string;
  /** Strictly increases every time the shard changes hands. */
  epoch: number;
  expiresAtMs: number;
}

export interface StoredActor {
  version: number;
  snapshot: Buffer;
  /** The actor's constant fields stored beside the snapshot, if any (`CommitRecord.constants`). */
  constants: Buffer | null;
}

export interface TimerEntry {
  /** Unique per actor and timer name: arming the same key again replaces it. */
  timerKey: string;
  /** Unique per arming: a fire is acknowledged only if it is still this arming. */
  fireId: string;
  dueAtMs: number;
  payload: Buffer;
}

export interface InboxEntry {
  seq: number;
  eventId: string;
  payload: Buffer;
}

export interface OutboxEntry {
  seq: number;
  effectId: string;
  payload: Buffer;
}

/**
 * A change to one of the shard's indexes: ordered sets that a kind derives
 * from its actors' states (a site's queue of activated jobs, say), written
 * with the transition that changes them, so an index never disagrees with
 * the actors. `score: null` removes the member.
 */
export interface IndexOp {
  key: string;
  member: string;
  score: number | null;
}

/** One member of an index. */
export interface IndexEntry {
  member: string;
  score: number;
}

/** A shard's indexes and projected counters as its actors' states say, under the rules of `version`. */
export interface IndexRebuild {
  version: number;
  indexes: Map<string, IndexEntry[]>;
  counters: Map<string, number>;
  /** Counters whose names start with one of these are the rules': they are reset to `counters`. */
  counterPrefixes: string[];
}

/** What consumed the event being committed, removed in the same atomic step. */
export type DeliveryAck =
  | { kind: "inbox"; eventId: string }
  | { kind: "timer"; timerKey: string; fireId: string };

/**
 * One actor's transition, or a chain of several events of one actor that the
 * runtime folded into one write, committed atomically with everything it
 * caused. Its buffers pass to the store.
 */
export interface CommitRecord {
  actor: ActorKey;
  /** 0 for an actor that does not exist yet. */
  expectedVersion: number;
  /** The new snapshot, or null to leave state and version as they are (every event refused). */
  snapshot: Buffer | null;
  /**
   * Instead of `snapshot` and `constants` (both then null), for a store that
   * `encodesLazily`: the new snapshot and all its constants, encoded when the
   * store is first asked for them. The state it encodes is immutable.
   */
  deferred?: DeferredSnapshot | null;
  /**
   * Bytes stored beside the snapshot that change rarely (an actor's constant
   * fields), written only with a snapshot; null keeps the stored ones.
   */
  constants: Buffer | null;
  /** With a snapshot, the version becomes `expectedVersion + versionStep`: one per applied event. */
  versionStep: number;
  /**
   * One entry per event of the record, oldest first; at least one. Always
   * bytes, even for a store that `encodesLazily`: history outlives the
   * transition, and held as objects it is what a long run's heap fills with.
   * With a `historyCap` of 0 the entries are empty: the store counts them
   * (a record of several events is all or nothing) and keeps none.
   */
  history: Buffer[];
  /** The most entries the actor's history keeps, oldest dropped first; 0 keeps none. */
  historyCap: number;
  timerAdds: TimerEntry[];
  timerCancels: string[];
  outbox: { effectId: string; payload: Buffer }[];
  /** Instead of `outbox` (then empty), for a store that `encodesLazily`: each payload's encoder. */
  deferredOutbox?: { effectId: string; encode: Encoder }[] | null;
  /**
   * Additions to the shard's counters, applied with the transition (exactly
   * once with it): e.g. a job moving from `activated` to `sent` at a site.
   * A counter that comes back to 0 is no longer read (`readCounters`).
   */
  counters: CounterDelta[];
  /**
   * Changes to the shard's indexes, applied with the record, in order. The
   * runtime nets them per key and member, so a key and member appear once.
   */
  index: IndexOp[];
  /** Event ids remembered for the dedupe window; a second commit with one of them is a duplicate. */
  dedupeIds: string[];
  /** The deliveries the record's events consumed. */
  acks: DeliveryAck[];
}

/** Bytes encoded on demand, from values that do not change (`Store.encodesLazily`). */
export type Encoder = () => Buffer;

/** A snapshot and its constant fields, encoded on demand (`CommitRecord.deferred`). */
export type DeferredSnapshot = () => { snapshot: Buffer; constants: Buffer | null };

/** A counter is a name (`kind:scope:field` by convention) and an integer. */
export interface CounterDelta {
  name: string;
  delta: number;
}

/**
 * - `ok`: applied.
 * - `duplicate`: the dedupe id was seen; only the ack was applied.
 * - `conflict`: the stored version was not `expectedVersion`; nothing applied.
 * - `stale`: the acknowledged delivery is gone (timer cancelled or re-armed, inbox entry consumed); nothing applied.
 * - `split`: a record of several events (more than one history entry) of which
 *   one is a duplicate or acknowledges a stale delivery; nothing applied, not
 *   even the acks. The runtime commits those events one at a time instead.
 *
 * For a record of one event, `duplicate` still applies its acks (so a
 * redelivered event is consumed, not delivered forever) and nothing else.
 */
export type CommitOutcome = "ok" | "duplicate" | "conflict" | "stale" | "split";

export interface CommitOptions {
  nowMs: number;
  /** How long event ids are remembered for dedupe. */
  dedupeWindowMs: number;
  /**
   * Forget the ids seen before the window now (default true). A store may
   * keep ids longer than the window until a commit trims: a node asks now
   * and then rather than in every commit, since a trim costs a command.
   */
  trimSeen?: boolean;
}

/** One shard's records for `Store.commitMany`. */
export interface CommitBatch {
  shard: number;
  fence: Fence;
  records: CommitRecord[];
  options: CommitOptions;
}

/** A batch's outcomes, or the fencing error that refused the whole batch (and nothing else). */
export type CommitBatchResult = CommitOutcome[] | FencedError;

export interface Store {
  /** Short name for logs and metrics: `memory`, `redis`, `redis-cluster`. */
  readonly name: string;
  /**
   * The store lives in this process and takes `CommitRecord.deferred` and
   * `deferredOutbox`: a snapshot or effect is encoded only if it is read (the runtime keeps its actors in
   * memory and delivers effects itself, so most never are). Absent: every
   * commit carries its bytes.
   */
  readonly encodesLazily?: boolean;

  // Leases and membership.
  /** Takes the shard if it is free, expired, or already ours (then renews it). Returns null if another node holds it. */
  acquireLease(shard: number, owner: string, ttlMs: number, nowMs: number): Promise<Lease | null>;
  /** Extends our lease; null if it is no longer ours under this epoch. */
  renewLease(shard: number, fence: Fence, ttlMs: number, nowMs: number): Promise<Lease | null>;
  /** Gives the shard up at once so another node need not wait for expiry; a no-op if it is not ours. */
  releaseLease(shard: number, fence: Fence): Promise<void>;
  readLease(shard: number): Promise<Lease | null>;
  /** Announces a live node until `nowMs + ttlMs`; returns the nodes alive at `nowMs`, sorted. */
  heartbeatNode(nodeId: string, ttlMs: number, nowMs: number): Promise<string[]>;
  removeNode(nodeId: string): Promise<void>;

  // Actors.
  /** Atomic per record; the fence is checked once for the whole batch and a mismatch throws `FencedError`. */
  commit(
    shard: number,
    fence: Fence,
    records: CommitRecord[],
    options: CommitOptions,
  ): Promise<CommitOutcome[]>;
  /**
   * Batches of several shards in as few calls as the store can (one, on one
   * Redis): each batch as `commit` would apply it, a fenced one refused
   * alone, its `FencedError` in its place among the results.
   */
  commitMany(batches: CommitBatch[]): Promise<CommitBatchResult[]>;
  loadActors(shard: number, actors: ActorKey[]): Promise<(StoredActor | null)[]>;
  /** Oldest first, at most `limit` of the newest entries. */
  readHistory(shard: number, actor: ActorKey, limit: number): Promise<Buffer[]>;
  /** Actor keys of a shard in a stable order, `limit` at a time from `cursor` ("0" to start; "0" back at the end). */
  scanActors(shard: number, cursor: string, limit: number): Promise<{ cursor: string; actors: ActorKey[] }>;
  /**
   * Writes a whole snapshot outside the runtime: for restores and repair tools.
   * Fenced like a commit. Constants stored beside the old snapshot are dropped.
   */
  importActor(shard: number, fence: Fence, actor: ActorKey, version: number, snapshot: Buffer): Promise<void>;

  /** Every counter of the shard that is not 0. Summed over the shards, a counter's value is exact. */
  readCounters(shard: number): Promise<Map<string, number>>;

  // Indexes: what commits wrote with `CommitRecord.index`.
  /** Members of one of a shard's indexes, lowest score first (then by member), `limit` from `offset`. */
  readIndex(shard: number, key: string, offset: number, limit: number): Promise<IndexEntry[]>;
  /** Every non-empty index of a shard, whole: what a node mirrors when it takes the shard over. */
  readIndexes(shard: number): Promise<Map<string, IndexEntry[]>>;
  /**
   * Replaces every index of the shard and the named counters with what the
   * actors' states say, and records the version of the rules that said it:
   * how a node brings a shard written by older code up to date. Fenced like
   * a commit. Counters whose names start with one of `counterPrefixes` and
   * are not in `counters` are removed.
   */
  rebuildIndexes(shard: number, fence: Fence, rebuild: IndexRebuild): Promise<void>;
  /** The version of the rules the shard's indexes were last rebuilt with; 0 when never. */
  readIndexVersion(shard: number): Promise<number>;

  // Deliveries into a shard.
  /** Durably queues events for a shard's owner; an event id already queued is ignored. Returns how many were new. */
  appendInbox(shard: number, entries: { eventId: string; payload: Buffer }[]): Promise<number>;
  readInbox(shard: number, afterSeq: number, limit: number): Promise<InboxEntry[]>;
  /** Calls `listener(shard)` whenever events are appended to a shard's inbox, on any node. Resolves once listening. */
  subscribeInbox(listener: (shard: number) => void): Promise<() => Promise<void>>;

  // Timers.
  dueTimers(shard: number, nowMs: number, limit: number): Promise<TimerEntry[]>;
  nextTimerDueMs(shard: number): Promise<number | null>;

  // Outbox.
  readOutbox(shard: number, limit: number): Promise<OutboxEntry[]>;
  /** Removes delivered effects, of any number of shards at once (one round trip where the store can). */
  ackOutbox(effectIdsByShard: ReadonlyMap<number, readonly string[]>): Promise<void>;

  close(): Promise<void>;
}
