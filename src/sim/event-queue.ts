/**
 * Callbacks keyed by (time, sequence number): events at the same virtual
 * millisecond run in the order they were scheduled, which is what makes a
 * simulation repeatable. Events fall on a coarse grid of ticks (the clock's
 * resolution), so many share a time: they are kept in one bucket per time,
 * in scheduling order, and a binary min-heap orders the distinct times.
 * Scheduling is then an append (plus a heap insertion for a new time), and
 * taking the next event a read from the earliest bucket. Cancelled entries
 * stay in their bucket and are skipped when reached (cheaper than removal).
 */
export interface QueuedEvent {
  readonly atMs: number;
  readonly seq: number;
  readonly run: () => void;
  cancelled: boolean;
}

interface Bucket {
  readonly events: QueuedEvent[];
  /** The first entry not taken yet. */
  next: number;
}

export class EventQueue {
  private readonly buckets = new Map<number, Bucket>();
  /** Min-heap of the times that have a bucket. */
  private readonly times: number[] = [];
  private nextSeq = 0;
  private live = 0;

  get size(): number {
    return this.live;
  }

  push(atMs: number, run: () => void): QueuedEvent {
    const event: QueuedEvent = { atMs, seq: this.nextSeq++, run, cancelled: false };
    const bucket = this.buckets.get(atMs);
    if (bucket) bucket.events.push(event);
    else {
      this.buckets.set(atMs, { events: [event], next: 0 });
      this.siftUp(atMs);
    }
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
    return this.head() ? this.times[0]! : null;
  }

  /** Removes and returns the earliest live event if it is due at or before `atMs`. */
  popDue(atMs: number): QueuedEvent | null {
    const bucket = this.head();
    if (!bucket || this.times[0]! > atMs) return null;
    const top = bucket.events[bucket.next]!;
    bucket.next++;
    this.live--;
    // Marked so a late cancel() of an event that already ran does not miscount.
    top.cancelled = true;
    return top;
  }

  /** The earliest bucket, its cursor on a live event; spent buckets are dropped on the way. */
  private head(): Bucket | null {
    while (this.times.length > 0) {
      const time = this.times[0]!;
      const bucket = this.buckets.get(time)!;
      const events = bucket.events;
      while (bucket.next < events.length && events[bucket.next]!.cancelled) bucket.next++;
      if (bucket.next < events.length) return bucket;
      this.buckets.delete(time);
      this.removeTop();
    }
    return null;
  }

  private removeTop(): void {
    const last = this.times.pop()!;
    if (this.times.length > 0) {
      this.times[0] = last;
      this.siftDown(0);
    }
  }

  private siftUp(time: number): void {
    const heap = this.times;
    let index = heap.length;
    heap.push(time);
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (heap[parent]! <= time) break;
      heap[index] = heap[parent]!;
      index = parent;
    }
    heap[index] = time;
  }

  private siftDown(index: number): void {
    const heap = this.times;
    const item = heap[index]!;
    const n = heap.length;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && heap[right]! < heap[left]! ? right : left;
      if (heap[child]! >= item) break;
      heap[index] = heap[child]!;
      index = child;
    }
    heap[index] = item;
  }
}
