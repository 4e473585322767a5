/**
 * A runtime node: owns a share of the shards through fenced leases
 * (`LeaseKeeper`), hosts their actors (`ShardHost`), routes events and
 * effects (`EffectRouter`), and lets anyone inspect any actor. This class is
 * the facade the rest of the system uses.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { ActorKey, Fence, IndexEntry, Store } from "../store/types.js";
import { ActorReads } from "./actor-reads.js";
import { type ActorRef, actorKeyOf, shardOf } from "./actor-ref.js";
import { type Clock, systemClock, type TimerHandle } from "./clock.js";
import { CommitFeed, type CommitObserver, type TransitionListener } from "./commit-feed.js";
import { awaitsSender, failDelivery, resolveDelivery, type SendResult, shardLost } from "./delivery.js";
import { type EffectHandler, EffectRouter } from "./effect-router.js";
import { RuntimeError, type RuntimeErrorCode, refusalError } from "./errors.js";
import { acceptEvent } from "./event-check.js";
import { GridReads } from "./grid-reads.js";
import { GroupCommitter } from "./group-commit.js";
import { IndexMirror } from "./index-mirror.js";
import type { InlineEffectHandler } from "./inline-effects.js";
import { type AdmittedWork, IntakeGate } from "./intake-gate.js";
import type { KindRegistry } from "./kinds.js";
import { LeaseKeeper, type ShardRelease } from "./lease-keeper.js";
import { type Logger, silentLogger } from "./logger.js";
import { pollWithBackoff } from "./poll-with-backoff.js";
import type { AnyEvent } from "./records.js";
import {
  type ActorView,
  checkShardCount,
  RUNTIME_DEFAULTS,
  type RuntimeOptions,
  type RuntimeStats,
  type SendOptions,
  shardHostConfigOf,
} from "./runtime-options.js";
import { type CommittedTransition, ShardHost, type ShardHostConfig } from "./shard-host.js";
import type { LiveActor } from "./step.js";

export type { EffectContext, EffectHandler } from "./effect-router.js";
export type { ActorView, RuntimeOptions, RuntimeStats, SendOptions } from "./runtime-options.js";

export class Runtime {
  readonly nodeId: string;
  readonly shardCount: number;
  /** How long a dead node's shards wait before another node takes them. */
  readonly leaseMs: number;
  readonly store: Store;
  readonly registry: KindRegistry;
  readonly clock: Clock;
  private readonly log: Logger;
  private readonly sweepEveryMs: number;
  private readonly hostConfig: ShardHostConfig;
  private readonly clientOnly: boolean;
  private readonly hosts = new Map<number, ShardHost>();
  /** The committed indexes and counters of the shards this node owns (see `IndexMirror`). */
  readonly local = new IndexMirror();
  private readonly committer: GroupCommitter;
  private readonly effects: EffectRouter;
  private readonly leases: LeaseKeeper;
  private readonly reads: GridReads;
  private readonly actorReads: ActorReads;
  private sweepTimer: TimerHandle | null = null;
  private unsubscribe: (() => Promise<void>) | null = null;
  private running = false;
  private readonly feed = new CommitFeed();
  private readonly intake: IntakeGate | null;

  constructor(options: RuntimeOptions) {
    this.store = options.store;
    this.registry = options.registry;
    this.shardCount = options.shardCount ?? RUNTIME_DEFAULTS.shardCount;
    this.nodeId = options.nodeId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? silentLogger;
    const leaseMs = options.leaseMs ?? RUNTIME_DEFAULTS.leaseMs;
    this.leaseMs = leaseMs;
    this.sweepEveryMs = options.sweepEveryMs ?? RUNTIME_DEFAULTS.sweepEveryMs;
    this.clientOnly = options.clientOnly ?? false;
    this.hostConfig = shardHostConfigOf(options);
    checkShardCount(this.shardCount);
    this.intake =
      options.intake === false
        ? null
        : new IntakeGate(options.intake ?? {}, () => {
            let waiting = 0;
            for (const host of this.hosts.values()) waiting += host.backlog;
            return waiting;
          });
    this.committer = new GroupCommitter(this.store, options.maxCommitsInFlight ?? 2);
    this.effects = new EffectRouter({
      store: this.store,
      registry: this.registry,
      log: this.log,
      shardCount: this.shardCount,
      runtime: this,
      hostOf: (shard) => this.hosts.get(shard),
      intake: this.intake,
      ackOutboxAfterMs: options.ackOutboxAfterMs ?? 0,
    });
    this.leases = new LeaseKeeper({
      store: this.store,
      clock: this.clock,
      log: this.log,
      nodeId: this.nodeId,
      shardCount: this.shardCount,
      leaseMs,
      renewEveryMs: options.renewEveryMs ?? Math.max(50, Math.floor(leaseMs / 3)),
      held: () => this.hosts,
      host: (shard, fence) => this.hostShard(shard, fence),
      drop: (shard, release) => this.dropShard(shard, release),
    });
    this.actorReads = new ActorReads({
      store: this.store,
      registry: this.registry,
      shardCount: this.shardCount,
      resident: (shard, actor) => this.hosts.get(shard)?.committedState(actor),
    });
    this.reads = new GridReads({
      store: this.store,
      local: this.local,
      shardCount: this.shardCount,
      owns: (shard) => this.hosts.has(shard),
      ownedCount: () => this.hosts.size,
    });
  }

  /** Joins the cluster of nodes: takes this node's share of shards before resolving. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    if (this.clientOnly) return;
    this.unsubscribe = await this.store.subscribeInbox((shard) => this.hosts.get(shard)?.inboxNotified());
    await this.leases.start();
    this.scheduleSweep();
  }

  /** Leaves cleanly: finishes commits in flight, gives up every shard at once, forgets this node. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.sweepTimer) this.clock.clearTimer(this.sweepTimer);
    await this.leases.stop();
    // What the gate holds is in the outbox: the next owner of each shard delivers it.
    this.intake?.clear();
    // Delivered effects' acknowledgements still gathering: written while the shards are still ours.
    await this.effects.flushAcks();
    await Promise.all([...this.hosts.keys()].map((shard) => this.dropShard(shard, "handover")));
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
    this.effects.onEffect(effect, handler, options.inline);
  }

  /** Observes every group commit (metrics, benchmarks). */
  onCommit(observer: CommitObserver): () => void {
    return this.feed.onCommit(observer);
  }

  /** Hears every transition committed on this node (live monitors, tests awaiting a state). */
  onTransitions(listener: TransitionListener): () => void {
    return this.feed.onTransitions(listener);
  }

  /** Resolves with the first committed transition of `ref` for which `predicate` holds. */
  waitForTransition(
    ref: ActorRef,
    predicate: (t: CommittedTransition) => boolean,
  ): Promise<CommittedTransition> {
    return this.feed.waitForTransition(ref, predicate);
  }

  /**
   * True when no shard has events queued or a commit in flight and no store
   * write is batching: with an in-process store and a virtual clock, nothing
   * more happens until a timer is due. Simulations use it to know when they
   * may move time on.
   */
  isQuiescent(): boolean {
    if (!this.effects.idle || !this.committer.idle) return false;
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
      ...this.feed.counts,
      effectsDelivered: this.effects.effectsDelivered,
      commitCalls: this.committer.stats.calls,
      intake: this.intake?.stats() ?? null,
    };
  }

  /** What admission control watches of the work it admitted (see `IntakeGate.watchQueue`). */
  watchIntakeQueue(queue: AdmittedWork): void {
    this.intake?.watchQueue(queue);
  }

  /** Work-creating deliveries this node holds back for admission: what a new submission queues behind. */
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
      parsed = options.trusted ? (event as AnyEvent) : acceptEvent(this.registry.get(ref.kind), actor, event);
    } catch (err) {
      return Promise.reject(err);
    }
    if (!this.running) return Promise.reject(new RuntimeError("STOPPED", "runtime is not running"));
    const shard = shardOf(actor, this.shardCount);
    const cause = options.cause ?? "send";
    const eventId = options.eventId ?? randomUUID();
    const host = this.hosts.get(shard);
    if (host?.accepting) {
      return new Promise<SendResult>((resolve, reject) => {
        host.enqueue({
          actor,
          event: parsed,
          eventId,
          cause,
          source: { kind: "send", dedupe: options.eventId !== undefined, waiter: { resolve, reject } },
          attempts: 0,
        });
      });
    }
    // A shard another node owns: appended to its inbox, for its owner to apply.
    return this.effects.appendInbox(shard, actor, parsed, cause, eventId).then(() => QUEUED);
  }

  /**
   * `send`, answered only once the event is applied, wherever the actor's
   * shard is: on another node's shard, once that node has committed it (its
   * id is in the actor's history; read with backoff, for as long as a
   * takeover may take by default). For callers whose next request reads what
   * this one wrote, maybe through another node (an API write): read your
   * writes. A refusal there rejects as it would here; a wait that runs out
   * answers `queued` (the event is durable in the inbox and will apply).
   */
  async sendApplied(
    ref: ActorRef,
    event: unknown,
    options: SendOptions = {},
    waitMs = 2 * this.leaseMs + 1000,
  ): Promise<SendResult> {
    const eventId = options.eventId ?? randomUUID();
    const result = await this.send(ref, event, { ...options, eventId });
    if (result.outcome !== "queued") return result;
    const poll = { firstMs: APPLIED_FIRST_POLL_MS, maxMs: APPLIED_MAX_POLL_MS, waitMs };
    const entry = await pollWithBackoff(
      this.clock,
      poll,
      async () => (await this.actorReads.entryOf(ref, eventId, APPLIED_LOOK_BACK)) ?? undefined,
    );
    if (!entry) return result;
    if (entry.refused) throw refusalError(entry.refused.code as RuntimeErrorCode, entry.refused.message);
    return { outcome: "applied" };
  }

  /**
   * Counters (see the machines' `count` action) summed over every shard,
   * those whose name starts with `prefix`: exact as of each shard's last
   * commit, from any node.
   */
  readCounters(prefix = ""): Promise<Map<string, number>> {
    return this.reads.counters(prefix);
  }

  /**
   * Every shard's counters whose names start with `prefix`, summed, from
   * this node's memory: null unless it owns every shard (then the mirror
   * holds them whole, as committed).
   */
  localCounters(prefix = ""): Map<string, number> | null {
    return this.reads.localCounters(prefix);
  }

  /** True when this node owns every shard: `local` then holds every index and counter whole. */
  ownsAllShards(): boolean {
    return this.reads.ownsAllShards();
  }

  /** True when `local.counter` is the grid's count: this node owns and has loaded every shard. */
  holdsAllCounters(): boolean {
    return this.reads.holdsAllCounters();
  }

  /** An index over every shard, lowest score first (see `GridReads`): not for hot paths. */
  readIndex(key: string, offset: number, limit: number): Promise<IndexEntry[]> {
    return this.reads.index(key, offset, limit);
  }

  /** Members of an index over every shard (see `readIndex`). */
  indexSize(key: string): Promise<number> {
    return this.reads.indexSize(key);
  }

  /** Zero-based position of a member in an index over every shard, or null when absent. */
  indexRank(key: string, member: string): Promise<number | null> {
    return this.reads.indexRank(key, member);
  }

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

  /**
   * The actor's committed state when this node hosts it in memory, else
   * undefined: what an inline effect handler may read, synchronously, while
   * a commit is being planned.
   */
  residentState(ref: ActorRef): LiveActor["state"] | undefined {
    return this.actorReads.resident(ref);
  }

  /**
   * An actor's state as committed. `resident` accepts the copy this node
   * holds for a shard it owns (what its last commit wrote, read without a
   * round trip or a decode); a node that lost the shard without knowing yet
   * may answer from before the new owner's commits, so it is for readers
   * that weigh state, like brokerage, not for a decision an actor arbitrates.
   * The context is shared: callers must not change it.
   */
  readState(ref: ActorRef, options: { resident?: boolean } = {}): Promise<Omit<ActorView, "history"> | null> {
    return this.actorReads.state(ref, options.resident === true);
  }

  /** Reads any actor's state and recent history straight from the store, from any node. */
  inspect(ref: ActorRef, historyLimit = 1000): Promise<ActorView | null> {
    return this.actorReads.inspect(ref, historyLimit);
  }

  private scheduleSweep(): void {
    if (!this.running) return;
    this.sweepTimer = this.clock.setTimer(() => {
      void this.sweep().finally(() => this.scheduleSweep());
    }, this.sweepEveryMs);
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
      inlineHandler: (effect) => this.effects.inlineHandler(effect),
      deliverEffects: (from, effects) => this.effects.deliver(from, effects),
      onFenced: (s) => {
        this.log.warn({ shard: s, epoch: fence.epoch }, "commit fenced: shard taken by another node");
        void this.dropShard(s, "lost");
      },
      onTransitions: (transitions) => this.feed.transitions(transitions),
      onCommit: (s, records, durationMs) => this.feed.committed(s, records, durationMs),
    });
    this.hosts.set(shard, host);
    this.log.info({ shard, epoch: fence.epoch }, "shard acquired");
    await host.start();
    await this.effects.redeliverOutbox(shard);
  }

  /**
   * Stops hosting a shard. A handover passes pending sends to the durable
   * inbox for the next owner and releases the lease at once; a lost shard
   * rejects them (their commit was refused) and releases nothing. Deliveries
   * that came from the store stay there either way.
   */
  private async dropShard(shard: number, release: ShardRelease): Promise<void> {
    const host = this.hosts.get(shard);
    if (!host) return;
    this.hosts.delete(shard);
    const orphaned = await host.stop();
    for (const d of orphaned) {
      if (!awaitsSender(d)) continue;
      if (release === "lost") {
        failDelivery(d, shardLost(shard, "was taken by another node"));
        continue;
      }
      this.effects.appendInbox(shard, d.actor, d.event, d.cause, d.eventId).then(
        () => resolveDelivery(d, QUEUED),
        (err: unknown) => failDelivery(d, err instanceof RuntimeError ? err : shardLost(shard, String(err))),
      );
    }
    if (release === "handover") await this.store.releaseLease(shard, host.fence).catch(() => {});
  }

  private async sweep(): Promise<void> {
    await Promise.all(
      [...this.hosts.values()].map(async (host) => {
        await host.sweep();
        await this.effects.redeliverOutbox(host.shard);
      }),
    ).catch((err: unknown) => this.log.warn({ err: (err as Error).message }, "sweep failed"));
  }
}

const QUEUED: SendResult = { outcome: "queued" };
/** `sendApplied` reads the actor's history after this, then twice as long each time, up to the max. */
const APPLIED_FIRST_POLL_MS = 5;
const APPLIED_MAX_POLL_MS = 200;
/** How far back in the history the event is looked for: events of others may have followed it. */
const APPLIED_LOOK_BACK = 64;
