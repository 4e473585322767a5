/** The job kind: its machine, version, migrations, projections, transition effects and constant fields. */
import type { KindDefinition } from "../../runtime/kinds.js";
import { jobIdParts } from "../shared/names.js";
import { jobGlobalProjections } from "./global-projections.js";
import { withAnalysisCounters } from "./lane-counters.js";
import { jobMachine } from "./machine.js";
import { migrateJob } from "./migrate.js";
import { jobProjections } from "./projections.js";
import { jobEventSchema } from "./schema.js";
import { jobTransitionEffects } from "./transition-effects.js";

export { jobMachine } from "./machine.js";
export * from "./schema.js";
export { jobStateOf } from "./state.js";

export const jobKind: KindDefinition<typeof jobMachine> = {
  kind: "job",
  machine: jobMachine,
  version: 9,
  minVersion: 1,
  migrate: migrateJob,
  createEvent: "create",
  eventSchema: jobEventSchema,
  projections: withAnalysisCounters(jobProjections),
  globalProjections: jobGlobalProjections,
  transitionEffects: jobTransitionEffects,
  historyKeepsCreateInput: false,
  // A task's expansion creates its jobs' first attempts (see `expandTaskJobs`).
  intakeGroupOf: (id) => jobIdParts(id)?.taskId ?? null,
  // The job's spec: set by `create` and read, never replaced, by its transitions.
  constantContext: [
    "jobId",
    "taskId",
    "index",
    "attempt",
    "user",
    "group",
    "type",
    "resources",
    "release",
    "inputs",
    "outputs",
    "payload",
    "requestedSite",
    "test",
    "share",
    "retry",
    "watchdogs",
    "reassignments",
    "startDelayMs",
  ],
};
