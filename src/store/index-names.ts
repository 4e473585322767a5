/** Every index and counter name outside the per-shard keys: the one key builder of the indexes. */
import { cachedName1, cachedName2, cachedName3 } from "./name-cache.js";

/**
 * Shard indexes and counters, derived from job states by the job kind's
 * projections and written with its commits (read through `Runtime.local` and
 * `Runtime.readIndex`).
 */
export const queueNames = {
  /** Activated jobs of a site waiting for a pilot thread, by kind of work and fair share. */
  siteQueue: cachedName3(
    (site: string, lane: "production" | "analysis", share: string) => `site-queue:${site}:${lane}:${share}`,
  ),
  /** Site, lane and share of a `siteQueue` name (share names hold no `:`), or null for another index. */
  siteQueueParts(key: string): { site: string; lane: "production" | "analysis"; share: string } | null {
    if (!key.startsWith("site-queue:")) return null;
    const shareAt = key.lastIndexOf(":");
    const laneAt = key.lastIndexOf(":", shareAt - 1);
    if (laneAt <= "site-queue:".length) return null;
    const lane = key.slice(laneAt + 1, shareAt);
    if (lane !== "production" && lane !== "analysis") return null;
    return { site: key.slice("site-queue:".length, laneAt), lane, share: key.slice(shareAt + 1) };
  },
  /** Counter: a site's jobs of a share on its pilots (sent, starting, running): the share's running slots. */
  shareRunning: cachedName2((site: string, share: string) => `shares:${site}:${share}`),
  /** Site and share of a `shareRunning` counter, or null for another counter. */
  shareRunningParts(name: string): { site: string; share: string } | null {
    if (!name.startsWith("shares:")) return null;
    const at = name.lastIndexOf(":");
    return at > "shares:".length
      ? { site: name.slice("shares:".length, at), share: name.slice(at + 1) }
      : null;
  },
  /** Assigned jobs of a site waiting for their inputs' transfer, by assigned seconds. */
  siteAssigned: cachedName1((site: string) => `site-assigned:${site}`),
  /** Jobs of a user held back by the quota, oldest first. */
  userThrottled: cachedName1((user: string) => `user-throttled:${user}`),
  /** Jobs a pilot holds (sent to it, starting, running), scored by thread: primary 0, secondary 1. */
  pilotJobs: cachedName1((pilotId: string) => `pilot-jobs:${pilotId}`),
  /** Counter: a user's jobs that count against the user's quota (activated until they end). */
  userActive: cachedName1((user: string) => `users:${user}:active`),
  /** Counter: a user's jobs held back by the quota. */
  userThrottledCount: cachedName1((user: string) => `users:${user}:throttled`),
  /** The user a `userThrottledCount` counter is of; null for another name. */
  userOfThrottledCount: (name: string): string | null =>
    name.startsWith("users:") && name.endsWith(":throttled") ? name.slice(6, -":throttled".length) : null,
  /** Global (`QueueIndex`): every site of the grid. */
  sites: () => "sites",
  /** Global (`QueueIndex`): every task, by submission time. */
  tasks: () => "tasks",
};

/** Global indexes (`QueueIndex`) the API searches, written from the actors' committed effects. */
export const catalogQueues = {
  /** Dataset names by creation time (dispatch datasets `dis.*` left out: one per assigned job, internal). */
  datasets: "catalog:datasets",
  /** Subscription ids by creation time. */
  subscriptions: "catalog:subscriptions",
};

/** The incident log (`QueueIndex` records): incident ids by time, each with its record beside it. */
export const incidentQueues = {
  log: "incidents",
};

/** Global indexes (`QueueIndex`) of the pilot factories and their batch jobs. */
export const factoryQueues = {
  factories: "factories",
  pilotJobs: (factory: string) => `pilot-jobs:${factory}`,
  livePilotJobs: (factory: string) => `pilot-jobs-live:${factory}`,
};

/** The server nodes' own shared records (`QueueIndex` records), not derived from actors. */
export const nodeQueues = {
  /** Each node's pilots and dispatch rates, the node the member, scored by when it published. */
  pilotRegistry: "pilot-registry",
};
