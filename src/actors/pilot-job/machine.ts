// The pilot-job machine: states only move forward (submitting, queued, running, then one end), whatever order reports come in.
import { assign, setup } from "xstate";
import { effectActions } from "../../runtime/effects.js";
import { eventTimeMs, stampState } from "../shared/time.js";
import {
  type PilotJobContext,
  type PilotJobEvent,
  type PilotJobInput,
  type PilotJobState,
  pilotJobInputSchema,
} from "./schema.js";

function initialContext(raw: PilotJobInput): PilotJobContext {
  const input = pilotJobInputSchema.parse(raw);
  return {
    id: input.id,
    factory: input.factory,
    queue: input.queue,
    site: input.site,
    batchSystem: input.batchSystem,
    pilots: input.pilots,
    batchId: null,
    exitCode: null,
    reason: null,
    cancelReason: null,
    timestamps: input.atMs === undefined ? {} : { submitting: input.atMs },
    lastAtMs: input.atMs ?? null,
  };
}

type Observed = Extract<PilotJobEvent, { type: "observed" }>["state"];

const observedIs = (state: Observed) => ({ type: "observedIs" as const, params: { state } });

/** Transitions on an observation to each of `states`, in the order given. */
function onObserved(...states: Observed[]) {
  return states.map((state) => ({
    guard: observedIs(state),
    target: state,
    actions: [{ type: "recordObservation" as const }, { type: "enterState" as const, params: { state } }],
  }));
}

const ENDS: Observed[] = ["done", "failed", "cancelled"];

const onLost = {
  target: "lost" as const,
  actions: [
    { type: "recordLost" as const },
    { type: "enterState" as const, params: { state: "lost" as PilotJobState } },
  ],
};
const onCancelRequested = { actions: { type: "recordCancel" as const } };
const final = { type: "final" as const };

export const pilotJobMachine = setup({
  types: {
    context: {} as PilotJobContext,
    input: {} as PilotJobInput,
    events: {} as PilotJobEvent,
  },
  guards: {
    observedIs: ({ event }, params: { state: Observed }) =>
      event.type === "observed" && event.state === params.state,
  },
  actions: {
    ...effectActions,
    enterState: assign(({ context, event }, params: { state: PilotJobState }) =>
      stampState(context, event, params.state),
    ),
    recordSubmitted: assign(({ context, event }) =>
      event.type === "submitted"
        ? { batchId: event.batchId, lastAtMs: eventTimeMs(event, context.lastAtMs) }
        : {},
    ),
    recordObservation: assign(({ context, event }) => {
      if (event.type !== "observed") return {};
      return {
        batchId: event.batchId ?? context.batchId,
        exitCode: event.exitCode ?? context.exitCode,
        reason: event.reason ?? context.reason,
      };
    }),
    recordCancel: assign(({ context, event }) =>
      event.type === "cancel.requested"
        ? { cancelReason: event.reason, lastAtMs: eventTimeMs(event, context.lastAtMs) }
        : {},
    ),
    recordLost: assign(({ event }) => (event.type === "lost" ? { reason: event.reason } : {})),
  },
}).createMachine({
  id: "pilot-job",
  context: ({ input }) => initialContext(input),
  initial: "submitting",
  states: {
    submitting: {
      on: {
        submitted: {
          target: "queued",
          actions: ["recordSubmitted", { type: "enterState", params: { state: "queued" } }],
        },
        observed: onObserved("queued", "running", ...ENDS),
        "cancel.requested": onCancelRequested,
        lost: onLost,
      },
    },
    queued: {
      on: {
        observed: onObserved("running", ...ENDS),
        "cancel.requested": onCancelRequested,
        lost: onLost,
      },
    },
    running: {
      on: { observed: onObserved(...ENDS), "cancel.requested": onCancelRequested, lost: onLost },
    },
    done: final,
    failed: final,
    cancelled: final,
    lost: final,
  },
});
