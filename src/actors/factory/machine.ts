// The factory machine: one state; each queue's report replaces its last, so a reader sees the factory as it last saw itself.
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
    recordReport: assign(({ context, event }) => {
      if (event.type !== "report") return {};
      const { queue, ...process } = event.report;
      const reportedAtMs = eventTimeMs(event, context.reportedAtMs);
      return {
        process,
        queues: { ...context.queues, [queue.name]: { ...queue, reportedAtMs } },
        reportedAtMs,
      };
    }),
  },
}).createMachine({
  id: "factory",
  context: ({ input }) => ({ name: input.name, process: null, queues: {}, reportedAtMs: input.atMs ?? null }),
  initial: "reporting",
  states: {
    reporting: { on: { report: { actions: "recordReport" } } },
  },
});
