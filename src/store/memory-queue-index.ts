/** The queue index in memory: sorted arrays with binary insertion, for the embedded store, simulations and tests. */
import type { IndexEntry, QueueIndex } from "./queue-index.js";

/**
 * A whole MemoryQueueIndex as plain data (what `DurableStore` snapshots):
 * each queue's entries in order, and the records kept beside its members
 * (absent in snapshots written before queues kept records).
 */
export type MemoryQueueIndexState = [queue: string, entries: IndexEntry[], records?: [string, string][]][];

/** The embedded `QueueIndex` (see the module comment). */
export class MemoryQueueIndex implements QueueIndex {
  private readonly queues = new Map<
    string,
    { entries: IndexEntry[]; scores: Map<string, number>; records: Map<string, string> }
  >();

  private queue(name: string) {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = { entries: [], scores: new Map(), records: new Map() };
      this.queues.set(name, queue);
    }
    return queue;
  }

  /** Position of (score, member) in the order Redis uses: score, then member bytes. */
  private static position(entries: IndexEntry[], score: number, member: string): number {
    let low = 0;
    let high = entries.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const e = entries[mid]!;
      if (e.score < score || (e.score === score && e.member < member)) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  async add(queue: string, member: string, score: number): Promise<void> {
    const q = this.queue(queue);
    const old = q.scores.get(member);
    if (old !== undefined) {
      if (old === score) return;
      q.entries.splice(MemoryQueueIndex.position(q.entries, old, member), 1);
    }
    q.entries.splice(MemoryQueueIndex.position(q.entries, score, member), 0, { member, score });
    q.scores.set(member, score);
  }

  async addIfBelow(queue: string, member: string, score: number, limit: number): Promise<boolean> {
    const q = this.queue(queue);
    if (q.scores.has(member)) return true;
    if (q.entries.length >= limit) return false;
    await this.add(queue, member, score);
    return true;
  }

  async remove(queue: string, member: string): Promise<boolean> {
    const q = this.queue(queue);
    const score = q.scores.get(member);
    if (score === undefined) return false;
    q.entries.splice(MemoryQueueIndex.position(q.entries, score, member), 1);
    q.scores.delete(member);
    q.records.delete(member);
    return true;
  }

  async removeIfScoreBelow(queue: string, member: string, maxScore: number): Promise<boolean> {
    const score = this.queue(queue).scores.get(member);
    if (score === undefined || score >= maxScore) return false;
    return this.remove(queue, member);
  }

  async popMin(queue: string, count: number): Promise<IndexEntry[]> {
    const q = this.queue(queue);
    const popped = q.entries.splice(0, Math.max(0, count));
    for (const e of popped) q.scores.delete(e.member);
    return popped.map((e) => ({ ...e }));
  }

  async range(queue: string, offset: number, count: number): Promise<IndexEntry[]> {
    return this.queue(queue)
      .entries.slice(offset, offset + count)
      .map((e) => ({ ...e }));
  }

  async rank(queue: string, member: string): Promise<number | null> {
    const q = this.queue(queue);
    const score = q.scores.get(member);
    return score === undefined ? null : MemoryQueueIndex.position(q.entries, score, member);
  }

  async size(queue: string): Promise<number> {
    return this.queue(queue).entries.length;
  }

  async putRecord(queue: string, member: string, score: number, record: string): Promise<void> {
    await this.add(queue, member, score);
    this.queue(queue).records.set(member, record);
  }

  async readRecords(queue: string, members: readonly string[]): Promise<(string | null)[]> {
    const records = this.queue(queue).records;
    return members.map((member) => records.get(member) ?? null);
  }

  async trimRecords(queue: string, keep: number): Promise<number> {
    const q = this.queue(queue);
    const popped = await this.popMin(queue, q.entries.length - Math.max(0, keep));
    for (const e of popped) q.records.delete(e.member);
    return popped.length;
  }

  /** Every non-empty queue, by reference (encode it before the next call changes it). */
  exportState(): MemoryQueueIndexState {
    return [...this.queues]
      .filter(([, q]) => q.entries.length > 0)
      .map(([name, q]) => (q.records.size > 0 ? [name, q.entries, [...q.records]] : [name, q.entries]));
  }

  /** An index holding what `exportState` gave (entries already in order). */
  static fromState(saved: MemoryQueueIndexState): MemoryQueueIndex {
    const index = new MemoryQueueIndex();
    for (const [name, entries, records] of saved) {
      const q = index.queue(name);
      q.entries = entries.map((e) => ({ member: e.member, score: e.score }));
      for (const e of q.entries) q.scores.set(e.member, e.score);
      if (records) q.records = new Map(records);
    }
    return index;
  }
}
