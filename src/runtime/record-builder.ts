/**
 * Folds consecutive steps of one actor in a batch into one commit record:
 * one snapshot (the last), one version check, the timers' net change, the
 * counters summed, and a history entry per event.
 */
import type {
  ActorKey,
  CommitRecord,
  CounterDelta,
  DeferredSnapshot,
  DeliveryAck,
  IndexOp,
  TimerEntry,
} from "../store/types.js";
import { parseActorKey } from "./actor-ref.js";
import type { MachineState } from "./compiled-machine.js";
import { ackOf, type Delivery, dedupes } from "./delivery.js";
import type { KindDefinition } from "./kinds.js";
import { projectionChanges, projectionOf } from "./projections.js";
import { encodeEffectPayload, encodeHistoryEntry, type HistoryEntry } from "./records.js";
import { encodeSnapshotParts, type LiveActor, netChanges, type StepResult } from "./step.js";

/** One delivery's step in a batch, and the record it went into (null: it leaves no trace). */
export interface PlannedStep {
  delivery: Delivery;
  /** Null for an actor whose stored snapshot is unreadable: the event is recorded as refused. */
  result: StepResult | null;
  history: HistoryEntry;
  group: PlannedRecord | null;
}

/** A commit record and the steps folded into it, in order. */
export interface PlannedRecord {
  record: CommitRecord;
  steps: PlannedStep[];
}

/** The actor's snapshot and all its constant fields, encoded when the store is asked for them. */
function deferredSnapshot(definition: KindDefinition, live: LiveActor): DeferredSnapshot {
  const { version, state } = live;
  return () => encodeSnapshotParts(definition, { version, state, constants: null });
}

/** An event's entry where no history is kept (`historyCap` 0): the store only counts it. */
const UNKEPT_ENTRY = Buffer.alloc(0);

const NO_TIMERS: ReadonlyMap<string, TimerEntry | "cancel"> = new Map();

function deliveryKey(ack: DeliveryAck): string {
  return ack.kind === "inbox" ? `inbox:${ack.eventId}` : `timer:${ack.timerKey}`;
}

/**
 * Folds consecutive steps of one actor into one commit record. Timers keep
 * their last operation per key (arming replaces, cancelling removes), which is
 * what applying the steps one by one would leave; counters are summed.
 */
export class RecordBuilder {
  private readonly steps: PlannedStep[] = [];
  private readonly history: Buffer[] = [];
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
    if (dedupes(delivery.source) && deliveries.has(`dedupe:${delivery.eventId}`)) return false;
    const ack = ackOf(delivery.source);
    return !ack || !deliveries.has(deliveryKey(ack));
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
    // Encoded now even for a lazy store: an entry kept as its objects until read is garbage the GC copies for its life.
    this.history.push(this.historyCap > 0 ? encodeHistoryEntry(planned.history) : UNKEPT_ENTRY);
    if (dedupes(delivery.source)) {
      this.dedupeIds.push(delivery.eventId);
      this.deliveries?.add(`dedupe:${delivery.eventId}`);
    }
    const ack = ackOf(delivery.source);
    if (ack) {
      this.acks.push(ack);
      this.deliveries?.add(deliveryKey(ack));
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
