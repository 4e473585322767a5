/**
 * The queue index half of a `DurableStore`, on its own so the store reads as
 * the store: every change to the index goes through the store's log, in the
 * one order with the store's own changes; reads go to memory.
 */
import type { DurableStore } from "./durable-store.js";
import type { QueueIndex } from "./queue-index.js";
import type { IndexEntry } from "./types.js";

export class DurableQueueIndex implements QueueIndex {
  constructor(private readonly store: DurableStore) {}

  async add(queue: string, member: string, score: number): Promise<void> {
    return this.store.change(["index.add", queue, member, score]);
  }

  async addIfBelow(queue: string, member: string, score: number, limit: number): Promise<boolean> {
    return this.store.change(["index.addIfBelow", queue, member, score, limit]);
  }

  async remove(queue: string, member: string): Promise<boolean> {
    return this.store.change(["index.remove", queue, member]);
  }

  async removeIfScoreBelow(queue: string, member: string, maxScore: number): Promise<boolean> {
    return this.store.change(["index.removeIfScoreBelow", queue, member, maxScore]);
  }

  async popMin(queue: string, count: number): Promise<IndexEntry[]> {
    return this.store.change(["index.popMin", queue, count]);
  }

  async putRecord(queue: string, member: string, score: number, record: string): Promise<void> {
    return this.store.change(["index.putRecord", queue, member, score, record]);
  }

  async trimRecords(queue: string, keep: number): Promise<number> {
    return this.store.change(["index.trimRecords", queue, keep]);
  }

  async readRecords(queue: string, members: readonly string[]): Promise<(string | null)[]> {
    return this.store.queueIndexForReads().readRecords(queue, members);
  }

  async range(queue: string, offset: number, count: number): Promise<IndexEntry[]> {
    return this.store.queueIndexForReads().range(queue, offset, count);
  }

  async rank(queue: string, member: string): Promise<number | null> {
    return this.store.queueIndexForReads().rank(queue, member);
  }

  async size(queue: string): Promise<number> {
    return this.store.queueIndexForReads().size(queue);
  }
}
