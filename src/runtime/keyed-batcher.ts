/**
 * Collects items per key during one turn of the event loop and hands them to
 * `flush` together: many small store calls become one per key (`perKey`), or
 * one for every key of the turn (`together`, for a store that takes them all
 * in one round trip).
 */
export type BatchFlush<K, T> =
  | { perKey: (key: K, items: T[]) => Promise<void> }
  | { together: (batches: ReadonlyMap<K, T[]>) => Promise<void> };

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

export class KeyedBatcher<K, T> {
  private pending = new Map<K, { items: T[]; waiters: Waiter[] }>();
  private scheduled = false;
  private flushing = 0;

  constructor(private readonly flush: BatchFlush<K, T>) {}

  /** Nothing collected and no flush in flight: a simulation waits for this before it moves time on. */
  get idle(): boolean {
    return !this.scheduled && this.flushing === 0;
  }

  add(key: K, item: T): Promise<void> {
    let batch = this.pending.get(key);
    if (!batch) {
      batch = { items: [], waiters: [] };
      this.pending.set(key, batch);
    }
    batch.items.push(item);
    const done = new Promise<void>((resolve, reject) => batch.waiters.push({ resolve, reject }));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.run());
    }
    return done;
  }

  private run(): void {
    this.scheduled = false;
    const batches = this.pending;
    this.pending = new Map();
    if ("together" in this.flush) {
      const items = new Map<K, T[]>();
      const waiters: Waiter[] = [];
      for (const [key, batch] of batches) {
        items.set(key, batch.items);
        waiters.push(...batch.waiters);
      }
      this.settle(this.flush.together(items), waiters);
      return;
    }
    for (const [key, batch] of batches) this.settle(this.flush.perKey(key, batch.items), batch.waiters);
  }

  private settle(flushed: Promise<void>, waiters: Waiter[]): void {
    this.flushing++;
    flushed.then(
      () => {
        this.flushing--;
        for (const w of waiters) w.resolve();
      },
      (err: unknown) => {
        this.flushing--;
        for (const w of waiters) w.reject(err);
      },
    );
  }
}
