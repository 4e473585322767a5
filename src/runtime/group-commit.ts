/**
 * A node's commits in as few store calls as possible: the batches its shard
 * hosts hand over in one turn of the event loop go out together in one
 * `commitMany` (one Lua call on one Redis, whatever the number of shards).
 * While `maxInFlight` calls are out, new batches wait and join the next: the
 * busier the node, the bigger each call, and the less each batch costs.
 */
import { FencedError } from "../store/errors.js";
import type { CommitBatch, CommitOutcome, Store } from "../store/types.js";

interface Pending {
  batch: CommitBatch;
  resolve(outcomes: CommitOutcome[]): void;
  reject(err: unknown): void;
}

export class GroupCommitter {
  private pending: Pending[] = [];
  private flushScheduled = false;
  private inFlight = 0;
  /** Store calls made and batches they carried: what the grouping saves. */
  readonly stats = { calls: 0, batches: 0 };

  constructor(
    private readonly store: Store,
    private readonly maxInFlight = 2,
  ) {}

  /** Nothing waiting and no call out. */
  get idle(): boolean {
    return this.pending.length === 0 && this.inFlight === 0 && !this.flushScheduled;
  }

  /** The batch's outcomes once the call carrying it returns; rejects with `FencedError` when its fence failed. */
  commit(batch: CommitBatch): Promise<CommitOutcome[]> {
    return new Promise((resolve, reject) => {
      this.pending.push({ batch, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.flushScheduled || this.inFlight >= this.maxInFlight) return;
    this.flushScheduled = true;
    // After this turn: every host whose batch is ready in it joins the call.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.pending.length === 0 || this.inFlight >= this.maxInFlight) return;
    const calls = this.pending;
    this.pending = [];
    this.inFlight++;
    this.stats.calls++;
    this.stats.batches += calls.length;
    this.store
      .commitMany(calls.map((c) => c.batch))
      .then(
        (results) => {
          calls.forEach((call, i) => {
            const result = results[i];
            if (result instanceof FencedError) call.reject(result);
            else if (result) call.resolve(result);
            else
              call.reject(
                new Error(`commitMany returned ${results.length} results for ${calls.length} batches`),
              );
          });
        },
        (err: unknown) => {
          for (const call of calls) call.reject(err);
        },
      )
      .finally(() => {
        this.inFlight--;
        if (this.pending.length > 0) this.schedule();
      });
  }
}
