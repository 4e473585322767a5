import type { EventObject } from "xstate";
import type { ActorRef } from "./actor-ref.js";

/** Deliver `event` to another actor, at least once and deduplicated there: exactly once in effect. */
export interface SendEventParams {
  to: ActorRef;
  event: EventObject;
}

/** Anything else the world must do for the actor (push to a pilot, start a transfer, ...), run by a registered handler. */
export interface EmitEffectParams {
  effect: string;
  data: unknown;
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
};

export const EFFECT_ACTION_TYPES = new Set(Object.keys(effectActions));
