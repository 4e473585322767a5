/**
 * The job machine's setup: its actions, guards and delays, by name. The
 * states that use them are in `machine.ts`; the messages the actions send
 * are built in `outbound.ts`.
 */
import { assign, setup } from "xstate";
import { effectActions } from "../../runtime/effects.js";
import type { DatasetEvent } from "../dataset/schema.js";
import { fanOut, sendEventAction } from "../shared/effects.js";
import { outputSubscriptionId, refs } from "../shared/names.js";
import type { ErrorClass } from "../shared/schemas.js";
import { eventTimeMs, timeField } from "../shared/time.js";
import { awaitedByDataset, inputLfnsAmong } from "./context.js";
import {
  buildWanted,
  dispatchCreation,
  dispatchNames,
  endedReport,
  outputRegistration,
  outputTransfer,
  retriedReport,
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
export type JobDelay = keyof typeof DELAY_MS;

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

export const jobSetup = setup({
  types: {
    context: {} as JobContext,
    input: {} as JobInput,
    events: {} as JobEvent,
  },
  actions: {
    ...effectActions,
    /**
     * Stamps the entry into a top-level state (added to every one of them by
     * `withEntryStamps`). A heartbeat re-enters `starting`/`running` to re-arm
     * its watchdog: that is not an entry, so it keeps the first stamp. What
     * an entry tells others (the site's `job.state`, `job.final`) is the
     * kind's `transitionEffects`; counts and queues are its projections.
     */
    stampEntry: assign(({ context, event }, params: { state: JobState }) => {
      const atMs = eventTimeMs(event, context.lastAtMs);
      if (event.type === "pilot.heartbeat" || atMs === null) return { lastAtMs: atMs };
      return { timestamps: { ...context.timestamps, [params.state]: atMs }, lastAtMs: atMs };
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
    askForBuild: fanOut<JobContext, JobEvent>(({ context, enqueue }) => {
      enqueue(sendEventAction(refs.task(context.taskId), buildWanted(context)));
    }),
    recordBuilt: assign(({ context, event }) => {
      if (event.type !== "build.ready") return {};
      return { builtSandbox: event.sandbox, lastAtMs: eventTimeMs(event, context.lastAtMs) };
    }),
    recordBuildFailure: assign(({ context, event }) => {
      if (event.type !== "build.failed") return {};
      return {
        error: {
          class: "stagein" as const,
          code: "buildFailed",
          message: `build at ${event.site} failed: ${event.reason}`,
        },
        lastAtMs: eventTimeMs(event, context.lastAtMs),
      };
    }),
    recordPilotEnd: assign(({ context, event }) => {
      if (event.type !== "pilot.ended") return {};
      return {
        ...(event.sandbox ? { producedSandbox: event.sandbox } : {}),
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
    watchdogExpired: assign(
      ({ context }, params: { state: JobState; delay: JobDelay; errorClass: ErrorClass }) => ({
        error: {
          class: params.errorClass,
          code: params.delay,
          message: `no progress in ${params.state} within ${DELAY_MS[params.delay](context)} ms`,
        },
        lastAtMs: timeAfter(context, params.delay),
      }),
    ),
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
    reassignApplies: ({ context, event }, params: { state: JobState }) => {
      if (event.type !== "reassign" || !event.waited) return true;
      const { state, sinceSec } = event.waited;
      return params.state === state && waitingSinceSec(context, state) === sinceSec;
    },
    delayedStart: ({ context }) => context.startDelayMs > 0,
    noSite: ({ event }) => event.type === "brokered" && event.site === null,
    awaitsBuild: ({ context, event }) =>
      event.type === "brokered" &&
      event.site !== null &&
      context.payload?.build !== undefined &&
      context.builtSandbox === undefined,
    buildOfOwnSite: ({ context, event }) =>
      (event.type === "build.ready" || event.type === "build.failed") && event.site === context.site,
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
    heartbeatTimeout: ({ context, event }) =>
      Math.max(
        0,
        DELAY_MS.heartbeatTimeout(context) - (event.type === "pilot.heartbeat" ? (event.heldMs ?? 0) : 0),
      ),
    assignedTimeout: ({ context }) => DELAY_MS.assignedTimeout(context),
    holdingTimeout: ({ context }) => DELAY_MS.holdingTimeout(context),
  },
});
