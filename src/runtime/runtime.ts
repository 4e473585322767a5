import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { encode } from "../protocol/codec.js";
import type { ActorKey, Fence, IndexEntry, OutboxEntry, Store } from "../store/types.js";
import { type ActorRef, actorKeyOf, parseActorKey, shardOf } from "./actor-ref.js";
import { type Clock, systemClock, type TimerHandle } from "./clock.js";
import { RuntimeError } from "./errors.js";
import { GroupCommitter } from "./group-commit.js";
import { IndexMirror } from "./index-mirror.js";
import { IntakeGate, type IntakeGateOptions, type IntakeGateStats } from "./intake-gate.js";
import { KeyedBatcher } from "./keyed-batcher.js";
import type { IntakeExpander, IntakeExpansion, KindDefinition, KindRegistry } from "./kinds.js";
import { type Logger, silentLogger } from "./logger.js";
import {
  type AnyEvent,
  decodeEffectPayload,
  decodeHistoryEntry,
  type EffectPayload,
  type HistoryEntry,
  parseEvent,
  stateValueToString,
} from "./records.js";
import {
  type CommittedTransition,
  type InlineEffectHandler,
  type SendResult,
  ShardHost,
  type ShardHostConfig,
} from "./shard-host.js";
import { checkEventSchema, type LiveActor, restore } from "./step.js";

export interface RuntimeOptions {
  store: Store;
  registry: KindRegistry;
  /** Fixed for the life of a deployment: it decides which shard every actor lives in. */
  shardCount?: number;
  nodeId?: string;
  clock?: Clock;
  log?: Logger;
  leaseMs?: number;
  /** How often leases are renewed and membership checked; well under `leaseMs`. */
  renewEveryMs?: number;
  sweepEveryMs?: number;
  historyCap?: number;
  dedupeWindowMs?: number;
  maxBatchRecords?: number;
  idleEvictMs?: number;
  maxResidentActorsPerShard?: number;
  /** Store calls of grouped commits a node keeps out at once (see `GroupCommitter`); 2 by default. */
  maxCommitsInFlight?: number;
  /**
   * How long delivered effects' acknowledgements gather before one call
   * removes them from the outboxes: each shard they touch costs the call
   * two Redis commands, so the longer, the fewer. An effect stays in flight
   * (no sweep delivers it again) until its acknowledgement is written; a
   * crash meanwhile only has it delivered again, to receivers that drop
   * duplicates. 0 (the default): at the end of the event loop's turn.
   */
  ackOutboxAfterMs?: number;
  /** Take no shards: a client that only sends into the durable inboxes and reads state. */
  clientOnly?: boolean;
  /**
   * Admission control for effects that create work (`lane: "intake"`): their
   * delivery is paced to what this node keeps up with (`IntakeGate`). `false`
   * delivers them at once, as a simulation on a virtual clock must.
   */
  intake?: Partial<IntakeGateOptions> | false;
}

export interface EffectContext {
  /** The actor that emitted the effect. */
  from: ActorRef;
  /** Stable across redeliveries: handlers use it to drop duplicates. */
  effectId: string;
  runtime: Runtime;
}

export type EffectHandler = (data: unknown, context: EffectContext) => Promise<void> | void;

export interface SendOptions {
  /** A stable id makes the send idempotent: a second send with it is dropped as a duplicate. */
  eventId?: string;
  cause?: string;
  /**
   * The event was built by this node's own code from input it validated
   * already (a pilot frame, an API body, a service's decision): the kind's
   * event schema, a check at the trust boundary, is not run again.
   */
  trusted?: boolean;
}

export interface ActorView {
  kind: string;
  id: string;
  version: number;
  state: string;
  value: unknown;
  status: string;
  context: unknown;
  history: HistoryEntry[];
}

export interface RuntimeStats {
  ownedShards: number;
  residentActors: number;
  /** Shard batches committed (each host's group commits). */
  commits: number;
  /** Store calls those took: a node groups every shard's ready batches into one. */
  commitCalls: number;
  committedRecords: number;
  effectsDelivered: number;
  /** Admission control of new work on this node; null when it is off. */
  intake: IntakeGateStats | null;
}

const DEFAULTS = {
  shardCount: 64,
  leaseMs: 10_000,
  sweepEveryMs: 5_000,
  historyCap: 200,
  dedupeWindowMs: 3_600_000,
  maxBatchRecords: 512,
  idleEvictMs: 60_000,
  maxResidentActorsPerShard: 20_000,
};

/**
 * A runtime node: owns a share of the shards through fenced leases, hosts
 * their actors, routes events and effects, and lets anyone inspect any actor.
 */
export class Runtime {
  readonly nodeId: string;
  readonly shardCount: number;
  readonly store: Store;
  readonly registry: KindRegistry;
  readonly clock: Clock;
  private readonly log: Logger;
  private readonly leaseMs: number;
  private readonly renewEveryMs: number;
  private readonly sweepEveryMs: number;
  private readonly hostConfig: ShardHostConfig;
  private readonly clientOnly: boolean;
  private readonly hosts = new Map<number, ShardHost>();
  /** The committed indexes and counters of the shards this node owns (see `IndexMirror`). */
  readonly local = new IndexMirror();
  private readonly committer: GroupCommitter;
  private readonly handlers = new Map<string, EffectHandler>();
  private readonly inlineHandlers = new Map<string, InlineEffectHandler>();
  /** Effects being delivered, from their delivery until their acknowledgement is written. */
  private readonly effectsInFlight = new Set<string>();
  /**
   * Outbox reads under way, each with the effects of its shard whose
   * acknowledgement was written since it was sent: its answer may still
   * list them, and delivering them again would cost their receivers a
   * duplicate (and an actor's folded record a split).
   */
  private readonly outboxReads = new Set<{ shard: number; acked: Set<string> }>();
  private readonly unhandledWarned = new Set<string>();
  private readonly outboxAcks: KeyedBatcher<number, string>;
  private readonly inboxAppends: KeyedBatcher<number, { eventId: string; payload: Buffer }>;
  private leaseTimer: TimerHandle | null = null;
  private sweepTimer: TimerHandle | null = null;
  private leaseTick: Promise<void> | null = null;
  private unsubscribe: (() => Promise<void>) | null = null;
  private running = false;
  private readonly counters = { commits: 0, committedRecords: 0, effectsDelivered: 0 };
  private readonly intake: IntakeGate | null;
  /** Actors with sends held by admission control, and how many: later sends to them queue behind. */
  private readonly heldFor = new Map<string, number>();
  private readonly commitObservers = new Set<(shard: number, records: number, durationMs: number) => void>();
  private readonly transitionListeners = new Set<(transitions: CommittedTransition[]) => void>();

  constructor(options: RuntimeOptions) {
    this.store = options.store;
    this.registry = options.registry;
    this.shardCount = options.shardCount ?? DEFAULTS.shardCount;
    this.nodeId = options.nodeId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? silentLogger;
    this.leaseMs = options.leaseMs ?? DEFAULTS.leaseMs;
    this.renewEveryMs = options.renewEveryMs ?? Math.max(50, Math.floor(this.leaseMs / 3));
    this.sweepEveryMs = options.sweepEveryMs ?? DEFAULTS.sweepEveryMs;
    this.clientOnly = options.clientOnly ?? false;
    this.hostConfig = {
      historyCap: options.historyCap ?? DEFAULTS.historyCap,
      dedupeWindowMs: options.dedupeWindowMs ?? DEFAULTS.dedupeWindowMs,
      maxBatchRecords: options.maxBatchRecords ?? DEFAULTS.maxBatchRecords,
      maxCommitAttempts: 8,
      idleEvictMs: options.idleEvictMs ?? DEFAULTS.idleEvictMs,
      maxResidentActors: options.maxResidentActorsPerShard ?? DEFAULTS.maxResidentActorsPerShard,
    };
    if (!Number.isInteger(this.shardCount) || this.shardCount < 1 || this.shardCount > 4096) {
      throw new RuntimeError("BAD_EVENT", `shardCount must be an integer in 1..4096, got ${this.shardCount}`);
    }
    this.intake =
      options.intake === false
        ? null
        : new IntakeGate(options.intake ?? {}, () => {
            let waiting = 0;
            for (const host of this.hosts.values()) waiting += host.backlog;
            return waiting;
          });
    this.committer = new GroupCommitter(this.store, options.maxCommitsInFlight ?? 2);
    this.outboxAcks = new KeyedBatcher(
      { together: (idsByShard) => this.store.ackOutbox(idsByShard) },
      options.ackOutboxAfterMs ?? 0,
    );
    this.inboxAppends = new KeyedBatcher({
      perKey: async (shard, entries) => {
        await this.store.appendInbox(shard, entries);
      },
    });
  }

  /** Joins the cluster of nodes: takes this node's share of shards before resolving. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    if (this.clientOnly) return;
    this.unsubscribe = await this.store.subscribeInbox((shard) => this.hosts.get(shard)?.inboxNotified());
    await this.tickLeases();
    this.scheduleLeaseTick();
    this.scheduleSweep();
  }

  /** Leaves cleanly: finishes commits in flight, gives up every shard at once, forgets this node. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.leaseTimer) this.clock.clearTimer(this.leaseTimer);
    if (this.sweepTimer) this.clock.clearTimer(this.sweepTimer);
    await this.leaseTick?.catch(() => {});
    // What the gate holds is in the outbox: the next owner of each shard delivers it.
    this.intake?.clear();
    // Delivered effects' acknowledgements still gathering: written while the shards are still ours.
    await this.outboxAcks.flushNow();
    await Promise.all([...this.hosts.keys()].map((shard) => this.dropShard(shard, true)));
    await this.unsubscribe?.();
    if (!this.clientOnly) await this.store.removeNode(this.nodeId).catch(() => {});
  }

  /**
   * Registers what runs an emitted effect after its commit. With `inline`,
   * the effect is first offered to that handler while its cause is planned,
   * before the commit (see `InlineEffectHandler`): what it handles there never
   * reaches the outbox or `handler`.
   */
  onEffect(effect: string, handler: EffectHandler, options: { inline?: InlineEffectHandler } = {}): void {
    this.handlers.set(effect, handler);
    if (options.inline) this.inlineHandlers.set(effect, options.inline);
    else this.inlineHandlers.delete(effect);
  }

  /** Observes every group commit (metrics, benchmarks). */
  onCommit(observer: (shard: number, records: number, durationMs: number) => void): () => void {
    this.commitObservers.add(observer);
    return () => this.commitObservers.delete(observer);
  }

  /** Hears every transition committed on this node (live monitors, tests awaiting a state). */
  onTransitions(listener: (transitions: CommittedTransition[]) => void): () => void {
    this.transitionListeners.add(listener);
    return () => this.transitionListeners.delete(listener);
  }

  /** Resolves with the first committed transition of `ref` for which `predicate` holds. */
  waitForTransition(
    ref: ActorRef,
    predicate: (t: CommittedTransition) => boolean,
  ): Promise<CommittedTransition> {
    const actor = actorKeyOf(ref);
    return new Promise((resolve) => {
      const off = this.onTransitions((transitions) => {
        const hit = transitions.find((t) => t.actor === actor && predicate(t));
        if (hit) {
          off();
          resolve(hit);
        }
      });
    });
  }

  /**
   * True when no shard has events queued or a commit in flight and no store
   * write is batching: with an in-process store and a virtual clock, nothing
   * more happens until a timer is due. Simulations use it to know when they
   * may move time on.
   */
  isQuiescent(): boolean {
    if (!this.outboxAcks.idle || !this.inboxAppends.idle || !this.committer.idle) return false;
    if (this.intake && this.intake.queued > 0) return false;
    for (const host of this.hosts.values()) if (!host.idle) return false;
    return true;
  }

  ownedShards(): number[] {
    return [...this.hosts.keys()].sort((a, b) => a - b);
  }

  stats(): RuntimeStats {
    let residentActors = 0;
    for (const host of this.hosts.values()) residentActors += host.residentActors;
    return {
      ownedShards: this.hosts.size,
      residentActors,
      ...this.counters,
      commitCalls: this.committer.stats.calls,
      intake: this.intake?.stats() ?? null,
    };
  }

  /** Work-creating deliveries this node holds back for admission: what a new submission queues behind. */
  /** What admission control watches as admitted work waiting to be served (see `IntakeGate.watchQueue`). */
  watchIntakeQueue(probe: () => number): void {
    this.intake?.watchQueue(probe);
  }

  intakeQueued(): number {
    return this.intake?.queued ?? 0;
  }

  /**
   * Delivers an event to an actor. On the node that hosts the actor's shard
   * it resolves once the transition is committed; elsewhere once the event is
   * durably queued for the owner. A refused event rejects with a RuntimeError.
   */
  send(ref: ActorRef, event: unknown, options: SendOptions = {}): Promise<SendResult> {
    // Not async: a local send is one promise, settled by the commit (an async function wraps it in another).
    let actor: ActorKey;
    let parsed: AnyEvent;
    try {
      actor = actorKeyOf(ref);
      parsed = this.checkedEvent(ref, actor, event, options);
    } catch (err) {
      return Promise.reject(err);
    }
    if (!this.running) return Promise.reject(new RuntimeError("STOPPED", "runtime is not running"));
    const shard = shardOf(actor, this.shardCount);
    const cause = options.cause ?? "send";
    const host = this.hosts.get(shard);
    if (host?.accepting) {
      return new Promise<SendResult>((resolve, reject) => {
        host.enqueue({
          actor,
          event: parsed,
          eventId: options.eventId ?? randomUUID(),
          dedupe: options.eventId !== undefined,
          ack: null,
          cause,
          waiter: { resolve, reject },
          attempts: 0,
        });
      });
    }
    return this.sendThroughInbox(shard, actor, parsed, cause, options.eventId ?? randomUUID());
  }

  /** The event as the actor's kind accepts it from outside (trusted events as they are). */
  private checkedEvent(ref: ActorRef, actor: ActorKey, event: unknown, options: SendOptions): AnyEvent {
    const definition = this.registry.get(ref.kind);
    let parsed: AnyEvent;
    try {
      parsed = options.trusted ? (event as AnyEvent) : parseEvent(event);
    } catch (err) {
      throw new RuntimeError("BAD_EVENT", `event for ${actor}: ${(err as Error).message}`);
    }
    if (!options.trusted) checkEventSchema(definition, actor, parsed);
    return parsed;
  }

  /** A send to a shard another node owns: appended to its inbox, for its owner to apply. */
  private async sendThroughInbox(
    shard: number,
    actor: ActorKey,
    event: AnyEvent,
    cause: string,
    eventId: string,
  ): Promise<SendResult> {
    await this.inboxAppends.add(shard, { eventId, payload: encode({ a: actor, e: event, c: cause }) });
    return { outcome: "queued" };
  }

  /**
   * Counters (see the machines' `count` action) summed over every shard,
   * those whose name starts with `prefix`: exact as of each shard's last
   * commit, from any node.
   */
  async readCounters(prefix = ""): Promise<Map<string, number>> {
    const local = this.localCounters(prefix);
    if (local) return local;
    const perShard = await Promise.all(
      Array.from({ length: this.shardCount }, (_, shard) => this.store.readCounters(shard)),
    );
    const sums = new Map<string, number>();
    for (const counters of perShard) {
      for (const [name, value] of counters) {
        if (name.startsWith(prefix)) sums.set(name, (sums.get(name) ?? 0) + value);
      }
    }
    for (const [name, value] of sums) if (value === 0) sums.delete(name);
    return sums;
  }

  /**
   * Every shard's counters whose names start with `prefix`, summed, from
   * this node's memory: null unless it owns every shard (then the mirror
   * holds them whole, as committed).
   */
  localCounters(prefix = ""): Map<string, number> | null {
    if (!this.ownsAllShards() || this.local.loadedShards !== this.shardCount) return null;
    return this.local.counters(prefix);
  }

  /** True when this node owns every shard: `local` then holds every index and counter whole. */
  ownsAllShards(): boolean {
    return this.hosts.size === this.shardCount;
  }

  /**
   * An index over every shard, lowest score first: the shards this node owns
   * from memory, the others from the store (one read each). For readers that
   * need the whole grid's view (the API, the monitor, releases), not hot paths.
   */
  async readIndex(key: string, offset: number, limit: number): Promise<IndexEntry[]> {
    const entries = this.local.range(key, 0, offset + limit);
    const read = await Promise.all(
      this.unownedShards().map((shard) => this.store.readIndex(shard, key, 0, offset + limit)),
    );
    for (const page of read) entries.push(...page);
    entries.sort((a, b) => a.score - b.score || (a.member < b.member ? -1 : a.member > b.member ? 1 : 0));
    return entries.slice(offset, offset + limit);
  }

  /** Members of an index over every shard (see `readIndex`). */
  async indexSize(key: string): Promise<number> {
    const sizes = await Promise.all(
      this.unownedShards().map(
        async (shard) => (await this.store.readIndex(shard, key, 0, Number.MAX_SAFE_INTEGER)).length,
      ),
    );
    return sizes.reduce((sum, n) => sum + n, this.local.size(key));
  }

  /** Zero-based position of a member in an index over every shard, or null when absent. */
  async indexRank(key: string, member: string): Promise<number | null> {
    const all = await this.readIndex(key, 0, Number.MAX_SAFE_INTEGER);
    const at = all.findIndex((e) => e.member === member);
    return at < 0 ? null : at;
  }

  private unownedShards(): number[] {
    const shards: number[] = [];
    for (let shard = 0; shard < this.shardCount; shard++) if (!this.hosts.has(shard)) shards.push(shard);
    return shards;
  }

  /**
   * An actor's state as committed. `resident` accepts the copy this node
   * holds for a shard it owns (what its last commit wrote, read without a
   * round trip or a decode); a node that lost the shard without knowing yet
   * may answer from before the new owner's commits, so it is for readers
   * that weigh state, like brokerage, not for a decision an actor arbitrates.
   * The context is shared: callers must not change it.
   */
  /**
   * The actor's committed state when this node hosts it in memory, else
   * undefined: what an inline effect handler may read, synchronously, while
   * a commit is being planned.
   */
  /**
   * Drops actors that nothing will address again from this node's memory (a
   * simulation's jobs once over; the caller drops them from an embedded
   * store with `MemoryStore.forget`). An actor with events queued, or on a
   * shard with a commit in flight or not owned here, is kept: the result
   * holds those, to try again later.
   */
  retire(refs: readonly ActorRef[]): ActorRef[] {
    return refs.filter((ref) => {
      const actor = actorKeyOf(ref);
      return !this.hosts.get(shardOf(actor, this.shardCount))?.retire(actor);
    });
  }

  residentState(ref: ActorRef): LiveActor["state"] | undefined {
    const actor = actorKeyOf(ref);
    return this.hosts.get(shardOf(actor, this.shardCount))?.committedState(actor)?.state;
  }

  async readState(
    ref: ActorRef,
    options: { resident?: boolean } = {},
  ): Promise<Omit<ActorView, "history"> | null> {
    const actor = actorKeyOf(ref);
    const definition = this.registry.get(ref.kind);
    const shard = shardOf(actor, this.shardCount);
    const resident = options.resident ? this.hosts.get(shard)?.committedState(actor) : undefined;
    const live = resident ?? (await this.loadState(definition, actor, shard));
    if (!live) return null;
    return {
      kind: ref.kind,
      id: ref.id,
      version: live.version,
      state: stateValueToString(live.state.value),
      value: live.state.value,
      status: live.state.status,
      context: live.state.context,
    };
  }

  private async loadState(
    definition: KindDefinition,
    actor: ActorKey,
    shard: number,
  ): Promise<LiveActor | null> {
    const [stored] = await this.store.loadActors(shard, [actor]);
    if (!stored) return null;
    return restore(definition, actor, stored.version, stored.snapshot, stored.constants);
  }

  /** Reads any actor's state and recent history straight from the store, from any node. */
  async inspect(ref: ActorRef, historyLimit = 1000): Promise<ActorView | null> {
    const actor = actorKeyOf(ref);
    const shard = shardOf(actor, this.shardCount);
    const [state, historyBytes] = await Promise.all([
      this.readState(ref),
      this.store.readHistory(shard, actor, historyLimit),
    ]);
    if (!state) return null;
    return { ...state, history: historyBytes.map((bytes) => decodeHistoryEntry(bytes)) };
  }

  private scheduleLeaseTick(): void {
    if (!this.running) return;
    this.leaseTimer = this.clock.setTimer(() => {
      this.leaseTick = this.tickLeases()
        .catch((err: unknown) => this.log.warn({ err: (err as Error).message }, "lease tick failed"))
        .finally(() => {
          this.leaseTick = null;
          this.scheduleLeaseTick();
        });
    }, this.renewEveryMs);
  }

  private scheduleSweep(): void {
    if (!this.running) return;
    this.sweepTimer = this.clock.setTimer(() => {
      void this.sweep().finally(() => this.scheduleSweep());
    }, this.sweepEveryMs);
  }

  /** Renews what we hold, then moves toward an even share: ceil(shards / live nodes). */
  private async tickLeases(): Promise<void> {
    const nowMs = this.clock.nowMs();
    const renewals = await Promise.all(
      [...this.hosts.values()].map(async (host) => ({
        host,
        lease: await this.store
          .renewLease(host.shard, host.fence, this.leaseMs, nowMs)
          .catch(() => undefined),
      })),
    );
    for (const { host, lease } of renewals) {
      // undefined: the store did not answer; keep the shard, the fence protects us if the lease lapses meanwhile.
      if (lease === null) {
        this.log.warn({ shard: host.shard, epoch: host.fence.epoch }, "lease lost");
        await this.dropShard(host.shard, false);
      }
    }
    if (!this.running) return;
    const nodes = await this.store.heartbeatNode(this.nodeId, this.leaseMs, nowMs);
    const liveCount = Math.max(1, nodes.includes(this.nodeId) ? nodes.length : nodes.length + 1);
    const target = Math.ceil(this.shardCount / liveCount);
    const owned = this.hosts.size;
    if (owned < target) await this.acquireShards(target - owned, nowMs);
    else if (owned > target) await this.releaseShards(owned - target);
  }

  /** Shards in an order that starts at a node-specific offset, so joining nodes do not all race for shard 0. */
  private shardOrder(): number[] {
    const offset = shardOf(this.nodeId, this.shardCount);
    return Array.from({ length: this.shardCount }, (_, i) => (i + offset) % this.shardCount);
  }

  private async acquireShards(wanted: number, nowMs: number): Promise<void> {
    const candidates = this.shardOrder().filter((s) => !this.hosts.has(s));
    const leases = await Promise.all(candidates.map((s) => this.store.readLease(s)));
    const free = candidates.filter((_, i) => {
      const lease = leases[i];
      return !lease || lease.expiresAtMs <= nowMs || lease.owner === this.nodeId;
    });
    const acquired = await Promise.all(
      free.slice(0, wanted).map((s) => this.store.acquireLease(s, this.nodeId, this.leaseMs, nowMs)),
    );
    await Promise.all(
      acquired.map(async (lease) => {
        if (!lease || !this.running) return;
        await this.hostShard(lease.shard, { owner: lease.owner, epoch: lease.epoch });
      }),
    );
  }

  private async releaseShards(count: number): Promise<void> {
    const mine = this.shardOrder()
      .filter((s) => this.hosts.has(s))
      .reverse()
      .slice(0, count);
    await Promise.all(mine.map((s) => this.dropShard(s, true)));
  }

  private async hostShard(shard: number, fence: Fence): Promise<void> {
    const host = new ShardHost(shard, fence, {
      store: this.store,
      registry: this.registry,
      clock: this.clock,
      log: this.log,
      config: this.hostConfig,
      mirror: this.local,
      commit: (batch) => this.committer.commit(batch),
      inlineHandler: (effect) => this.inlineHandlers.get(effect),
      deliverEffects: (from, effects) => this.deliverEffects(from, effects),
      onFenced: (s) => {
        this.log.warn({ shard: s, epoch: fence.epoch }, "commit fenced: shard taken by another node");
        void this.dropShard(s, false);
      },
      onTransitions: (transitions) => {
        for (const listener of this.transitionListeners) listener(transitions);
      },
      onCommit: (s, records, durationMs) => {
        this.counters.commits++;
        this.counters.committedRecords += records;
        for (const observer of this.commitObservers) observer(s, records, durationMs);
      },
    });
    this.hosts.set(shard, host);
    this.log.info({ shard, epoch: fence.epoch }, "shard acquired");
    await host.start();
    await this.redeliverOutbox(shard);
  }

  /**
   * Stops hosting a shard. A graceful drop hands pending direct sends to the
   * durable inbox for the next owner and releases the lease at once; a lost
   * shard rejects them (their commit was refused) and releases nothing.
   */
  private async dropShard(shard: number, graceful: boolean): Promise<void> {
    const host = this.hosts.get(shard);
    if (!host) return;
    this.hosts.delete(shard);
    const orphaned = await host.stop();
    for (const d of orphaned) {
      if (!d.waiter) continue;
      if (!graceful) {
        d.waiter.reject(new RuntimeError("SHARD_LOST", `shard ${shard} was taken by another node`));
        continue;
      }
      const waiter = d.waiter;
      this.inboxAppends
        .add(shard, { eventId: d.eventId, payload: encode({ a: d.actor, e: d.event, c: d.cause }) })
        .then(
          () => waiter.resolve({ outcome: "queued" }),
          (err: unknown) => waiter.reject(err),
        );
    }
    if (graceful) await this.store.releaseLease(shard, host.fence).catch(() => {});
  }

  private async sweep(): Promise<void> {
    await Promise.all(
      [...this.hosts.values()].map(async (host) => {
        await host.sweep();
        await this.redeliverOutbox(host.shard);
      }),
    ).catch((err: unknown) => this.log.warn({ err: (err as Error).message }, "sweep failed"));
  }

  /** Effects committed but not yet acknowledged: left by a crash, a failed delivery, or a missing handler. */
  private async redeliverOutbox(shard: number): Promise<void> {
    const read = { shard, acked: new Set<string>() };
    this.outboxReads.add(read);
    let entries: OutboxEntry[];
    try {
      entries = await this.store.readOutbox(shard, 1000);
    } finally {
      this.outboxReads.delete(read);
    }
    const effects: EffectPayload[] = [];
    for (const entry of entries) {
      if (this.effectsInFlight.has(entry.effectId) || read.acked.has(entry.effectId)) continue;
      try {
        effects.push(decodeEffectPayload(entry.payload));
      } catch (err) {
        this.log.error(
          { shard, effectId: entry.effectId, err: (err as Error).message },
          "unreadable effect dropped",
        );
        await this.store.ackOutbox(new Map([[shard, [entry.effectId]]]));
      }
    }
    if (effects.length > 0) this.deliverEffects(shard, effects);
  }

  private deliverEffects(fromShard: number, effects: EffectPayload[]): void {
    for (const effect of effects) {
      if (this.effectsInFlight.has(effect.id)) continue;
      this.effectsInFlight.add(effect.id);
      const done = async () => {
        this.counters.effectsDelivered++;
        await this.outboxAcks.add(fromShard, effect.id);
        // In flight until the acknowledgement is written: a sweep must not deliver it again meanwhile.
        this.effectsInFlight.delete(effect.id);
        for (const read of this.outboxReads) if (read.shard === fromShard) read.acked.add(effect.id);
      };
      const failed = (err: unknown) => {
        this.effectsInFlight.delete(effect.id);
        this.log.warn(
          { effectId: effect.id, err: (err as Error)?.message },
          "effect delivery failed; will retry",
        );
      };
      if (effect.t === "send" && this.intake && (effect.lane === "intake" || this.heldFor.has(effect.to))) {
        const gate = this.intake;
        this.holdForAdmission(
          gate,
          effect.to,
          () => this.deliverSend(effect, done, failed),
          () => this.effectsInFlight.delete(effect.id),
        );
      } else if (effect.t === "send") this.deliverSend(effect, done, failed);
      else {
        const expand = this.expansionOf(effect);
        if (expand) this.deliverExpansion(effect, expand, done, failed);
        else this.runHandler(effect, done, failed);
      }
    }
  }

  /**
   * Queues a delivery behind admission control. A send to an actor whose
   * creation is still held queues too, behind it: a task's kill must not reach
   * a job before the job exists, or the job would be created after and live on.
   */
  private holdForAdmission(gate: IntakeGate, target: ActorKey, deliver: () => void, drop: () => void): void {
    this.heldFor.set(target, (this.heldFor.get(target) ?? 0) + 1);
    const leave = () => {
      const left = (this.heldFor.get(target) ?? 1) - 1;
      if (left > 0) this.heldFor.set(target, left);
      else this.heldFor.delete(target);
    };
    gate.hold(
      () => {
        leave();
        deliver();
      },
      () => {
        leave();
        drop();
      },
    );
  }

  private expansionOf(effect: Extract<EffectPayload, { t: "emit" }>): IntakeExpander | undefined {
    const { kind } = parseActorKey(effect.from);
    return this.registry.has(kind) ? this.registry.get(kind).expansions?.[effect.effect] : undefined;
  }

  /**
   * Delivers an effect that stands for many sends creating new work (see
   * `IntakeExpander`): each send waits for admission and is built only then.
   * The effect is acknowledged once every send's fate is committed; if one
   * fails or the gate drops it, the effect stays in the outbox and its
   * redelivery repeats every send, the applied ones dropped as duplicates.
   */
  private deliverExpansion(
    effect: Extract<EffectPayload, { t: "emit" }>,
    expand: IntakeExpander,
    done: () => Promise<void>,
    failed: (err: unknown) => void,
  ): void {
    let expansion: IntakeExpansion;
    try {
      expansion = expand(effect.data, effect.id);
    } catch (err) {
      failed(err);
      return;
    }
    const { targets } = expansion;
    let left = targets.length;
    if (left === 0) {
      done().catch(failed);
      return;
    }
    let gaveUp = false;
    const giveUp = (err: unknown) => {
      if (gaveUp) return;
      gaveUp = true;
      failed(err);
    };
    const settled = () => {
      left--;
      return left === 0 && !gaveUp ? done() : Promise.resolve();
    };
    const send = (index: number, to: ActorKey) => {
      const { event, eventId } = expansion.build(index);
      this.deliverSend(
        { t: "send", id: eventId, from: effect.from, to, e: event as AnyEvent, lane: "intake" },
        settled,
        giveUp,
      );
    };
    for (let index = 0; index < targets.length; index++) {
      const to = actorKeyOf(targets[index]!);
      if (!this.intake) send(index, to);
      else
        this.holdForAdmission(
          this.intake,
          to,
          () => send(index, to),
          () => {
            if (gaveUp) return;
            gaveUp = true;
            this.effectsInFlight.delete(effect.id);
          },
        );
    }
  }

  private deliverSend(
    effect: Extract<EffectPayload, { t: "send" }>,
    done: () => Promise<void>,
    failed: (err: unknown) => void,
  ): void {
    const shard = shardOf(effect.to, this.shardCount);
    const host = this.hosts.get(shard);
    const cause = `effect:${effect.from}`;
    if (host?.accepting) {
      host.enqueue({
        actor: effect.to,
        event: effect.e,
        eventId: effect.id,
        dedupe: true,
        ack: null,
        cause,
        waiter: {
          resolve: () => {},
          // A refusal is committed and final; only a lost shard or conflicts leave it to a retry.
          reject: (err) => {
            if (err instanceof RuntimeError && (err.code === "SHARD_LOST" || err.code === "CONFLICT"))
              failed(err);
          },
        },
        onSettled: () => void done().catch(failed),
        attempts: 0,
      });
      return;
    }
    this.inboxAppends
      .add(shard, { eventId: effect.id, payload: encode({ a: effect.to, e: effect.e, c: cause }) })
      .then(done)
      .catch(failed);
  }

  private runHandler(
    effect: Extract<EffectPayload, { t: "emit" }>,
    done: () => Promise<void>,
    failed: (err: unknown) => void,
  ): void {
    const handler = this.handlers.get(effect.effect);
    if (!handler) {
      this.effectsInFlight.delete(effect.id);
      if (!this.unhandledWarned.has(effect.effect)) {
        this.unhandledWarned.add(effect.effect);
        this.log.warn({ effect: effect.effect }, "no handler for effect; it stays in the outbox");
      }
      return;
    }
    Promise.resolve()
      .then(() =>
        handler(effect.data, { from: parseActorKey(effect.from), effectId: effect.id, runtime: this }),
      )
      .then(done)
      .catch(failed);
  }
}
