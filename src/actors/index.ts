/**
 * Registers the workload kinds (job, task, dataset, subscription, site, pilot-job, factory) with a
 * runtime.
 */
import type { KindRegistry } from "../runtime/kinds.js";
import { datasetKind } from "./dataset/index.js";
import { factoryKind } from "./factory/index.js";
import { jobKind } from "./job/index.js";
import { pilotJobKind } from "./pilot-job/index.js";
import { siteKind } from "./site/index.js";
import { subscriptionKind } from "./subscription/index.js";
import { taskKind } from "./task/index.js";

export { completeReplicaSites } from "./dataset/files.js";
export { failureSummary, pilotRequestsInWindow } from "./site/stats.js";
export { datasetKind, factoryKind, jobKind, pilotJobKind, siteKind, subscriptionKind, taskKind };

/**
 * Registers the workload kinds (job, task, dataset, subscription, site) and
 * the pilot factories' (pilot-job, factory) on a runtime's registry.
 */
export function registerWorkloadKinds(registry: KindRegistry): KindRegistry {
  return registry
    .register(jobKind)
    .register(taskKind)
    .register(datasetKind)
    .register(subscriptionKind)
    .register(siteKind)
    .register(pilotJobKind)
    .register(factoryKind);
}
