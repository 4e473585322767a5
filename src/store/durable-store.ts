/**
 * The embedded store made durable on disk: `MemoryStore` and
 * `MemoryQueueIndex` keep the semantics (one implementation of them), and
 * every call that changes either is first appended to a log as one frame
 * (msgpack, length-prefixed, checksummed), then applied. Opening replays the
 * snapshot and the log; compaction writes the whole state as a new snapshot.
 *
 * Each change is written (one `write`, before it applies and before its
 * promise resolves) so a process killed at any point loses nothing it had
 * acknowledged: the operating system has the bytes. `fsync` runs every
 * `fsyncIntervalMs`, so a machine crash or power loss loses at most that
 * interval's changes. Because the in-memory stores are deterministic, a
 * replayed call does exactly what the original did (a fenced commit is
 * refused again), so the log needs no results, only the calls.
 *
 * Over 400 lines for a reason: half of it is the `Store` interface itself,
 * each call logged (`change`) or read from memory in a few lines; the rest is
 * one concern, the log's writing, syncing and compaction. The ops it logs
 * (`durable-ops.ts`) and its queue index (`durable-index.ts`) are apart.
 */
import { packWith } from "../protocol/codec.js";
import { type Logger, silentLogger } from "../runtime/logger.js";
import { DurableQueueIndex } from "./durable-index.js";
import { applyOp, type Op, packr, SNAPSHOT_FORMAT, type SnapshotPayload } from "./durable-ops.js";
import { FencedError, StoreError } from "./errors.js";
import { frameOf } from "./frames.js";
import { MemoryQueueIndex } from "./memory-queue-index.js";
import { MemoryStore } from "./memory-store.js";
import type { QueueIndex } from "./queue-index.js";
import { StateDirectory } from "./state-dir.js";
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

export interface DurableStoreOptions {
  /** The state directory (`.panda/state` for `panda up`). */
  dir: string;
  /** How often the log is fsynced; 0 fsyncs every change before it resolves. */
  fsyncIntervalMs?: number;
  /** The log is compacted into a snapshot past this size (and once it outgrows the last snapshot). */
  compactAfterBytes?: number;
  /**
   * The directory's lock says no other process has it open, so leases and
   * node heartbeats left in it belong to a process that is gone: drop them
   * at open, and this node takes the shards at once rather than after the
   * lease time. Only a test that reopens under a live owner says false.
   */
  reclaimLeases?: boolean;
  log?: Logger;
}

export const DEFAULT_FSYNC_INTERVAL_MS = 1000;
export const DEFAULT_COMPACT_AFTER_BYTES = 64 * 1024 * 1024;
/** The store and the index over one state directory: open it with `DurableStore.open`. */
export class DurableStore implements Store {
  readonly name = "durable";
  /** Every commit is logged to disk as bytes. */
  readonly encodesLazily = false;
  /** The queue index kept in the same log, so the two always agree after a restart. */
  readonly index: QueueIndex;
  private readonly files: StateDirectory;
  private readonly fsyncIntervalMs: number;
  private readonly compactAfterBytes: number;
  /** The log size the next compaction waits for: later than `compactAfterBytes` after a failed one. */
  private compactAtBytes: number;
  private readonly log: Logger;
  /** Nothing was stored in the directory before this open (no snapshot, no logged change). */
  fresh = false;
  private generation = 0;
  private snapshotBytes = 0;
  private unsynced = false;
  private syncTimer: NodeJS.Timeout | null = null;
  /** Set when the log could not be written: memory and disk might disagree from here, so nothing more is taken. */
  private broken: Error | null = null;
  private closed = false;

  private constructor(
    private readonly memory: MemoryStore,
    private readonly memoryIndex: MemoryQueueIndex,
    files: StateDirectory,
    options: DurableStoreOptions,
  ) {
    this.files = files;
    this.fsyncIntervalMs = options.fsyncIntervalMs ?? DEFAULT_FSYNC_INTERVAL_MS;
    this.compactAfterBytes = options.compactAfterBytes ?? DEFAULT_COMPACT_AFTER_BYTES;
    this.compactAtBytes = this.compactAfterBytes;
    this.log = options.log ?? silentLogger;
    this.index = new DurableQueueIndex(this);
  }

  /** Locks the directory, loads the snapshot, replays the log after it (cutting a torn tail), and starts appending. */
  static open(options: DurableStoreOptions): DurableStore {
    const files = new StateDirectory(options.dir);
    files.lock();
    try {
      return DurableStore.load(files, options);
    } catch (err) {
      files.closeLog();
      files.unlock();
      throw err;
    }
  }

  private static load(files: StateDirectory, options: DurableStoreOptions): DurableStore {
    const log = options.log ?? silentLogger;
    const snapshot = files.readSnapshot();
    let generation = 0;
    let memory = new MemoryStore();
    let memoryIndex = new MemoryQueueIndex();
    if (snapshot) {
      const saved = packr.unpack(snapshot) as SnapshotPayload;
      if (saved.format !== SNAPSHOT_FORMAT)
        throw new StoreError(
          "UNAVAILABLE",
          `${files.dir}: snapshot format ${saved.format}, this version reads ${SNAPSHOT_FORMAT}`,
        );
      generation = saved.generation;
      memory = MemoryStore.fromState(saved.store);
      memoryIndex = MemoryQueueIndex.fromState(saved.index);
    }
    const { payloads, tornBytes } = files.readLog(generation);
    for (const payload of payloads) {
      // A refusal (a fenced commit) was a refusal the first time too: it changed nothing then either.
      applyOp(memory, memoryIndex, packr.unpack(payload) as Op).catch(() => {});
    }
    if (tornBytes > 0)
      log.warn(
        { dir: files.dir, generation, tornBytes },
        "the state log ended in a torn record (a crash mid-write); it was cut off and kept beside the log",
      );
    files.openLog(generation);
    const store = new DurableStore(memory, memoryIndex, files, options);
    store.generation = generation;
    store.fresh = snapshot === null && payloads.length === 0;
    store.snapshotBytes = snapshot?.length ?? 0;
    if (options.reclaimLeases ?? true) store.reclaim();
    store.startSyncing();
    log.info(
      { dir: files.dir, generation, replayed: payloads.length, logBytes: files.logBytes },
      "durable store opened",
    );
    return store;
  }

  /** Drops the leases and heartbeats of the process that had the directory before. */
  private reclaim(): void {
    const state = this.memory.exportState();
    for (const { shard, lease } of state.shards)
      if (lease && lease.expiresAtMs > 0)
        void this.change(["releaseLease", shard, { owner: lease.owner, epoch: lease.epoch }]);
    for (const [node] of state.nodes) void this.change(["removeNode", node]);
  }

  private startSyncing(): void {
    if (this.fsyncIntervalMs === 0) return;
    this.syncTimer = setInterval(() => this.syncNow(), this.fsyncIntervalMs);
    this.syncTimer.unref();
  }

  private syncNow(): void {
    if (!this.unsynced || this.broken) return;
    try {
      this.files.sync();
      this.unsynced = false;
    } catch (err) {
      this.fail(err as Error);
    }
  }

  private fail(err: Error): void {
    this.broken ??= err;
    this.log.error(
      { err: err.message, dir: this.files.dir },
      "the state log cannot be written: the store stops taking changes",
    );
  }

  private usable(): void {
    if (this.closed) throw new StoreError("UNAVAILABLE", "store is closed");
    if (this.broken)
      throw new StoreError("UNAVAILABLE", `the state log cannot be written (${this.broken.message})`);
  }

  /**
   * Logs a change, then applies it. Both happen before this returns, with no
   * await between them, so the log's order is the order changes applied in.
   */
  change<T>(op: Op): Promise<T> {
    try {
      this.usable();
      const frame = frameOf(packWith(packr, op));
      try {
        this.files.append(frame);
      } catch (err) {
        this.fail(err as Error);
        throw new StoreError("UNAVAILABLE", `the state log cannot be written (${(err as Error).message})`);
      }
      this.unsynced = true;
      if (this.fsyncIntervalMs === 0) {
        this.syncNow();
        // Not applied, and refused: the frame may still be on disk, an outcome as open as a lost reply.
        this.usable();
      }
      const applied = applyOp(this.memory, this.memoryIndex, op) as Promise<T>;
      if (this.files.logBytes >= this.compactAtBytes && this.files.logBytes > this.snapshotBytes)
        this.compactNow();
      return applied;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Reads go straight to memory: it is what the log says. */
  private read(): MemoryStore {
    this.usable();
    return this.memory;
  }

  /**
   * Writes the whole state as the next generation's snapshot and starts its
   * (empty) log. Synchronous, so no change slips between the snapshot and the
   * new log; it stalls the process for as long as encoding the state takes.
   * A snapshot that cannot be written (disk full) costs nothing but the
   * compaction: the log goes on and the next try comes after as many bytes
   * again. False when it did not compact.
   */
  compactNow(): boolean {
    const next = this.generation + 1;
    const before = this.files.logBytes;
    let snapshotBytes: number;
    try {
      snapshotBytes = this.files.writeSnapshotTemp(
        packWith(packr, {
          format: SNAPSHOT_FORMAT,
          generation: next,
          store: this.memory.exportState(),
          index: this.memoryIndex.exportState(),
        } satisfies SnapshotPayload),
      );
    } catch (err) {
      this.compactAtBytes = before + this.compactAfterBytes;
      this.log.error(
        { err: (err as Error).message, dir: this.files.dir, logBytes: before },
        "state log not compacted: the snapshot could not be written; the log goes on",
      );
      return false;
    }
    try {
      // From the rename on, only the new generation's log may take changes: a failure in between
      // (the snapshot in place or not, no telling) stops the store rather than log where no one reads.
      this.files.installSnapshot();
      this.files.openLog(next);
    } catch (err) {
      this.fail(err as Error);
      return false;
    }
    this.generation = next;
    this.snapshotBytes = snapshotBytes;
    this.compactAtBytes = this.compactAfterBytes;
    this.unsynced = false;
    this.log.info(
      { dir: this.files.dir, generation: next, snapshotBytes, logBytes: before },
      "state log compacted into a snapshot",
    );
    return true;
  }

  async acquireLease(shard: number, owner: string, ttlMs: number, nowMs: number): Promise<Lease | null> {
    return this.change(["acquireLease", shard, owner, ttlMs, nowMs]);
  }

  async renewLease(shard: number, fence: Fence, ttlMs: number, nowMs: number): Promise<Lease | null> {
    return this.change(["renewLease", shard, fence, ttlMs, nowMs]);
  }

  async releaseLease(shard: number, fence: Fence): Promise<void> {
    return this.change(["releaseLease", shard, fence]);
  }

  async readLease(shard: number): Promise<Lease | null> {
    return this.read().readLease(shard);
  }

  async heartbeatNode(nodeId: string, ttlMs: number, nowMs: number): Promise<string[]> {
    return this.change(["heartbeatNode", nodeId, ttlMs, nowMs]);
  }

  async removeNode(nodeId: string): Promise<void> {
    return this.change(["removeNode", nodeId]);
  }

  async commit(
    shard: number,
    fence: Fence,
    records: CommitRecord[],
    options: CommitOptions,
  ): Promise<CommitOutcome[]> {
    return this.change(["commit", shard, fence, records, options]);
  }

  async commitMany(batches: CommitBatch[]): Promise<CommitBatchResult[]> {
    const results: CommitBatchResult[] = [];
    for (const { shard, fence, records, options } of batches) {
      try {
        results.push(await this.commit(shard, fence, records, options));
      } catch (err) {
        if (!(err instanceof FencedError)) throw err;
        results.push(err);
      }
    }
    return results;
  }

  async loadActors(shard: number, actors: ActorKey[]): Promise<(StoredActor | null)[]> {
    return this.read().loadActors(shard, actors);
  }

  async readHistory(shard: number, actor: ActorKey, limit: number): Promise<Buffer[]> {
    return this.read().readHistory(shard, actor, limit);
  }

  async scanActors(
    shard: number,
    cursor: string,
    limit: number,
  ): Promise<{ cursor: string; actors: ActorKey[] }> {
    return this.read().scanActors(shard, cursor, limit);
  }

  async importActor(
    shard: number,
    fence: Fence,
    actor: ActorKey,
    version: number,
    snapshot: Buffer,
  ): Promise<void> {
    return this.change(["importActor", shard, fence, actor, version, snapshot]);
  }

  async readCounters(shard: number): Promise<Map<string, number>> {
    return this.read().readCounters(shard);
  }

  async appendInbox(shard: number, entries: { eventId: string; payload: Buffer }[]): Promise<number> {
    return this.change(["appendInbox", shard, entries]);
  }

  async readInbox(shard: number, afterSeq: number, limit: number): Promise<InboxEntry[]> {
    return this.read().readInbox(shard, afterSeq, limit);
  }

  async subscribeInbox(listener: (shard: number) => void): Promise<() => Promise<void>> {
    return this.read().subscribeInbox(listener);
  }

  async dueTimers(shard: number, nowMs: number, limit: number): Promise<TimerEntry[]> {
    return this.read().dueTimers(shard, nowMs, limit);
  }

  async nextTimerDueMs(shard: number): Promise<number | null> {
    return this.read().nextTimerDueMs(shard);
  }

  async readOutbox(shard: number, limit: number): Promise<OutboxEntry[]> {
    return this.read().readOutbox(shard, limit);
  }

  async ackOutbox(effectIdsByShard: ReadonlyMap<number, readonly string[]>): Promise<void> {
    return this.change(["ackOutbox", [...effectIdsByShard]]);
  }

  async readIndex(shard: number, key: string, offset: number, limit: number): Promise<IndexEntry[]> {
    return this.read().readIndex(shard, key, offset, limit);
  }

  async readIndexes(shard: number): Promise<Map<string, IndexEntry[]>> {
    return this.read().readIndexes(shard);
  }

  async rebuildIndexes(shard: number, fence: Fence, rebuild: IndexRebuild): Promise<void> {
    // Maps are logged as entries: msgpack would bring them back as objects.
    return this.change([
      "rebuildIndexes",
      shard,
      fence,
      { ...rebuild, indexes: [...rebuild.indexes], counters: [...rebuild.counters] },
    ]);
  }

  async readIndexVersion(shard: number): Promise<number> {
    return this.read().readIndexVersion(shard);
  }

  /** Usable by the queue index wrapper: the same checks as every store call. */
  queueIndexForReads(): MemoryQueueIndex {
    this.usable();
    return this.memoryIndex;
  }

  /**
   * Compacts (so the next open reads one snapshot, not a long log), fsyncs,
   * and lets go of the directory. After a write failure it only lets go.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.syncTimer) clearInterval(this.syncTimer);
    try {
      if (!this.broken) {
        if (this.files.logBytes > 0) this.compactNow();
        this.files.sync();
      }
    } finally {
      this.closed = true;
      this.files.closeLog();
      this.files.unlock();
      await this.memory.close();
    }
  }

  /**
   * Lets go of the directory without compacting or syncing, as a crash
   * would leave it (the lock aside): for tests that reopen what was written.
   */
  abandon(): void {
    if (this.syncTimer) clearInterval(this.syncTimer);
    this.closed = true;
    this.files.closeLog();
    this.files.unlock();
    void this.memory.close();
  }
}
