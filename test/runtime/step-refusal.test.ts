import { describe, expect, it } from "vitest";
import { assign, setup } from "xstate";
import { effectActions } from "../../src/runtime/effects.js";
import { KindRegistry } from "../../src/runtime/kinds.js";
import { pureTransitionsOf } from "../../src/runtime/pure-transition.js";
import { step } from "../../src/runtime/step.js";

/**
 * `step()` applies an event with one transition and refuses it when xstate
 * hands back the snapshot it was given: this pins that identity to what
 * `snapshot.can(event)` answers, so an xstate upgrade that changes either
 * fails here, not in production.
 */
const machine = setup({
  types: {
    context: {} as { n: number },
    events: {} as { type: "go" | "inc" | "noop" | "ping" | "guarded" | "other" },
  },
  guards: { never: () => false },
  // An effect that changes no context: xstate hands back the same snapshot, with the action to run.
  actions: { ...effectActions },
}).createMachine({
  id: "m",
  initial: "a",
  context: { n: 0 },
  states: {
    a: {
      on: {
        go: { target: "b" },
        inc: { actions: assign({ n: ({ context }) => context.n + 1 }) },
        noop: {},
        ping: { actions: { type: "count", params: { counters: [{ name: "pings", delta: 1 }] } } },
        guarded: { guard: "never", target: "b" },
      },
    },
    b: { on: { inc: { target: "a" } } },
  },
});
const definition = new KindRegistry().register({ kind: "probe", machine, version: 1 }).get("probe");

describe("step refuses exactly what snapshot.can refuses", () => {
  const [initial] = pureTransitionsOf(machine).initial(undefined);
  const current = { version: 1, state: initial };
  for (const type of ["go", "inc", "noop", "ping", "guarded", "other"] as const) {
    it(`${type}: refused iff can() is false`, () => {
      const accepted = initial.can({ type });
      const result = step({
        definition,
        actor: "probe/1",
        current,
        event: { type },
        eventId: `e-${type}`,
        cause: "test",
        nowMs: 1,
      });
      expect(result.refusal === null).toBe(accepted);
      if (!accepted) {
        expect(result.refusal?.code).toBe("EVENT_NOT_ACCEPTED");
        expect(result.next).toBe(current);
      } else {
        expect(result.next?.version).toBe(2);
      }
    });
  }
});
