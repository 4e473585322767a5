/**
 * The effect actions a machine's fan-out may enqueue (`sendEvent`, `emitEffect`, `count`), and
 * `fanOut` to type them.
 */
import { type EventObject, enqueueActions, type MachineContext, type ParameterizedObject } from "xstate";
import type { ActorRef } from "../../runtime/actor-ref.js";
import type { CountParams, EmitEffectParams, SendEventParams } from "../../runtime/effects.js";

/** The only actions a fan-out may enqueue besides `assign`: the runtime's effect actions. */
export type EffectAction =
  | { type: "sendEvent"; params: SendEventParams }
  | { type: "emitEffect"; params: EmitEffectParams }
  | { type: "count"; params: CountParams };

export function sendEventAction(to: ActorRef, event: EventObject, lane?: "intake"): EffectAction {
  return { type: "sendEvent", params: lane ? { to, event, lane } : { to, event } };
}

export function emitEffectAction(effect: string, data: unknown): EffectAction {
  return { type: "emitEffect", params: { effect, data } };
}

export function countAction(counters: CountParams["counters"]): EffectAction {
  return { type: "count", params: { counters } };
}

type ActionParams = ParameterizedObject["params"] | undefined;

type Collect<
  TContext extends MachineContext,
  TEvent extends EventObject,
  TParams extends ActionParams,
> = Parameters<
  typeof enqueueActions<TContext, TEvent, TParams, TEvent, never, EffectAction, never, never, EventObject>
>[0];

/**
 * `enqueueActions` for a transition that sends to a number of actors known
 * only at run time. Typed apart from `setup` on purpose: inferring it inside
 * `setup` makes TypeScript lose the params of the machine's other actions.
 */
export function fanOut<
  TContext extends MachineContext,
  TEvent extends EventObject,
  TParams extends ActionParams = undefined,
>(collect: Collect<TContext, TEvent, TParams>) {
  return enqueueActions(collect);
}
