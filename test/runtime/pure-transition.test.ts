import { describe, expect, it } from "vitest";
import {
  type AnyMachineSnapshot,
  assign,
  cancel,
  emit,
  initialTransition,
  raise,
  setup,
  transition,
} from "xstate";
import { PureTransitions } from "../../src/runtime/pure-transition.js";

/**
 * `PureTransitions` hands xstate an actor scope of its own making, shaped like
 * the private one xstate's `transition()` builds. These tests pin that shape
 * and the results to xstate's public pure functions, so an xstate upgrade
 * that changes either fails here, by name, and not in production.
 */

const machine = setup({
  types: {
    context: {} as { count: number; log: string[] },
    events: {} as { type: "inc"; by: number } | { type: "arm" } | { type: "disarm" } | { type: "tick" },
    input: {} as { start: number },
  },
  guards: { big: ({ context }) => context.count >= 10 },
  actions: {
    note: assign(({ context }, params: { what: string }) => ({ log: [...context.log, params.what] })),
  },
}).createMachine({
  id: "pinned",
  context: ({ input }) => ({ count: input.start, log: [] }),
  initial: "small",
  states: {
    small: {
      entry: { type: "note", params: { what: "enter small" } },
      exit: { type: "note", params: { what: "exit small" } },
      always: { guard: "big", target: "large" },
      on: {
        inc: { actions: assign(({ context, event }) => ({ count: context.count + event.by })) },
        arm: { actions: raise({ type: "tick" }, { id: "tick-timer", delay: 5_000 }) },
        disarm: { actions: cancel("tick-timer") },
        tick: { actions: emit({ type: "ticked" }) },
      },
    },
    large: { entry: { type: "note", params: { what: "enter large" } }, type: "final" },
  },
});

const EVENTS = [
  { type: "inc", by: 3 },
  { type: "arm" },
  { type: "tick" },
  { type: "disarm" },
  { type: "inc", by: 9 },
] as const;

/** What a step yields that the runtime relies on: the state, the context and each action's type and params. */
function essence([snapshot, actions]: [AnyMachineSnapshot, unknown[]]) {
  return {
    value: snapshot.value,
    status: snapshot.status,
    context: snapshot.context,
    actions: (actions as { type: string; params?: unknown }[]).map((a) => ({
      type: a.type,
      params: a.params,
    })),
  };
}

describe("PureTransitions against xstate's own pure functions", () => {
  it("hands xstate an actor scope with exactly the members of the one xstate's transition() builds", () => {
    let xstateScope: Record<string, unknown> | null = null;
    const spied = Object.create(machine) as typeof machine;
    spied.transition = ((snapshot: never, event: never, scope: Record<string, unknown>) => {
      xstateScope = scope;
      return machine.transition(snapshot, event, scope as never);
    }) as unknown as typeof machine.transition;
    const [initial] = initialTransition(machine, { start: 0 });
    transition(spied, initial, { type: "inc", by: 1 });
    const ours = (new PureTransitions(machine) as unknown as { scope: Record<string, unknown> }).scope;
    expect(
      xstateScope,
      "xstate's transition() no longer calls machine.transition with a scope",
    ).not.toBeNull();
    expect(Object.keys(ours).sort()).toEqual(Object.keys(xstateScope!).sort());
    for (const [key, value] of Object.entries(xstateScope!)) {
      expect(typeof ours[key], `scope member ${key}`).toBe(typeof value);
    }
  });

  it("gives the same initial state, transitions and actions as initialTransition() and transition()", () => {
    const pure = new PureTransitions(machine);
    let theirs = initialTransition(machine, { start: 0 }) as [AnyMachineSnapshot, unknown[]];
    let ours = pure.initial({ start: 0 });
    expect(essence(ours)).toEqual(essence(theirs));
    for (const event of EVENTS) {
      const nextTheirs = transition(machine, theirs[0], event) as [AnyMachineSnapshot, unknown[]];
      const nextOurs = pure.transition(ours[0], event);
      expect(essence(nextOurs), `after ${event.type}`).toEqual(essence(nextTheirs));
      theirs = nextTheirs;
      ours = nextOurs;
    }
    expect(ours[0].status).toBe("done");
    expect(ours[0].context.log).toEqual(["enter small", "exit small", "enter large"]);
  });

  it("collects each call's actions apart, even when calls interleave snapshots", () => {
    const pure = new PureTransitions(machine);
    const [start] = pure.initial({ start: 0 });
    const [, armed] = pure.transition(start, { type: "arm" });
    const [, nothing] = pure.transition(start, { type: "inc", by: 1 } as { type: string });
    expect((armed as { type: string }[]).map((a) => a.type)).toEqual(["xstate.raise"]);
    expect(nothing).toEqual([]);
  });
});
