/**
 * Effects answered while a batch is planned, before its commit: the handler
 * looks at what it needs in memory and answers with events to the actor that
 * emitted the effect, which join that actor's record. Such an effect is never
 * written to the outbox: its consequence commits atomically with its cause.
 */
import type { ActorKey } from "../store/types.js";
import type { MachineState } from "./compiled-machine.js";
import type { Delivery } from "./delivery.js";
import type { Logger } from "./logger.js";
import type { AnyEvent, EffectPayload } from "./records.js";
import type { StepResult } from "./step.js";

/** `handled: false` leaves the effect to its ordinary, durable path. */
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

/**
 * Runs the inline handlers of a step's emitted effects; the effects they
 * handle leave the step (no outbox entry, no delivery after the commit), and
 * their answers come back as deliveries to the same actor. Null when no
 * handler answered.
 */
export function answerInline(
  cause: Delivery,
  result: StepResult,
  nowMs: number,
  handlerOf: (effect: string) => InlineEffectHandler | undefined,
  log: Logger,
): Delivery[] | null {
  if (result.refusal || result.effects.length === 0) return null;
  let answers: Delivery[] | null = null;
  let kept: EffectPayload[] | null = null;
  for (let e = 0; e < result.effects.length; e++) {
    const effect = result.effects[e]!;
    const outcome =
      effect.t === "emit" ? ask(handlerOf(effect.effect), effect, cause.actor, nowMs, log) : null;
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
        cause: `effect:${cause.actor}`,
        source: INLINE,
        attempts: 0,
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

const INLINE = { kind: "inline" } as const;

function ask(
  handler: InlineEffectHandler | undefined,
  effect: Extract<EffectPayload, { t: "emit" }>,
  from: ActorKey,
  nowMs: number,
  log: Logger,
): InlineOutcome | null {
  if (!handler) return null;
  try {
    return handler(effect.data, { from, effectId: effect.id, nowMs });
  } catch (err) {
    // A failing inline handler costs the shortcut, not the effect: it goes the durable way.
    log.error({ from, effectId: effect.id, err: (err as Error).message }, "inline effect handler failed");
    return null;
  }
}
