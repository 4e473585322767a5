/**
 * The durable store on Redis or Redis Cluster. Every state change is one Lua
 * script over keys of a single shard (one hash tag, hence one cluster slot);
 * reads that span several keys are small scripts too, so they never see half
 * of a commit.
 *
 * Over 400 lines for a reason: it is the `Store` interface on Redis, one
 * method per call, each a script or a few commands over one shard's keys.
 * What a commit needs besides is apart already: its argument packing
 * (`redis-commit-args.ts`), its numbers (`commit-numbers.ts`), the keys
 * (`shard-keys.ts`) and the scripts (`redis-scripts.ts`).
 */
import { CommitNumbers } from "./commit-numbers.js";
import { FencedError, StoreError, scriptErrorFor } from "./errors.js";
import { Cluster, type ClusterNode, type ClusterOptions, Redis, type RedisOptions } from "./ioredis.js";
import { PerFence } from "./per-fence.js";
import { decodeCommitOutcomes, encodeCommit, encodeCommitCall } from "./redis-commit-args.js";
import type { ReplicaWait } from "./redis-replica-wait.js";
import { type RedisClient, StoreScripts } from "./redis-scripts.js";
import { globalKeys, ShardKeys } from "./shard-keys.js";
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

/**
 * Either a client the caller made (the caller keeps owning it unless
 * `ownsClient`), or where to connect (the store owns that connection).
 * `prefix` namespaces every key and channel; default `panda`.
 */
export type RedisStoreOptions = (
  | { client: RedisClient; prefix?: string; ownsClient?: boolean }
  | { url: string; prefix?: string; redisOptions?: RedisOptions }
  | { clusterNodes: ClusterNode[]; prefix?: string; clusterOptions?: ClusterOptions }
) & {
  /** Every write answered only once this many replicas have it (WAIT; see `redis-replica-wait.ts`). */
  replicaWait?: ReplicaWait;
};

const DEFAULT_PREFIX = "panda";
/** Both ends of an actor scan, as `Store.scanActors` defines them. */
const SCAN_EDGE = "0";
/** A scan cursor is the last actor returned behind this mark, so no actor key reads as the end `"0"`. */
const CURSOR_MARK = ">";

/** One entry of an index zset with what its sibling hashes hold for it (see `read-indexed.lua`). */
interface IndexedEntry {
  member: string;
  score: number;
  values: (Buffer | null)[];
}

export class RedisStore implements Store {
  readonly name: "redis" | "redis-cluster";
  private readonly client: RedisClient;
  private readonly ownsClient: boolean;
  private readonly prefix: string;
  private readonly global: ReturnType<typeof globalKeys>;
  private readonly scripts: StoreScripts;
  private readonly shardKeys = new Map<number, ShardKeys>();
  private readonly numbers = new CommitNumbers(async (shard) => {
    const keys = this.keys(shard);
    const replies = await this.client
      .pipeline()
      .zrevrange(keys.outbox, 0, 0, "WITHSCORES")
      .zrevrange(keys.seen, 0, 0, "WITHSCORES")
      .exec();
    const [outboxSeq, seenScore] = (replies ?? []).map(([err, reply]) => {
      if (err) throw err;
      const score = (reply as string[])[1];
      return score === undefined ? null : Number(score);
    });
    return { outboxSeq: outboxSeq ?? null, seenScore: seenScore ?? null };
  });
  /**
   * Index keys in each shard's set of index names, as the lease holder knows
   * them: those its commits registered and those the set held when it read
   * the indexes at takeover. Only a rebuild takes names out of the set, and
   * only the holder rebuilds, so a commit need not add these again.
   */
  private readonly registeredIndexes = new PerFence<Set<string>>(() => new Set());
  /** The fence `acquireLease` last gave for each shard: whose knowledge `readIndexes` adds to. */
  private readonly acquiredFences = new Map<number, Fence>();
  /**
   * A lost connection may be a Redis that restarted without its last writes
   * (AOF everysec), names it registered among them: what the store knew of
   * the sets of names goes with it.
   */
  private readonly forgetRegistered = () => this.registeredIndexes.forgetAll();
  private readonly inboxListeners = new Set<(shard: number) => void>();
  private subscriber: Promise<RedisClient> | null = null;
  private closed = false;

  constructor(target: RedisClient | RedisStoreOptions) {
    const options: RedisStoreOptions = "isCluster" in target ? { client: target } : target;
    const prefix = options.prefix ?? DEFAULT_PREFIX;
    if (/[{}]/.test(prefix)) {
      throw new StoreError(
        "BAD_ARGUMENT",
        `prefix "${prefix}" must not contain { or }: it would move the shard hash tag`,
      );
    }
    this.prefix = prefix;
    this.global = globalKeys(prefix);
    if ("client" in options) {
      this.client = options.client;
      this.ownsClient = options.ownsClient ?? false;
    } else {
      this.client = openClient(options);
      this.ownsClient = true;
    }
    this.name = this.client.isCluster ? "redis-cluster" : "redis";
    this.scripts = new StoreScripts(this.client, options.replicaWait ?? null);
    this.client.on("close", this.forgetRegistered);
  }

  /** Opens a connection and resolves once Redis answers, so a wrong address fails here rather than on first use. */
  static async connect(options: RedisStoreOptions): Promise<RedisStore> {
    const store = new RedisStore(options);
    try {
      await store.client.ping();
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  private keys(shard: number): ShardKeys {
    this.assertOpen();
    if (!Number.isInteger(shard) || shard < 0) throw new StoreError("BAD_ARGUMENT", `bad shard ${shard}`);
    let keys = this.shardKeys.get(shard);
    if (!keys) {
      keys = new ShardKeys(this.prefix, shard);
      this.shardKeys.set(shard, keys);
    }
    return keys;
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError("UNAVAILABLE", "store is closed");
  }

  async acquireLease(shard: number, owner: string, ttlMs: number, nowMs: number): Promise<Lease | null> {
    const expiresAtMs = nowMs + ttlMs;
    const epoch = (await this.scripts.run(
      "acquire-lease",
      [this.keys(shard).lease],
      [owner, expiresAtMs, nowMs],
    )) as number;
    // A new holder, or the same one anew: what it knows of the names starts from its reads.
    this.registeredIndexes.forget(shard);
    if (epoch === 0) {
      this.acquiredFences.delete(shard);
      return null;
    }
    this.acquiredFences.set(shard, { owner, epoch });
    return { shard, owner, epoch, expiresAtMs };
  }

  async renewLease(shard: number, fence: Fence, ttlMs: number, nowMs: number): Promise<Lease | null> {
    const expiresAtMs = nowMs + ttlMs;
    const renewed = await this.setLeaseExpiry(shard, fence, expiresAtMs);
    return renewed ? { shard, owner: fence.owner, epoch: fence.epoch, expiresAtMs } : null;
  }

  async releaseLease(shard: number, fence: Fence): Promise<void> {
    await this.setLeaseExpiry(shard, fence, 0);
  }

  private async setLeaseExpiry(shard: number, fence: Fence, expiresAtMs: number): Promise<boolean> {
    const keys = [this.keys(shard).lease];
    return (await this.scripts.run("set-lease-expiry", keys, [fence.owner, fence.epoch, expiresAtMs])) === 1;
  }

  async readLease(shard: number): Promise<Lease | null> {
    const [owner, epoch, expiresAtMs] = await this.client.hmget(
      this.keys(shard).lease,
      "owner",
      "epoch",
      "expiresAtMs",
    );
    if (!owner) return null;
    return { shard, owner, epoch: Number(epoch), expiresAtMs: Number(expiresAtMs) };
  }

  async heartbeatNode(nodeId: string, ttlMs: number, nowMs: number): Promise<string[]> {
    this.assertOpen();
    const args = [nodeId, nowMs + ttlMs, nowMs];
    const nodes = (await this.scripts.run("heartbeat-node", [this.global.nodes], args)) as string[];
    return nodes.sort();
  }

  async removeNode(nodeId: string): Promise<void> {
    this.assertOpen();
    await this.client.zrem(this.global.nodes, nodeId);
  }

  async commit(
    shard: number,
    fence: Fence,
    records: CommitRecord[],
    options: CommitOptions,
  ): Promise<CommitOutcome[]> {
    const [result] = await this.commitMany([{ shard, fence, records, options }]);
    if (result instanceof FencedError) throw result;
    return result!;
  }

  async commitMany(batches: CommitBatch[]): Promise<CommitBatchResult[]> {
    if (batches.length === 0) return [];
    const numbers = await this.numbers.reserve(batches);
    const encoded = batches.map((b, i) =>
      encodeCommit(this.keys(b.shard), b.fence, b.records, b.options, {
        ...numbers[i],
        registeredIndexes: this.registeredIndexes.get(b.shard, b.fence),
      }),
    );
    // One Redis takes every batch in one call; a Cluster's shards live in different slots: one call each.
    const all = batches.map((_, i) => i);
    const calls = this.client.isCluster ? all.map((i) => [i]) : [all];
    const replies = await Promise.all(
      calls.map(async (group) => {
        const { keys, args } = encodeCommitCall(group.map((i) => encoded[i]!));
        const reply = (await this.scripts.run("commit", keys, args)) as number | (number | number[])[];
        if (typeof reply === "number") {
          const first = batches[group[0]!]!;
          throw scriptErrorFor(reply, first.shard, first.fence.owner, first.fence.epoch);
        }
        return reply;
      }),
    );
    const results: CommitBatchResult[] = [];
    replies.forEach((reply, c) => {
      calls[c]!.forEach((b, i) => {
        const batch = batches[b]!;
        const codes = reply[i];
        if (typeof codes === "number") {
          const error = scriptErrorFor(codes, batch.shard, batch.fence.owner, batch.fence.epoch);
          if (!(error instanceof FencedError)) throw error;
          results.push(error);
        } else {
          const outcomes = decodeCommitOutcomes(codes ?? []);
          this.noteRegistered(batch, outcomes);
          results.push(outcomes);
        }
      });
    });
    return results;
  }

  /** The index keys the batch's script registered: every one an applied record gave a member. */
  private noteRegistered(batch: CommitBatch, outcomes: CommitOutcome[]): void {
    let registered: Set<string> | undefined;
    batch.records.forEach((record, i) => {
      if (outcomes[i] !== "ok") return;
      for (const op of record.index) {
        if (op.score === null) continue;
        registered ??= this.registeredIndexes.at(batch.shard, batch.fence);
        registered.add(op.key);
      }
    });
  }

  async loadActors(shard: number, actors: ActorKey[]): Promise<(StoredActor | null)[]> {
    const keys = this.keys(shard);
    if (actors.length === 0) return [];
    const reply = (await this.scripts.runBinary(
      "load-actors",
      actors.map((actor) => keys.actor(actor)),
      [],
    )) as (Buffer | null)[];
    return actors.map((_, i) => {
      const version = reply[3 * i];
      const snapshot = reply[3 * i + 1];
      const constants = reply[3 * i + 2] ?? null;
      return version && snapshot ? { version: Number(version.toString()), snapshot, constants } : null;
    });
  }

  async readHistory(shard: number, actor: ActorKey, limit: number): Promise<Buffer[]> {
    const keys = this.keys(shard);
    if (limit <= 0) return [];
    return this.client.lrangeBuffer(keys.history(actor), -limit, -1);
  }

  async scanActors(
    shard: number,
    cursor: string,
    limit: number,
  ): Promise<{ cursor: string; actors: ActorKey[] }> {
    const keys = this.keys(shard);
    if (!Number.isInteger(limit) || limit < 1)
      throw new StoreError("BAD_ARGUMENT", `bad scan limit ${limit}`);
    if (cursor !== SCAN_EDGE && !cursor.startsWith(CURSOR_MARK)) {
      throw new StoreError("BAD_ARGUMENT", `bad scan cursor ${cursor}`);
    }
    // The index is a zset of equal scores, so it pages by name: a cursor stays valid while actors come and go.
    const after = cursor === SCAN_EDGE ? "-" : `(${cursor.slice(CURSOR_MARK.length)}`;
    const page = await this.client.zrangebylex(keys.actors, after, "+", "LIMIT", 0, limit + 1);
    if (page.length <= limit) return { cursor: SCAN_EDGE, actors: page };
    const actors = page.slice(0, limit);
    return { cursor: CURSOR_MARK + actors[actors.length - 1], actors };
  }

  async importActor(
    shard: number,
    fence: Fence,
    actor: ActorKey,
    version: number,
    snapshot: Buffer,
  ): Promise<void> {
    const keys = this.keys(shard);
    const reply = (await this.scripts.run(
      "import-actor",
      [keys.lease, keys.actors, keys.actor(actor)],
      [fence.owner, fence.epoch, actor, version, snapshot],
    )) as number;
    if (reply < 0) throw scriptErrorFor(reply, shard, fence.owner, fence.epoch);
  }

  async appendInbox(shard: number, entries: { eventId: string; payload: Buffer }[]): Promise<number> {
    const keys = this.keys(shard);
    if (entries.length === 0) return 0;
    const args: (string | number | Buffer)[] = [this.global.inboxChannel, shard];
    for (const entry of entries) args.push(entry.eventId, entry.payload);
    return (await this.scripts.run(
      "append-inbox",
      [keys.inbox, keys.inboxData, keys.inboxSeq],
      args,
    )) as number;
  }

  async readInbox(shard: number, afterSeq: number, limit: number): Promise<InboxEntry[]> {
    const keys = this.keys(shard);
    const entries = await this.readIndexed([keys.inbox, keys.inboxData], `(${afterSeq}`, "+inf", limit);
    return entries.flatMap(({ member, score, values: [payload] }) =>
      payload ? [{ seq: score, eventId: member, payload }] : [],
    );
  }

  async subscribeInbox(listener: (shard: number) => void): Promise<() => Promise<void>> {
    this.assertOpen();
    this.inboxListeners.add(listener);
    try {
      this.subscriber ??= this.openSubscriber();
      await this.subscriber;
    } catch (error) {
      this.inboxListeners.delete(listener);
      throw error;
    }
    return async () => {
      this.inboxListeners.delete(listener);
    };
  }

  /** One subscriber connection per store, shared by every listener, until close. */
  private async openSubscriber(): Promise<RedisClient> {
    const subscriber = duplicateClient(this.client);
    subscriber.on("message", (channel: string, message: string) => {
      if (channel !== this.global.inboxChannel) return;
      const shard = Number(message);
      for (const listener of this.inboxListeners) listener(shard);
    });
    try {
      await subscriber.subscribe(this.global.inboxChannel);
    } catch (error) {
      subscriber.disconnect();
      this.subscriber = null;
      throw error;
    }
    return subscriber;
  }

  async dueTimers(shard: number, nowMs: number, limit: number): Promise<TimerEntry[]> {
    const keys = this.keys(shard);
    const entries = await this.readIndexed(
      [keys.timers, keys.timerFire, keys.timerData],
      "-inf",
      String(nowMs),
      limit,
    );
    return entries.flatMap(({ member, score, values: [fireId, payload] }) =>
      fireId && payload ? [{ timerKey: member, fireId: fireId.toString(), dueAtMs: score, payload }] : [],
    );
  }

  async nextTimerDueMs(shard: number): Promise<number | null> {
    const [, score] = await this.client.zrange(this.keys(shard).timers, "0", "0", "WITHSCORES");
    return score === undefined ? null : Number(score);
  }

  async readCounters(shard: number): Promise<Map<string, number>> {
    const fields = await this.client.hgetall(this.keys(shard).counters);
    // A counter back at 0 stays in the hash as 0 (see commit.lua): it is not there for readers.
    const counters = new Map<string, number>();
    for (const [name, value] of Object.entries(fields))
      if (Number(value) !== 0) counters.set(name, Number(value));
    return counters;
  }

  async readIndex(shard: number, key: string, offset: number, limit: number): Promise<IndexEntry[]> {
    if (limit <= 0) return [];
    const flat = await this.client.zrange(
      this.keys(shard).index(key),
      String(offset),
      String(offset + limit - 1),
      "WITHSCORES",
    );
    return pairsOf(flat);
  }

  async readIndexes(shard: number): Promise<Map<string, IndexEntry[]>> {
    const keys = this.keys(shard);
    // Read at takeover, when no other node may commit to the shard: two steps need no script.
    const zsets = (await this.client.smembers(keys.indexNames)).sort();
    const fence = this.acquiredFences.get(shard);
    if (fence) {
      const registered = this.registeredIndexes.at(shard, fence);
      for (const zset of zsets) registered.add(zset.slice(keys.indexPrefix.length));
    }
    const all = new Map<string, IndexEntry[]>();
    if (zsets.length === 0) return all;
    const pipeline = this.client.pipeline();
    for (const zset of zsets) pipeline.zrange(zset, "0", "-1", "WITHSCORES");
    const replies = (await pipeline.exec()) ?? [];
    zsets.forEach((zset, i) => {
      const [err, flat] = replies[i] ?? [null, []];
      if (err) throw err;
      const entries = pairsOf(flat as string[]);
      if (entries.length > 0) all.set(zset.slice(keys.indexPrefix.length), entries);
    });
    return all;
  }

  async rebuildIndexes(shard: number, fence: Fence, rebuild: IndexRebuild): Promise<void> {
    const keys = this.keys(shard);
    // The rebuild replaces the set of names: forgotten before (no commit encoded from here on leans on
    // them) and after (what commits sent before it noted), learnt again from the next reads and commits.
    this.registeredIndexes.forget(shard);
    const existing = await this.client.smembers(keys.indexNames);
    const written = [...rebuild.indexes].filter(([, entries]) => entries.length > 0);
    const args: (string | number)[] = [fence.owner, fence.epoch, rebuild.version, existing.length];
    args.push(rebuild.counterPrefixes.length, ...rebuild.counterPrefixes);
    args.push(rebuild.counters.size);
    for (const [name, value] of rebuild.counters) args.push(name, value);
    for (const [, entries] of written) {
      args.push(entries.length);
      for (const { member, score } of entries) args.push(score, member);
    }
    const reply = (await this.scripts.run(
      "rebuild-indexes",
      [
        keys.lease,
        keys.indexNames,
        keys.counters,
        keys.indexVersion,
        ...existing,
        ...written.map(([key]) => keys.index(key)),
      ],
      args,
    )) as number;
    this.registeredIndexes.forget(shard);
    if (reply < 0) throw scriptErrorFor(reply, shard, fence.owner, fence.epoch);
  }

  async readIndexVersion(shard: number): Promise<number> {
    return Number((await this.client.get(this.keys(shard).indexVersion)) ?? 0);
  }

  async readOutbox(shard: number, limit: number): Promise<OutboxEntry[]> {
    const keys = this.keys(shard);
    const entries = await this.readIndexed([keys.outbox, keys.outboxData], "-inf", "+inf", limit);
    return entries.flatMap(({ member, score, values: [payload] }) =>
      payload ? [{ seq: score, effectId: member, payload }] : [],
    );
  }

  async ackOutbox(effectIdsByShard: ReadonlyMap<number, readonly string[]>): Promise<void> {
    const shards = [...effectIdsByShard].filter(([, ids]) => ids.length > 0);
    if (shards.length === 0) return;
    // A Cluster's shards live in different slots: one call each. One Redis takes them all in one.
    const calls = this.client.isCluster ? shards.map((s) => [s]) : [shards];
    await Promise.all(
      calls.map((group) => {
        const keys: string[] = [];
        const counts: number[] = [];
        const ids: string[] = [];
        for (const [shard, effectIds] of group) {
          const shardKeys = this.keys(shard);
          keys.push(shardKeys.outbox, shardKeys.outboxData);
          counts.push(effectIds.length);
          ids.push(...effectIds);
        }
        return this.scripts.run("ack-outbox", keys, [...counts, ...ids]);
      }),
    );
  }

  /**
   * Entries of an index zset by score with their values in the sibling hashes.
   * A value is missing only if something outside the store edited the keys;
   * callers drop such an entry rather than hand out half of it.
   */
  private async readIndexed(
    keys: string[],
    minScore: string,
    maxScore: string,
    limit: number,
  ): Promise<IndexedEntry[]> {
    if (limit <= 0) return [];
    const reply = (await this.scripts.runBinary("read-indexed", keys, [
      minScore,
      maxScore,
      limit,
    ])) as (Buffer | null)[];
    const stride = keys.length + 1;
    const entries: IndexedEntry[] = [];
    for (let i = 0; i + stride <= reply.length; i += stride) {
      const member = reply[i];
      const score = reply[i + 1];
      if (!member || !score) continue;
      entries.push({
        member: member.toString(),
        score: Number(score.toString()),
        values: reply.slice(i + 2, i + stride),
      });
    }
    return entries;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.inboxListeners.clear();
    this.client.off("close", this.forgetRegistered);
    const subscriber = this.subscriber;
    this.subscriber = null;
    await Promise.all([
      subscriber?.then(quit, () => undefined),
      this.ownsClient ? quit(this.client) : undefined,
    ]);
  }
}

/** `[member, score, member, score, ...]` as entries. */
function pairsOf(flat: string[]): IndexEntry[] {
  const entries: IndexEntry[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) entries.push({ member: flat[i]!, score: Number(flat[i + 1]) });
  return entries;
}

function openClient(options: Exclude<RedisStoreOptions, { client: RedisClient }>): RedisClient {
  // No auto-pipelining: measured slower here (it defers every write a turn), and group commit already batches.
  if ("url" in options) return new Redis(options.url, options.redisOptions ?? {});
  return new Cluster(options.clusterNodes, options.clusterOptions ?? {});
}

/** A new connection with the same settings; the two client kinds spell the call differently. */
function duplicateClient(client: RedisClient): RedisClient {
  return client.isCluster ? (client as Cluster).duplicate() : (client as Redis).duplicate();
}

/** QUIT waits for pending replies; a connection that cannot say goodbye is simply dropped. */
async function quit(client: RedisClient): Promise<void> {
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}
