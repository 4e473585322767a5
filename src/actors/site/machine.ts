/** The site machine: its status (online, offline, test, brokeroff), job outcomes, pilots seen, drains. */
import { assign, setup } from "xstate";
import { effectActions } from "../../runtime/effects.js";
import { eventTimeMs } from "../shared/time.js";
import {
  SITE_STATUSES,
  type SiteContext,
  type SiteEvent,
  type SiteInput,
  type SiteStatus,
  siteInputSchema,
} from "./schema.js";
import {
  closeIncident,
  hasOpenIncident,
  isBlackHole,
  openIncident,
  recordJobState,
  recordPilotRequest,
} from "./stats.js";

function initialContext(raw: SiteInput): SiteContext {
  const input = siteInputSchema.parse(raw);
  return {
    name: input.name,
    status: input.status,
    statusInfo: { sinceMs: input.atMs ?? null, by: "create", reason: "" },
    resources: input.resources,
    storageElement: input.storageElement,
    thresholds: input.thresholds,
    totals: { finished: 0, failed: 0, cancelled: 0, closed: 0 },
    outcomes: [],
    hours: [],
    consecutiveSuccesses: 0,
    incidents: [],
    pilots: { lastSeenAtMs: null, requests: [] },
    drain: null,
    lastAtMs: input.atMs ?? null,
  };
}

/** The time of a report, or the last known one: stats need a number even from a sender that gave none. */
function reportTimeMs(context: SiteContext, event: SiteEvent): number {
  return eventTimeMs(event, context.lastAtMs) ?? 0;
}

/** The site as it would be after the report, for guards that decide on the updated statistics. */
function afterReport(context: SiteContext, event: SiteEvent): SiteContext {
  if (event.type !== "job.state") return context;
  return { ...context, ...recordJobState(context, event, reportTimeMs(context, event)) };
}

export const siteMachine = setup({
  types: {
    context: {} as SiteContext,
    input: {} as SiteInput,
    events: {} as SiteEvent,
  },
  actions: {
    ...effectActions,
    enterStatus: assign(({ context, event }, params: { status: SiteStatus }) => ({
      status: params.status,
      statusInfo: { ...context.statusInfo, sinceMs: eventTimeMs(event, context.lastAtMs) },
    })),
    /** A site back online starts a fresh failure window: the failures that closed it must not close it again. */
    startFreshWindow: assign({ outcomes: [] }),
    startRecoveryCount: assign({ consecutiveSuccesses: 0 }),
    recordJobState: assign(({ context, event }) => {
      if (event.type !== "job.state") return {};
      const atMs = reportTimeMs(context, event);
      return { ...recordJobState(context, event, atMs), lastAtMs: atMs };
    }),
    openIncident: assign(({ context, event }) => ({
      incidents: openIncident(context, eventTimeMs(event, context.lastAtMs)),
      statusInfo: {
        sinceMs: context.statusInfo.sinceMs,
        by: "auto",
        reason: "black hole: too many recent jobs failed",
      },
    })),
    closeIncidentOnRecovery: assign(({ context, event }) => ({
      incidents: closeIncident(context, eventTimeMs(event, context.lastAtMs), "recovery"),
      statusInfo: {
        sinceMs: context.statusInfo.sinceMs,
        by: "auto",
        reason: `recovered after ${context.thresholds.recoverySuccesses} successful jobs`,
      },
    })),
    recordOperatorStatus: assign(({ context, event }) => {
      if (event.type !== "setStatus") return {};
      const atMs = eventTimeMs(event, context.lastAtMs);
      return {
        incidents: closeIncident(context, atMs, event.by),
        statusInfo: { sinceMs: atMs, by: event.by, reason: event.reason },
        lastAtMs: atMs,
      };
    }),
    recordDrain: assign(({ context, event }) => {
      if (event.type !== "drain") return {};
      const atMs = eventTimeMs(event, context.lastAtMs);
      return { drain: { atMs, by: event.by, reason: event.reason }, lastAtMs: atMs };
    }),
    recordProvisioned: assign(({ context, event }) => {
      const atMs = reportTimeMs(context, event);
      return { pilots: { ...context.pilots, lastSeenAtMs: atMs }, lastAtMs: atMs };
    }),
    recordPilot: assign(({ context, event }) => {
      const atMs = reportTimeMs(context, event);
      return {
        pilots: {
          lastSeenAtMs: atMs,
          requests: recordPilotRequest(
            context.pilots.requests,
            atMs,
            context.thresholds.pilotWindowMs,
            event.type === "pilot.seen" ? (event.requests ?? 1) : 1,
          ),
        },
        lastAtMs: atMs,
      };
    }),
  },
  guards: {
    startsAs: ({ context }, params: { status: SiteStatus }) => context.status === params.status,
    changesStatusTo: ({ context, event }, params: { status: SiteStatus }) =>
      event.type === "setStatus" && event.status === params.status && context.status !== params.status,
    turnsBlackHole: ({ context, event }) =>
      event.type === "job.state" &&
      event.to === "failed" &&
      isBlackHole(afterReport(context, event), reportTimeMs(context, event)),
    recovers: ({ context, event }) =>
      event.type === "job.state" &&
      hasOpenIncident(context) &&
      afterReport(context, event).consecutiveSuccesses >= context.thresholds.recoverySuccesses,
  },
}).createMachine({
  id: "site",
  context: ({ input }) => initialContext(input),
  initial: "created",
  on: {
    setStatus: SITE_STATUSES.map((status) => ({
      guard: { type: "changesStatusTo" as const, params: { status } },
      target: `.${status}`,
      actions: "recordOperatorStatus" as const,
    })),
    "job.state": { actions: "recordJobState" },
    "pilot.seen": { actions: "recordPilot" },
    "pilots.provisioned": { actions: "recordProvisioned" },
    drain: { actions: "recordDrain" },
  },
  states: {
    created: {
      always: SITE_STATUSES.map((status) => ({
        guard: { type: "startsAs" as const, params: { status } },
        target: status,
      })),
    },
    online: {
      entry: [{ type: "enterStatus", params: { status: "online" } }, "startFreshWindow"],
      on: {
        "job.state": [
          { guard: "turnsBlackHole", target: "brokeroff", actions: ["recordJobState", "openIncident"] },
          { actions: "recordJobState" },
        ],
      },
    },
    brokeroff: {
      entry: [{ type: "enterStatus", params: { status: "brokeroff" } }, "startRecoveryCount"],
      on: {
        "job.state": [
          { guard: "recovers", target: "online", actions: ["recordJobState", "closeIncidentOnRecovery"] },
          { actions: "recordJobState" },
        ],
      },
    },
    // Its queued jobs will not run here: the grid reassigns them (`site.offline`, src/workload/reassign.ts).
    offline: {
      entry: [
        { type: "enterStatus", params: { status: "offline" } },
        {
          type: "emitEffect",
          params: ({ context }) => ({ effect: "site.offline", data: { site: context.name } }),
        },
      ],
    },
    test: { entry: { type: "enterStatus", params: { status: "test" } } },
  },
});
