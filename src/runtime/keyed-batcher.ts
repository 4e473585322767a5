/**
 * Collects items per key during one turn of the event loop and hands each
 * key's items to `flush` together: many small store calls become one.
 */
export class KeyedBatcher<K, T> {
  private pending = new Map<K, { items: T[]; waiters: { resolve(): void; reject(err: unknown): void }[] }>();
  private scheduled = false;

  constructor(private readonly flush: (key: K, items: T[]) => Promise<void>) {}

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
      this.flush(key, batch.items).then(
        () => {
          for (const w of batch.waiters) w.resolve();
        },
        (err: unknown) => {
          for (const w of batch.waiters) w.reject(err);
        },
      );
    }
  }
}
