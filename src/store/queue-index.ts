/**
 * Ordered sets outside any actor: a site's queue of activated jobs, a user's
 * throttled jobs, the list of sites. Actors own the truth; an index is what
 * effects derive from it so that "the next job for this pilot" is one atomic
 * pop instead of a scan. Every operation is idempotent or atomic on its own,
 * so at-least-once effects keep an index right.
 */
import type { IndexEntry } from "./types.js";

export type { IndexEntry } from "./types.js";

export interface QueueIndex {
  /** Inserts or re-scores a member. */
  add(queue: string, member: string, score: number): Promise<void>;
  /**
   * Adds the member only while the queue holds fewer than `limit` members (a
   * member already there counts as added); atomic, so concurrent callers
   * never push a queue past its limit. True when the member is in the queue.
   */
  addIfBelow(queue: string, member: string, score: number, limit: number): Promise<boolean>;
  /** True if the member was there. */
  remove(queue: string, member: string): Promise<boolean>;
  /** Removes and returns up to `count` members with the lowest scores: one caller gets each member. */
  popMin(queue: string, count: number): Promise<IndexEntry[]>;
  /** Lowest scores first. */
  range(queue: string, offset: number, count: number): Promise<IndexEntry[]>;
  /** Zero-based position by score, or null when absent. */
  rank(queue: string, member: string): Promise<number | null>;
  size(queue: string): Promise<number>;
}

/**
 * Index and counter names in one place, so producers and consumers cannot
 * disagree. The first group are shard indexes, derived from job states by
 * the job kind's projections and written with its commits (read through
 * `Runtime.local` and `Runtime.readIndex`); the last are global indexes of
 * the `QueueIndex`.
 */
export const queueNames = {
  /** Activated jobs of a site waiting for a pilot thread, by kind of work and fair share. */
  siteQueue: (site: string, lane: "production" | "analysis", share: string) =>
    `site-queue:${site}:${lane}:${share}`,
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
  shareRunning: (site: string, share: string) => `shares:${site}:${share}`,
  /** Site and share of a `shareRunning` counter, or null for another counter. */
  shareRunningParts(name: string): { site: string; share: string } | null {
    if (!name.startsWith("shares:")) return null;
    const at = name.lastIndexOf(":");
    return at > "shares:".length
      ? { site: name.slice("shares:".length, at), share: name.slice(at + 1) }
      : null;
  },
  /** Assigned jobs of a site waiting for their inputs' transfer, by assigned seconds. */
  siteAssigned: (site: string) => `site-assigned:${site}`,
  /** Jobs of a user held back by the quota, oldest first. */
  userThrottled: (user: string) => `user-throttled:${user}`,
  /** Jobs a pilot holds (sent to it, starting, running), scored by thread: primary 0, secondary 1. */
  pilotJobs: (pilotId: string) => `pilot-jobs:${pilotId}`,
  /** Counter: a user's jobs that count against the user's quota (activated until they end). */
  userActive: (user: string) => `users:${user}:active`,
  /** Counter: a user's jobs held back by the quota. */
  userThrottledCount: (user: string) => `users:${user}:throttled`,
  /** The user a `userThrottledCount` counter is of; null for another name. */
  userOfThrottledCount: (name: string): string | null =>
    name.startsWith("users:") && name.endsWith(":throttled") ? name.slice(6, -":throttled".length) : null,
  /** Every site of the grid. */
  sites: () => "sites",
  /** Every task, by submission time. */
  tasks: () => "tasks",
};
