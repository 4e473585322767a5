/**
 * The embedded store's timers of one shard, ordered by (due time, timer key)
 * as Redis orders its sorted set: a map by key for arming and cancelling,
 * and a binary heap for "what is due next". Re-arming or cancelling leaves
 * the old heap entry behind; it is recognised as stale (its arming is no
 * longer the current one) and dropped when it reaches the top, and the heap
 * is rebuilt when stale entries outnumber live ones.
 */
import type { TimerEntry } from "./types.js";

export class TimerSchedule {
  private readonly byKey = new Map<string, TimerEntry>();
  private heap: TimerEntry[] = [];

  get size(): number {
    return this.byKey.size;
  }

  /** Every armed timer, in no particular order: for a snapshot of the store. */
  values(): IterableIterator<TimerEntry> {
    return this.byKey.values();
  }

  get(timerKey: string): TimerEntry | undefined {
    return this.byKey.get(timerKey);
  }

  set(timer: TimerEntry): void {
    this.byKey.set(timer.timerKey, timer);
    this.push(timer);
    if (this.heap.length > 64 && this.heap.length > 3 * this.byKey.size) this.rebuild();
  }

  delete(timerKey: string): void {
    this.byKey.delete(timerKey);
  }

  nextDueMs(): number | null {
    this.dropStale();
    return this.heap[0]?.dueAtMs ?? null;
  }

  /** Timers due at or before `nowMs`, earliest first, at most `limit`; they stay scheduled. */
  due(nowMs: number, limit: number): TimerEntry[] {
    const out: TimerEntry[] = [];
    while (out.length < limit) {
      this.dropStale();
      const top = this.heap[0];
      if (!top || top.dueAtMs > nowMs) break;
      out.push(this.pop());
    }
    for (const timer of out) this.push(timer);
    return out;
  }

  private isCurrent(timer: TimerEntry): boolean {
    return this.byKey.get(timer.timerKey) === timer;
  }

  private dropStale(): void {
    while (this.heap.length > 0 && !this.isCurrent(this.heap[0]!)) this.pop();
  }

  private rebuild(): void {
    this.heap = [];
    for (const timer of this.byKey.values()) this.push(timer);
  }

  private static before(a: TimerEntry, b: TimerEntry): boolean {
    return a.dueAtMs < b.dueAtMs || (a.dueAtMs === b.dueAtMs && a.timerKey < b.timerKey);
  }

  private push(timer: TimerEntry): void {
    const heap = this.heap;
    let i = heap.length;
    heap.push(timer);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!TimerSchedule.before(timer, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = timer;
  }

  private pop(): TimerEntry {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      const n = heap.length;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        const child = right < n && TimerSchedule.before(heap[right]!, heap[left]!) ? right : left;
        if (!TimerSchedule.before(heap[child]!, last)) break;
        heap[i] = heap[child]!;
        i = child;
      }
      heap[i] = last;
    }
    return top;
  }
}
