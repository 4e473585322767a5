/** Applying one event to one actor as a pure function, and an actor's snapshot encoded for its commit and restored. */
import { createHash } from "node:crypto";
import type { ActorKey, CounterDelta, TimerEntry } from "../store/types.js";
import { actorKeyOf, parseActorKey } from "./actor-ref.js";
import {
  type CountParams,
  EFFECT_ACTION_TYPES,
  type EmitEffectParams,
  type SendEventParams,
} from "./effects.js";
import { RuntimeError, refusalError } from "./errors.js";
import { acceptEvent } from "./event-check.js";
import { DEFAULT_CREATE_EVENT, type KindDefinition } from "./kinds.js";
import { type MachineState, type MachineStep, runnerOf } from "./machine-runner.js";
import { globalEffects, transitionEffects } from "./projections.js";
import {
  type AnyEvent,
  type EffectPayload,
  encodeRecord,
  type HistoryEntry,
  stateValueToString,
} from "./records.js";
import { encodeSnapshot } from "./snapshots.js";

/**
 * An id made from its cause's id grows by a link with every step of a
 * causal chain (a job rebrokered for days: `...:t1:e2:brokered:t1:e2:...`),
 * and every map, set and store key holding it pays for its length. Past
 * `MAX_CAUSE_ID_CHARS` the cause is named by a digest of its id instead:
 * still the same id for the same cause, so a redelivered event's effects
 * and timers keep their ids.
 */
const MAX_CAUSE_ID_CHARS = 128;

export function derivedId(causeId: string, link: string): string {
  if (causeId.length <= MAX_CAUSE_ID_CHARS) return `${causeId}:${link}`;
  return `#${createHash("sha256").update(causeId).digest("base64url").slice(0, 22)}:${link}`;
}

/** An actor as the runtime holds it in memory between events. */
export interface LiveActor {
  version: number;
  state: MachineState;
  /**
   * The kind's constant context fields as the store holds them beside the
   * snapshot (the very values, compared by reference), or null when the store
   * holds none that are known to match: the next commit writes them.
   */
  constants?: Record<string, unknown> | null;
}

export interface StepInput {
  definition: KindDefinition;
  actor: ActorKey;
  current: LiveActor | null;
  event: AnyEvent;
  eventId: string;
  cause: string;
  nowMs: number;
  /**
   * The event was produced or already validated by this system (an effect, a
   * timer, an inbox entry, a `Runtime.send` that checked it): the kind's zod
   * schema is a trust-boundary check and is skipped.
   */
  trusted?: boolean;
  /** Leave `snapshotBytes` null: the caller encodes only the last snapshot of a chain (`encodeSnapshot`). */
  deferEncoding?: boolean;
}

/** Everything one event does to one actor, ready to commit. Computed without I/O. */
export interface StepResult {
  /** The actor after the step; unchanged (same object) when the event was refused. */
  next: LiveActor | null;
  refusal: RuntimeError | null;
  snapshotBytes: Buffer | null;
  history: HistoryEntry;
  timerAdds: TimerEntry[];
  timerCancels: string[];
  effects: EffectPayload[];
  /** Counter changes committed with the transition (summed per name, zeros left out). */
  counters: CounterDelta[];
}

export { encodeSnapshotParts, restore } from "./snapshots.js";
export { encodeSnapshot };

/** Applies one event to one actor: the pure heart of the runtime. */
export function step(input: StepInput): StepResult {
  const { definition, current, event } = input;
  const createEvent = definition.createEvent ?? DEFAULT_CREATE_EVENT;
  let refusal: RuntimeError | null = null;
  const runner = runnerOf(definition.machine);
  let computed: MachineStep | null = null;
  try {
    if (!input.trusted) acceptEvent(definition, input.actor, event);
    if (!current) {
      if (event.type !== createEvent) {
        throw refusalError(
          "ACTOR_NOT_FOUND",
          `${input.actor} does not exist (create it with '${createEvent}')`,
        );
      }
      computed = runner.initial((event as { input?: unknown }).input);
    } else {
      if (current.state.status !== "active") {
        throw refusalError(
          "EVENT_NOT_ACCEPTED",
          `${input.actor} is final (${stateValueToString(current.state.value)})`,
        );
      }
      computed = runner.transition(current.state, event);
      // One transition both checks and applies: an event no transition takes leaves the state as it was.
      if (!computed.accepted) {
        const code = event.type === createEvent ? "ACTOR_EXISTS" : "EVENT_NOT_ACCEPTED";
        throw refusalError(
          code,
          `${input.actor} in state ${stateValueToString(current.state.value)} does not accept ${event.type}`,
        );
      }
    }
    if (computed.state.status === "error") {
      throw new RuntimeError("MACHINE_ERROR", `${input.actor}: ${event.type} put the machine in error`, {
        error: String(computed.state.error),
      });
    }
  } catch (err) {
    refusal =
      err instanceof RuntimeError
        ? err
        : new RuntimeError("MACHINE_ERROR", `${input.actor}: ${event.type} threw: ${(err as Error).message}`);
    computed = null;
  }

  const from = current ? runner.valueString(current.state) : null;
  const version = (current?.version ?? 0) + (computed ? 1 : 0);
  const history: HistoryEntry = {
    v: version,
    at: input.nowMs,
    id: input.eventId,
    event: computed && !current && definition.historyKeepsCreateInput === false ? withoutInput(event) : event,
    from,
    to: computed ? runner.valueString(computed.state) : (from ?? "(none)"),
    cause: input.cause,
  };
  if (!computed) return refused(current, refusal!, history);

  const nextState = computed.state;
  const sorted = sortActions(input, computed.actions);
  if (sorted instanceof RuntimeError) {
    history.to = from ?? "(none)";
    history.v = current?.version ?? 0;
    return refused(current, sorted, history);
  }
  if (definition.globalProjections || definition.transitionEffects) {
    const { id } = parseActorKey(input.actor);
    const change = { id, before: current?.state ?? null, after: nextState, event, atMs: input.nowMs };
    if (definition.transitionEffects) {
      // The change's own sends stand where an entry action's would: ahead of the machine's.
      const derived = transitionEffects(definition, input.actor, input.eventId, change);
      if (derived.length > 0)
        sorted.effects = sorted.effects.length === 0 ? derived : [...derived, ...sorted.effects];
    }
    // Global indexes ride in this commit's outbox (see `GlobalProjections`).
    if (definition.globalProjections)
      sorted.effects.push(...globalEffects(definition, input.actor, input.eventId, change));
  }
  return {
    next: { version, state: nextState, constants: current?.constants ?? null },
    refusal: null,
    snapshotBytes: input.deferEncoding ? null : encodeSnapshot(definition, nextState),
    history,
    ...sorted,
  };
}

/** A refused event: the actor as it was, and the refusal in its history entry. */
function refused(current: LiveActor | null, refusal: RuntimeError, history: HistoryEntry): StepResult {
  history.refused = { code: refusal.code, message: refusal.message };
  return {
    next: current,
    refusal,
    snapshotBytes: null,
    history,
    timerAdds: [],
    timerCancels: [],
    effects: [],
    counters: [],
  };
}

/** A create event as its history entry keeps it when its input is the actor's constants: `input` says so. */
function withoutInput(event: AnyEvent): AnyEvent {
  return { ...event, input: "(the actor's constant fields)" };
}

/**
 * Timer operations by key (the last wins) and summed counters, as a commit
 * takes them: arming overwrites a timer, so only a key whose last operation is
 * a cancel is removed, and a counter that sums to 0 is left out.
 */
export function netChanges(
  timers: ReadonlyMap<string, TimerEntry | "cancel">,
  counts: ReadonlyMap<string, number> | null,
): { timerAdds: TimerEntry[]; timerCancels: string[]; counters: CounterDelta[] } {
  const timerAdds: TimerEntry[] = [];
  const timerCancels: string[] = [];
  for (const [key, op] of timers) {
    if (op === "cancel") timerCancels.push(key);
    else timerAdds.push(op);
  }
  const counters: CounterDelta[] = [];
  if (counts) for (const [name, delta] of counts) if (delta !== 0) counters.push({ name, delta });
  return { timerAdds, timerCancels, counters };
}

interface ExecutableAction {
  type: string;
  params?: unknown;
}

/** Turns xstate's returned actions into durable timer changes and outbox effects; anything else is impure. */
function sortActions(
  input: StepInput,
  actions: unknown[],
): Pick<StepResult, "timerAdds" | "timerCancels" | "effects" | "counters"> | RuntimeError {
  // Most steps arm or cancel no timer and count nothing: the maps are made when needed.
  let timers: Map<string, TimerEntry | "cancel"> | null = null;
  const effects: EffectPayload[] = [];
  let counts: Map<string, number> | null = null;
  let index = 0;
  for (const raw of actions) {
    const action = raw as ExecutableAction;
    const params = (action.params ?? NO_PARAMS) as Record<string, unknown>;
    index++;
    if (action.type === "xstate.raise" && typeof params.delay === "number") {
      const timerKey = `${input.actor}#${String(params.id ?? `raise-${index}`)}`;
      timers ??= new Map();
      timers.set(timerKey, {
        timerKey,
        fireId: derivedId(input.eventId, `t${index}`),
        dueAtMs: input.nowMs + params.delay,
        payload: encodeRecord({ a: input.actor, e: params.event }),
      });
    } else if (action.type === "xstate.cancel") {
      timers ??= new Map();
      timers.set(`${input.actor}#${String(params.sendId)}`, "cancel");
    } else if (action.type === "sendEvent") {
      const send = params as unknown as SendEventParams;
      let to: ActorKey;
      try {
        to = actorKeyOf(send.to);
      } catch (err) {
        return err as RuntimeError;
      }
      const effect: EffectPayload = {
        t: "send",
        id: derivedId(input.eventId, `e${index}`),
        from: input.actor,
        to,
        e: send.event as AnyEvent,
      };
      if (send.lane === "intake") effect.lane = "intake";
      effects.push(effect);
    } else if (action.type === "emitEffect") {
      const emit = params as unknown as EmitEffectParams;
      effects.push({
        t: "emit",
        id: derivedId(input.eventId, `e${index}`),
        from: input.actor,
        effect: emit.effect,
        data: emit.data,
      });
    } else if (action.type === "count") {
      counts ??= new Map();
      for (const { name, delta } of (params as unknown as CountParams).counters) {
        if (!Number.isSafeInteger(delta) || name.length === 0) {
          return new RuntimeError("MACHINE_ERROR", `${input.actor}: counter ${name} given ${delta}`);
        }
        counts.set(name, (counts.get(name) ?? 0) + delta);
      }
    } else if (!EFFECT_ACTION_TYPES.has(action.type)) {
      return new RuntimeError(
        "IMPURE_MACHINE",
        `${input.actor}: action ${action.type} is not an effect; hosted machines may only use assign, raise, delays, sendEvent, emitEffect and count`,
      );
    }
  }
  if (timers === null && counts === null) return { timerAdds: [], timerCancels: [], counters: [], effects };
  const { timerAdds, timerCancels, counters } = netChanges(timers ?? NO_TIMERS, counts);
  return { timerAdds, timerCancels, counters, effects };
}

const NO_TIMERS: ReadonlyMap<string, TimerEntry | "cancel"> = new Map();
const NO_PARAMS: Readonly<Record<string, unknown>> = Object.freeze({});
