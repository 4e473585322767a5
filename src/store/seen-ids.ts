/**
 * The embedded store's dedupe ids of one shard, each with the time it was
 * seen, forgotten once that time falls below a horizon: the same rule as
 * Redis's `ZREMRANGEBYSCORE` on its seen set, whatever order the times came in.
 * Times normally arrive in order and go to a FIFO; an id seen at an earlier
 * time than the newest (a virtual clock or an NTP step set the clock back)
 * goes to a min-heap instead, so a trim stays a walk from the oldest.
 */
export class SeenIds {
  private readonly atMsById = new Map<string, number>();
  /** In-order arrivals: times never decrease from `head` on. */
  private fifoIds: string[] = [];
  private fifoAtMs: number[] = [];
  private head = 0;
  /** Out-of-order arrivals as a binary heap on time. */
  private readonly heap: { id: string; atMs: number }[] = [];

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
      this.pushHeap({ id, atMs });
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
    while (this.heap.length > 0 && this.heap[0]!.atMs < horizonMs) {
      this.atMsById.delete(this.popHeap().id);
    }
  }

  /** Every id with its time, for a snapshot of the store. */
  entries(): [string, number][] {
    return [...this.atMsById];
  }

  private pushHeap(entry: { id: string; atMs: number }): void {
    const heap = this.heap;
    let i = heap.length;
    heap.push(entry);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.atMs <= entry.atMs) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = entry;
  }

  private popHeap(): { id: string; atMs: number } {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= heap.length) break;
        const right = left + 1;
        const child = right < heap.length && heap[right]!.atMs < heap[left]!.atMs ? right : left;
        if (heap[child]!.atMs >= last.atMs) break;
        heap[i] = heap[child]!;
        i = child;
      }
      heap[i] = last;
    }
    return top;
  }
}
