// The factory machine: one state; each report replaces the last, so a reader sees the factory as it last saw itself.
import { assign, setup } from "xstate";
import { effectActions } from "../../runtime/effects.js";
import { eventTimeMs } from "../shared/time.js";
import type { FactoryContext, FactoryEvent, FactoryInput } from "./schema.js";

export const factoryMachine = setup({
  types: {
    context: {} as FactoryContext,
    input: {} as FactoryInput,
    events: {} as FactoryEvent,
  },
  actions: {
    ...effectActions,
    recordReport: assign(({ context, event }) =>
      event.type === "report"
        ? { report: event.report, reportedAtMs: eventTimeMs(event, context.reportedAtMs) }
        : {},
    ),
  },
}).createMachine({
  id: "factory",
  context: ({ input }) => ({ name: input.name, report: null, reportedAtMs: input.atMs ?? null }),
  initial: "reporting",
  states: {
    reporting: { on: { report: { actions: "recordReport" } } },
  },
});
