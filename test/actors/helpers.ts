import { expect } from "vitest";
import {
  type AnyMachineSnapshot,
  type AnyStateMachine,
  type EventFrom,
  type EventObject,
  type SnapshotFrom,
  transition,
} from "xstate";
import { jobKind } from "../../src/actors/job/index.js";
import type { KindDefinition } from "../../src/runtime/kinds.js";
import type { AnyEvent } from "../../src/runtime/records.js";
import { type LiveActor, restore, step } from "../../src/runtime/step.js";
import type { ActorKey } from "../../src/store/types.js";

/** The effect actions a transition returned, in the shape the runtime reads them. */
export type Effect =
  | { send: string; event: EventObject }
  | { emit: string; data: unknown }
  | { raise: string; delayMs: number }
  | { cancel: string }
  | { count: Record<string, number> };

interface RawAction {
  type: string;
  params?: Record<string, unknown>;
}

/** Turns xstate's returned actions into effects; anything the runtime would call impure fails the test. */
export function effectsOf(actions: readonly unknown[]): Effect[] {
  return actions.map((raw) => {
    const action = raw as RawAction;
    const params = action.params ?? {};
    switch (action.type) {
      case "sendEvent": {
        const to = params.to as { kind: string; id: string };
        return { send: `${to.kind}/${to.id}`, event: params.event as EventObject };
      }
      case "emitEffect":
        return { emit: params.effect as string, data: params.data };
      case "xstate.raise":
        expect(typeof params.delay, `raise without delay: ${JSON.stringify(params)}`).toBe("number");
        return { raise: (params.event as EventObject).type, delayMs: params.delay as number };
      case "xstate.cancel":
        return { cancel: params.sendId as string };
      case "count":
        return {
          count: Object.fromEntries(
            (params.counters as { name: string; delta: number }[]).map((c) => [c.name, c.delta]),
          ),
        };
      default:
        throw new Error(`impure action ${action.type}`);
    }
  });
}

export function sends(effects: Effect[], to?: string): { send: string; event: EventObject }[] {
  return effects.filter(
    (e): e is { send: string; event: EventObject } => "send" in e && (!to || e.send === to),
  );
}

export function emits(effects: Effect[], effect?: string): { emit: string; data: unknown }[] {
  return effects.filter(
    (e): e is { emit: string; data: unknown } => "emit" in e && (!effect || e.emit === effect),
  );
}

export function timers(effects: Effect[]): { raise: string; delayMs: number }[] {
  return effects.filter((e): e is { raise: string; delayMs: number } => "raise" in e);
}

export function eventTypesSent(effects: Effect[]): string[] {
  return sends(effects).map((e) => `${e.send} ${e.event.type}`);
}

/** Applies one event after checking the snapshot accepts it, as the runtime does. */
export function accept<M extends AnyStateMachine>(
  machine: M,
  snapshot: SnapshotFrom<M>,
  event: EventFrom<M>,
): [SnapshotFrom<M>, Effect[]] {
  const current = snapshot as AnyMachineSnapshot;
  const sent = event as EventObject;
  expect(current.can(sent), `${JSON.stringify(current.value)} should accept ${sent.type}`).toBe(true);
  const [next, actions] = transition(machine, snapshot, event);
  return [next as SnapshotFrom<M>, [...kindEffectsOf(machine, current, next, sent), ...effectsOf(actions)]];
}

/** Kinds whose transitions carry effects of their own besides the machine's (`KindDefinition.transitionEffects`). */
const KINDS_BY_MACHINE = new Map<AnyStateMachine, KindDefinition>([[jobKind.machine, jobKind]]);

/**
 * The sends and effects the kind derives from the change, ahead of the
 * machine's own, as the runtime's `step()` puts them in the outbox.
 */
function kindEffectsOf(
  machine: AnyStateMachine,
  before: AnyMachineSnapshot,
  after: AnyMachineSnapshot,
  event: EventObject,
): Effect[] {
  const derive = KINDS_BY_MACHINE.get(machine)?.transitionEffects;
  if (!derive) return [];
  return derive({ id: "", before, after, event, atMs: 0 }).map((effect) =>
    "effect" in effect
      ? { emit: effect.effect, data: effect.data }
      : { send: `${effect.to.kind}/${effect.to.id}`, event: effect.event },
  );
}

/** Applies events in order, collecting every effect. */
export function acceptAll<M extends AnyStateMachine>(
  machine: M,
  snapshot: SnapshotFrom<M>,
  events: EventFrom<M>[],
): [SnapshotFrom<M>, Effect[]] {
  let current = snapshot;
  const all: Effect[] = [];
  for (const event of events) {
    const [next, effects] = accept(machine, current, event);
    current = next;
    all.push(...effects);
  }
  return [current, all];
}

/** Fires the timer a transition armed, as the runtime would when it comes due. */
export function fire<M extends AnyStateMachine>(
  machine: M,
  snapshot: SnapshotFrom<M>,
  timer: { raise: string },
): [SnapshotFrom<M>, Effect[]] {
  return accept(machine, snapshot, { type: timer.raise } as EventFrom<M>);
}

/**
 * Drives a kind through the runtime's own `step()`, restoring every snapshot
 * from its stored bytes before the next event: proof that the machine is pure
 * (no IMPURE_MACHINE refusal) and that what it persists is all it needs.
 */
export function driveThroughRuntime(
  definition: KindDefinition,
  actor: ActorKey,
  events: AnyEvent[],
): LiveActor {
  let current: LiveActor | null = null;
  let nowMs = 1_000;
  events.forEach((event, i) => {
    const result = step({ definition, actor, current, event, eventId: `e${i}`, cause: "test", nowMs });
    expect(result.refusal, `${event.type} refused: ${result.refusal?.message}`).toBeNull();
    const next = result.next!;
    const restored = restore(definition, actor, next.version, result.snapshotBytes!);
    expect(restored.state.value).toEqual(next.state.value);
    expect(restored.state.status).toEqual(next.state.status);
    expect(JSON.parse(JSON.stringify(restored.state.context))).toEqual(
      JSON.parse(JSON.stringify(next.state.context)),
    );
    current = restored;
    nowMs += 1_000;
  });
  return current!;
}
