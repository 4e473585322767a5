/**
 * One event on its way into one actor of a shard, and the ways its fate is
 * told to whoever sent it. Where a delivery came from decides whether its id
 * is remembered against redelivery, what the commit acknowledges with it and
 * who is told how it ended: that is one `source`, not four flags.
 */
import type { ActorKey, DeliveryAck } from "../store/types.js";
import type { MachineState } from "./compiled-machine.js";
import { RuntimeError } from "./errors.js";
import type { AnyEvent } from "./records.js";
import type { LiveActor } from "./step.js";

/** What a `send` resolved to. A refused event rejects with a `RuntimeError` instead. */
export type SendResult =
  | { outcome: "committed"; version: number; state: LiveActor["state"] }
  | { outcome: "duplicate" }
  | { outcome: "stale" }
  | { outcome: "queued" }
  /** Committed by the node that owns the actor's shard (`Runtime.sendApplied`). */
  | { outcome: "applied" };

export interface Waiter {
  resolve(result: SendResult): void;
  reject(err: unknown): void;
}

export type DeliverySource =
  /** `Runtime.send` on the owning node: its caller waits; an id the caller chose is remembered. */
  | { kind: "send"; dedupe: boolean; waiter: Waiter }
  /**
   * A committed effect's send to an actor of a shard this node hosts: its id
   * is the effect's, remembered; `settled` acknowledges the effect once its
   * fate is committed, `failed` leaves it to the outbox's redelivery.
   */
  | { kind: "effect"; settled(): void; failed(err: unknown): void }
  /** An entry of the shard's durable inbox, acknowledged by the commit; its id is remembered. */
  | { kind: "inbox"; eventId: string }
  /** A due durable timer, consumed by the commit. */
  | { kind: "timer"; timerKey: string; fireId: string }
  /**
   * An inline effect's answer (see `InlineEffectHandler`): planned right
   * after the event that caused it, in the same record, never retried on its
   * own (a retried cause asks the handler again).
   */
  | { kind: "inline" };

export interface Delivery {
  actor: ActorKey;
  event: AnyEvent;
  eventId: string;
  cause: string;
  source: DeliverySource;
  attempts: number;
  /** Commit this event in a record of its own: it was part of a record the store split. */
  solo?: boolean;
  /** Told once whether the record this delivery was planned into committed, with the actor's state after it. */
  afterCommit?: ((committed: boolean, state: MachineState | null) => void)[];
}

/** Is the delivery's id remembered, so that a redelivery of it is dropped? */
export function dedupes(source: DeliverySource): boolean {
  return source.kind === "inbox" || source.kind === "effect" || (source.kind === "send" && source.dedupe);
}

/** What the commit acknowledges with the delivery: the inbox entry or the timer fire it consumes. */
export function ackOf(source: DeliverySource): DeliveryAck | null {
  return source.kind === "inbox" || source.kind === "timer" ? source : null;
}

/** The event committed, or was found a duplicate or stale: nothing more will happen to it. */
export function resolveDelivery(delivery: Delivery, result: SendResult): void {
  const { source } = delivery;
  if (source.kind === "send") source.waiter.resolve(result);
  else if (source.kind === "effect") source.settled();
}

/** The event's refusal is committed (or the actor is unreadable): final, never retried. */
export function refuseDelivery(delivery: Delivery, err: unknown): void {
  const { source } = delivery;
  if (source.kind === "send") source.waiter.reject(err);
  else if (source.kind === "effect") source.settled();
}

/** The event did not commit here (lost shard, too many conflicts): the sender may try again. */
export function failDelivery(delivery: Delivery, err: RuntimeError): void {
  const { source } = delivery;
  if (source.kind === "send") source.waiter.reject(err);
  else if (source.kind === "effect") source.failed(err);
}

/** A delivery that came from the store stays there for the next owner; the others wait on the sender. */
export function awaitsSender(delivery: Delivery): boolean {
  return delivery.source.kind === "send" || delivery.source.kind === "effect";
}

/** Tells a delivery's `afterCommit` listeners how its planned record ended, once. */
export function tell(delivery: Delivery, committed: boolean, state: MachineState | null): void {
  const listeners = delivery.afterCommit;
  if (!listeners) return;
  delivery.afterCommit = undefined;
  for (const listener of listeners) listener(committed, state);
}

export function shardLost(shard: number, why: string): RuntimeError {
  return new RuntimeError("SHARD_LOST", `shard ${shard} ${why}`);
}
