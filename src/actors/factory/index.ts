// The factory kind as the runtime hosts it.
import type { KindDefinition } from "../../runtime/kinds.js";
import { factoryGlobalProjections } from "./global-projections.js";
import { factoryMachine } from "./machine.js";
import { factoryEventSchema } from "./schema.js";

export { factoryMachine } from "./machine.js";
export * from "./schema.js";

export const factoryKind: KindDefinition<typeof factoryMachine> = {
  kind: "factory",
  machine: factoryMachine,
  version: 1,
  createEvent: "create",
  eventSchema: factoryEventSchema,
  globalProjections: factoryGlobalProjections,
  constantContext: ["name"],
};
