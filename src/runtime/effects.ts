/**
 * The actions through which a hosted machine acts on the world (send, emit,
 * count): descriptions the runtime commits with the transition, never code that runs.
 */
import type { EventObject } from "xstate";
import type { ActorRef } from "./actor-ref.js";

/** Deliver `event` to another actor, at least once and deduplicated there: exactly once in effect. */
export interface SendEventParams {
  to: ActorRef;
  event: EventObject;
  /** `intake`: the event creates new work, and its delivery waits for admission (`IntakeGate`). */
  lane?: "intake";
}

/** Anything else the world must do for the actor (push to a pilot, start a transfer, ...), run by a registered handler. */
export interface EmitEffectParams {
  effect: string;
  data: unknown;
}

/**
 * Add to named counters (`jobs:SITE:running` +1, `jobs:SITE:activated` -1)
 * in the same atomic commit as the transition: exact aggregates (live jobs per
 * site and state) without an event per change to another actor.
 */
export interface CountParams {
  counters: { name: string; delta: number }[];
}

/**
 * The only actions a hosted machine may use besides `assign`, `raise` and
 * delays. Spread into `setup({ actions: { ...effectActions } })`; the bodies
 * never run: the runtime reads the resolved params from `transition()` and
 * commits them to the outbox.
 */
export const effectActions = {
  sendEvent: (_args: unknown, _params: SendEventParams): void => {},
  emitEffect: (_args: unknown, _params: EmitEffectParams): void => {},
  count: (_args: unknown, _params: CountParams): void => {},
};

export const EFFECT_ACTION_TYPES = new Set(Object.keys(effectActions));
