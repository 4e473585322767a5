/**
 * Hosts the actors of one shard on this node while it holds the shard's
 * lease: a serial mailbox per actor and group commit of everything that
 * queued up while the previous commit was in flight. Durable timers
 * (`TimerWake`) and the inbox (`InboxDrain`) feed the same mailboxes;
 * `BatchPlanner` turns a batch into records.
 */
import { FencedError } from "../store/errors.js";
import type { ActorKey, CommitBatch, CommitOutcome, Fence, Store } from "../store/types.js";
import { ActorSlots } from "./actor-slots.js";
import { BatchPlanner } from "./batch-planner.js";
import type { Clock, TimerHandle } from "./clock.js";
import { ackOf, type Delivery, failDelivery, shardLost, tell } from "./delivery.js";
import { RuntimeError } from "./errors.js";
import { InboxDrain } from "./inbox-drain.js";
import type { IndexMirror } from "./index-mirror.js";
import type { InlineEffectHandler } from "./inline-effects.js";
import type { KindRegistry } from "./kinds.js";
import type { Logger } from "./logger.js";
import type { PlannedRecord, PlannedStep } from "./record-builder.js";
import type { EffectPayload } from "./records.js";
import { type CommittedTransition, settleBatch } from "./settle-batch.js";
import { loadShardIndexes } from "./shard-indexes.js";
import type { LiveActor } from "./step.js";
import { TimerWake } from "./timer-wake.js";

export type { Delivery, SendResult } from "./delivery.js";
export type { InlineEffectHandler, InlineOutcome } from "./inline-effects.js";
export type { CommittedTransition } from "./settle-batch.js";

export interface ShardHostConfig {
  historyCap: number;
  dedupeWindowMs: number;
  maxBatchRecords: number;
  maxCommitAttempts: number;
  idleEvictMs: number;
  maxResidentActors: number;
}

export interface ShardHostDeps {
  store: Store;
  registry: KindRegistry;
  clock: Clock;
  log: Logger;
  config: ShardHostConfig;
  /** The node's copy of its shards' indexes and counters: loaded at start, changed by each commit. */
  mirror: IndexMirror;
  /** Commits a batch of this shard (the node groups every shard's batches into few store calls). */
  commit(batch: CommitBatch): Promise<CommitOutcome[]>;
  /** The inline handler of an emitted effect, if it has one. */
  inlineHandler(effect: string): InlineEffectHandler | undefined;
  /** Delivers committed effects (the runtime routes them and acknowledges the outbox). */
  deliverEffects(shard: number, effects: EffectPayload[]): void;
  /** The store refused our fence: the runtime must drop this shard. */
  onFenced(shard: number): void;
  onCommit?(shard: number, records: number, durationMs: number): void;
  /** Every transition (or recorded refusal) once committed, in commit order. */
  onTransitions?(transitions: CommittedTransition[]): void;
}

/** How often a shard's commits forget the dedupe ids seen before the window. */
const SEEN_TRIM_EVERY_MS = 1000;
/** How soon a commit that failed (not fenced) is tried again. */
const COMMIT_RETRY_MS = 100;

export class ShardHost {
  private readonly slots: ActorSlots;
  private readonly mailboxes = new Map<ActorKey, Delivery[]>();
  private readonly timers: TimerWake;
  private readonly inbox: InboxDrain;
  private readonly planner: BatchPlanner;
  private committing: Promise<void> | null = null;
  private pumpScheduled = false;
  private retryHandle: TimerHandle | null = null;
  private lastSeenTrimMs = Number.NEGATIVE_INFINITY;
  private stopped = false;
  /**
   * A commit failed without an answer (a cut connection, a failed-over
   * master, a write short of its replicas): it may have landed, so the
   * shard's indexes in the mirror may be behind the store. Read again before
   * the next commit.
   */
  private indexesBehind = false;
  /** The inbox backlog found at takeover is in the mailboxes. */
  private started = false;
  /**
   * Direct sends made before that: a send made now may be caused by an event
   * queued earlier (a create another actor's message relies on), so it waits
   * to join the mailboxes behind the backlog.
   */
  private heldUntilStarted: Delivery[] = [];

  constructor(
    readonly shard: number,
    readonly fence: Fence,
    private readonly deps: ShardHostDeps,
  ) {
    this.slots = new ActorSlots(shard, deps.store, deps.registry);
    const admit = (delivery: Delivery) => this.admit(delivery);
    this.timers = new TimerWake({ shard, store: deps.store, clock: deps.clock, log: deps.log, admit });
    this.inbox = new InboxDrain({ shard, store: deps.store, log: deps.log, admit });
    this.planner = new BatchPlanner({
      registry: deps.registry,
      log: deps.log,
      historyCap: deps.config.historyCap,
      encodesLazily: deps.store.encodesLazily === true,
      inlineHandler: deps.inlineHandler,
    });
  }

  get accepting(): boolean {
    return !this.stopped;
  }

  get residentActors(): number {
    return this.slots.size;
  }

  /**
   * The actor as this host last committed it, when it is resident: a slot is
   * updated only once its commit is acknowledged, so this is committed state,
   * never a batch's working copy. Undefined when the host does not hold it.
   */
  committedState(actor: ActorKey): LiveActor | undefined {
    return this.slots.get(actor)?.live ?? undefined;
  }

  /**
   * Lets go of an actor this host holds in memory, unless it has events
   * queued or a commit is in flight (false then: try again later).
   */
  retire(actor: ActorKey): boolean {
    if (this.committing || this.mailboxes.has(actor)) return false;
    this.slots.delete(actor);
    return true;
  }

  /**
   * Nothing queued, scheduled or in flight here (timers that are not yet due
   * aside): a simulation waits for every shard to be idle before it moves its
   * virtual clock on.
   */
  get idle(): boolean {
    return !this.pumpScheduled && this.committing === null && this.mailboxes.size === 0 && !this.inbox.busy;
  }

  /** Actors with events waiting for a commit: what admission control watches besides the loop's delay. */
  get backlog(): number {
    return this.mailboxes.size;
  }

  /** Starts hosting: picks up durable timers and queued inbox events left by any earlier owner. */
  async start(): Promise<void> {
    await loadShardIndexes(this.deps, this.shard, this.fence, () => this.stopped);
    await this.timers.refresh();
    await this.inbox.drain(true);
    this.started = true;
    const held = this.heldUntilStarted;
    this.heldUntilStarted = [];
    for (const delivery of held) this.admit(delivery);
  }

  /** A direct send: into its mailbox, behind the backlog of the previous owner once that is read. */
  enqueue(delivery: Delivery): void {
    if (!this.started && !this.stopped) this.heldUntilStarted.push(delivery);
    else this.admit(delivery);
  }

  private admit(delivery: Delivery): void {
    if (this.stopped) {
      failDelivery(delivery, shardLost(this.shard, "is no longer hosted here"));
      return;
    }
    let mailbox = this.mailboxes.get(delivery.actor);
    if (!mailbox) {
      mailbox = [];
      this.mailboxes.set(delivery.actor, mailbox);
    }
    mailbox.push(delivery);
    this.schedulePump();
  }

  /** New events were appended to this shard's inbox somewhere. */
  inboxNotified(): void {
    void this.inbox.drain(false);
  }

  /** Periodic safety net: re-reads the whole inbox and the timer schedule, evicts idle actors. */
  async sweep(): Promise<void> {
    if (this.stopped) return;
    await this.inbox.drain(true);
    await this.timers.refresh();
    this.evictIdle();
  }

  /**
   * Stops hosting. Returns the deliveries still queued: those from the store
   * (inbox, timers) stay there for the next owner, the runtime decides about
   * the others.
   */
  async stop(): Promise<Delivery[]> {
    this.stopped = true;
    this.timers.stop();
    this.inbox.stop();
    if (this.retryHandle) this.deps.clock.clearTimer(this.retryHandle);
    await this.committing?.catch(() => {});
    const orphaned: Delivery[] = this.heldUntilStarted;
    this.heldUntilStarted = [];
    for (const mailbox of this.mailboxes.values()) orphaned.push(...mailbox);
    this.mailboxes.clear();
    this.slots.clear();
    this.deps.mirror.drop(this.shard);
    return orphaned;
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.committing || this.stopped) return;
    this.pumpScheduled = true;
    // setImmediate lets every event that arrives in this turn join one commit.
    setImmediate(() => {
      this.pumpScheduled = false;
      if (this.committing || this.stopped || this.retryHandle) return;
      this.committing = this.commitBatch().finally(() => {
        this.committing = null;
        if (this.mailboxes.size > 0) this.schedulePump();
      });
    });
  }

  /** Takes the head of every mailbox, up to the batch limit, in mailbox order per actor. */
  private takeBatch(): Delivery[] {
    const batch: Delivery[] = [];
    for (const [actor, mailbox] of this.mailboxes) {
      const room = this.deps.config.maxBatchRecords - batch.length;
      if (room <= 0) break;
      const taken = mailbox.splice(0, room);
      batch.push(...taken);
      if (mailbox.length === 0) this.mailboxes.delete(actor);
    }
    return batch;
  }

  private requeueFront(deliveries: Delivery[]): void {
    const byActor = new Map<ActorKey, Delivery[]>();
    for (const d of deliveries) {
      const list = byActor.get(d.actor) ?? [];
      list.push(d);
      byActor.set(d.actor, list);
    }
    for (const [actor, list] of byActor) {
      const rest = this.mailboxes.get(actor) ?? [];
      this.mailboxes.delete(actor);
      this.mailboxes.set(actor, [...list, ...rest]);
    }
  }

  private async commitBatch(): Promise<void> {
    const batch = this.takeBatch();
    if (batch.length === 0) return;
    const { clock, config } = this.deps;
    const startedMs = performance.now();
    let assumed: ActorKey[] = [];
    try {
      if (this.indexesBehind) {
        await loadShardIndexes(this.deps, this.shard, this.fence, () => this.stopped);
        this.indexesBehind = false;
      }
      assumed = await this.slots.load(batch, clock.nowMs());
      const nowMs = clock.nowMs();
      const { steps, records } = this.planner.plan(batch, this.slots, nowMs);
      // Seen ids past the window are forgotten now and then, not by every commit: a trim costs a command.
      const trimSeen = nowMs - this.lastSeenTrimMs >= SEEN_TRIM_EVERY_MS || nowMs < this.lastSeenTrimMs;
      const outcomes =
        records.length > 0
          ? await this.deps.commit({
              shard: this.shard,
              fence: this.fence,
              records: records.map((r) => r.record),
              options: { nowMs, dedupeWindowMs: config.dedupeWindowMs, trimSeen },
            })
          : [];
      if (trimSeen && records.length > 0) this.lastSeenTrimMs = nowMs;
      this.deps.onCommit?.(this.shard, records.length, performance.now() - startedMs);
      this.settle(steps, records, outcomes);
      this.slots.forgetAssumed(assumed);
    } catch (err) {
      this.slots.forgetAssumed(assumed);
      // Inline answers planned into the batch go with it: a retried cause asks for them again.
      const own = batch.filter((d) => {
        tell(d, false, null);
        return d.source.kind !== "inline";
      });
      if (err instanceof FencedError) {
        for (const d of own) failDelivery(d, new RuntimeError("SHARD_LOST", err.message));
        this.deps.onFenced(this.shard);
        return;
      }
      // The write may have landed with its answer lost: the batch's actors and the shard's indexes are
      // read again from the store, so the retry sees its own landed write (as a duplicate) rather than
      // planning over a state that moved and leaving the mirror behind (a job still queued that was sent).
      for (const d of batch) this.slots.delete(d.actor);
      this.indexesBehind = true;
      this.deps.log.warn({ shard: this.shard, err: (err as Error).message }, "commit failed; retrying");
      this.requeueFront(own);
      this.retryHandle = clock.setTimer(() => {
        this.retryHandle = null;
        this.schedulePump();
      }, COMMIT_RETRY_MS);
    }
  }

  /** Settles a committed batch, then passes on what it committed and queues again what must be retried. */
  private settle(steps: PlannedStep[], records: PlannedRecord[], outcomes: CommitOutcome[]): void {
    const settled = settleBatch(steps, records, outcomes, {
      slots: this.slots,
      applyProjections: (record) => this.deps.mirror.apply(this.shard, record.index, record.counters),
      release: (delivery) => this.release(delivery),
      maxCommitAttempts: this.deps.config.maxCommitAttempts,
    });
    if (settled.retry.length > 0) this.requeueFront(settled.retry);
    if (settled.transitions.length > 0) this.deps.onTransitions?.(settled.transitions);
    if (settled.effects.length > 0) this.deps.deliverEffects(this.shard, settled.effects);
    if (settled.timerFired) void this.timers.refresh();
    else if (settled.earliestArmedMs !== null) this.timers.arm(settled.earliestArmedMs);
  }

  /** Forgets that a store-originated delivery is in progress, so a sweep may pick it up again. */
  private release(delivery: Delivery): void {
    const ack = ackOf(delivery.source);
    if (ack?.kind === "inbox") this.inbox.release(ack.eventId);
    else if (ack?.kind === "timer") this.timers.release(ack.fireId);
  }

  private evictIdle(): void {
    // Actors of a batch in flight are out of their mailboxes but still in use.
    if (this.committing) return;
    const { idleEvictMs, maxResidentActors } = this.deps.config;
    this.slots.evict(this.deps.clock.nowMs(), idleEvictMs, maxResidentActors, (actor) =>
      this.mailboxes.has(actor),
    );
  }
}
