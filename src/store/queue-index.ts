/**
 * Ordered sets outside any actor: a site's queue of activated jobs, a user's
 * throttled jobs, the list of sites. Actors own the truth; an index is what
 * effects derive from it so that "the next job for this pilot" is one atomic
 * pop instead of a scan. Every operation is idempotent or atomic on its own,
 * so at-least-once effects keep an index right.
 */
export interface IndexEntry {
  member: string;
  score: number;
}

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

/** Queue names in one place, so producers and consumers of an index cannot disagree. */
export const queueNames = {
  /** Activated jobs of a site waiting for a pilot thread, by kind of work. */
  siteQueue: (site: string, lane: "production" | "analysis") => `site-queue:${site}:${lane}`,
  /** Jobs of a user that count against the user's quota (activated to running). */
  userActive: (user: string) => `user-active:${user}`,
  /** Jobs of a user held back by the quota, oldest first. */
  userThrottled: (user: string) => `user-throttled:${user}`,
  /** Every site of the grid. */
  sites: () => "sites",
  /** Every task, by submission time. */
  tasks: () => "tasks",
};
