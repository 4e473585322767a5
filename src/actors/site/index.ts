/** The site kind: its machine, version, migrations and global projections. */
import type { KindDefinition } from "../../runtime/kinds.js";
import { siteGlobalProjections } from "./global-projections.js";
import { siteMachine } from "./machine.js";
import { migrateSite } from "./migrate.js";
import { siteEventSchema } from "./schema.js";

export { siteListed } from "./global-projections.js";
export { siteMachine } from "./machine.js";
export * from "./schema.js";

export const siteKind: KindDefinition<typeof siteMachine> = {
  kind: "site",
  machine: siteMachine,
  version: 4,
  minVersion: 1,
  migrate: migrateSite,
  createEvent: "create",
  eventSchema: siteEventSchema,
  globalProjections: siteGlobalProjections,
  // Set by `create`; an operator's reconfiguration replaces them, and that commit writes them again.
  constantContext: ["name", "resources", "storageElement", "thresholds"],
};
