// The pilot-job kind as the runtime hosts it.
import type { KindDefinition } from "../../runtime/kinds.js";
import { pilotJobGlobalProjections } from "./global-projections.js";
import { pilotJobMachine } from "./machine.js";
import { pilotJobEventSchema } from "./schema.js";

export { pilotJobMachine } from "./machine.js";
export * from "./schema.js";

export const pilotJobKind: KindDefinition<typeof pilotJobMachine> = {
  kind: "pilot-job",
  machine: pilotJobMachine,
  version: 1,
  createEvent: "create",
  eventSchema: pilotJobEventSchema,
  globalProjections: pilotJobGlobalProjections,
  constantContext: ["id", "factory", "queue", "site", "batchSystem", "pilots"],
};
