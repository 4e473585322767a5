/**
 * Plans a batch of deliveries into commit records: steps each delivery
 * against the working copy of its actor (a batch's earlier events of the
 * actor included), answers inline effects, and folds consecutive steps of one
 * actor into one record. Nothing here touches the store: the shard host
 * commits what this returns.
 */
import type { ActorKey } from "../store/types.js";
import { parseActorKey } from "./actor-ref.js";
import type { ActorSlot } from "./actor-slots.js";
import type { MachineState } from "./compiled-machine.js";
import { ackOf, type Delivery, dedupes } from "./delivery.js";
import { answerInline, type InlineEffectHandler } from "./inline-effects.js";
import type { KindDefinition, KindRegistry } from "./kinds.js";
import type { Logger } from "./logger.js";
import { type PlannedRecord, type PlannedStep, RecordBuilder } from "./record-builder.js";
import type { HistoryEntry } from "./records.js";
import { type LiveActor, step } from "./step.js";

/** One delivery stepped, and what its record needs to know of the actor before it. */
interface PlannedDelivery {
  step: PlannedStep;
  /** False for an event that leaves no trace (a refused direct send to an actor that does not exist). */
  recorded: boolean;
  expectedVersion: number;
  /** The actor's state before this event (null: it did not exist or is unreadable). */
  before: MachineState | null;
  definition: KindDefinition | null;
}

export interface BatchPlannerDeps {
  registry: KindRegistry;
  log: Logger;
  historyCap: number;
  /** The store takes records to encode when read (`Store.encodesLazily`). */
  encodesLazily: boolean;
  inlineHandler(effect: string): InlineEffectHandler | undefined;
}

export class BatchPlanner {
  constructor(private readonly deps: BatchPlannerDeps) {}

  /**
   * Steps every delivery of the batch and folds consecutive steps of one
   * actor into one record: one snapshot (the last), one version check, the
   * timers' net change, and a history entry per event. A delivery marked
   * `solo` gets a record of its own. Every actor of the batch has a slot.
   */
  plan(
    batch: Delivery[],
    slots: ReadonlyMap<ActorKey, ActorSlot>,
    nowMs: number,
  ): { steps: PlannedStep[]; records: PlannedRecord[] } {
    const working = new Map<ActorKey, LiveActor | null>();
    const open = new Map<ActorKey, RecordBuilder>();
    const builders: RecordBuilder[] = [];
    const steps: PlannedStep[] = [];
    // By index: an inline effect's answer joins the batch right behind its cause.
    for (let i = 0; i < batch.length; i++) {
      const delivery = batch[i]!;
      const planned = this.planStep(delivery, slots.get(delivery.actor)!, working, nowMs);
      steps.push(planned.step);
      const answers = planned.step.result
        ? answerInline(delivery, planned.step.result, nowMs, this.deps.inlineHandler, this.deps.log)
        : null;
      if (answers) batch.splice(i + 1, 0, ...answers);
      if (!planned.recorded) continue;
      let builder = delivery.solo ? undefined : open.get(delivery.actor);
      if (!builder?.accepts(delivery)) {
        builder = new RecordBuilder(
          delivery.actor,
          planned.expectedVersion,
          planned.before,
          this.deps.historyCap,
          this.deps.encodesLazily,
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

  /** Steps one delivery against the working copy of its actor. */
  private planStep(
    delivery: Delivery,
    slot: ActorSlot,
    working: Map<ActorKey, LiveActor | null>,
    nowMs: number,
  ): PlannedDelivery {
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
    const leavesTrace = current !== null || ackOf(delivery.source) !== null || dedupes(delivery.source);
    return {
      step: { delivery, result, history: result.history, group: null },
      recorded: !result.refusal || leavesTrace,
      expectedVersion: current?.version ?? 0,
      before: current?.state ?? null,
      definition,
    };
  }
}
