import type { KindDefinition } from "../../runtime/kinds.js";
import { jobMachine } from "./machine.js";
import { jobEventSchema } from "./schema.js";

export { jobMachine } from "./machine.js";
export * from "./schema.js";

export const jobKind: KindDefinition<typeof jobMachine> = {
  kind: "job",
  machine: jobMachine,
  version: 1,
  createEvent: "create",
  eventSchema: jobEventSchema,
};
