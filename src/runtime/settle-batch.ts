/**
 * What a group commit's outcomes mean for each delivery of the batch: told
 * how it ended (committed, refused, duplicate or stale), its actor's slot
 * moved to the committed state, or, where its record conflicted or was split,
 * queued again to be recomputed from the store.
 */
import type { ActorKey, CommitOutcome, CommitRecord } from "../store/types.js";
import type { ActorSlots } from "./actor-slots.js";
import { type Delivery, failDelivery, refuseDelivery, resolveDelivery, tell } from "./delivery.js";
import { RuntimeError } from "./errors.js";
import type { PlannedRecord, PlannedStep } from "./record-builder.js";
import type { EffectPayload, HistoryEntry } from "./records.js";
import type { LiveActor } from "./step.js";

export interface CommittedTransition {
  actor: ActorKey;
  entry: HistoryEntry;
  /** The actor's state after the event; null when it is unreadable. */
  state: LiveActor["state"] | null;
}

export interface SettleContext {
  slots: ActorSlots;
  /** A committed record's index and counter changes, into the node's mirror. */
  applyProjections(record: CommitRecord): void;
  /** The delivery is no longer in progress (see `ShardHost.release`). */
  release(delivery: Delivery): void;
  maxCommitAttempts: number;
}

export interface SettledBatch {
  transitions: CommittedTransition[];
  effects: EffectPayload[];
  /** Deliveries to plan again, in their order, before anything queued since. */
  retry: Delivery[];
  /** The earliest timer the batch armed; null when it armed none. */
  earliestArmedMs: number | null;
  /** A timer fire was consumed: only the store knows which timer is next. */
  timerFired: boolean;
}

export function settleBatch(
  steps: PlannedStep[],
  records: PlannedRecord[],
  outcomes: CommitOutcome[],
  ctx: SettleContext,
): SettledBatch {
  const { slots } = ctx;
  const outcomeOf = new Map<PlannedRecord, CommitOutcome>();
  records.forEach((r, i) => {
    outcomeOf.set(r, outcomes[i] ?? "conflict");
  });
  const effects: EffectPayload[] = [];
  const transitions: CommittedTransition[] = [];
  const retry: Delivery[] = [];
  /** Deliveries whose own record did not apply: only these use up a commit attempt. */
  const charged: Delivery[] = [];
  const conflicted = new Set<ActorKey>();
  let earliestArmedMs = Number.POSITIVE_INFINITY;
  let timerFired = false;
  for (const r of records) {
    if (outcomeOf.get(r) !== "ok") continue;
    if (r.record.index.length > 0 || r.record.counters.length > 0) ctx.applyProjections(r.record);
    for (const timer of r.record.timerAdds) earliestArmedMs = Math.min(earliestArmedMs, timer.dueAtMs);
    if (r.record.acks.some((ack) => ack.kind === "timer")) timerFired = true;
  }
  for (const { delivery, result, history, group } of steps) {
    if (
      delivery.source.kind === "inline" &&
      (conflicted.has(delivery.actor) || !group || outcomeOf.get(group) !== "ok")
    ) {
      // An inline answer is never retried on its own: its cause, retried, asks the handler again.
      tell(delivery, false, null);
      if (group && outcomeOf.get(group) !== "ok") {
        conflicted.add(delivery.actor);
        slots.delete(delivery.actor);
      }
      continue;
    }
    if (conflicted.has(delivery.actor)) {
      // An earlier event of this actor in the batch did not apply as planned: recompute from the store.
      // Not charged an attempt: waiting behind another event's retry is not a conflict of its own.
      tell(delivery, false, null);
      retry.push(delivery);
      continue;
    }
    const outcome: CommitOutcome = group ? outcomeOf.get(group)! : "ok";
    if (outcome === "conflict" || outcome === "split") {
      // A split record held a duplicate or a stale delivery: its events go again, each in a record of its own.
      if (outcome === "split") for (const s of group!.steps) s.delivery.solo = true;
      conflicted.add(delivery.actor);
      slots.delete(delivery.actor);
      tell(delivery, false, null);
      retry.push(delivery);
      charged.push(delivery);
      continue;
    }
    ctx.release(delivery);
    if (outcome === "duplicate" || outcome === "stale") {
      // The stored state did not move; any later planned event of this actor assumed it did.
      if (group?.record.snapshot || group?.record.deferred) {
        conflicted.add(delivery.actor);
        slots.delete(delivery.actor);
      }
      tell(delivery, false, null);
      resolveDelivery(delivery, { outcome });
      continue;
    }
    const slot = slots.get(delivery.actor);
    if (result?.next && slot && !result.refusal) slot.live = result.next;
    if (result) effects.push(...result.effects);
    if (result && group) {
      transitions.push({ actor: delivery.actor, entry: history, state: result.next?.state ?? null });
    }
    const applied = Boolean(result?.next && !result.refusal);
    tell(delivery, applied, applied ? result!.next!.state : null);
    if (result?.refusal || !result) {
      refuseDelivery(delivery, result?.refusal ?? slots.get(delivery.actor)?.broken?.error);
    } else {
      resolveDelivery(delivery, {
        outcome: "committed",
        version: result.next!.version,
        state: result.next!.state,
      });
    }
  }
  for (const d of charged) {
    d.attempts++;
    if (d.attempts >= ctx.maxCommitAttempts) {
      ctx.release(d);
      failDelivery(
        d,
        new RuntimeError("CONFLICT", `${d.actor}: gave up after ${d.attempts} version conflicts`),
      );
    }
  }
  return {
    transitions,
    effects,
    retry: retry.filter((d) => d.attempts < ctx.maxCommitAttempts),
    earliestArmedMs: earliestArmedMs === Number.POSITIVE_INFINITY ? null : earliestArmedMs,
    timerFired,
  };
}
