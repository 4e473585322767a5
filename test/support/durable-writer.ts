/**
 * A child process that commits to a `DurableStore` as fast as it can until it
 * is killed: batch n creates `job/n-a`, `job/n-b` and `job/n-c` (snapshots of
 * a size that varies with n) and adds 1 to `batches` and 3 to `records`, then
 * adds n to the index queue `committed`, then tells the parent `{acked: n}`.
 * A small compaction threshold makes snapshots happen while it runs.
 */
import { DurableStore } from "../../src/store/durable-store.js";
import type { CommitRecord } from "../../src/store/types.js";

export function crashSnapshot(batch: number, part: string): Buffer {
  return Buffer.alloc(200 + ((batch * 7919) % 20_000), `${batch}${part}`);
}

export function crashRecord(batch: number, part: string): CommitRecord {
  return {
    actor: `job/${batch}-${part}`,
    expectedVersion: 0,
    snapshot: crashSnapshot(batch, part),
    constants: null,
    versionStep: 1,
    history: [Buffer.from(`${batch}${part}`)],
    historyCap: 10,
    timerAdds: [],
    timerCancels: [],
    outbox: [],
    counters:
      part === "a"
        ? [
            { name: "batches", delta: 1 },
            { name: "records", delta: 3 },
          ]
        : [],
    dedupeIds: [`ev-${batch}-${part}`],
    acks: [],
  };
}

async function main(): Promise<void> {
  const store = DurableStore.open({ dir: process.env.PANDA_WRITER_DIR!, compactAfterBytes: 256 * 1024 });
  const lease = await store.acquireLease(0, "writer", 3_600_000, Date.now());
  const fence = { owner: "writer", epoch: lease!.epoch };
  for (let batch = 0; ; batch++) {
    const records = ["a", "b", "c"].map((part) => crashRecord(batch, part));
    await store.commit(0, fence, records, { nowMs: Date.now(), dedupeWindowMs: 60_000 });
    await store.index.add("committed", String(batch), batch);
    process.send!({ acked: batch });
  }
}

// Imported by the test for its records; run as the writer only when forked with a directory.
if (process.env.PANDA_WRITER_DIR && process.send) await main();
