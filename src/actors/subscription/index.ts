/** The subscription kind: its machine, version and global projections. */
import type { KindDefinition } from "../../runtime/kinds.js";
import { subscriptionGlobalProjections } from "./global-projections.js";
import { subscriptionMachine } from "./machine.js";
import { subscriptionEventSchema } from "./schema.js";

export { subscriptionMachine } from "./machine.js";
export * from "./schema.js";

export const subscriptionKind: KindDefinition<typeof subscriptionMachine> = {
  kind: "subscription",
  machine: subscriptionMachine,
  version: 1,
  createEvent: "create",
  eventSchema: subscriptionEventSchema,
  globalProjections: subscriptionGlobalProjections,
  constantContext: ["id", "dataset", "site", "purpose", "requester", "maxFileAttempts"],
};
