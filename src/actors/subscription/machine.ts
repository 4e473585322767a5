/**
 * The subscription machine: a dataset's files brought to a site, file by file, then the requester
 * told.
 */
import { assign, setup } from "xstate";
import { effectActions } from "../../runtime/effects.js";
import type { DatasetEvent } from "../dataset/schema.js";
import type { JobEvent } from "../job/schema.js";
import { emitEffectAction, fanOut, sendEventAction } from "../shared/effects.js";
import { refs, subscriptionIdOf } from "../shared/names.js";
import { eventTimeMs, stampState, timeField } from "../shared/time.js";
import { initialProgress, isPending, markDone, markFailed, transferFiles } from "./progress.js";
import {
  completeSubscriptionInput,
  type SubscriptionContext,
  type SubscriptionEvent,
  type SubscriptionInput,
  type SubscriptionState,
} from "./schema.js";

function initialContext(raw: SubscriptionInput): SubscriptionContext {
  const input = completeSubscriptionInput(raw);
  return {
    id: input.id ?? subscriptionIdOf(input.dataset, input.site),
    dataset: input.dataset,
    site: input.site,
    purpose: input.purpose,
    requester: input.requester,
    ...initialProgress(input.files),
    maxFileAttempts: input.maxFileAttempts,
    failure: null,
    cancelReason: null,
    timestamps: {},
    lastAtMs: input.atMs ?? null,
  };
}

/** What the requester hears at the end, by purpose; a replication has nobody waiting on it. */
function requesterEvent(context: SubscriptionContext, outcome: "done" | "failed"): JobEvent | null {
  const subscription = context.id;
  const reason = context.failure ? `${context.failure.lfn}: ${context.failure.reason}` : "";
  const atMs = timeField(context.lastAtMs);
  if (context.purpose === "dispatch") {
    return outcome === "done"
      ? { type: "inputs.ready", subscription, ...atMs }
      : { type: "inputs.failed", subscription, reason, ...atMs };
  }
  if (context.purpose === "output") {
    return outcome === "done"
      ? { type: "outputs.transferred", subscription, ...atMs }
      : { type: "outputs.failed", subscription, reason, ...atMs };
  }
  return null;
}

function allOtherFilesDone(context: SubscriptionContext): boolean {
  return context.progress.filesDone + 1 === context.progress.files;
}

export const subscriptionMachine = setup({
  types: {
    context: {} as SubscriptionContext,
    input: {} as SubscriptionInput,
    events: {} as SubscriptionEvent,
  },
  actions: {
    ...effectActions,
    enterState: assign(({ context, event }, params: { state: SubscriptionState }) =>
      stampState(context, event, params.state),
    ),
    startTransfers: fanOut<SubscriptionContext, SubscriptionEvent>(({ context, enqueue }) => {
      enqueue(emitEffectAction("transfer.start", transferFiles(context, Object.keys(context.files))));
    }),
    recordFileDone: assign(({ context, event }) => {
      if (event.type !== "file.done") return {};
      return { ...markDone(context, event.lfn), lastAtMs: eventTimeMs(event, context.lastAtMs) };
    }),
    /** Records the failure and, while the file has attempts left, asks for it again. */
    recordFileFailed: fanOut<SubscriptionContext, SubscriptionEvent>(({ context, event, enqueue }) => {
      if (event.type !== "file.failed") return;
      const next = { ...context, ...markFailed(context, event.lfn, event.reason) };
      const failedForGood = next.files[event.lfn]?.status === "failed";
      enqueue.assign({
        files: next.files,
        failure: failedForGood ? { lfn: event.lfn, reason: event.reason } : context.failure,
        lastAtMs: eventTimeMs(event, context.lastAtMs),
      });
      if (!failedForGood) enqueue(emitEffectAction("transfer.start", transferFiles(next, [event.lfn])));
    }),
    recordCancel: assign(({ context, event }) => ({
      cancelReason: event.type === "cancel" ? event.reason : context.cancelReason,
    })),
    /** The replica is complete at the site: the dataset records it and the requester moves on. */
    reportDone: fanOut<SubscriptionContext, SubscriptionEvent>(({ context, enqueue }) => {
      const lfns = Object.keys(context.files);
      if (lfns.length > 0) {
        const replica: DatasetEvent = {
          type: "replica.add",
          site: context.site,
          lfns,
          ...timeField(context.lastAtMs),
        };
        enqueue(sendEventAction(refs.dataset(context.dataset), replica));
      }
      const event = requesterEvent(context, "done");
      if (context.requester && event) enqueue(sendEventAction(context.requester, event));
    }),
    reportFailed: fanOut<SubscriptionContext, SubscriptionEvent>(({ context, enqueue }) => {
      const event = requesterEvent(context, "failed");
      if (context.requester && event) enqueue(sendEventAction(context.requester, event));
    }),
    stopTransfers: fanOut<SubscriptionContext, SubscriptionEvent>(({ context, enqueue }) => {
      enqueue(emitEffectAction("transfer.cancel", { subscriptionId: context.id }));
    }),
  },
  guards: {
    nothingToMove: ({ context }) => context.progress.files === 0,
    completesReplica: ({ context, event }) =>
      event.type === "file.done" && isPending(context, event.lfn) && allOtherFilesDone(context),
    pendingFileDone: ({ context, event }) => event.type === "file.done" && isPending(context, event.lfn),
    exhaustsFile: ({ context, event }) =>
      event.type === "file.failed" &&
      isPending(context, event.lfn) &&
      context.files[event.lfn]!.attempts >= context.maxFileAttempts,
    pendingFileFailed: ({ context, event }) => event.type === "file.failed" && isPending(context, event.lfn),
  },
}).createMachine({
  id: "subscription",
  context: ({ input }) => initialContext(input),
  initial: "created",
  states: {
    created: {
      always: [{ guard: "nothingToMove", target: "done" }, { target: "requested" }],
    },
    requested: {
      entry: [{ type: "enterState", params: { state: "requested" } }, "startTransfers"],
      on: {
        "transfer.started": "transferring",
        "file.done": [
          { guard: "completesReplica", target: "done", actions: "recordFileDone" },
          { guard: "pendingFileDone", target: "transferring", actions: "recordFileDone" },
        ],
        "file.failed": [
          { guard: "exhaustsFile", target: "failed", actions: "recordFileFailed" },
          { guard: "pendingFileFailed", target: "transferring", actions: "recordFileFailed" },
        ],
        cancel: { target: "cancelled", actions: ["recordCancel", "stopTransfers"] },
      },
    },
    transferring: {
      entry: { type: "enterState", params: { state: "transferring" } },
      on: {
        "file.done": [
          { guard: "completesReplica", target: "done", actions: "recordFileDone" },
          { guard: "pendingFileDone", actions: "recordFileDone" },
        ],
        "file.failed": [
          { guard: "exhaustsFile", target: "failed", actions: "recordFileFailed" },
          { guard: "pendingFileFailed", actions: "recordFileFailed" },
        ],
        cancel: { target: "cancelled", actions: ["recordCancel", "stopTransfers"] },
      },
    },
    done: {
      type: "final",
      entry: [{ type: "enterState", params: { state: "done" } }, "reportDone"],
    },
    failed: {
      type: "final",
      entry: [{ type: "enterState", params: { state: "failed" } }, "stopTransfers", "reportFailed"],
    },
    cancelled: {
      type: "final",
      entry: { type: "enterState", params: { state: "cancelled" } },
    },
  },
});
