/** The dataset kind: its machine, version and global projections. */
import type { KindDefinition } from "../../runtime/kinds.js";
import { datasetGlobalProjections } from "./global-projections.js";
import { datasetMachine } from "./machine.js";
import { datasetEventSchema } from "./schema.js";

export { datasetMachine } from "./machine.js";
export * from "./schema.js";

export const datasetKind: KindDefinition<typeof datasetMachine> = {
  kind: "dataset",
  machine: datasetMachine,
  version: 1,
  createEvent: "create",
  eventSchema: datasetEventSchema,
  globalProjections: datasetGlobalProjections,
};
