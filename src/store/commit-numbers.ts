/**
 * Numbers a node hands its own commits instead of asking Redis for them in
 * every batch. The holder of a shard's lease is the only one committing to
 * it (fencing), so within its fence it can number alone, starting above
 * what the shard holds (read once per shard and fence, so a process that
 * restarts under the same owner while its lease is live, same epoch,
 * continues above what it wrote before):
 *
 * - Outbox seqs (scores) within its epoch's range, `epoch * 2^32 + n`:
 *   epochs grow from one holder to the next, so a later holder's effects
 *   sort after an earlier one's. A seq only orders: the effect id is the
 *   member, so a gap (a record that did not commit) loses nothing. And each
 *   seq is new, which tells the script which ids its ZADD NX added.
 * - Seen scores: a dedupe id is scored with the `nowMs` of the commit that
 *   saw it, here or less than 1 above it: the least score at or above `nowMs`
 *   that is above every score the shard may hold. No seen id holds it, so
 *   after the batch's ZADD NX an id scored so is one it added, any other was
 *   seen before: the dedupe check and write in one command. When the clock
 *   is behind what the shard holds (a step back, another node's clock
 *   ahead) there is no such score, and the batch checks first and scores
 *   with its `nowMs`, as every batch did before.
 *
 * What a fence numbered is known only to this object: a node commits each
 * shard through one store (one `RedisStore`), as `Runtime` does.
 */
import { PerFence } from "./per-fence.js";
import type { CommitBatch, Fence } from "./types.js";

/** Seqs each epoch numbers its effects in: `epoch * EPOCH_RANGE + n`. */
const EPOCH_RANGE = 2 ** 32;

/** The highest outbox seq and seen score a shard holds (null: none). */
export interface ShardTops {
  outboxSeq: number | null;
  seenScore: number | null;
}

/** What `commit.lua` is told of a batch besides its records (see `CommitLayout`). */
export interface BatchNumbers {
  /** 0: the batch has no effects, or the script numbers them from the shard's counter. */
  firstSeq: number;
  /** The score of the dedupe ids it adds, or null when it has none. */
  seenScore: number | null;
  /** Whether no seen id of the shard holds `seenScore` (then one ZADD NX checks and adds them). */
  seenByAdd: boolean;
}

interface Numbering {
  /** The next outbox seq to hand out. */
  nextSeq: number;
  /** The highest score any seen id of the shard may have. */
  highSeenScore: number;
}

export class CommitNumbers {
  private readonly numberings = new PerFence<Numbering>(() => ({ nextSeq: 0, highSeenScore: 0 }));
  private readonly loading = new Map<string, Promise<void>>();

  /** `tops(shard)`: the highest outbox seq and seen score the shard holds. */
  constructor(private readonly tops: (shard: number) => Promise<ShardTops>) {}

  /** Each batch's numbers; effects' seqs reserved, as many as it has. */
  async reserve(batches: readonly CommitBatch[]): Promise<BatchNumbers[]> {
    const loads: Promise<void>[] = [];
    for (const batch of batches) {
      if (needsNumbers(batch) && !this.numberings.get(batch.shard, batch.fence))
        loads.push(this.load(batch.shard, batch.fence));
    }
    if (loads.length > 0) await Promise.all(loads);
    return batches.map((batch) => {
      const { effects, dedupes } = countsOf(batch);
      const numbering = this.numberings.get(batch.shard, batch.fence);
      let firstSeq = 0;
      let seenScore: number | null = null;
      let seenByAdd = false;
      if (
        numbering &&
        effects > 0 &&
        numbersIn(batch.fence) &&
        numbering.nextSeq + effects <= Number.MAX_SAFE_INTEGER
      ) {
        firstSeq = numbering.nextSeq;
        numbering.nextSeq += effects;
      }
      if (dedupes > 0) {
        const { nowMs } = batch.options;
        seenScore = nowMs;
        const above = numbering ? Math.max(nowMs, nextUp(numbering.highSeenScore)) : Number.POSITIVE_INFINITY;
        if (above < nowMs + 1) {
          seenScore = above;
          seenByAdd = true;
        }
        if (numbering) numbering.highSeenScore = Math.max(numbering.highSeenScore, seenScore);
      }
      return { firstSeq, seenScore, seenByAdd };
    });
  }

  /** Starts the fence's numbering above what the shard holds; one read per shard and fence. */
  private load(shard: number, fence: Fence): Promise<void> {
    const key = `${shard} ${fence.epoch} ${fence.owner}`;
    let loading = this.loading.get(key);
    if (!loading) {
      loading = this.tops(shard)
        .then(({ outboxSeq, seenScore }) => {
          if (this.numberings.get(shard, fence)) return;
          const numbering = this.numberings.at(shard, fence);
          numbering.nextSeq = Math.max(fence.epoch * EPOCH_RANGE, Math.floor(outboxSeq ?? 0)) + 1;
          numbering.highSeenScore = seenScore ?? Number.NEGATIVE_INFINITY;
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

function countsOf(batch: CommitBatch): { effects: number; dedupes: number } {
  let effects = 0;
  let dedupes = 0;
  for (const record of batch.records) {
    effects += record.outbox.length;
    dedupes += record.dedupeIds.length;
  }
  return { effects, dedupes };
}

function needsNumbers(batch: CommitBatch): boolean {
  const { effects, dedupes } = countsOf(batch);
  return dedupes > 0 || (effects > 0 && numbersIn(batch.fence));
}

const bits = new DataView(new ArrayBuffer(8));

/** The least double above `x` (finite `x`; -Infinity gives the lowest double). */
export function nextUp(x: number): number {
  if (x === Number.NEGATIVE_INFINITY) return -Number.MAX_VALUE;
  if (x === 0) return Number.MIN_VALUE;
  bits.setFloat64(0, x);
  const raw = bits.getBigUint64(0);
  bits.setBigUint64(0, x > 0 ? raw + 1n : raw - 1n);
  return bits.getFloat64(0);
}
