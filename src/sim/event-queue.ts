/**
 * A binary min-heap of callbacks keyed by (time, sequence number): events at
 * the same virtual millisecond run in the order they were scheduled, which
 * is what makes a simulation repeatable. Cancelled entries stay in the heap
 * and are skipped when they reach the top (cheaper than removal).
 */
export interface QueuedEvent {
  readonly atMs: number;
  readonly seq: number;
  readonly run: () => void;
  cancelled: boolean;
}

export class EventQueue {
  private readonly heap: QueuedEvent[] = [];
  private nextSeq = 0;
  private live = 0;

  get size(): number {
    return this.live;
  }

  push(atMs: number, run: () => void): QueuedEvent {
    const event: QueuedEvent = { atMs, seq: this.nextSeq++, run, cancelled: false };
    this.heap.push(event);
    this.siftUp(this.heap.length - 1);
    this.live++;
    return event;
  }

  cancel(event: QueuedEvent): void {
    if (event.cancelled) return;
    event.cancelled = true;
    this.live--;
  }

  /** The time of the earliest live event, or null when none is left. */
  peekTimeMs(): number | null {
    this.dropCancelled();
    return this.heap[0]?.atMs ?? null;
  }

  /** Removes and returns the earliest live event if it is due at or before `atMs`. */
  popDue(atMs: number): QueuedEvent | null {
    this.dropCancelled();
    const top = this.heap[0];
    if (!top || top.atMs > atMs) return null;
    this.removeTop();
    this.live--;
    // Marked so a late cancel() of an event that already ran does not miscount.
    top.cancelled = true;
    return top;
  }

  private dropCancelled(): void {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.removeTop();
  }

  private removeTop(): void {
    const last = this.heap.pop()!;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.siftDown(0);
    }
  }

  private static before(a: QueuedEvent, b: QueuedEvent): boolean {
    return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
  }

  private siftUp(index: number): void {
    const heap = this.heap;
    const item = heap[index]!;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!EventQueue.before(item, heap[parent]!)) break;
      heap[index] = heap[parent]!;
      index = parent;
    }
    heap[index] = item;
  }

  private siftDown(index: number): void {
    const heap = this.heap;
    const item = heap[index]!;
    const n = heap.length;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && EventQueue.before(heap[right]!, heap[left]!) ? right : left;
      if (!EventQueue.before(heap[child]!, item)) break;
      heap[index] = heap[child]!;
      index = child;
    }
    heap[index] = item;
  }
}
