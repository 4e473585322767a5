/**
 * The task kind: its machine, version, migrations, projections and the expansion of its jobs'
 * creation.
 */
import type { KindDefinition } from "../../runtime/kinds.js";
import { taskGlobalProjections } from "./global-projections.js";
import { CREATE_JOBS_EFFECT, expandTaskJobs } from "./jobs.js";
import { taskMachine } from "./machine.js";
import { migrateTask } from "./migrate.js";
import { taskEventSchema } from "./schema.js";

export { taskListed } from "./global-projections.js";
export { CREATE_JOBS_EFFECT, expandTaskJobs, firstAttempt } from "./jobs.js";
export { taskMachine } from "./machine.js";
export * from "./schema.js";

export const taskKind: KindDefinition<typeof taskMachine> = {
  kind: "task",
  machine: taskMachine,
  version: 3,
  minVersion: 1,
  migrate: migrateTask,
  createEvent: "create",
  eventSchema: taskEventSchema,
  constantContext: ["taskId", "user", "type", "outputDataset", "jobCount"],
  expansions: { [CREATE_JOBS_EFFECT]: expandTaskJobs },
  globalProjections: taskGlobalProjections,
};
