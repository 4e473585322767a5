import { assign, setup } from "xstate";
import { effectActions } from "../../runtime/effects.js";
import type { DatasetEvent } from "../dataset/schema.js";
import { emitEffectAction, fanOut, sendEventAction } from "../shared/effects.js";
import { outputSubscriptionId, refs } from "../shared/names.js";
import { type ErrorClass, isJobOutcome } from "../shared/schemas.js";
import { eventTimeMs, timeField } from "../shared/time.js";
import type { SubscriptionEvent } from "../subscription/schema.js";
import { awaitedByDataset, initialJobContext, inputLfnsAmong } from "./context.js";
import {
  brokerRequest,
  dispatchCreation,
  dispatchNames,
  endedReport,
  outputRegistration,
  outputTransfer,
  pilotKill,
  queueEntry,
  retriedReport,
  siteReport,
} from "./outbound.js";
import { waitingSinceSec } from "./projections.js";
import { decideRetry, reassignedAttempt } from "./retry.js";
import type { JobContext, JobEvent, JobInput, JobOutcomeState, JobState } from "./schema.js";

/** Every delay the job arms, read from its context so each attempt can carry its own. */
const DELAY_MS = {
  retryBackoff: (c: JobContext) => c.startDelayMs,
  rebroker: (c: JobContext) => c.watchdogs.rebrokerMs,
  sentTimeout: (c: JobContext) => c.watchdogs.sentTimeoutMs,
  heartbeatTimeout: (c: JobContext) => c.watchdogs.heartbeatTimeoutMs,
  assignedTimeout: (c: JobContext) => c.watchdogs.assignedTimeoutMs,
  holdingTimeout: (c: JobContext) => c.watchdogs.holdingTimeoutMs,
};
type JobDelay = keyof typeof DELAY_MS;

/** A timer fires `delay` after the job entered its state, which is when it last heard the time. */
function timeAfter(context: JobContext, delay: JobDelay): number | null {
  return context.lastAtMs === null ? null : context.lastAtMs + DELAY_MS[delay](context);
}

/** A pilot report for this attempt from the pilot the job was dispatched to; anything else is stale. */
function isCurrentPilotReport(context: JobContext, event: JobEvent): boolean {
  switch (event.type) {
    case "pilot.starting":
    case "pilot.running":
    case "pilot.heartbeat":
    case "pilot.ended":
      return event.attempt === context.attempt && event.pilotId === context.pilot?.pilotId;
    default:
      return false;
  }
}

function isSuccess(event: JobEvent): boolean {
  return event.type === "pilot.ended" && event.exitCode === 0 && event.errorClass === undefined;
}

function producesFiles(event: JobEvent): boolean {
  return event.type === "pilot.ended" && (event.outputs.length > 0 || Boolean(event.log));
}

const kill = { target: "#job.cancelled", actions: ["abandonWork", "recordKill"] } as const;
const close = { target: "#job.closed", actions: ["abandonWork", "recordClose"] } as const;
/**
 * An operator's reassignment, or the grid's of a job that waited at its site
 * too long (src/workload/stale-queue-sweep.ts): the latter names the stay it
 * judged and is refused once that stay is over.
 */
const reassign = {
  guard: "reassignApplies",
  target: "#job.closed",
  actions: ["recordReassign", "abandonWork"],
} as const;
const pilotEnded = [
  { guard: "pilotSucceededWithFiles", target: "#job.holding", actions: "recordPilotEnd" },
  { guard: "pilotSucceeded", target: "#job.finished", actions: "recordPilotEnd" },
  { guard: "fromCurrentPilot", target: "#job.failed", actions: ["recordPilotEnd", "recordPilotError"] },
] as const;

/** A watchdog: when `delay` passes without the state being left, the job fails with `errorClass`. */
function failAfter(delay: JobDelay, errorClass: ErrorClass) {
  return {
    target: "failed" as const,
    actions: { type: "watchdogExpired" as const, params: { delay, errorClass } },
  };
}

export const jobMachine = setup({
  types: {
    context: {} as JobContext,
    input: {} as JobInput,
    events: {} as JobEvent,
  },
  actions: {
    ...effectActions,
    /**
     * Stamps the state; a final state is reported to the site actor, which
     * judges the site on outcomes (the task hears of the end itself). Counts and
     * queues follow from the state itself (the kind's projections). A
     * heartbeat re-enters `starting`/`running` to re-arm its watchdog; that
     * is not a state change, so it reports nothing and keeps the first stamp.
     */
    enterState: fanOut<JobContext, JobEvent, { state: JobState }>(({ context, event, enqueue }, params) => {
      const atMs = eventTimeMs(event, context.lastAtMs);
      if (context.state === params.state) {
        enqueue.assign({ lastAtMs: atMs });
        return;
      }
      enqueue.assign({
        state: params.state,
        previousState: context.state,
        timestamps: atMs === null ? context.timestamps : { ...context.timestamps, [params.state]: atMs },
        lastAtMs: atMs,
      });
      if (isJobOutcome(params.state) && context.site)
        enqueue(
          sendEventAction(refs.site(context.site), siteReport(context, context.state, params.state, atMs)),
        );
    }),
    recordDecision: assign(({ context, event }) => {
      if (event.type !== "brokered") return {};
      return {
        brokerage: { tries: context.brokerage.tries + 1 },
        // A decision without one leaves the job its own priority.
        currentPriority: event.priority ?? null,
        lastAtMs: eventTimeMs(event, context.lastAtMs),
      };
    }),
    recordSite: assign(({ context, event }) => ({
      site: event.type === "brokered" ? event.site : context.site,
    })),
    recordWaitingFor: assign(({ context, event }) => ({
      waitingFor: event.type === "brokered" ? inputLfnsAmong(context, event.waitingFor) : context.waitingFor,
    })),
    createDispatch: fanOut<JobContext, JobEvent>(({ context, event, enqueue }) => {
      if (event.type !== "brokered" || !event.site) return;
      const created = dispatchCreation(context, event.site, event.filesToMove);
      enqueue.assign({ dispatch: dispatchNames(context.jobId, event.site) });
      enqueue(sendEventAction(created.dataset.to, created.dataset.event));
      enqueue(sendEventAction(created.subscription.to, created.subscription.event));
    }),
    watchInputs: fanOut<JobContext, JobEvent>(({ context, enqueue }) => {
      for (const [dataset, lfns] of awaitedByDataset(context)) {
        const watch: DatasetEvent = {
          type: "watch",
          jobId: context.jobId,
          lfns,
          ...timeField(context.lastAtMs),
        };
        enqueue(sendEventAction(refs.dataset(dataset), watch));
      }
    }),
    recordAvailable: assign(({ context, event }) => {
      if (event.type !== "input.available") return {};
      const available = new Set(event.lfns);
      return {
        waitingFor: context.waitingFor.filter((lfn) => !available.has(lfn)),
        lastAtMs: eventTimeMs(event, context.lastAtMs),
      };
    }),
    recordPilot: assign(({ context, event }) => ({
      pilot: event.type === "dispatch" ? { pilotId: event.pilotId, thread: event.thread } : context.pilot,
    })),
    recordPilotEnd: assign(({ context, event }) => {
      if (event.type !== "pilot.ended") return {};
      return {
        exitCode: event.exitCode,
        producedFiles: event.log ? [...event.outputs, event.log] : event.outputs,
        lastAtMs: eventTimeMs(event, context.lastAtMs),
      };
    }),
    recordPilotError: assign(({ event }) => {
      if (event.type !== "pilot.ended") return {};
      return {
        error: {
          class: event.errorClass ?? "payload",
          code: String(event.errorCode ?? event.exitCode),
          message: event.errorMessage ?? `payload exited with code ${event.exitCode}`,
        },
      };
    }),
    watchdogExpired: assign(({ context }, params: { delay: JobDelay; errorClass: ErrorClass }) => ({
      error: {
        class: params.errorClass,
        code: params.delay,
        message: `no progress in ${context.state} within ${DELAY_MS[params.delay](context)} ms`,
      },
      lastAtMs: timeAfter(context, params.delay),
    })),
    timerFired: assign(({ context }, params: { delay: JobDelay }) => ({
      lastAtMs: timeAfter(context, params.delay),
    })),
    recordBrokerageFailure: assign(({ context }) => ({
      error: {
        class: "brokerage" as const,
        code: "noSite",
        message: `no site after ${context.brokerage.tries} brokerage tries`,
      },
    })),
    recordTransferFailure: assign(({ context, event }, params: { errorClass: ErrorClass }) => {
      const reason =
        event.type === "inputs.failed" || event.type === "outputs.failed"
          ? event.reason
          : event.type === "input.missing"
            ? `never produced in ${event.dataset}: ${event.lfns.join(", ")}`
            : "transfer failed";
      return {
        error: { class: params.errorClass, code: event.type, message: reason },
        lastAtMs: eventTimeMs(event, context.lastAtMs),
      };
    }),
    recordKill: assign(({ context, event }) => ({
      error:
        event.type === "kill"
          ? { class: "killed" as const, code: "killed", message: `killed by ${event.by}: ${event.reason}` }
          : context.error,
    })),
    recordClose: assign(({ context, event }) => ({
      error:
        event.type === "close"
          ? { class: "system" as const, code: "closed", message: event.reason }
          : context.error,
    })),
    recordReassign: assign(({ context, event }) => {
      if (event.type !== "reassign") return {};
      return {
        error: {
          class: "system" as const,
          code: "reassigned",
          message: `reassigned by ${event.by}: ${event.reason}`,
        },
        reassignment: { by: event.by, reason: event.reason, site: event.site ?? null },
        lastAtMs: eventTimeMs(event, context.lastAtMs),
      };
    }),
    /** Undoes what the current state holds outside the store: a pilot's process, a dispatch transfer. */
    abandonWork: fanOut<JobContext, JobEvent>(({ context, event, enqueue }) => {
      const reason =
        event.type === "kill" || event.type === "close" || event.type === "reassign"
          ? event.reason
          : (context.reassignment?.reason ?? event.type);
      if (
        (context.state === "sent" || context.state === "starting" || context.state === "running") &&
        context.pilot
      ) {
        enqueue(emitEffectAction("pilot.kill", pilotKill(context, reason)));
      }
      if (context.state === "assigned" && context.dispatch) {
        const cancel: SubscriptionEvent = {
          type: "cancel",
          reason,
          ...timeField(eventTimeMs(event, context.lastAtMs)),
        };
        enqueue(sendEventAction(refs.subscription(context.dispatch.subscription), cancel));
      }
    }),
    registerOutputs: fanOut<JobContext, JobEvent>(({ context, enqueue }) => {
      if (!context.site) return;
      const registration = outputRegistration(context, context.site);
      enqueue(sendEventAction(registration.to, registration.create));
      enqueue(sendEventAction(registration.to, registration.add));
    }),
    requestOutputTransfer: fanOut<JobContext, JobEvent>(({ context, enqueue }) => {
      if (!context.site || !context.outputs.destination) return;
      const transfer = outputTransfer(context, context.site, context.outputs.destination);
      enqueue(sendEventAction(transfer.to, transfer.event));
    }),
    /** Frees what the job held outside itself while live (its user's quota slot), whatever the outcome. */
    announceFinal: fanOut<JobContext, JobEvent, { outcome: JobOutcomeState }>(
      ({ context, enqueue }, params) => {
        enqueue(
          emitEffectAction("job.final", {
            jobId: context.jobId,
            user: context.user,
            site: context.site,
            outcome: params.outcome,
            // The state it ended from: only a job that ends while throttled holds a throttled entry.
            from: context.previousState,
          }),
        );
      },
    ),
    reportEnd: fanOut<JobContext, JobEvent, { outcome: JobOutcomeState }>(({ context, enqueue }, params) => {
      enqueue(sendEventAction(refs.task(context.taskId), endedReport(context, params.outcome)));
    }),
    /** A retry is a new attempt, a new actor: the failed job creates it and tells the task, or reports the end. */
    retryOrReportEnd: fanOut<JobContext, JobEvent>(({ context, enqueue }) => {
      const decision = decideRetry(context);
      if (!decision.retry) {
        enqueue(sendEventAction(refs.task(context.taskId), endedReport(context, "failed")));
        return;
      }
      const nextAttempt: JobEvent = { type: "create", input: decision.input };
      enqueue(sendEventAction(refs.job(decision.nextJobId), nextAttempt));
      enqueue(sendEventAction(refs.task(context.taskId), retriedReport(context, decision.nextJobId)));
    }),
    /** A reassigned attempt closes and makes the next one, as a retry does; any other close ends the logical job. */
    reassignOrReportEnd: fanOut<JobContext, JobEvent>(({ context, enqueue }) => {
      if (!context.reassignment) {
        enqueue(sendEventAction(refs.task(context.taskId), endedReport(context, "closed")));
        return;
      }
      const next = reassignedAttempt(context, context.reassignment);
      const create: JobEvent = { type: "create", input: next.input };
      enqueue(sendEventAction(refs.job(next.nextJobId), create));
      enqueue(sendEventAction(refs.task(context.taskId), retriedReport(context, next.nextJobId)));
    }),
  },
  guards: {
    /** Always for an operator's; for a stale wait's, only while the job is still in the stay it was judged on. */
    reassignApplies: ({ context, event }) => {
      if (event.type !== "reassign" || !event.waited) return true;
      const { state, sinceSec } = event.waited;
      return context.state === state && waitingSinceSec(context, state) === sinceSec;
    },
    delayedStart: ({ context }) => context.startDelayMs > 0,
    noSite: ({ event }) => event.type === "brokered" && event.site === null,
    noSiteAfterLastTry: ({ context, event }) =>
      event.type === "brokered" &&
      event.site === null &&
      context.brokerage.tries + 1 >= context.watchdogs.maxBrokerageTries,
    inputsNotProduced: ({ context, event }) =>
      event.type === "brokered" && inputLfnsAmong(context, event.waitingFor).length > 0,
    hasFilesToMove: ({ event }) => event.type === "brokered" && event.filesToMove.length > 0,
    awaitedInput: ({ context, event }) =>
      event.type === "input.available" && event.lfns.some((lfn) => context.waitingFor.includes(lfn)),
    lastAwaitedInput: ({ context, event }) =>
      event.type === "input.available" &&
      event.lfns.some((lfn) => context.waitingFor.includes(lfn)) &&
      context.waitingFor.every((lfn) => event.lfns.includes(lfn)),
    awaitedInputMissing: ({ context, event }) =>
      event.type === "input.missing" && event.lfns.some((lfn) => context.waitingFor.includes(lfn)),
    fromDispatchSubscription: ({ context, event }) =>
      (event.type === "inputs.ready" || event.type === "inputs.failed") &&
      event.subscription === context.dispatch?.subscription,
    fromCurrentPilot: ({ context, event }) => isCurrentPilotReport(context, event),
    pilotSucceeded: ({ context, event }) => isCurrentPilotReport(context, event) && isSuccess(event),
    pilotSucceededWithFiles: ({ context, event }) =>
      isCurrentPilotReport(context, event) && isSuccess(event) && producesFiles(event),
    ownRegistration: ({ context, event }) =>
      event.type === "outputs.registered" && event.requestId === context.jobId,
    ownRegistrationNeedingTransfer: ({ context, event }) =>
      event.type === "outputs.registered" &&
      event.requestId === context.jobId &&
      context.outputs.destination !== null &&
      context.outputs.destination !== context.site,
    fromOutputTransfer: ({ context, event }) =>
      (event.type === "outputs.transferred" || event.type === "outputs.failed") &&
      context.outputs.destination !== null &&
      event.subscription === outputSubscriptionId(context.jobId, context.outputs.destination),
  },
  delays: {
    retryBackoff: ({ context }) => DELAY_MS.retryBackoff(context),
    rebroker: ({ context }) => DELAY_MS.rebroker(context),
    sentTimeout: ({ context }) => DELAY_MS.sentTimeout(context),
    heartbeatTimeout: ({ context }) => DELAY_MS.heartbeatTimeout(context),
    assignedTimeout: ({ context }) => DELAY_MS.assignedTimeout(context),
    holdingTimeout: ({ context }) => DELAY_MS.holdingTimeout(context),
  },
}).createMachine({
  id: "job",
  context: ({ input }) => initialJobContext(input),
  initial: "created",
  states: {
    created: {
      always: [{ guard: "delayedStart", target: "pending" }, { target: "defined" }],
    },
    pending: {
      entry: { type: "enterState", params: { state: "pending" } },
      after: {
        retryBackoff: {
          target: "defined",
          actions: { type: "timerFired", params: { delay: "retryBackoff" } },
        },
      },
      on: { kill, close, reassign },
    },
    defined: {
      entry: { type: "enterState", params: { state: "defined" } },
      initial: "brokering",
      on: { kill, close, reassign },
      states: {
        brokering: {
          entry: {
            type: "emitEffect",
            params: ({ context }) => ({ effect: "broker.request", data: brokerRequest(context) }),
          },
          on: {
            brokered: [
              {
                guard: "noSiteAfterLastTry",
                target: "#job.failed",
                actions: ["recordDecision", "recordBrokerageFailure"],
              },
              { guard: "noSite", target: "backingOff", actions: "recordDecision" },
              {
                guard: "inputsNotProduced",
                target: "#job.waiting",
                actions: ["recordDecision", "recordWaitingFor"],
              },
              {
                guard: "hasFilesToMove",
                target: "#job.assigned",
                actions: ["recordDecision", "recordSite", "createDispatch"],
              },
              { target: "#job.activated", actions: ["recordDecision", "recordSite"] },
            ],
          },
        },
        backingOff: {
          after: {
            rebroker: { target: "brokering", actions: { type: "timerFired", params: { delay: "rebroker" } } },
          },
        },
      },
    },
    waiting: {
      entry: [{ type: "enterState", params: { state: "waiting" } }, "watchInputs"],
      on: {
        "input.available": [
          { guard: "lastAwaitedInput", target: "defined", actions: "recordAvailable" },
          { guard: "awaitedInput", actions: "recordAvailable" },
        ],
        "input.missing": {
          guard: "awaitedInputMissing",
          target: "failed",
          actions: { type: "recordTransferFailure", params: { errorClass: "stagein" } },
        },
        kill,
        close,
        reassign,
      },
    },
    assigned: {
      entry: { type: "enterState", params: { state: "assigned" } },
      after: {
        assignedTimeout: failAfter("assignedTimeout", "stagein"),
      },
      on: {
        "inputs.ready": { guard: "fromDispatchSubscription", target: "activated" },
        "inputs.failed": {
          guard: "fromDispatchSubscription",
          target: "failed",
          actions: { type: "recordTransferFailure", params: { errorClass: "stagein" } },
        },
        kill,
        close,
        reassign,
      },
    },
    activated: {
      entry: [
        { type: "enterState", params: { state: "activated" } },
        { type: "emitEffect", params: ({ context }) => ({ effect: "queue.add", data: queueEntry(context) }) },
      ],
      on: {
        dispatch: { target: "sent", actions: "recordPilot" },
        throttle: { target: "throttled", actions: "abandonWork" },
        kill,
        close,
        reassign,
      },
    },
    throttled: {
      entry: { type: "enterState", params: { state: "throttled" } },
      on: { release: "activated", kill, close, reassign },
    },
    sent: {
      entry: { type: "enterState", params: { state: "sent" } },
      after: {
        sentTimeout: failAfter("sentTimeout", "pilot"),
      },
      on: {
        "pilot.starting": { guard: "fromCurrentPilot", target: "starting" },
        "pilot.running": { guard: "fromCurrentPilot", target: "running" },
        "pilot.ended": pilotEnded,
        kill,
        close,
        reassign,
      },
    },
    starting: {
      entry: { type: "enterState", params: { state: "starting" } },
      after: {
        heartbeatTimeout: failAfter("heartbeatTimeout", "lostHeartbeat"),
      },
      on: {
        "pilot.heartbeat": { guard: "fromCurrentPilot", target: "starting", reenter: true },
        "pilot.running": { guard: "fromCurrentPilot", target: "running" },
        "pilot.ended": pilotEnded,
        kill,
        close,
        reassign,
      },
    },
    running: {
      entry: { type: "enterState", params: { state: "running" } },
      after: {
        heartbeatTimeout: failAfter("heartbeatTimeout", "lostHeartbeat"),
      },
      on: {
        "pilot.heartbeat": { guard: "fromCurrentPilot", target: "running", reenter: true },
        "pilot.ended": pilotEnded,
        kill,
      },
    },
    holding: {
      entry: [{ type: "enterState", params: { state: "holding" } }, "registerOutputs"],
      after: {
        holdingTimeout: failAfter("holdingTimeout", "timeout"),
      },
      on: {
        "outputs.registered": [
          { guard: "ownRegistrationNeedingTransfer", target: "transferring" },
          { guard: "ownRegistration", target: "finished" },
        ],
        kill,
      },
    },
    transferring: {
      entry: [{ type: "enterState", params: { state: "transferring" } }, "requestOutputTransfer"],
      on: {
        "outputs.transferred": { guard: "fromOutputTransfer", target: "finished" },
        "outputs.failed": {
          guard: "fromOutputTransfer",
          target: "failed",
          actions: { type: "recordTransferFailure", params: { errorClass: "stageout" } },
        },
        kill,
      },
    },
    finished: {
      type: "final",
      entry: [
        { type: "enterState", params: { state: "finished" } },
        { type: "announceFinal", params: { outcome: "finished" } },
        { type: "reportEnd", params: { outcome: "finished" } },
      ],
    },
    failed: {
      type: "final",
      entry: [
        { type: "enterState", params: { state: "failed" } },
        { type: "announceFinal", params: { outcome: "failed" } },
        "retryOrReportEnd",
      ],
    },
    cancelled: {
      type: "final",
      entry: [
        { type: "enterState", params: { state: "cancelled" } },
        { type: "announceFinal", params: { outcome: "cancelled" } },
        { type: "reportEnd", params: { outcome: "cancelled" } },
      ],
    },
    closed: {
      type: "final",
      entry: [
        { type: "enterState", params: { state: "closed" } },
        { type: "announceFinal", params: { outcome: "closed" } },
        "reassignOrReportEnd",
      ],
    },
  },
});
