// A job sent with a sandbox keeps the sandbox in use, whether or not the node sees the pilot fetch it.
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { CommitFeed } from "../../src/runtime/commit-feed.js";
import { silentLogger } from "../../src/runtime/logger.js";
import type { CommittedTransition } from "../../src/runtime/settle-batch.js";
import { SandboxStore, sandboxConfigSchema } from "../../src/sandbox/sandbox-store.js";
import { markSandboxesOfSentJobs } from "../../src/sandbox/sandbox-use.js";
import { MemoryQueueIndex } from "../../src/store/memory-queue-index.js";
import { localStorageElement } from "../../src/transfer/storage-config.js";
import { useTempDirs } from "../transfer/helpers.js";
import { buildArchive, sha256Of } from "./hostile-archives.js";

const tempDir = useTempDirs();

/** A job's committed transition, as the runtime tells its listeners. */
function jobTransition(to: string, sandbox: { sha256: string } | null, refused = false): CommittedTransition {
  return {
    actor: "job/t-1.1",
    entry: {
      v: 1,
      at: 0,
      id: `e-${to}`,
      event: { type: "dispatch" },
      from: "activated",
      to,
      cause: "test",
      ...(refused ? { refused: { code: "X", message: "refused" } } : {}),
    },
    state: { context: { payload: sandbox ? { sandbox } : null } } as CommittedTransition["state"],
  };
}

describe("sandboxes of sent jobs", () => {
  it("are marked used when a job is sent with one, once per interval, and a swept one stays swept", async () => {
    const store = new SandboxStore(
      localStorageElement(await tempDir()),
      new MemoryQueueIndex(),
      sandboxConfigSchema.parse({ retentionMs: 3_600_000 }),
    );
    const bytes = await buildArchive([{ header: { name: "run.py" }, body: "print(1)\n" }]);
    const ref = { sha256: sha256Of(bytes), sizeBytes: bytes.length };
    await store.put(ref, Readable.from([bytes]), "alice", 1_000);
    let listener: Parameters<CommitFeed["onTransitions"]>[0] = () => {};
    let nowMs = 5_000;
    const stop = markSandboxesOfSentJobs(
      {
        onTransitions: (l) => {
          listener = l;
          return () => true;
        },
      },
      store,
      () => nowMs,
      silentLogger,
    );
    const lastUsed = async () => (await store.list(null, 10))[0]?.lastUsedMs;
    const settled = () => new Promise((resolve) => setImmediate(resolve));

    // Other transitions, a refused dispatch and a job without a sandbox leave it be.
    listener([jobTransition("starting", ref), jobTransition("sent", ref, true), jobTransition("sent", null)]);
    await settled();
    expect(await lastUsed()).toBe(1_000);

    listener([jobTransition("sent", ref)]);
    await settled();
    expect(await lastUsed()).toBe(5_000);
    // Within the interval one mark stands for every job sent.
    nowMs = 30_000;
    listener([jobTransition("sent", ref)]);
    await settled();
    expect(await lastUsed()).toBe(5_000);
    nowMs = 70_000;
    listener([jobTransition("sent", ref)]);
    await settled();
    expect(await lastUsed()).toBe(70_000);

    expect(await store.sweep(70_000 + 3_600_001)).toEqual([ref.sha256]);
    nowMs = 200_000;
    listener([jobTransition("sent", ref)]);
    await settled();
    expect(await store.list(null, 10)).toEqual([]);
    stop();
  });
});
