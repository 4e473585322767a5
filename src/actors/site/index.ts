import type { KindDefinition } from "../../runtime/kinds.js";
import { siteMachine } from "./machine.js";
import { siteEventSchema } from "./schema.js";

export { siteMachine } from "./machine.js";
export * from "./schema.js";

export const siteKind: KindDefinition<typeof siteMachine> = {
  kind: "site",
  machine: siteMachine,
  version: 1,
  createEvent: "create",
  eventSchema: siteEventSchema,
};
