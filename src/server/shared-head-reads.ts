/**
 * Reads of a site queue's head that overlap share one round trip: when many
 * pilot threads ask for work at once, one read of the head serves them all
 * (each takes a different candidate), instead of one read per thread.
 *
 * A read started before a local activation may not hold that job, so an
 * activation closes the queue's read to newcomers: whoever looks after it
 * reads again and sees the job.
 */
import type { IndexEntry } from "../store/types.js";

/** Reads the first `count` entries of a queue. */
export type QueueHeadReader = (queue: string, count: number) => Promise<IndexEntry[]>;

export class SharedHeadReads {
  private readonly inFlight = new Map<string, { count: number; read: Promise<IndexEntry[]> }>();

  constructor(private readonly read: QueueHeadReader) {}

  /** The first `count` entries of the queue, from a read in flight that asked for at least as many, or a new one. */
  head(queue: string, count: number): Promise<IndexEntry[]> {
    const shared = this.inFlight.get(queue);
    if (shared && shared.count >= count) return shared.read;
    const read = this.read(queue, count);
    const entry = { count, read };
    this.inFlight.set(queue, entry);
    const done = () => {
      if (this.inFlight.get(queue) === entry) this.inFlight.delete(queue);
    };
    read.then(done, done);
    return read;
  }

  /** The queue changed here: later readers must not rely on a read already in flight. */
  changed(queue: string): void {
    this.inFlight.delete(queue);
  }
}
