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
  /** True if the member was there; a record kept beside it (`putRecord`) goes with it. */
  remove(queue: string, member: string): Promise<boolean>;
  /**
   * Removes the member (with its record) only while its score is below
   * `maxScore`, in one atomic step: a sweep of what was last used before a
   * cutoff never removes what was used again after it read the queue.
   */
  removeIfScoreBelow(queue: string, member: string, maxScore: number): Promise<boolean>;
  /** Removes and returns up to `count` members with the lowest scores: one caller gets each member. */
  popMin(queue: string, count: number): Promise<IndexEntry[]>;
  /** Lowest scores first. */
  range(queue: string, offset: number, count: number): Promise<IndexEntry[]>;
  /** Zero-based position by score, or null when absent. */
  rank(queue: string, member: string): Promise<number | null>;
  size(queue: string): Promise<number>;
  /**
   * Adds (or re-scores) `member` and keeps `record` beside it, in one atomic
   * step: a log whose index orders its records (the incident log). Written
   * again with the same arguments, it changes nothing. A member leaves with its
   * record, by `remove` or `trimRecords`.
   */
  putRecord(queue: string, member: string, score: number, record: string): Promise<void>;
  /** The records kept beside `members`, in their order; null where there is none. */
  readRecords(queue: string, members: readonly string[]): Promise<(string | null)[]>;
  /** Removes the lowest-scored members beyond the newest `keep`, with their records, atomically; how many went. */
  trimRecords(queue: string, keep: number): Promise<number>;
}

/** Moved to the key builder; kept here for importers that predate it. */
export { queueNames } from "./index-names.js";
