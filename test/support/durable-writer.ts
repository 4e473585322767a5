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
    index: [],
    dedupeIds: [`ev-${batch}-${part}`],
    acks: [],
  };
}

/**
 * With PANDA_WRITER_UNTIL_FAILURE it runs under a file size limit instead and
 * stops at the first refused commit: it reports `{failed: code}`, then whether
 * the next commit is refused too (`{refusedAfter: code}`), and exits.
 */
async function main(): Promise<void> {
  const untilFailure = process.env.PANDA_WRITER_UNTIL_FAILURE === "1";
  // Past the file size limit a write fails with EFBIG, instead of the signal ending the process.
  if (untilFailure) process.on("SIGXFSZ", () => {});
  const compactAfterBytes = Number(process.env.PANDA_WRITER_COMPACT_AFTER_BYTES ?? 256 * 1024);
  const store = DurableStore.open({ dir: process.env.PANDA_WRITER_DIR!, compactAfterBytes });
  const lease = await store.acquireLease(0, "writer", 3_600_000, Date.now());
  const fence = { owner: "writer", epoch: lease!.epoch };
  const commit = (batch: number) =>
    store.commit(
      0,
      fence,
      ["a", "b", "c"].map((part) => crashRecord(batch, part)),
      {
        nowMs: Date.now(),
        dedupeWindowMs: 60_000,
      },
    );
  for (let batch = 0; ; batch++) {
    try {
      await commit(batch);
    } catch (err) {
      if (!untilFailure) throw err;
      process.send!({ failed: (err as { code?: string }).code });
      const after = await commit(batch + 1).then(
        () => "ok",
        (e: { code?: string }) => e.code,
      );
      process.send!({ refusedAfter: after }, () => process.exit(0));
      return;
    }
    await store.index.add("committed", String(batch), batch);
    process.send!({ acked: batch });
  }
}

// Imported by the test for its records; run as the writer only when forked with a directory.
if (process.env.PANDA_WRITER_DIR && process.send) await main();
