/**
 * The job machine's states and transitions (its actions, guards and delays
 * are in `setup.ts`). What a transition tells others because the job's
 * top-level state changed is the kind's (`transition-effects.ts`), and every
 * top-level state's entry stamp is added by `withEntryStamps`, not written
 * in each state.
 */

import type { ErrorClass } from "../shared/schemas.js";
import { initialJobContext } from "./context.js";
import { brokerRequest, queueEntry } from "./outbound.js";
import type { JobState } from "./schema.js";
import { type JobDelay, jobSetup } from "./setup.js";

const kill = { target: "#job.cancelled", actions: "recordKill" } as const;
const close = { target: "#job.closed", actions: "recordClose" } as const;
/**
 * An operator's reassignment, or the grid's of a job that waited at its site
 * too long (src/workload/stale-queue-sweep.ts): the latter names the stay it
 * judged and is refused once that stay is over.
 */
function reassign<S extends JobState>(state: S) {
  return {
    guard: { type: "reassignApplies" as const, params: { state } },
    target: "#job.closed" as const,
    actions: "recordReassign" as const,
  };
}
const pilotEnded = [
  { guard: "pilotSucceededWithFiles", target: "#job.holding", actions: "recordPilotEnd" },
  { guard: "pilotSucceeded", target: "#job.finished", actions: "recordPilotEnd" },
  { guard: "fromCurrentPilot", target: "#job.failed", actions: ["recordPilotEnd", "recordPilotError"] },
] as const;

/** A watchdog: when `delay` passes without the state being left, the job fails with `errorClass`. */
function failAfter(state: JobState, delay: JobDelay, errorClass: ErrorClass) {
  return {
    target: "failed" as const,
    actions: { type: "watchdogExpired" as const, params: { state, delay, errorClass } },
  };
}

type StateConfig = { entry?: unknown };
type JobStatesConfig = NonNullable<Parameters<typeof jobSetup.createMachine>[0]["states"]>;

/**
 * Every top-level state but the transient `created`, with its entry stamp
 * first (`stampEntry`: when the job entered it, and `lastAtMs`): one rule
 * for all of them, ahead of each state's own entry actions, which read it.
 */
function withEntryStamps(states: JobStatesConfig): JobStatesConfig {
  const stamped: Record<string, StateConfig> = {};
  for (const [name, config] of Object.entries(states as Record<string, StateConfig>)) {
    if (name === "created") {
      stamped[name] = config;
      continue;
    }
    const stamp = { type: "stampEntry", params: { state: name } };
    const own = config.entry === undefined ? [] : Array.isArray(config.entry) ? config.entry : [config.entry];
    stamped[name] = { ...config, entry: [stamp, ...own] };
  }
  return stamped as JobStatesConfig;
}

export const jobMachine = jobSetup.createMachine({
  id: "job",
  context: ({ input }) => initialJobContext(input),
  initial: "created",
  states: withEntryStamps({
    created: {
      always: [{ guard: "delayedStart", target: "pending" }, { target: "defined" }],
    },
    pending: {
      after: {
        retryBackoff: {
          target: "defined",
          actions: { type: "timerFired", params: { delay: "retryBackoff" } },
        },
      },
      on: { kill, close, reassign: reassign("pending") },
    },
    defined: {
      initial: "brokering",
      on: { kill, close, reassign: reassign("defined") },
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
              { guard: "awaitsBuild", target: "awaitingBuild", actions: ["recordDecision", "recordSite"] },
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
        /**
         * A run job of a build task, placed at a site: it waits for the
         * site's build (its task makes one, or has one), then is brokered
         * again, to that site only, carrying the built sandbox.
         */
        awaitingBuild: {
          entry: "askForBuild",
          on: {
            "build.ready": { guard: "buildOfOwnSite", target: "brokering", actions: "recordBuilt" },
            "build.failed": { guard: "buildOfOwnSite", target: "#job.failed", actions: "recordBuildFailure" },
          },
        },
      },
    },
    waiting: {
      entry: ["watchInputs"],
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
        reassign: reassign("waiting"),
      },
    },
    assigned: {
      after: {
        assignedTimeout: failAfter("assigned", "assignedTimeout", "stagein"),
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
        reassign: reassign("assigned"),
      },
    },
    activated: {
      entry: [
        { type: "emitEffect", params: ({ context }) => ({ effect: "queue.add", data: queueEntry(context) }) },
      ],
      on: {
        dispatch: { target: "sent", actions: "recordPilot" },
        throttle: "throttled",
        kill,
        close,
        reassign: reassign("activated"),
      },
    },
    throttled: {
      on: { release: "activated", kill, close, reassign: reassign("throttled") },
    },
    sent: {
      after: {
        sentTimeout: failAfter("sent", "sentTimeout", "pilot"),
      },
      on: {
        "pilot.starting": { guard: "fromCurrentPilot", target: "starting" },
        "pilot.running": { guard: "fromCurrentPilot", target: "running" },
        "pilot.ended": pilotEnded,
        kill,
        close,
        reassign: reassign("sent"),
      },
    },
    starting: {
      after: {
        heartbeatTimeout: failAfter("starting", "heartbeatTimeout", "lostHeartbeat"),
      },
      on: {
        "pilot.heartbeat": { guard: "fromCurrentPilot", target: "starting", reenter: true },
        "pilot.running": { guard: "fromCurrentPilot", target: "running" },
        "pilot.ended": pilotEnded,
        kill,
        close,
        reassign: reassign("starting"),
      },
    },
    running: {
      after: {
        heartbeatTimeout: failAfter("running", "heartbeatTimeout", "lostHeartbeat"),
      },
      on: {
        "pilot.heartbeat": { guard: "fromCurrentPilot", target: "running", reenter: true },
        "pilot.ended": pilotEnded,
        kill,
      },
    },
    holding: {
      entry: ["registerOutputs"],
      after: {
        holdingTimeout: failAfter("holding", "holdingTimeout", "timeout"),
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
      entry: ["requestOutputTransfer"],
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
      entry: [{ type: "reportEnd", params: { outcome: "finished" } }],
    },
    failed: {
      type: "final",
      entry: ["retryOrReportEnd"],
    },
    cancelled: {
      type: "final",
      entry: [{ type: "reportEnd", params: { outcome: "cancelled" } }],
    },
    closed: {
      type: "final",
      entry: ["reassignOrReportEnd"],
    },
  }),
});
