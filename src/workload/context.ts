/**
 * What every workload service is handed (runtime, indexes, settings) and the
 * two ways they all touch actors: a read typed by kind, and a send made
 * idempotent by the id of the effect that caused it.
 */
import type { DatasetContext } from "../actors/dataset/schema.js";
import type { JobContext } from "../actors/job/schema.js";
import type { SiteContext } from "../actors/site/schema.js";
import type { SubscriptionContext } from "../actors/subscription/schema.js";
import type { TaskContext } from "../actors/task/schema.js";
import type { FairShareConfig, Share } from "../brokerage/shares.js";
import type { BrokerageConfig } from "../brokerage/types.js";
import type { ActorRef } from "../runtime/actor-ref.js";
import type { Logger } from "../runtime/logger.js";
import type { Runtime } from "../runtime/runtime.js";
import type { SandboxStore } from "../sandbox/sandbox-store.js";
import type { QueueIndex } from "../store/queue-index.js";
import type { GridStorage } from "./grid-storage.js";
import type { QueueEntry, ThreadOffer } from "./queue-service.js";

/** Settings of the workload services, validated once in `grid-config.ts`. */
export interface WorkloadSettings {
  brokerage: BrokerageConfig;
  /** Jobs of one user that may be activated..running at once; more wait `throttled`. */
  maxActiveJobsPerUser: number;
  /** The grid's fair shares as configured, and the rules that go with them. */
  fairShare: FairShareConfig;
  /** The shares jobs are given: the configured ones, or `default` alone. */
  shares: readonly Share[];
  /** Every share a site's queues may hold: `shares`, and `default` (jobs made before shares) if not among them. */
  queueShares: readonly string[];
  /**
   * How many candidate sites a job's brokerage decision keeps (the chosen
   * one, the best scored, then the first excluded); null keeps every site.
   * On a grid of hundreds of sites the full record would dominate each job's
   * state.
   */
  maxRecordedCandidates: number | null;
  /** How long brokerage reuses its read of every site's statistics; 0 reads them for every decision. */
  siteStatsTtlMs: number;
  /** How old the live-job counters brokerage reads may be (a read costs one call per shard). */
  liveJobsMaxAgeMs: number;
}

/** What every workload service shares. */
export interface WorkloadContext {
  runtime: Runtime;
  index: QueueIndex;
  storage: GridStorage;
  /** Where users' sandboxes are kept; null where there is none (simulations): a submission with one is refused. */
  sandboxes: SandboxStore | null;
  settings: WorkloadSettings;
  log: Logger;
  /** Pilots connected for a site right now; the dispatcher knows, brokerage asks. */
  connectedPilots(site: string): number;
  /**
   * A job is being activated: a waiting pilot thread that fits it is bound to
   * it at once (the dispatcher's offer), or null when none waits.
   */
  offerThread(entry: QueueEntry, nowMs: number): ThreadOffer | null;
}

export interface ContextByKind {
  job: JobContext;
  task: TaskContext;
  dataset: DatasetContext;
  subscription: SubscriptionContext;
  site: SiteContext;
}

/**
 * Reads an actor's context, typed by kind; null when the actor does not
 * exist. `resident` takes this node's committed copy when it holds one (see
 * `Runtime.readState`): for state that is weighed, not arbitrated.
 */
export async function readContext<K extends keyof ContextByKind>(
  ctx: Pick<WorkloadContext, "runtime">,
  kind: K,
  id: string,
  options: { resident?: boolean } = {},
): Promise<{ state: string; status: string; context: ContextByKind[K] } | null> {
  const view = await ctx.runtime.readState({ kind, id } as ActorRef, options);
  return view ? { state: view.state, status: view.status, context: view.context as ContextByKind[K] } : null;
}

/**
 * Sends with a stable id derived from the effect that caused it, so a
 * redelivered effect changes nothing twice. A service's events are its own
 * (built from effects this node committed): trusted.
 */
export function sendOnce(
  ctx: Pick<WorkloadContext, "runtime">,
  to: ActorRef,
  event: object,
  eventId: string,
) {
  return ctx.runtime.send(to, event, { eventId, cause: "service", trusted: true });
}
