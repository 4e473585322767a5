import { FencedError } from "../store/errors.js";
import type {
  ActorKey,
  CommitBatch,
  CommitOutcome,
  CommitRecord,
  CounterDelta,
  DeferredSnapshot,
  DeliveryAck,
  Encoder,
  Fence,
  IndexOp,
  Store,
  TimerEntry,
} from "../store/types.js";
import { parseActorKey } from "./actor-ref.js";
import type { Clock, TimerHandle } from "./clock.js";
import type { MachineState } from "./compiled-machine.js";
import { RuntimeError } from "./errors.js";
import type { IndexMirror } from "./index-mirror.js";
import { DEFAULT_CREATE_EVENT, type KindDefinition, type KindRegistry } from "./kinds.js";
import type { Logger } from "./logger.js";
import { ProjectionTotals, projectionChanges, projectionOf } from "./projections.js";
import {
  type AnyEvent,
  decodeInboxPayload,
  decodeTimerPayload,
  type EffectPayload,
  encodeEffectPayload,
  encodeHistoryEntry,
  type HistoryEntry,
} from "./records.js";
import { encodeSnapshotParts, type LiveActor, netChanges, restore, type StepResult, step } from "./step.js";

/** What a `send` resolved to. A refused event rejects with a `RuntimeError` instead. */
export type SendResult =
  | { outcome: "committed"; version: number; state: LiveActor["state"] }
  | { outcome: "duplicate" }
  | { outcome: "stale" }
  | { outcome: "queued" };

interface Waiter {
  resolve(result: SendResult): void;
  reject(err: unknown): void;
}

/** One event on its way into one actor of this shard. */
export interface Delivery {
  actor: ActorKey;
  event: AnyEvent;
  eventId: string;
  /** Remember the id so a redelivery is dropped (events that may arrive twice). */
  dedupe: boolean;
  ack: DeliveryAck | null;
  cause: string;
  waiter: Waiter | null;
  /** Called once the event's fate is committed (applied, refused or found duplicate). */
  onSettled?: () => void;
  attempts: number;
  /** Commit this event in a record of its own: it was part of a record the store split. */
  solo?: boolean;
  /**
   * An inline effect's answer (see `InlineEffectHandler`): planned right
   * after the event that caused it, in the same record, never retried on its
   * own (a retried cause asks the handler again).
   */
  inline?: true;
  /** Told once whether the record this delivery was planned into committed, with the actor's state after it. */
  afterCommit?: ((committed: boolean, state: MachineState | null) => void)[];
}

/** Tells a delivery's `afterCommit` listeners how its planned record ended, once. */
function tell(delivery: Delivery, committed: boolean, state: MachineState | null): void {
  const listeners = delivery.afterCommit;
  if (!listeners) return;
  delivery.afterCommit = undefined;
  for (const listener of listeners) listener(committed, state);
}

/**
 * An effect answered during planning, before the commit: the handler looks
 * at what it needs in memory and answers with events to the actor that
 * emitted the effect, which join that actor's record. The effect is then
 * never written to the outbox: its consequence commits atomically with its
 * cause. `handled: false` leaves the effect to its ordinary, durable path.
 */
export type InlineEffectHandler = (
  data: unknown,
  context: { from: ActorKey; effectId: string; nowMs: number },
) => InlineOutcome;

export type InlineOutcome =
  | { handled: false }
  | {
      handled: true;
      /** Events to the emitting actor, applied right after the event that emitted the effect. */
      events?: AnyEvent[];
      /**
       * Called once those events' record committed (true, with the actor's
       * state after it) or did not (false: a conflict, a refusal, a lost shard).
       */
      settled?: (committed: boolean, state: MachineState | null) => void;
    };

/** An actor of this shard as held in memory: alive, absent (version 0) or unreadable. */
interface Slot {
  live: LiveActor | null;
  /** Set when the stored snapshot cannot be restored; events are refused with this error. */
  broken: { version: number; error: RuntimeError } | null;
  lastUsedMs: number;
}

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

export interface CommittedTransition {
  actor: ActorKey;
  entry: HistoryEntry;
  /** The actor's state after the event; null when it is unreadable. */
  state: LiveActor["state"] | null;
}

const INBOX_PAGE = 512;
/** How often a shard's commits forget the dedupe ids seen before the window. */
const SEEN_TRIM_EVERY_MS = 1000;
const TIMER_PAGE = 512;

/**
 * Hosts the actors of one shard on this node while it holds the shard's
 * lease: a serial mailbox per actor, group commit of everything that queued up
 * while the previous commit was in flight, durable timers and the inbox.
 */
export class ShardHost {
  private readonly slots = new Map<ActorKey, Slot>();
  private readonly mailboxes = new Map<ActorKey, Delivery[]>();
  private readonly inboxPending = new Set<string>();
  private readonly timersPending = new Set<string>();
  private inboxCursor = 0;
  private inboxDraining: Promise<void> | null = null;
  private inboxDirty = false;
  private committing: Promise<void> | null = null;
  private pumpScheduled = false;
  private timerWake: { atMs: number; handle: TimerHandle } | null = null;
  private retryHandle: TimerHandle | null = null;
  private lastSeenTrimMs = Number.NEGATIVE_INFINITY;
  private stopped = false;
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
  ) {}

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
    return (
      !this.pumpScheduled &&
      this.committing === null &&
      this.mailboxes.size === 0 &&
      this.inboxDraining === null
    );
  }

  /** Actors with events waiting for a commit: what admission control watches besides the loop's delay. */
  get backlog(): number {
    return this.mailboxes.size;
  }

  /** Starts hosting: picks up durable timers and queued inbox events left by any earlier owner. */
  async start(): Promise<void> {
    await this.loadIndexes();
    await this.refreshTimerWake();
    await this.drainInbox(true);
    this.started = true;
    const held = this.heldUntilStarted;
    this.heldUntilStarted = [];
    for (const delivery of held) this.admit(delivery);
  }

  /**
   * Brings the shard's indexes up to the kinds' current projection rules
   * (rebuilt from every actor's state when they were written under others),
   * then mirrors them and the counters in memory.
   */
  private async loadIndexes(): Promise<void> {
    const { store, registry, mirror } = this.deps;
    const version = registry.projectionVersion();
    if ((await store.readIndexVersion(this.shard)) !== version) await this.rebuildIndexes(version);
    const [indexes, counters] = await Promise.all([
      store.readIndexes(this.shard),
      store.readCounters(this.shard),
    ]);
    if (this.stopped) return;
    mirror.load(this.shard, indexes, counters);
  }

  /** Recomputes the shard's indexes and projected counters from its actors' stored states. */
  private async rebuildIndexes(version: number): Promise<void> {
    const { store, registry, log } = this.deps;
    const totals = new ProjectionTotals();
    const counterPrefixes = new Set<string>();
    for (const kind of registry.list()) {
      for (const prefix of registry.get(kind).projections?.counterPrefixes ?? []) counterPrefixes.add(prefix);
    }
    let cursor = "0";
    let actors = 0;
    do {
      const page = await store.scanActors(this.shard, cursor, 500);
      cursor = page.cursor;
      const projected = page.actors.filter((actor) => {
        const kind = parseActorKey(actor).kind;
        return registry.has(kind) && registry.get(kind).projections;
      });
      const stored = await store.loadActors(this.shard, projected);
      projected.forEach((actor, i) => {
        const record = stored[i];
        if (!record) return;
        const ref = parseActorKey(actor);
        const definition = registry.get(ref.kind);
        try {
          const live = restore(definition, actor, record.version, record.snapshot, record.constants);
          totals.add(projectionOf(definition, live.state, ref.id));
          actors++;
        } catch (err) {
          log.warn(
            { shard: this.shard, actor, err: (err as Error).message },
            "unreadable actor left out of the indexes",
          );
        }
      });
    } while (cursor !== "0");
    await store.rebuildIndexes(this.shard, this.fence, {
      version,
      indexes: totals.indexes,
      counters: totals.counters,
      counterPrefixes: [...counterPrefixes],
    });
    log.info(
      { shard: this.shard, version, actors },
      "shard indexes rebuilt for the current projection rules",
    );
  }

  /** A direct send: into its mailbox, behind the backlog of the previous owner once that is read. */
  enqueue(delivery: Delivery): void {
    if (!this.started && !this.stopped) this.heldUntilStarted.push(delivery);
    else this.admit(delivery);
  }

  private admit(delivery: Delivery): void {
    if (this.stopped) {
      delivery.waiter?.reject(new RuntimeError("SHARD_LOST", `shard ${this.shard} is no longer hosted here`));
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
    void this.drainInbox(false);
  }

  /** Periodic safety net: re-reads the whole inbox and the timer schedule, evicts idle actors. */
  async sweep(): Promise<void> {
    if (this.stopped) return;
    await this.drainInbox(true);
    await this.refreshTimerWake();
    this.evictIdle();
  }

  /**
   * Stops hosting. Pending direct sends are rejected with SHARD_LOST; events
   * that came from the store (inbox, timers) stay there for the next owner.
   */
  async stop(): Promise<Delivery[]> {
    this.stopped = true;
    if (this.timerWake) this.deps.clock.clearTimer(this.timerWake.handle);
    if (this.retryHandle) this.deps.clock.clearTimer(this.retryHandle);
    this.timerWake = null;
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

  /**
   * Makes a slot for every actor of the batch that has none. An actor whose
   * first event here is its create, tried for the first time, is taken to be
   * new without a read: its record expects version 0, so if it does exist
   * the commit says conflict, and the retry reads it (and refuses the create).
   * A job's creation then costs no read before its commit.
   */
  private async loadSlots(batch: readonly Delivery[]): Promise<ActorKey[]> {
    const nowMs = this.deps.clock.nowMs();
    const missing: ActorKey[] = [];
    const assumed: ActorKey[] = [];
    const seen = new Set<ActorKey>();
    for (const { actor, event, attempts } of batch) {
      if (seen.has(actor)) continue;
      seen.add(actor);
      if (this.slots.has(actor)) continue;
      if (attempts === 0 && event.type === this.createEventOf(actor)) {
        this.slots.set(actor, { live: null, broken: null, lastUsedMs: nowMs });
        assumed.push(actor);
      } else {
        missing.push(actor);
      }
    }
    if (missing.length === 0) return assumed;
    const stored = await this.deps.store.loadActors(this.shard, missing);
    missing.forEach((actor, i) => {
      const record = stored[i] ?? null;
      const slot: Slot = { live: null, broken: null, lastUsedMs: nowMs };
      if (record) {
        try {
          const definition = this.deps.registry.get(parseActorKey(actor).kind);
          slot.live = restore(definition, actor, record.version, record.snapshot, record.constants);
        } catch (err) {
          const error =
            err instanceof RuntimeError ? err : new RuntimeError("CORRUPT_SNAPSHOT", (err as Error).message);
          slot.broken = { version: record.version, error };
        }
      }
      this.slots.set(actor, slot);
    });
    return assumed;
  }

  /** Slots taken to be new that no commit filled: the store was not asked, so they are not known absent. */
  private forgetAssumed(assumed: readonly ActorKey[]): void {
    for (const actor of assumed) if (this.slots.get(actor)?.live === null) this.slots.delete(actor);
  }

  private createEventOf(actor: ActorKey): string {
    const kind = parseActorKey(actor).kind;
    if (!this.deps.registry.has(kind)) return DEFAULT_CREATE_EVENT;
    return this.deps.registry.get(kind).createEvent ?? DEFAULT_CREATE_EVENT;
  }

  private async commitBatch(): Promise<void> {
    const batch = this.takeBatch();
    if (batch.length === 0) return;
    const { clock, config } = this.deps;
    const startedMs = performance.now();
    let assumed: ActorKey[] = [];
    try {
      assumed = await this.loadSlots(batch);
      const nowMs = clock.nowMs();
      const { steps, records } = this.plan(batch, nowMs);
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
      this.forgetAssumed(assumed);
    } catch (err) {
      this.forgetAssumed(assumed);
      // Inline answers planned into the batch go with it: a retried cause asks for them again.
      const own = batch.filter((d) => {
        tell(d, false, null);
        return !d.inline;
      });
      if (err instanceof FencedError) {
        for (const d of own) d.waiter?.reject(new RuntimeError("SHARD_LOST", err.message));
        this.deps.onFenced(this.shard);
        return;
      }
      this.deps.log.warn({ shard: this.shard, err: (err as Error).message }, "commit failed; retrying");
      this.requeueFront(own);
      this.retryHandle = clock.setTimer(() => {
        this.retryHandle = null;
        this.schedulePump();
      }, 100);
    }
  }

  /**
   * Steps every delivery of the batch against the working copy of its actor
   * and folds consecutive steps of one actor into one record: one snapshot
   * (the last), one version check, the timers' net change, and a history
   * entry per event. A delivery marked `solo` gets a record of its own.
   */
  private plan(batch: Delivery[], nowMs: number): { steps: PlannedStep[]; records: PlannedRecord[] } {
    const working = new Map<ActorKey, LiveActor | null>();
    const open = new Map<ActorKey, RecordBuilder>();
    const builders: RecordBuilder[] = [];
    const steps: PlannedStep[] = [];
    // By index: an inline effect's answer joins the batch right behind its cause.
    for (let i = 0; i < batch.length; i++) {
      const delivery = batch[i]!;
      const planned = this.planStep(delivery, working, nowMs);
      steps.push(planned.step);
      const answers = planned.step.result ? this.answerInline(delivery, planned.step.result, nowMs) : null;
      if (answers) batch.splice(i + 1, 0, ...answers);
      if (!planned.recorded) continue;
      let builder = delivery.solo ? undefined : open.get(delivery.actor);
      if (!builder?.accepts(delivery)) {
        builder = new RecordBuilder(
          delivery.actor,
          planned.expectedVersion,
          planned.before,
          this.deps.config.historyCap,
          this.deps.store.encodesLazily === true,
        );
        builders.push(builder);
        if (delivery.solo) open.delete(delivery.actor);
        else open.set(delivery.actor, builder);
      }
      builder.add(planned.step, planned.definition);
    }
    const records = builders.map((b) => b.build());
    return { steps, records };
  }

  /**
   * Runs the inline handlers of a step's emitted effects; the effects they
   * handle leave the step (no outbox entry, no delivery after the commit),
   * and their answers come back as deliveries to the same actor.
   */
  private answerInline(cause: Delivery, result: StepResult, nowMs: number): Delivery[] | null {
    if (result.refusal || result.effects.length === 0) return null;
    let answers: Delivery[] | null = null;
    let kept: EffectPayload[] | null = null;
    for (let e = 0; e < result.effects.length; e++) {
      const effect = result.effects[e]!;
      const handler = effect.t === "emit" ? this.deps.inlineHandler(effect.effect) : undefined;
      let outcome: InlineOutcome | undefined;
      try {
        outcome = handler?.((effect as { data: unknown }).data, {
          from: cause.actor,
          effectId: effect.id,
          nowMs,
        });
      } catch (err) {
        // A failing inline handler costs the shortcut, not the effect: it goes the durable way.
        this.deps.log.error(
          { shard: this.shard, effectId: effect.id, err: (err as Error).message },
          "inline effect handler failed",
        );
        outcome = undefined;
      }
      if (!outcome?.handled) {
        kept?.push(effect);
        continue;
      }
      kept ??= result.effects.slice(0, e);
      answers ??= [];
      const events = outcome.events ?? [];
      events.forEach((event, n) => {
        answers!.push({
          actor: cause.actor,
          event,
          eventId: `${effect.id}:a${n}`,
          dedupe: false,
          ack: null,
          cause: `effect:${cause.actor}`,
          waiter: null,
          attempts: 0,
          inline: true,
        });
      });
      // Its answers commit in the cause's record: either tells how the record ended.
      if (outcome.settled) {
        const told = events.length > 0 ? answers[answers.length - 1]! : cause;
        told.afterCommit ??= [];
        told.afterCommit.push(outcome.settled);
      }
    }
    if (kept) result.effects = kept;
    return answers;
  }

  /** Steps one delivery against the working copy of its actor. */
  private planStep(
    delivery: Delivery,
    working: Map<ActorKey, LiveActor | null>,
    nowMs: number,
  ): {
    step: PlannedStep;
    recorded: boolean;
    expectedVersion: number;
    /** The actor's state before this event (null: it did not exist or is unreadable). */
    before: MachineState | null;
    definition: KindDefinition | null;
  } {
    const slot = this.slots.get(delivery.actor)!;
    slot.lastUsedMs = nowMs;
    if (slot.broken) {
      const history: HistoryEntry = {
        v: slot.broken.version,
        at: nowMs,
        id: delivery.eventId,
        event: delivery.event,
        from: null,
        to: "(unreadable)",
        cause: delivery.cause,
        refused: { code: slot.broken.error.code, message: slot.broken.error.message },
      };
      return {
        step: { delivery, result: null, history, group: null },
        recorded: true,
        expectedVersion: slot.broken.version,
        before: null,
        definition: null,
      };
    }
    const current = working.has(delivery.actor) ? working.get(delivery.actor)! : slot.live;
    const definition = this.deps.registry.get(parseActorKey(delivery.actor).kind);
    const result = step({
      definition,
      actor: delivery.actor,
      current,
      event: delivery.event,
      eventId: delivery.eventId,
      cause: delivery.cause,
      nowMs,
      // Events reach a shard only through Runtime.send (which validates them), effects, timers and the inbox.
      trusted: true,
      deferEncoding: true,
    });
    working.set(delivery.actor, result.next);
    // A refused direct send to an actor that does not exist leaves no trace: there is nothing to record it on.
    const recorded = !(result.refusal && !current && !delivery.ack && !delivery.dedupe);
    return {
      step: { delivery, result, history: result.history, group: null },
      recorded,
      expectedVersion: current?.version ?? 0,
      before: current?.state ?? null,
      definition,
    };
  }

  private settle(steps: PlannedStep[], records: PlannedRecord[], outcomes: CommitOutcome[]): void {
    const outcomeOf = new Map<PlannedRecord, CommitOutcome>();
    records.forEach((r, i) => {
      outcomeOf.set(r, outcomes[i] ?? "conflict");
    });
    const effects: EffectPayload[] = [];
    const transitions: CommittedTransition[] = [];
    const retry: Delivery[] = [];
    const conflicted = new Set<ActorKey>();
    // Armed timers are known here; only a consumed fire needs the store to say which timer is next.
    let earliestArmedMs = Number.POSITIVE_INFINITY;
    let timerFired = false;
    for (const r of records) {
      if (outcomeOf.get(r) !== "ok") continue;
      if (r.record.index.length > 0 || r.record.counters.length > 0) {
        this.deps.mirror.apply(this.shard, r.record.index, r.record.counters);
      }
      for (const timer of r.record.timerAdds) earliestArmedMs = Math.min(earliestArmedMs, timer.dueAtMs);
      if (r.record.acks.some((ack) => ack.kind === "timer")) timerFired = true;
    }
    for (const { delivery, result, history, group } of steps) {
      if (delivery.inline && (conflicted.has(delivery.actor) || !group || outcomeOf.get(group) !== "ok")) {
        // An inline answer is never retried on its own: its cause, retried, asks the handler again.
        tell(delivery, false, null);
        if (group && outcomeOf.get(group) !== "ok") {
          conflicted.add(delivery.actor);
          this.slots.delete(delivery.actor);
        }
        continue;
      }
      if (conflicted.has(delivery.actor)) {
        // An earlier event of this actor in the batch did not apply as planned: recompute from the store.
        tell(delivery, false, null);
        retry.push(delivery);
        continue;
      }
      const outcome: CommitOutcome = group ? outcomeOf.get(group)! : "ok";
      if (outcome === "conflict" || outcome === "split") {
        // A split record held a duplicate or a stale delivery: its events go again, each in a record of its own.
        if (outcome === "split") for (const s of group!.steps) s.delivery.solo = true;
        conflicted.add(delivery.actor);
        this.slots.delete(delivery.actor);
        tell(delivery, false, null);
        retry.push(delivery);
        continue;
      }
      this.release(delivery);
      if (outcome === "duplicate" || outcome === "stale") {
        // The stored state did not move; any later planned event of this actor assumed it did.
        if (group?.record.snapshot || group?.record.deferred) {
          conflicted.add(delivery.actor);
          this.slots.delete(delivery.actor);
        }
        tell(delivery, false, null);
        delivery.waiter?.resolve({ outcome });
        delivery.onSettled?.();
        continue;
      }
      const slot = this.slots.get(delivery.actor);
      if (result?.next && slot && !result.refusal) slot.live = result.next;
      if (result) effects.push(...result.effects);
      if (result && group) {
        transitions.push({ actor: delivery.actor, entry: history, state: result.next?.state ?? null });
      }
      const applied = Boolean(result?.next && !result.refusal);
      tell(delivery, applied, applied ? result!.next!.state : null);
      if (result?.refusal || !result) {
        delivery.waiter?.reject(result?.refusal ?? this.slots.get(delivery.actor)?.broken?.error);
      } else {
        delivery.waiter?.resolve({
          outcome: "committed",
          version: result.next!.version,
          state: result.next!.state,
        });
      }
      delivery.onSettled?.();
    }
    for (const d of retry) {
      d.attempts++;
      if (d.attempts >= this.deps.config.maxCommitAttempts) {
        this.release(d);
        d.waiter?.reject(
          new RuntimeError("CONFLICT", `${d.actor}: gave up after ${d.attempts} version conflicts`),
        );
      }
    }
    const again = retry.filter((d) => d.attempts < this.deps.config.maxCommitAttempts);
    if (again.length > 0) this.requeueFront(again);
    if (transitions.length > 0) this.deps.onTransitions?.(transitions);
    if (effects.length > 0) this.deps.deliverEffects(this.shard, effects);
    if (timerFired) void this.refreshTimerWake();
    else if (earliestArmedMs !== Number.POSITIVE_INFINITY) this.armTimerWake(earliestArmedMs);
  }

  /** Forgets that a store-originated delivery is in progress, so a sweep may pick it up again. */
  private release(delivery: Delivery): void {
    if (delivery.ack?.kind === "inbox") this.inboxPending.delete(delivery.ack.eventId);
    if (delivery.ack?.kind === "timer") this.timersPending.delete(delivery.ack.fireId);
  }

  private async drainInbox(fromStart: boolean): Promise<void> {
    if (fromStart) this.inboxCursor = 0;
    if (this.inboxDraining) {
      this.inboxDirty = true;
      return this.inboxDraining;
    }
    this.inboxDraining = (async () => {
      do {
        this.inboxDirty = false;
        for (;;) {
          if (this.stopped) return;
          const entries = await this.deps.store.readInbox(this.shard, this.inboxCursor, INBOX_PAGE);
          for (const entry of entries) {
            this.inboxCursor = Math.max(this.inboxCursor, entry.seq);
            if (this.inboxPending.has(entry.eventId)) continue;
            let payload: ReturnType<typeof decodeInboxPayload>;
            try {
              payload = decodeInboxPayload(entry.payload);
            } catch (err) {
              this.deps.log.error(
                { shard: this.shard, eventId: entry.eventId, err: (err as Error).message },
                "unreadable inbox entry skipped",
              );
              continue;
            }
            this.inboxPending.add(entry.eventId);
            this.admit({
              actor: payload.a,
              event: payload.e,
              eventId: entry.eventId,
              dedupe: true,
              ack: { kind: "inbox", eventId: entry.eventId },
              cause: payload.c,
              waiter: null,
              attempts: 0,
            });
          }
          if (entries.length < INBOX_PAGE) break;
        }
      } while (this.inboxDirty);
    })()
      .catch((err: unknown) => {
        this.deps.log.warn({ shard: this.shard, err: (err as Error).message }, "inbox read failed");
      })
      .finally(() => {
        this.inboxDraining = null;
      });
    return this.inboxDraining;
  }

  private async refreshTimerWake(): Promise<void> {
    if (this.stopped) return;
    let nextMs: number | null;
    try {
      nextMs = await this.deps.store.nextTimerDueMs(this.shard);
    } catch (err) {
      this.deps.log.warn({ shard: this.shard, err: (err as Error).message }, "timer read failed");
      return;
    }
    if (nextMs !== null) this.armTimerWake(nextMs);
  }

  private armTimerWake(atMs: number): void {
    if (this.stopped) return;
    if (this.timerWake && this.timerWake.atMs <= atMs) return;
    if (this.timerWake) this.deps.clock.clearTimer(this.timerWake.handle);
    const delayMs = Math.max(0, atMs - this.deps.clock.nowMs());
    const handle = this.deps.clock.setTimer(() => {
      this.timerWake = null;
      void this.fireDueTimers();
    }, delayMs);
    this.timerWake = { atMs, handle };
  }

  private async fireDueTimers(): Promise<void> {
    if (this.stopped) return;
    const nowMs = this.deps.clock.nowMs();
    let due: Awaited<ReturnType<Store["dueTimers"]>>;
    try {
      due = await this.deps.store.dueTimers(this.shard, nowMs, TIMER_PAGE);
    } catch (err) {
      this.deps.log.warn({ shard: this.shard, err: (err as Error).message }, "timer read failed");
      this.armTimerWake(nowMs + 100);
      return;
    }
    let fresh = 0;
    for (const timer of due) {
      if (this.timersPending.has(timer.fireId)) continue;
      let payload: ReturnType<typeof decodeTimerPayload>;
      try {
        payload = decodeTimerPayload(timer.payload);
      } catch (err) {
        this.deps.log.error(
          { shard: this.shard, timer: timer.timerKey, err: (err as Error).message },
          "unreadable timer skipped",
        );
        continue;
      }
      fresh++;
      this.timersPending.add(timer.fireId);
      this.admit({
        actor: payload.a,
        event: payload.e,
        eventId: timer.fireId,
        dedupe: false,
        ack: { kind: "timer", timerKey: timer.timerKey, fireId: timer.fireId },
        cause: "timer",
        waiter: null,
        attempts: 0,
      });
    }
    // Timers already in flight re-arm the wake when their commit lands; only look again if this page was full of new ones.
    if (fresh > 0 && due.length === TIMER_PAGE) this.armTimerWake(nowMs);
    else if (fresh === 0) await this.refreshTimerWakeAfter(nowMs);
  }

  /** Arms the wake for the next timer that is not already being delivered. */
  private async refreshTimerWakeAfter(nowMs: number): Promise<void> {
    const nextMs = await this.deps.store.nextTimerDueMs(this.shard).catch(() => null);
    if (nextMs !== null && nextMs > nowMs) this.armTimerWake(nextMs);
  }

  private evictIdle(): void {
    // Actors of a batch in flight are out of their mailboxes but still in use.
    if (this.committing) return;
    const { idleEvictMs, maxResidentActors } = this.deps.config;
    const horizon = this.deps.clock.nowMs() - idleEvictMs;
    for (const [actor, slot] of this.slots) {
      if (slot.lastUsedMs < horizon && !this.mailboxes.has(actor)) this.slots.delete(actor);
    }
    if (this.slots.size > maxResidentActors) {
      const idle = [...this.slots].filter(([actor]) => !this.mailboxes.has(actor));
      idle.sort((a, b) => a[1].lastUsedMs - b[1].lastUsedMs);
      for (const [actor] of idle.slice(0, this.slots.size - maxResidentActors)) this.slots.delete(actor);
    }
  }
}

/** One delivery's step in a batch, and the record it went into (null: it leaves no trace). */
interface PlannedStep {
  delivery: Delivery;
  /** Null for an actor whose stored snapshot is unreadable: the event is recorded as refused. */
  result: StepResult | null;
  history: HistoryEntry;
  group: PlannedRecord | null;
}

/** A commit record and the steps folded into it, in order. */
interface PlannedRecord {
  record: CommitRecord;
  steps: PlannedStep[];
}

/** The actor's snapshot and all its constant fields, encoded when the store is asked for them. */
function deferredSnapshot(definition: KindDefinition, live: LiveActor): DeferredSnapshot {
  const { version, state } = live;
  return () => encodeSnapshotParts(definition, { version, state, constants: null });
}

const NO_TIMERS: ReadonlyMap<string, TimerEntry | "cancel"> = new Map();

function deliveryKey(ack: DeliveryAck): string {
  return ack.kind === "inbox" ? `inbox:${ack.eventId}` : `timer:${ack.timerKey}`;
}

/**
 * Folds consecutive steps of one actor into one commit record. Timers keep
 * their last operation per key (arming replaces, cancelling removes), which is
 * what applying the steps one by one would leave; counters are summed.
 */
class RecordBuilder {
  private readonly steps: PlannedStep[] = [];
  private readonly history: Buffer[] = [];
  private readonly deferredHistory: Encoder[] = [];
  // Made when a step needs them: most records arm no timer and count nothing.
  private timers: Map<string, TimerEntry | "cancel"> | null = null;
  private readonly outbox: CommitRecord["outbox"] = [];
  private readonly deferredOutbox: NonNullable<CommitRecord["deferredOutbox"]> = [];
  private counters: Map<string, number> | null = null;
  private readonly dedupeIds: string[] = [];
  private readonly acks: DeliveryAck[] = [];
  /** The record's dedupe ids, inbox entries and timers, for `accepts` (made with the second of them). */
  private deliveries: Set<string> | null = null;
  private versionStep = 0;
  private last: { definition: KindDefinition; live: LiveActor } | null = null;

  constructor(
    private readonly actor: ActorKey,
    private readonly expectedVersion: number,
    /** The actor's state before the record's first event: what its projection changes from. */
    private readonly before: MachineState | null,
    private readonly historyCap: number,
    /** The store takes the snapshot to encode when read (`Store.encodesLazily`). */
    private readonly lazy: boolean,
  ) {}

  /** A second event with a dedupe id or delivery the record holds already must be decided on its own. */
  accepts(delivery: Delivery): boolean {
    if (this.dedupeIds.length + this.acks.length === 0) return true;
    const deliveries = this.knownDeliveries();
    if (delivery.dedupe && deliveries.has(`dedupe:${delivery.eventId}`)) return false;
    return !delivery.ack || !deliveries.has(deliveryKey(delivery.ack));
  }

  private knownDeliveries(): Set<string> {
    if (!this.deliveries) {
      this.deliveries = new Set();
      for (const id of this.dedupeIds) this.deliveries.add(`dedupe:${id}`);
      for (const ack of this.acks) this.deliveries.add(deliveryKey(ack));
    }
    return this.deliveries;
  }

  add(planned: PlannedStep, definition: KindDefinition | null): void {
    const { delivery, result } = planned;
    this.steps.push(planned);
    const entry = planned.history;
    if (this.lazy) this.deferredHistory.push(() => encodeHistoryEntry(entry));
    else this.history.push(encodeHistoryEntry(entry));
    if (delivery.dedupe) {
      this.dedupeIds.push(delivery.eventId);
      this.deliveries?.add(`dedupe:${delivery.eventId}`);
    }
    if (delivery.ack) {
      this.acks.push(delivery.ack);
      this.deliveries?.add(deliveryKey(delivery.ack));
    }
    if (!result || result.refusal || !result.next || !definition) return;
    this.versionStep++;
    this.last = { definition, live: result.next };
    if (result.timerCancels.length + result.timerAdds.length > 0) {
      this.timers ??= new Map();
      const timers = this.timers;
      for (const key of result.timerCancels) timers.set(key, "cancel");
      for (const timer of result.timerAdds) timers.set(timer.timerKey, timer);
    }
    for (const effect of result.effects) {
      if (this.lazy)
        this.deferredOutbox.push({ effectId: effect.id, encode: () => encodeEffectPayload(effect) });
      else this.outbox.push({ effectId: effect.id, payload: encodeEffectPayload(effect) });
    }
    if (result.counters.length > 0) this.count(result.counters);
  }

  private count(deltas: readonly CounterDelta[]): void {
    this.counters ??= new Map();
    const counters = this.counters;
    for (const { name, delta } of deltas) counters.set(name, (counters.get(name) ?? 0) + delta);
  }

  build(): PlannedRecord {
    let index: IndexOp[] = [];
    if (this.last?.definition.projections) {
      const id = parseActorKey(this.actor).id;
      const { definition, live } = this.last;
      const changes = projectionChanges(
        projectionOf(definition, this.before, id),
        projectionOf(definition, live.state, id),
      );
      index = changes.index;
      if (changes.counters.length > 0) this.count(changes.counters);
    }
    const { timerAdds, timerCancels, counters } = netChanges(this.timers ?? NO_TIMERS, this.counters);
    const last = this.last;
    const parts = last && !this.lazy ? encodeSnapshotParts(last.definition, last.live) : null;
    const record: CommitRecord = {
      actor: this.actor,
      expectedVersion: this.expectedVersion,
      snapshot: parts?.snapshot ?? null,
      constants: parts?.constants ?? null,
      deferred: last && this.lazy ? deferredSnapshot(last.definition, last.live) : null,
      versionStep: this.versionStep,
      history: this.history,
      deferredHistory: this.lazy ? this.deferredHistory : null,
      historyCap: this.historyCap,
      timerAdds,
      timerCancels,
      outbox: this.outbox,
      deferredOutbox: this.lazy ? this.deferredOutbox : null,
      counters,
      index,
      dedupeIds: this.dedupeIds,
      acks: this.acks,
    };
    const planned: PlannedRecord = { record, steps: this.steps };
    for (const s of this.steps) s.group = planned;
    return planned;
  }
}
