/**
 * Collects items per key during one turn of the event loop (or, with
 * `delayMs`, for that long after the first) and hands them to `flush`
 * together: many small store calls become one per key (`perKey`), or one
 * for every key of the turn (`together`, for a store that takes them all in
 * one round trip).
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
  private timer: ReturnType<typeof setTimeout> | null = null;
  private flushing = 0;

  constructor(
    private readonly flush: BatchFlush<K, T>,
    private readonly delayMs = 0,
  ) {}

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
      if (this.delayMs > 0) {
        this.timer = setTimeout(() => void this.run(), this.delayMs);
        // What gathers does not keep a process alive: left unwritten, it is only delivered again.
        this.timer.unref();
      } else setImmediate(() => void this.run());
    }
    return done;
  }

  /** Hands what is collected to `flush` now rather than when it is due; resolves once flushed (or failed). */
  async flushNow(): Promise<void> {
    await this.run();
  }

  private async run(): Promise<void> {
    if (!this.scheduled) return;
    this.scheduled = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batches = this.pending;
    this.pending = new Map();
    const flush = this.flush;
    if ("together" in flush) {
      const items = new Map<K, T[]>();
      const waiters: Waiter[] = [];
      for (const [key, batch] of batches) {
        items.set(key, batch.items);
        waiters.push(...batch.waiters);
      }
      await this.settle(flush.together(items), waiters);
      return;
    }
    await Promise.all(
      [...batches].map(([key, batch]) => this.settle(flush.perKey(key, batch.items), batch.waiters)),
    );
  }

  /** Tells the waiters how the flush went; resolves when it is over, whichever way. */
  private settle(flushed: Promise<void>, waiters: Waiter[]): Promise<void> {
    this.flushing++;
    return flushed.then(
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
