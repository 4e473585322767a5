import { fork, spawn, spawnSync } from "node:child_process";
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { DurableStore } from "../../src/store/durable-store.js";
import { readFrames } from "../../src/store/frames.js";
import type { CommitRecord, Fence } from "../../src/store/types.js";
import { crashSnapshot } from "../support/durable-writer.js";

const WRITER = fileURLToPath(new URL("../support/durable-writer.ts", import.meta.url));
const T0 = 1_700_000_000_000;
const at = (nowMs: number) => ({ nowMs, dedupeWindowMs: 60_000 });

function record(actor: string, fields: Partial<CommitRecord> = {}): CommitRecord {
  return {
    actor,
    expectedVersion: 0,
    snapshot: Buffer.from(`${actor}@1`),
    constants: null,
    versionStep: 1,
    history: [Buffer.from(`${actor}#1`)],
    historyCap: 10,
    timerAdds: [],
    timerCancels: [],
    outbox: [],
    counters: [{ name: "created", delta: 1 }],
    index: [],
    dedupeIds: [],
    acks: [],
    ...fields,
  };
}

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "panda-durable-"));
  dirs.push(dir);
  return dir;
}

async function own(store: DurableStore, shard = 0, owner = "node-a"): Promise<Fence> {
  const lease = await store.acquireLease(shard, owner, 10_000, T0);
  return { owner, epoch: lease!.epoch };
}

/** Opens, runs `work`, and lets go as a crash would (nothing compacted, nothing fsynced). */
async function writeThenCrash(dir: string, work: (store: DurableStore) => Promise<void>): Promise<void> {
  const store = DurableStore.open({ dir });
  await work(store);
  store.abandon();
}

/** Every `job/<n>` of shard 0 that exists, in order. */
async function jobsPresent(store: DurableStore, upTo: number): Promise<number[]> {
  const keys = Array.from({ length: upTo }, (_, i) => `job/${i}`);
  const stored = await store.loadActors(0, keys);
  return stored.flatMap((actor, i) => (actor ? [i] : []));
}

describe("DurableStore", () => {
  it("brings back actors, history, timers, inbox, outbox, counters, dedupe ids and index queues, from the log and from a snapshot", async () => {
    const dir = tempDir();
    const write = async (store: DurableStore) => {
      const fence = await own(store);
      await store.appendInbox(0, [
        { eventId: "in-1", payload: Buffer.from("p1") },
        { eventId: "in-2", payload: Buffer.from("p2") },
      ]);
      await store.commit(
        0,
        fence,
        [
          record("job/1", {
            constants: Buffer.from("const"),
            timerAdds: [{ timerKey: "job/1:t", fireId: "f1", dueAtMs: T0 + 5, payload: Buffer.from("tick") }],
            outbox: [{ effectId: "e1", payload: Buffer.from("effect") }],
            index: [],
            dedupeIds: ["in-1"],
            acks: [{ kind: "inbox", eventId: "in-1" }],
          }),
        ],
        at(T0),
      );
      await store.index.add("site-queue:A", "job/1", 3);
      await store.index.add("site-queue:A", "job/2", 1);
      await store.index.popMin("site-queue:A", 1);
      await store.index.putRecord("incidents", "i1", 5, "first");
      await store.index.putRecord("incidents", "i2", 6, "second");
      await store.index.trimRecords("incidents", 1);
      await store.index.add("sandboxes", "old", 1);
      await store.index.add("sandboxes", "kept", 9);
      await store.index.removeIfScoreBelow("sandboxes", "old", 5);
      await store.index.removeIfScoreBelow("sandboxes", "kept", 5);
    };
    const expectAllBack = async (store: DurableStore) => {
      expect(await store.loadActors(0, ["job/1"])).toEqual([
        { version: 1, snapshot: Buffer.from("job/1@1"), constants: Buffer.from("const") },
      ]);
      expect(await store.readHistory(0, "job/1", 10)).toEqual([Buffer.from("job/1#1")]);
      expect(await store.dueTimers(0, T0 + 5, 10)).toMatchObject([{ timerKey: "job/1:t", fireId: "f1" }]);
      expect((await store.readInbox(0, 0, 10)).map((e) => e.eventId)).toEqual(["in-2"]);
      expect((await store.readOutbox(0, 10)).map((e) => e.effectId)).toEqual(["e1"]);
      expect(await store.readCounters(0)).toEqual(new Map([["created", 1]]));
      expect(await store.index.range("site-queue:A", 0, 10)).toEqual([{ member: "job/1", score: 3 }]);
      expect(await store.index.range("incidents", 0, 10)).toEqual([{ member: "i2", score: 6 }]);
      expect(await store.index.readRecords("incidents", ["i1", "i2"])).toEqual([null, "second"]);
      expect(await store.index.range("sandboxes", 0, 10)).toEqual([{ member: "kept", score: 9 }]);
      // The dedupe id is still remembered: the same event again is a duplicate.
      const fence = await own(store);
      const again = record("job/1", { expectedVersion: 1, dedupeIds: ["in-1"] });
      expect(await store.commit(0, fence, [again], at(T0 + 1))).toEqual(["duplicate"]);
    };

    await writeThenCrash(dir, write);
    expect(existsSync(join(dir, "snapshot"))).toBe(false);
    const fromLog = DurableStore.open({ dir });
    await expectAllBack(fromLog);
    await fromLog.close();

    expect(existsSync(join(dir, "snapshot"))).toBe(true);
    const fromSnapshot = DurableStore.open({ dir });
    await expectAllBack(fromSnapshot);
    await fromSnapshot.close();
  });

  it("hands the previous process's shards over at once, under a greater epoch, and fences it", async () => {
    const dir = tempDir();
    let oldFence: Fence = { owner: "", epoch: 0 };
    await writeThenCrash(dir, async (store) => {
      oldFence = await own(store, 3, "node-old");
      await store.heartbeatNode("node-old", 10_000, T0);
    });
    const store = DurableStore.open({ dir });
    expect(await store.heartbeatNode("node-new", 10_000, T0 + 1)).toEqual(["node-new"]);
    const lease = await store.acquireLease(3, "node-new", 10_000, T0 + 1);
    expect(lease?.epoch).toBe(oldFence.epoch + 1);
    await expect(store.commit(3, oldFence, [record("job/1")], at(T0 + 1))).rejects.toMatchObject({
      code: "FENCED",
    });
    await store.close();
  });

  it("reads back a prefix of the calls, never half of one, whatever byte a crash cut the log at", async () => {
    const dir = tempDir();
    await writeThenCrash(dir, async (store) => {
      const fence = await own(store);
      for (let i = 0; i < 4; i++) await store.commit(0, fence, [record(`job/${i}`)], at(T0 + i));
    });
    const log = join(dir, "log-0");
    const whole = readFileSync(log);
    const { payloads } = readFrames(whole);
    const lastFrameStart = whole.length - (payloads.at(-1)!.length + 8);
    const cuts = [
      lastFrameStart + 1,
      lastFrameStart + 4,
      lastFrameStart + 7,
      lastFrameStart + 8,
      lastFrameStart + 9,
      whole.length - 1,
    ];
    for (const cut of cuts) {
      const copy = tempDir();
      cpSync(dir, copy, { recursive: true });
      truncateSync(join(copy, "log-0"), cut);
      const store = DurableStore.open({ dir: copy });
      expect(await jobsPresent(store, 4), `cut at ${cut}`).toEqual([0, 1, 2]);
      expect(await store.readCounters(0)).toEqual(new Map([["created", 3]]));
      // What was cut off is kept beside the log, and the log goes on after the last whole record.
      expect(readdirSync(copy)).toContain(`log-0.torn-${lastFrameStart}`);
      const fence = await own(store, 0, "node-b");
      expect(await store.commit(0, fence, [record("job/3")], at(T0 + 9))).toEqual(["ok"]);
      store.abandon();
      const reopened = DurableStore.open({ dir: copy });
      expect(await jobsPresent(reopened, 4)).toEqual([0, 1, 2, 3]);
      await reopened.close();
    }
    // Bytes that are no record at all after the last whole one (zeroed blocks, garbage) are cut off too.
    appendFileSync(log, Buffer.alloc(4096));
    appendFileSync(log, Buffer.from("not a frame at all, just bytes"));
    const store = DurableStore.open({ dir });
    expect(await jobsPresent(store, 5)).toEqual([0, 1, 2, 3]);
    await store.close();
  });

  it("compacts the log into a snapshot past its size limit, and loses nothing across generations", async () => {
    const dir = tempDir();
    await writeThenCrash(dir, async () => {});
    const store = DurableStore.open({ dir, compactAfterBytes: 4096 });
    const fence = await own(store);
    const big = Buffer.alloc(1000, 7);
    for (let i = 0; i < 30; i++)
      await store.commit(0, fence, [record(`job/${i}`, { snapshot: big })], at(T0 + i));
    const files = readdirSync(dir).sort();
    expect(files).toContain("snapshot");
    expect(files.filter((f) => f.startsWith("log-"))).toHaveLength(1);
    expect(files.find((f) => f.startsWith("log-"))).not.toBe("log-0");
    store.abandon();
    const reopened = DurableStore.open({ dir });
    expect(await jobsPresent(reopened, 31)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect((await reopened.loadActors(0, ["job/29"]))[0]?.snapshot).toEqual(big);
    await reopened.close();
  });

  it("refuses a directory another live process has open, and takes over one whose process is gone", async () => {
    const dir = tempDir();
    const store = DurableStore.open({ dir });
    expect(() => DurableStore.open({ dir })).toThrow(/in use by process/);
    await store.close();
    // The lock of a process that has exited: a fresh pid that is certainly gone.
    const gone = spawnSync(process.execPath, [
      "-e",
      "process.stdout.write(String(process.pid))",
    ]).stdout.toString();
    writeFileSync(join(dir, "lock"), `${gone}\n`);
    const again = DurableStore.open({ dir });
    await again.close();
    // The lock of a process still running (the one that started this test).
    writeFileSync(join(dir, "lock"), `${process.ppid}\n`);
    expect(() => DurableStore.open({ dir })).toThrow(new RegExp(`in use by process ${process.ppid}`));
  });

  it("will not start from a damaged snapshot as if it were empty", async () => {
    const dir = tempDir();
    const store = DurableStore.open({ dir });
    const fence = await own(store);
    await store.commit(0, fence, [record("job/1")], at(T0));
    await store.close();
    const snapshot = readFileSync(join(dir, "snapshot"));
    snapshot[snapshot.length - 1]! ^= 0xff;
    writeFileSync(join(dir, "snapshot"), snapshot);
    expect(() => DurableStore.open({ dir })).toThrow(/snapshot is damaged/);
  });
});

describe("DurableStore after a SIGKILL mid-commit", () => {
  it("holds a prefix of the committed batches, every acknowledged one, and no torn record", async () => {
    const dir = tempDir();
    const child = fork(WRITER, [], {
      execArgv: ["--import", "tsx"],
      env: { ...process.env, PANDA_WRITER_DIR: dir },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.once("exit", (_code, signal) => resolve(signal)),
    );
    // Killed while it is committing: right as an acknowledgement arrives, the next batch is under way.
    const lastAcked = await new Promise<number>((resolve) => {
      child.on("message", (message) => {
        const { acked } = message as { acked: number };
        if (acked >= 150) {
          child.kill("SIGKILL");
          resolve(acked);
        }
      });
    });
    expect(await exited).toBe("SIGKILL");
    const store = DurableStore.open({ dir });
    const counters = await store.readCounters(0);
    const batches = counters.get("batches") ?? 0;
    expect(batches).toBeGreaterThan(lastAcked);
    // Each batch whole or absent: as many records as three per batch, and exactly batches 0..n-1.
    expect(counters.get("records")).toBe(3 * batches);
    const keys = Array.from({ length: batches + 1 }, (_, n) =>
      ["a", "b", "c"].map((p) => `job/${n}-${p}`),
    ).flat();
    const stored = await store.loadActors(0, keys);
    for (let n = 0; n <= batches; n++) {
      for (const [i, part] of ["a", "b", "c"].entries()) {
        const actor = stored[3 * n + i];
        if (n < batches)
          expect(actor?.snapshot.equals(crashSnapshot(n, part)), `job/${n}-${part}`).toBe(true);
        else expect(actor, `job/${n}-${part}`).toBeNull();
      }
    }
    // The index writes that followed each commit: every acknowledged one, none beyond the commits.
    const committed = await store.index.range("committed", 0, batches + 1);
    expect(committed.length).toBeGreaterThan(lastAcked);
    expect(committed.length).toBeLessThanOrEqual(batches);
    expect(committed.map((e) => e.score)).toEqual(committed.map((_, n) => n));
    // The writer compacted while it ran: the state came from a snapshot and the log after it.
    expect(readdirSync(dir)).toContain("snapshot");
    await store.close();
  }, 60_000);
});

describe("DurableStore when the disk refuses a write", () => {
  it("stops taking changes at the first failed append, after snapshots that failed cost nothing, and keeps all it acknowledged", async () => {
    const dir = tempDir();
    // A 256 kB file size limit: snapshots outgrow it first (compaction fails, the log goes on), then the log does.
    const child = spawn(
      "sh",
      ["-c", `ulimit -f 512 && exec "${process.execPath}" --import tsx "${WRITER}"`],
      {
        env: {
          ...process.env,
          PANDA_WRITER_DIR: dir,
          PANDA_WRITER_UNTIL_FAILURE: "1",
          PANDA_WRITER_COMPACT_AFTER_BYTES: String(48 * 1024),
        },
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      },
    );
    let lastAcked = -1;
    const reports: Record<string, unknown> = {};
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.on("message", (message) => {
      const m = message as { acked?: number };
      if (m.acked !== undefined) lastAcked = m.acked;
      else Object.assign(reports, m);
    });
    expect(await exited).toBe(0);
    expect(reports).toEqual({ failed: "UNAVAILABLE", refusedAfter: "UNAVAILABLE" });
    // Snapshots were written, and then one could not be (its temp file is left, the log went on).
    expect(readdirSync(dir)).toEqual(expect.arrayContaining(["snapshot", "snapshot.tmp"]));
    const store = DurableStore.open({ dir });
    const batches = (await store.readCounters(0)).get("batches") ?? 0;
    expect(batches).toBe(lastAcked + 1);
    expect((await store.readCounters(0)).get("records")).toBe(3 * batches);
    const fence = await own(store, 0, "after");
    expect(await store.commit(0, fence, [record("job/after")], at(T0))).toEqual(["ok"]);
    await store.close();
  }, 60_000);
});
