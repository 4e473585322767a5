import { PerFence } from "./per-fence.js";
import type { CommitBatch, Fence } from "./types.js";

/** Seqs each epoch numbers its effects in: `epoch * EPOCH_RANGE + n`. */
const EPOCH_RANGE = 2 ** 32;

/**
 * The seqs (outbox scores) of the effects a node commits, numbered by the
 * node itself instead of a counter in Redis that every batch with effects
 * would increment (one command per batch). The holder of a shard's lease
 * numbers within its epoch's range, `epoch * 2^32 + n`: epochs grow from
 * one holder to the next, so a later holder's effects sort after an
 * earlier one's, and only the holder commits (fencing), so nobody else
 * numbers in its range. The first batch under a fence starts after the
 * highest seq already queued, so a process that restarts under the same
 * owner while its lease is live (same epoch) continues after what it queued
 * before. A seq only orders: the effect id is the member, so a gap (a record
 * that did not commit) or a repeated seq loses nothing.
 */
export class OutboxSeqs {
  /** The next seq to hand out, per shard, once read. */
  private readonly numberings = new PerFence<{ next: number }>(() => ({ next: 0 }));
  private readonly loading = new Map<string, Promise<void>>();

  /** `topSeq(shard)`: the highest seq queued in the shard's outbox, null when it is empty. */
  constructor(private readonly topSeq: (shard: number) => Promise<number | null>) {}

  /**
   * For each batch, the first seq of its effects, as many reserved as it
   * has: 0 for a batch without effects, or whose epoch is past the range a
   * double holds exactly (the script then takes them from the shard's counter).
   */
  async reserve(batches: readonly CommitBatch[]): Promise<number[]> {
    const loads: Promise<void>[] = [];
    for (const batch of batches) {
      if (effectCount(batch) > 0 && numbersIn(batch.fence) && !this.numberings.get(batch.shard, batch.fence))
        loads.push(this.load(batch.shard, batch.fence));
    }
    if (loads.length > 0) await Promise.all(loads);
    return batches.map((batch) => {
      const count = effectCount(batch);
      const numbering = count > 0 ? this.numberings.get(batch.shard, batch.fence) : undefined;
      if (!numbering || numbering.next + count > Number.MAX_SAFE_INTEGER) return 0;
      const first = numbering.next;
      numbering.next += count;
      return first;
    });
  }

  /** Starts the fence's numbering after what the shard's outbox holds; one read per shard and fence. */
  private load(shard: number, fence: Fence): Promise<void> {
    const key = `${shard} ${fence.epoch} ${fence.owner}`;
    let loading = this.loading.get(key);
    if (!loading) {
      loading = this.topSeq(shard)
        .then((top) => {
          if (this.numberings.get(shard, fence)) return;
          this.numberings.at(shard, fence).next =
            Math.max(fence.epoch * EPOCH_RANGE, Math.floor(top ?? 0)) + 1;
        })
        .finally(() => this.loading.delete(key));
      this.loading.set(key, loading);
    }
    return loading;
  }
}

/** Whether seqs of the fence's epoch range are exact doubles. */
function numbersIn(fence: Fence): boolean {
  return (fence.epoch + 1) * EPOCH_RANGE <= Number.MAX_SAFE_INTEGER;
}

function effectCount(batch: CommitBatch): number {
  let count = 0;
  for (const record of batch.records) count += record.outbox.length;
  return count;
}
