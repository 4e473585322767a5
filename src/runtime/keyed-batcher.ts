/**
 * Collects items per key during one turn of the event loop and hands each
 * key's items to `flush` together: many small store calls become one.
 */
export class KeyedBatcher<K, T> {
  private pending = new Map<K, { items: T[]; waiters: { resolve(): void; reject(err: unknown): void }[] }>();
  private scheduled = false;
  private flushing = 0;

  constructor(private readonly flush: (key: K, items: T[]) => Promise<void>) {}

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
    for (const [key, batch] of batches) {
      this.flushing++;
      this.flush(key, batch.items).then(
        () => {
          this.flushing--;
          for (const w of batch.waiters) w.resolve();
        },
        (err: unknown) => {
          this.flushing--;
          for (const w of batch.waiters) w.reject(err);
        },
      );
    }
  }
}
