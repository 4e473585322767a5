import { assign, setup } from "xstate";
import { effectActions } from "../../src/runtime/effects.js";
import { KindRegistry } from "../../src/runtime/kinds.js";

/**
 * A counter that exercises every runtime feature: creation with input, a
 * durable delay, a cancel, cross-actor sends, an emitted effect, a final state.
 */
export const counterMachine = setup({
  types: {
    context: {} as { count: number; pings: number; ticks: number; partner: string | null; seen: string },
    input: {} as { partner?: string } | undefined,
    events: {} as
      | { type: "create"; input?: { partner?: string } }
      | { type: "inc"; by?: number; tag?: string }
      | { type: "arm"; delayMs: number }
      | { type: "disarm" }
      | { type: "ping" }
      | { type: "pingPartner" }
      | { type: "notify"; note: string }
      | { type: "finish" },
  },
  actions: { ...effectActions },
  delays: { tick: ({ event }) => (event.type === "arm" ? event.delayMs : 1000) },
}).createMachine({
  id: "counter",
  initial: "counting",
  context: ({ input }) => ({ count: 0, pings: 0, ticks: 0, partner: input?.partner ?? null, seen: "" }),
  // Handled in every live state, so a workload's result does not depend on when a timer fires.
  on: {
    inc: {
      actions: assign({
        count: ({ context, event }) => context.count + (event.by ?? 1),
        seen: ({ context, event }) => (event.tag ? `${context.seen}${event.tag},` : context.seen),
      }),
    },
    ping: { actions: assign({ pings: ({ context }) => context.pings + 1 }) },
    pingPartner: {
      guard: ({ context }) => context.partner !== null,
      actions: {
        type: "sendEvent",
        params: ({ context }) => ({ to: { kind: "counter", id: context.partner! }, event: { type: "ping" } }),
      },
    },
    notify: {
      actions: {
        type: "emitEffect",
        params: ({ event }) => ({ effect: "test.notify", data: { note: event.note } }),
      },
    },
  },
  states: {
    counting: {
      on: { arm: "armed", finish: "finished" },
    },
    armed: {
      after: {
        tick: { target: "counting", actions: assign({ ticks: ({ context }) => context.ticks + 1 }) },
      },
      on: { disarm: "counting" },
    },
    finished: { type: "final" },
  },
});

export function testRegistry(): KindRegistry {
  return new KindRegistry().register({ kind: "counter", machine: counterMachine, version: 1 });
}
