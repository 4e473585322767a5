/**
 * The embedded store's dedupe ids of one shard, each with the time it was
 * seen, forgotten once that time falls below a horizon: the same rule as
 * Redis's `ZREMRANGEBYSCORE` on its seen set, whatever order the times came in.
 * Times normally arrive in order and go to a FIFO; an id seen at an earlier
 * time than the newest (a virtual clock or an NTP step set the clock back)
 * goes to a min-heap instead, so a trim stays a walk from the oldest.
 */
import { MinHeap } from "../runtime/min-heap.js";

export class SeenIds {
  private readonly atMsById = new Map<string, number>();
  /** In-order arrivals: times never decrease from `head` on. */
  private fifoIds: string[] = [];
  private fifoAtMs: number[] = [];
  private head = 0;
  /** Out-of-order arrivals, by time. */
  private readonly heap = new MinHeap<{ id: string; atMs: number }>((entry) => entry.atMs);

  get size(): number {
    return this.atMsById.size;
  }

  has(id: string): boolean {
    return this.atMsById.has(id);
  }

  add(id: string, atMs: number): void {
    if (this.atMsById.has(id)) return;
    this.atMsById.set(id, atMs);
    const newest = this.fifoAtMs.length > this.head ? this.fifoAtMs[this.fifoAtMs.length - 1]! : -Infinity;
    if (atMs >= newest) {
      this.fifoIds.push(id);
      this.fifoAtMs.push(atMs);
    } else {
      this.heap.push({ id, atMs });
    }
  }

  /** Forgets every id seen before `horizonMs`. */
  trim(horizonMs: number): void {
    while (this.head < this.fifoAtMs.length && this.fifoAtMs[this.head]! < horizonMs) {
      this.atMsById.delete(this.fifoIds[this.head]!);
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.fifoIds.length) {
      this.fifoIds = this.fifoIds.slice(this.head);
      this.fifoAtMs = this.fifoAtMs.slice(this.head);
      this.head = 0;
    }
    for (let oldest = this.heap.peek(); oldest && oldest.atMs < horizonMs; oldest = this.heap.peek()) {
      this.atMsById.delete(this.heap.pop()!.id);
    }
  }

  /** Every id with its time, for a snapshot of the store. */
  entries(): [string, number][] {
    return [...this.atMsById];
  }
}
