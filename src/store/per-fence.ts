/**
 * What a store remembers of a shard for one fence, the lease holder's:
 * only that holder commits to the shard while its lease lasts, so what it
 * wrote stays as it wrote it. Forgotten as soon as the shard shows up under
 * another fence (a new epoch, another owner) or when told to.
 */
import type { Fence } from "./types.js";

export class PerFence<T> {
  private readonly entries = new Map<number, { owner: string; epoch: number; value: T }>();

  constructor(private readonly create: () => T) {}

  /** What is remembered of the shard under this fence, if anything. */
  get(shard: number, fence: Fence): T | undefined {
    const entry = this.entries.get(shard);
    return entry && entry.owner === fence.owner && entry.epoch === fence.epoch ? entry.value : undefined;
  }

  /** What is remembered under this fence, started anew if the shard was remembered under another. */
  at(shard: number, fence: Fence): T {
    const known = this.get(shard, fence);
    if (known !== undefined) return known;
    const value = this.create();
    this.entries.set(shard, { owner: fence.owner, epoch: fence.epoch, value });
    return value;
  }

  forget(shard: number): void {
    this.entries.delete(shard);
  }

  forgetAll(): void {
    this.entries.clear();
  }
}
